"""The zoo's tokenizers (tests/zoo.py): each family's special tokens, BOS and pad behaviour and a
chat template shaped like its hub template, over one small vocabulary trained on ShapesWorld text."""

from __future__ import annotations

from pathlib import Path

from tests.zoo_templates import ADDED_TOKENS, QWEN_SPECIALS
from tests.zoo_templates import TOKENIZERS as TOKENIZERS_2025

TEXT = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=2,
    head_dim=32,
    max_position_embeddings=1024,
    tie_word_embeddings=False,
)

_LLAVA15_TEMPLATE = (
    "{% for m in messages %}{{ m['role'].upper() + ': ' }}"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>\n{% endif %}{% endfor %}"
    "{% for c in m['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{% if m['role'] == 'assistant' %}</s>{% endif %} {% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
_MISTRAL_TEMPLATE = (  # llava-v1.6-mistral: [INST] ... [/INST]
    "{% for m in messages %}{% if m['role'] == 'user' %}[INST] "
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>\n{% endif %}{% endfor %}"
    "{% for c in m['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    " [/INST]{% else %}"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}"
    "{% for c in m['content'] %}{{ c['text'] }}{% endfor %}{% endif %}"
    "</s>{% endif %}{% endfor %}"
)
_CHATML_BODY = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_QWEN2_VL_TEMPLATE = _CHATML_BODY
_QWEN_SYSTEM_TEMPLATE = (  # Qwen2.5(-VL): a default system turn when none is given
    "{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    + _CHATML_BODY
)
_IDEFICS3_TEMPLATE = (
    "<|im_start|>{% for m in messages %}{{ m['role'] | capitalize }}"
    "{% if m['content'] is string %}: {{ m['content'] }}{% else %}"
    "{% if m['content'][0]['type'] == 'image' %}:{% else %}: {% endif %}"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>{% elif c['type'] == 'text' %}{{ c['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)
_LLAMA3_TEMPLATE = (  # writes BOS itself, and the tokenizer adds one too (the real double-BOS trap)
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)

_TOKENIZERS = {
    # family: (style, specials, bos, eos, pad, extra generation eos, template)
    "llava15": (
        "metaspace",
        ["<unk>", "<s>", "</s>", "<pad>", "<image>"],
        "<s>",
        "</s>",
        "<pad>",
        [],
        _LLAVA15_TEMPLATE,
    ),
    "llava_next": (
        "metaspace",
        ["<unk>", "<s>", "</s>", "<image>", "[INST]", "[/INST]"],
        "<s>",
        "</s>",
        None,
        [],
        _MISTRAL_TEMPLATE,
    ),
    "qwen2_vl": ("bytes", QWEN_SPECIALS, None, "<|im_end|>", "<|endoftext|>", ["<|endoftext|>"], _QWEN2_VL_TEMPLATE),
    "qwen2_5_vl": (
        "bytes",
        QWEN_SPECIALS,
        None,
        "<|im_end|>",
        "<|endoftext|>",
        ["<|endoftext|>"],
        _QWEN_SYSTEM_TEMPLATE,
    ),
    "idefics3": (
        "bytes",
        [
            "<|endoftext|>",
            "<|im_start|>",
            "<end_of_utterance>",
            "<image>",
            "<fake_token_around_image>",
            "<global-img>",
            "<row_1_col_1>",
        ],
        None,
        "<end_of_utterance>",
        "<|endoftext|>",
        [],
        _IDEFICS3_TEMPLATE,
    ),
    "llama3": (
        "bytes",
        ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
        "<|begin_of_text|>",
        "<|eot_id|>",
        None,
        ["<|end_of_text|>"],
        _LLAMA3_TEMPLATE,
    ),
    "qwen2_5": (
        "bytes",
        QWEN_SPECIALS[:3],
        None,
        "<|im_end|>",
        "<|endoftext|>",
        ["<|endoftext|>"],
        _QWEN_SYSTEM_TEMPLATE,
    ),
}


_TOKENIZERS.update(TOKENIZERS_2025)


def tokenizer(family: str, vocab_size: int = 700):
    """A BPE trained on ShapesWorld text and the claim prompts, with the family's quirks."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from rlaifv_ray import prompts
    from rlaifv_ray.toyworld import examples

    style, specials, bos, eos, pad, _, template, *named = _TOKENIZERS[family]
    corpus = examples.corpus(0, n=100) + [prompts.INSTRUCT.facts, prompts.INSTRUCT.questions, prompts.LABEL_PROMPT]
    if style == "metaspace":  # SentencePiece-like: words carry a leading "▁"
        bpe = Tokenizer(models.BPE(unk_token="<unk>"))
        bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
        bpe.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
        alphabet = [chr(c) for c in range(32, 127)] + ["\n", "▁", "•"]
    else:
        bpe = Tokenizer(models.BPE())
        bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        bpe.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=alphabet, show_progress=False
    )
    bpe.train_from_iterator(corpus, trainer)
    if bos:  # the tokenizer prepends BOS on every encode with special tokens (LLaMA's behaviour)
        bpe.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bpe.token_to_id(bos))]
        )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=bos,
        eos_token=eos,
        pad_token=pad,
        unk_token="<unk>" if style == "metaspace" else None,
        additional_special_tokens=[s for s in specials if s not in (bos, eos, pad, "<unk>")],
        # hub tokenizers name their image markup (Gemma 3's boi_token, InternVL's context_image_token)
        extra_special_tokens=named[0] if named else None,
    )
    tok.add_tokens(ADDED_TOKENS.get(family, []))
    tok.chat_template = template
    return tok


def eos_ids(family: str, tok) -> list[int]:
    _, _, _, eos, _, extra, *_ = _TOKENIZERS[family]
    return [tok.convert_tokens_to_ids(t) for t in [eos, *extra]]


def qwen_special_ids(tok) -> dict:
    ids = tok.convert_tokens_to_ids
    return dict(
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )


def eos_ids_of(folder: str | Path) -> list[int]:
    """The eos ids a saved folder's generation config lists."""
    import json

    eos = json.loads((Path(folder) / "generation_config.json").read_text()).get("eos_token_id")
    return [eos] if isinstance(eos, int) else list(eos or [])
