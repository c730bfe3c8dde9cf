"""A zoo of tiny random-init models of the families users run, built locally in seconds.

Each family uses its real transformers classes (config, model, processor, PIL image processor) at
toy sizes, a chat template shaped like its hub template, and a tokenizer with its real quirks:

| family      | tokenizer                         | BOS added | pad   | eos ids                      |
|-------------|-----------------------------------|-----------|-------|------------------------------|
| llava15     | SentencePiece-style (▁ words)     | yes       | <pad> | </s>                         |
| llava_next  | SentencePiece-style, anyres images| yes       | none  | </s>                         |
| qwen2_vl    | byte-level BPE, ChatML            | no        | yes   | <|im_end|>, <|endoftext|>    |
| qwen2_5_vl  | byte-level BPE, ChatML + system   | no        | yes   | <|im_end|>, <|endoftext|>    |
| idefics3    | byte-level BPE                    | no        | yes   | <end_of_utterance>           |
| llama3 (text)| byte-level, template writes BOS too | yes (so twice) | none | <|eot_id|>, <|end_of_text|> |
| qwen2_5 (text)| byte-level, ChatML + system     | no        | yes   | <|im_end|>, <|endoftext|>    |

Tests compare engines, backends and DPO against each other on these (equalities need no
training). `build(family, out)` saves a folder that loads through the stock Auto classes, except
that Qwen's processors load through rlaifv_ray's torchvision-free path.
"""

from __future__ import annotations

from pathlib import Path

VISION_FAMILIES_2024 = ("llava15", "llava_next", "qwen2_vl", "qwen2_5_vl", "idefics3")
# tests/zoo_recent.py: their quirks are listed there
VISION_FAMILIES_2025 = ("qwen3_vl", "qwen3_5", "internvl", "gemma3", "minicpmv4_6")
VISION_FAMILIES = VISION_FAMILIES_2024 + VISION_FAMILIES_2025
TEXT_FAMILIES = ("llama3", "qwen2_5", "qwen3", "gemma3_text")
FAMILIES = VISION_FAMILIES + TEXT_FAMILIES

from tests import zoo_recent  # noqa: E402 - the families above come first
from tests.zoo_tokenizers import TEXT, eos_ids, qwen_special_ids, tokenizer  # noqa: E402


def _text_config(tok, vocab: int, cls_name: str = "Qwen2Config", **extra):
    import transformers

    cls = getattr(transformers, cls_name)
    return cls(
        vocab_size=vocab,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        **TEXT,
        **extra,
    )


def _clip(image_size: int = 56):
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(
        image_size=image_size,
        patch_size=14,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
    )


def build(family: str, out: str | Path, seed: int = 0, vocab_size: int | None = None) -> Path:
    """Build and save one family's tiny model; returns the folder. vocab_size: the model's
    vocabulary rows (default: the tokenizer's size); real checkpoints pad theirs, e.g. Qwen's 152064
    or LLaVA-NeXT-34B's 64000, which is what sizes the logits in memory benchmarks."""
    import torch

    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r} (known: {', '.join(FAMILIES)})")
    torch.manual_seed(seed)
    tok = tokenizer(family)
    builder = globals().get(f"_build_{family}") or getattr(zoo_recent, f"build_{family}")
    model, processor = builder(tok, max(len(tok), vocab_size or 0))
    model.generation_config.eos_token_id = eos_ids(family, tok)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.bos_token_id = tok.bos_token_id
    out = Path(out)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def _qwen2_video():
    """Hub Qwen folders carry a video processor; vLLM's processor loads it (with torchvision). Held
    inert here: building the class itself would need torchvision."""
    return zoo_recent.inert_video(
        "qwen2_vl",
        video_processor_type="Qwen2VLVideoProcessor",
        patch_size=14,
        temporal_patch_size=2,
        merge_size=2,
        size={"shortest_edge": 56 * 56, "longest_edge": 112 * 112},
        image_mean=[0.48145466, 0.4578275, 0.40821073],
        image_std=[0.26862954, 0.26130258, 0.27577711],
    )


def _build_llava15(tok, vocab):
    from transformers import CLIPImageProcessorPil, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    config = LlavaConfig(
        vision_config=_clip(),
        text_config=_text_config(tok, vocab, "LlamaConfig"),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        image_seq_length=16,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
    )
    images = CLIPImageProcessorPil(size={"shortest_edge": 56}, crop_size={"height": 56, "width": 56})
    processor = LlavaProcessor(
        image_processor=images,
        tokenizer=tok,
        patch_size=14,
        num_additional_image_tokens=1,
        vision_feature_select_strategy="default",
        chat_template=tok.chat_template,
    )
    return LlavaForConditionalGeneration(config), processor


def _build_llava_next(tok, vocab):
    from transformers import (
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessorPil,
        LlavaNextProcessor,
    )

    pinpoints = [[56, 112], [112, 56], [112, 112]]  # anyres: the image is tiled plus a base view
    config = LlavaNextConfig(
        vision_config=_clip(),
        text_config=_text_config(tok, vocab, "MistralConfig"),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        image_grid_pinpoints=pinpoints,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        image_seq_length=16,
    )
    images = LlavaNextImageProcessorPil(
        size={"shortest_edge": 56}, crop_size={"height": 56, "width": 56}, image_grid_pinpoints=pinpoints
    )
    processor = LlavaNextProcessor(
        image_processor=images,
        tokenizer=tok,
        patch_size=14,
        num_additional_image_tokens=1,
        vision_feature_select_strategy="default",
        chat_template=tok.chat_template,
    )
    return LlavaNextForConditionalGeneration(config), processor


def _qwen_images():
    from transformers import Qwen2VLImageProcessorPil

    # 56x56 -> 4x4 patches of 14 px -> 4 merged image tokens; larger images are downscaled
    return Qwen2VLImageProcessorPil(size={"shortest_edge": 56 * 56, "longest_edge": 112 * 112})


def _build_qwen2_vl(tok, vocab):
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor

    text = _text_config(
        tok,
        vocab,
        "Qwen2VLTextConfig",
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6]},
    )
    config = Qwen2VLConfig(
        text_config=text.to_dict(),
        vision_config=dict(
            depth=2,
            embed_dim=32,
            hidden_size=64,
            num_heads=2,
            mlp_ratio=2,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
        ),
        **qwen_special_ids(tok),
    )
    processor = zoo_recent.image_only(Qwen2VLProcessor)(
        image_processor=_qwen_images(), tokenizer=tok, video_processor=_qwen2_video(), chat_template=tok.chat_template
    )
    return Qwen2VLForConditionalGeneration(config), processor


def _build_qwen2_5_vl(tok, vocab):
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

    text = _text_config(
        tok,
        vocab,
        "Qwen2_5_VLTextConfig",
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6]},
    )
    config = Qwen2_5_VLConfig(
        text_config=text.to_dict(),
        vision_config=dict(
            depth=2,
            hidden_size=32,
            intermediate_size=64,
            num_heads=2,
            out_hidden_size=64,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=56,
            fullatt_block_indexes=[1],
        ),
        **qwen_special_ids(tok),
    )
    processor = zoo_recent.image_only(Qwen2_5_VLProcessor)(
        image_processor=_qwen_images(), tokenizer=tok, video_processor=_qwen2_video(), chat_template=tok.chat_template
    )
    return Qwen2_5_VLForConditionalGeneration(config), processor


def _build_idefics3(tok, vocab):
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessorPil,
        Idefics3Processor,
    )

    vision = dict(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, image_size=56, patch_size=14
    )
    config = Idefics3Config(
        vision_config=vision,
        text_config=_text_config(tok, vocab, "LlamaConfig").to_dict(),
        scale_factor=2,
        image_token_id=tok.convert_tokens_to_ids("<image>"),
    )
    images = Idefics3ImageProcessorPil(
        do_image_splitting=False, size={"longest_edge": 56}, max_image_size={"longest_edge": 56}
    )
    # 56 px / 14 = 4x4 patches, pixel-shuffled by 2 -> 4 image tokens
    processor = Idefics3Processor(
        image_processor=images, tokenizer=tok, image_seq_len=4, chat_template=tok.chat_template
    )
    return Idefics3ForConditionalGeneration(config), processor


def _build_llama3(tok, vocab):
    from transformers import LlamaForCausalLM

    return LlamaForCausalLM(_text_config(tok, vocab, "LlamaConfig")), tok


def _build_qwen2_5(tok, vocab):
    from transformers import Qwen2ForCausalLM

    return Qwen2ForCausalLM(_text_config(tok, vocab, "Qwen2Config")), tok


def train(folder: str | Path, task: str, steps: int, batch: int = 16, lr: float = 2e-3, seed: int = 0) -> dict:
    """Briefly teach a zoo model one ShapesWorld task, in place, for tests that need behaviour
    rather than equalities: "captions" (a policy that names objects) or "claims" (a claim LLM on
    the ShapesWorld prompts). Returns the first and last loss."""
    import torch
    import transformers

    from rlaifv_ray.engines.chat import ensure_pad_token
    from rlaifv_ray.engines.processors import load_processor
    from rlaifv_ray.toyworld import examples, sft

    torch.manual_seed(seed)
    folder = Path(folder)
    config = transformers.AutoConfig.from_pretrained(folder)
    if task not in ("captions", "claims"):
        raise ValueError(f"unknown task {task!r} (captions, claims)")
    if task == "claims":
        processor = ensure_pad_token(transformers.AutoTokenizer.from_pretrained(folder))
        model = transformers.AutoModelForCausalLM.from_pretrained(folder)

        def make(step: int):
            return [
                e for i in range(step * batch // 2, (step + 1) * batch // 2) for e in examples.claim_examples(seed, i)
            ]
    else:
        processor = load_processor(str(folder), config.model_type)
        ensure_pad_token(processor.tokenizer)
        model = transformers.AutoModelForImageTextToText.from_pretrained(folder)

        def make(step: int):
            return [examples.caption_example(seed, step * batch + k, 0.3) for k in range(batch)]

    losses = []
    sft.train(model, processor, make, steps, lr, progress=lambda s, n, loss, **_: losses.append(loss))
    model.save_pretrained(folder)
    return {"steps": steps, "first_loss": round(losses[0], 4), "last_loss": round(losses[-1], 4)}
