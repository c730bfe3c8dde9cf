"""Tiny models of real architectures, built locally and saved like hub checkpoints.

- policy / labeler: LLaVA (CLIP vision tower + Qwen2 language model), `LlavaProcessor` with the
  torchvision-free `CLIPImageProcessorPil`; loads with AutoModelForImageTextToText/AutoProcessor.
- claim LLM: Qwen2 causal LM; loads with AutoModelForCausalLM/AutoTokenizer.
All share one byte-level BPE tokenizer trained on ShapesWorld text.
"""

from __future__ import annotations

from .world import IMAGE_SIZE

IMAGE_TOKEN = "<image>"
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", IMAGE_TOKEN]
PATCH_SIZE = 14  # 56 px / 14 = 16 image tokens: short sequences keep CPU training fast

# ChatML; list content may hold {"type": "image"} items, which become the image token.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<image>{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

TEXT_DIMS = dict(
    hidden_size=128,
    intermediate_size=256,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=4,
    head_dim=32,
)  # head_dim >= 32 so vLLM's CPU backend loads it;
# intermediate 256 keeps each safetensors file under 5 MB so the trained models can be committed
VISION_DIMS = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=3, num_attention_heads=4)


def train_tokenizer(corpus: list[str], vocab_size: int = 600):
    """A byte-level BPE trained on the corpus, wrapped as the Qwen2 tokenizer class."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus, trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    tok = Qwen2Tokenizer(vocab=model["vocab"], merges=merges, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS[1:]})
    tok.chat_template = CHAT_TEMPLATE
    for word in ("yes", "no", "Yes", "No"):
        ids = tok.encode(word, add_special_tokens=False)
        if len(ids) != 1:
            raise RuntimeError(f"tokenizer splits {word!r} into {len(ids)} tokens; add it to the corpus")
    return tok


def image_processor():
    from transformers import CLIPImageProcessorPil

    return CLIPImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        do_convert_rgb=True,
    )


def vision_config():
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(image_size=IMAGE_SIZE, patch_size=PATCH_SIZE, **VISION_DIMS)


def build_processor(tokenizer):
    from transformers import LlavaProcessor

    return LlavaProcessor(
        image_processor=image_processor(),
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS token, dropped by the "default" strategy
        chat_template=CHAT_TEMPLATE,
        image_token=IMAGE_TOKEN,
    )


def build_vlm(tokenizer, vision_tower=None, seed: int = 0):
    """A LLaVA model; a pre-trained CLIP vision tower is copied in when given."""
    import torch
    from transformers import LlavaConfig, LlavaForConditionalGeneration, Qwen2Config

    torch.manual_seed(seed)
    text = Qwen2Config(
        vocab_size=len(tokenizer),
        max_position_embeddings=512,
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **TEXT_DIMS,
    )
    config = LlavaConfig(
        vision_config=vision_config(),
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        image_seq_length=(IMAGE_SIZE // PATCH_SIZE) ** 2,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        projector_hidden_act="gelu",
    )
    model = LlavaForConditionalGeneration(config)
    if vision_tower is not None:
        model.model.vision_tower.load_state_dict(vision_tower.state_dict())
    _set_generation_defaults(model, tokenizer)
    return model


def build_claim_llm(tokenizer, seed: int = 0):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        max_position_embeddings=512,
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **TEXT_DIMS,
    )
    model = Qwen2ForCausalLM(config)
    _set_generation_defaults(model, tokenizer)
    return model


def _set_generation_defaults(model, tokenizer):
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
