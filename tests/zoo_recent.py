"""The zoo's 2025-26 families (tests/zoo.py builds them): tiny random-init models of the real
transformers classes, processors built as the hub ships them (video processor included, held
inert where torchvision is missing), and tokenizers and templates from tests/zoo_templates.py.

Quirks kept: Qwen3-VL's patch 16 and deepstack mergers; Qwen3.5's hybrid decoder (linear-attention
layers beside full attention) and thinking template; InternVL's `<img><IMG_CONTEXT>...</img>` and
list-valued image and patch sizes; Gemma 3's sliding-window layers, double BOS, `model` role and
`<end_of_turn>`; MiniCPM-V 4.6's slice markup around its image tokens.
"""

from __future__ import annotations

from tests.zoo_tokenizers import TEXT, qwen_special_ids


def image_only(cls):
    from rlaifv_ray.engines.processors import image_only_class

    return image_only_class(cls)


def inert_video(model_type: str, **config):
    from rlaifv_ray.engines.processors import inert_video_processor

    return inert_video_processor("", model_type, config=config)


def _qwen3_images(patch: int = 16):
    from transformers import Qwen2VLImageProcessorPil

    # 64x64 -> 4x4 patches of 16 px -> 4 merged image tokens (56 px images are resized up to 64)
    side = patch * 4
    return Qwen2VLImageProcessorPil(
        patch_size=patch, merge_size=2, size={"shortest_edge": side * side, "longest_edge": 2 * side * side}
    )


def _qwen3_video():
    return inert_video("qwen3_vl", patch_size=16, temporal_patch_size=2, merge_size=2, fps=2)


def _qwen3_text(tok, vocab, **extra) -> dict:
    rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6], "mrope_interleaved": True}
    return {
        "vocab_size": vocab,
        "pad_token_id": tok.pad_token_id,
        "eos_token_id": tok.eos_token_id,
        **TEXT,
        "rope_parameters": rope,
        **extra,
    }


def _hybrid_text(tok, vocab, **extra) -> dict:
    """Qwen3.5's decoder (MiniCPM-V 4.6's too): a Gated DeltaNet layer beside an attention layer (3:1
    on the hub). Head sizes of 64: what vLLM's CPU kernels accept in bf16, which they require."""
    text = _qwen3_text(
        tok,
        vocab,
        head_dim=64,
        layer_types=["linear_attention", "full_attention"],
        linear_conv_kernel_dim=4,
        linear_key_head_dim=64,
        linear_value_head_dim=64,
        linear_num_key_heads=2,
        linear_num_value_heads=2,
        **extra,
    )
    text["rope_parameters"]["partial_rotary_factor"] = 0.5
    return text


def _qwen3_vision(**extra) -> dict:
    return dict(
        depth=2,
        hidden_size=32,
        intermediate_size=64,
        num_heads=2,
        out_hidden_size=64,
        patch_size=16,
        spatial_merge_size=2,
        temporal_patch_size=2,
        num_position_embeddings=16,
        **extra,
    )


def build_qwen3_vl(tok, vocab):
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration, Qwen3VLProcessor

    config = Qwen3VLConfig(
        text_config=_qwen3_text(tok, vocab),
        vision_config=_qwen3_vision(deepstack_visual_indexes=[0, 1]),  # features of both layers join the decoder
        **qwen_special_ids(tok),
    )
    processor = image_only(Qwen3VLProcessor)(
        image_processor=_qwen3_images(), tokenizer=tok, video_processor=_qwen3_video(), chat_template=tok.chat_template
    )
    return Qwen3VLForConditionalGeneration(config), processor


def build_qwen3_5(tok, vocab):
    from transformers import Qwen3_5Config, Qwen3_5ForConditionalGeneration, Qwen3VLProcessor

    text = _hybrid_text(tok, vocab)
    text["rope_parameters"]["mrope_section"] = [6, 5, 5]  # sums to half the rotary dims (64 * 0.5 / 2)
    config = Qwen3_5Config(text_config=text, vision_config=_qwen3_vision(), **qwen_special_ids(tok))
    processor = image_only(Qwen3VLProcessor)(
        image_processor=_qwen3_images(), tokenizer=tok, video_processor=_qwen3_video(), chat_template=tok.chat_template
    )
    return Qwen3_5ForConditionalGeneration(config), processor


def build_internvl(tok, vocab):
    from transformers import (
        GotOcr2ImageProcessorPil,
        InternVLConfig,
        InternVLForConditionalGeneration,
        InternVLProcessor,
    )

    vision = dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=[56, 56],  # the HF-native configs hold lists
        patch_size=[14, 14],
    )
    text = dict(vocab_size=vocab, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, **TEXT)
    config = InternVLConfig(
        vision_config=vision,
        text_config={**text, "model_type": "qwen2"},
        image_token_id=tok.context_image_token_id,
        image_seq_length=4,  # (56 / 14)^2 patches, pixel-shuffled by 0.5 -> 4 tokens
        downsample_ratio=0.5,
    )
    images = GotOcr2ImageProcessorPil(size={"height": 56, "width": 56}, crop_to_patches=False)
    video = inert_video("internvl", size={"height": 56, "width": 56})
    processor = image_only(InternVLProcessor)(
        image_processor=images,
        tokenizer=tok,
        video_processor=video,
        image_seq_length=4,
        chat_template=tok.chat_template,
    )
    return InternVLForConditionalGeneration(config), processor


def _gemma3_text(tok, vocab) -> dict:
    return dict(
        vocab_size=vocab,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        **{**TEXT, "num_hidden_layers": 2},
        query_pre_attn_scalar=32,
        sliding_window=8,  # shorter than a prompt, so the local layers really are local
        layer_types=["sliding_attention", "full_attention"],
    )


def build_gemma3(tok, vocab):
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3ImageProcessorPil, Gemma3Processor

    vision = dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=56,
        patch_size=14,
        vision_use_head=False,
        model_type="siglip_vision_model",
    )
    config = Gemma3Config(
        text_config=_gemma3_text(tok, vocab),
        vision_config=vision,
        mm_tokens_per_image=4,  # 4x4 patches average-pooled to 2x2
        boi_token_index=tok.boi_token_id,
        eoi_token_index=tok.eoi_token_id,
        image_token_index=tok.image_token_id,
    )
    images = Gemma3ImageProcessorPil(size={"height": 56, "width": 56})
    processor = Gemma3Processor(
        image_processor=images, tokenizer=tok, image_seq_length=4, chat_template=tok.chat_template
    )
    return Gemma3ForConditionalGeneration(config), processor


def build_minicpmv4_6(tok, vocab):
    from transformers import (
        MiniCPMV4_6Config,
        MiniCPMV4_6ForConditionalGeneration,
        MiniCPMV4_6ImageProcessorPil,
        MiniCPMV4_6Processor,
    )

    text = _hybrid_text(tok, vocab, model_type="qwen3_5_text")
    text["rope_parameters"] = {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5}
    vision = dict(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, image_size=56, patch_size=14
    )
    config = MiniCPMV4_6Config(
        text_config=text,
        vision_config=vision,
        insert_layer_id=1,
        image_size=56,
        image_token_id=tok.image_token_id,
        video_token_id=tok.video_token_id,
    )
    images = MiniCPMV4_6ImageProcessorPil(scale_resolution=56, patch_size=14, max_slice_nums=2)
    video = inert_video("minicpmv4_6", scale_resolution=56, patch_size=14, slice_mode=True, downsample_mode="16x")
    processor = image_only(MiniCPMV4_6Processor)(
        image_processor=images, video_processor=video, tokenizer=tok, chat_template=tok.chat_template
    )
    return MiniCPMV4_6ForConditionalGeneration(config), processor


def build_qwen3(tok, vocab):
    from transformers import Qwen3Config, Qwen3ForCausalLM

    text = dict(vocab_size=vocab, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, **TEXT)
    return Qwen3ForCausalLM(Qwen3Config(**text)), tok


def build_gemma3_text(tok, vocab):
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    return Gemma3ForCausalLM(Gemma3TextConfig(**_gemma3_text(tok, vocab))), tok
