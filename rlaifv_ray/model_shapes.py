"""A model's shape from its config.json alone, for the memory plan (plan.py): parameters (all of
them, and those one token uses in a mixture of experts), the vision encoder's share, and what an
engine holds per token of context.

Covered: dense and MoE decoders (Llama, Mistral, Qwen2/3, Gemma 3, Qwen3-VL-MoE); hybrid decoders
whose linear-attention layers (Qwen3.5's Gated DeltaNet) keep a fixed state per sequence instead of
a KV cache per token; sliding-window layers (Gemma 3) whose cache stops at the window; CLIP /
SigLIP / InternViT encoders (image and patch sizes as numbers or [h, w] lists) with LLaVA's, InternVL's
pixel-shuffled or Gemma 3's pooled image tokens; Qwen2/2.5/3-VL encoders (patches merged 2x2,
Qwen3-VL's deepstack mergers). Counts match the real classes exactly for the zoo's models
(tests/test_plan.py), within a percent or two for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shape:
    params: float  # all parameters (every expert of a MoE)
    vision_params: float  # the image encoder (frozen in DPO)
    hidden: int
    layers: int
    kv_dim: int  # kv_heads * head_dim
    vocab: int
    image_tokens: int  # per image at the configured maximum size
    active_params: float = 0.0  # parameters one token runs through (= params for dense models)
    kv_layers: int = 0  # layers that keep a KV cache per token (all, unless some are linear attention)
    window: int = 0  # sliding-window layers' cache length (0: none)
    window_layers: int = 0
    state_bytes_per_seq: float = 0.0  # linear-attention layers' fixed state (fp32), per sequence

    def kv_bytes(self, tokens: int, dtype_bytes: int) -> float:
        """KV cache (and recurrent state) of one sequence of TOKENS."""
        full = (self.kv_layers or self.layers) - self.window_layers
        per_token = 2 * self.kv_dim * dtype_bytes
        windowed = self.window_layers * min(tokens, self.window or tokens)
        return per_token * (full * tokens + windowed) + self.state_bytes_per_seq


def _pair(v) -> int:
    return v[0] if isinstance(v, (list, tuple)) else v


def shape(config: dict, max_image_pixels: int = 1024 * 1024) -> Shape:
    text = config.get("text_config") or config
    mtype = text.get("model_type") or config.get("model_type", "")
    h, layers = text["hidden_size"], text["num_hidden_layers"]
    heads = text["num_attention_heads"]
    head_dim = text.get("head_dim") or h // heads
    kv = text.get("num_key_value_heads") or heads
    vocab = text.get("vocab_size") or config["vocab_size"]
    layer_types = text.get("layer_types") or []
    linear = sum(t == "linear_attention" for t in layer_types)
    gated = text.get("attn_output_gate", mtype.startswith("qwen3_5"))  # Qwen3.5 gates its attention output
    attention = h * heads * head_dim * (3 if gated else 2) + 2 * h * kv * head_dim
    if mtype.startswith("qwen2"):  # q/k/v biases
        attention += heads * head_dim + 2 * kv * head_dim
    if mtype.startswith(("qwen3", "gemma3")):  # q/k norms
        attention += 2 * head_dim
    norms = (4 if mtype.startswith("gemma3") else 2) * h
    dense_mlp = 3 * h * text.get("intermediate_size", 0)
    experts = text.get("num_experts") or text.get("num_local_experts") or 0
    if experts:
        expert = 3 * h * text["moe_intermediate_size"]
        shared = 3 * h * (text.get("shared_expert_intermediate_size") or 0)
        mlp, active_mlp = experts * expert + h * experts + shared, text["num_experts_per_tok"] * expert + shared
    else:
        mlp = active_mlp = dense_mlp
    state, linear_params = _linear_attention(text, h) if linear else (0.0, 0)
    per_layer = mlp + norms
    untied = not (text.get("tie_word_embeddings") or config.get("tie_word_embeddings", False))
    embeddings = vocab * h * (2 if untied else 1) + h
    decoder = embeddings + layers * per_layer + (layers - linear) * attention + linear * linear_params
    active = embeddings + layers * (active_mlp + norms) + (layers - linear) * attention + linear * linear_params
    vision, projector, image_tokens = _vision(config, h, max_image_pixels)
    windowed = sum(t == "sliding_attention" for t in layer_types)
    return Shape(
        decoder + vision + projector,
        vision,
        h,
        layers,
        kv * head_dim,
        vocab,
        image_tokens,
        active_params=active + vision + projector,
        kv_layers=layers - linear,
        window=text.get("sliding_window") or 0 if windowed else 0,
        window_layers=windowed,
        state_bytes_per_seq=state * linear,
    )


def _linear_attention(text: dict, h: int) -> tuple[float, int]:
    """(fp32 state bytes per sequence, parameters) of one Gated DeltaNet layer."""
    nk, nv = text["linear_num_key_heads"], text["linear_num_value_heads"]
    dk, dv, kernel = text["linear_key_head_dim"], text["linear_value_head_dim"], text["linear_conv_kernel_dim"]
    conv_dim = 2 * nk * dk + nv * dv
    params = h * conv_dim + h * nv * dv + 2 * h * nv + conv_dim * kernel + 2 * nv + dv + nv * dv * h
    return 4.0 * (nv * dk * dv + conv_dim * kernel), params


def _vision(config: dict, h: int, max_image_pixels: int) -> tuple[float, float, int]:
    v = config.get("vision_config")
    if not v:
        return 0.0, 0.0, 0
    if "depth" in v:  # Qwen2/2.5/3-VL: patches (14 or 16 px) merged 2x2 into one token
        hv, iv, depth = v.get("hidden_size") or v["embed_dim"], v.get("intermediate_size"), v["depth"]
        iv = iv or hv * v.get("mlp_ratio", 4)
        patch, merge, t = v.get("patch_size", 14), v.get("spatial_merge_size", 2), v.get("temporal_patch_size", 2)
        out = v.get("out_hidden_size") or v.get("hidden_size") or h
        qwen3 = "num_position_embeddings" in v  # Qwen3-VL / 3.5: plain MLP, learned positions, biased patches
        gated = "intermediate_size" in v and not qwen3
        mlp = 3 * hv * iv + 2 * iv + hv if gated else 2 * hv * iv + iv + hv
        blocks = depth * (4 * hv * hv + 4 * hv + mlp + 4 * hv)
        merged = hv * merge * merge
        if qwen3:  # merger: norm over hv, fc1, fc2; each deepstack merger norms the merged width
            merger = 2 * hv + merged * merged + merged + merged * out + out
            deepstack = len(v.get("deepstack_visual_indexes") or []) * (merger - 2 * hv + 2 * merged)
            stem = 3 * t * patch * patch * hv + hv + v["num_position_embeddings"] * hv
            return stem + blocks, merger + deepstack, int(max_image_pixels // (patch * merge) ** 2)
        projector = merged * merged + merged + merged * out + out + hv
        tokens = max_image_pixels // (patch * merge) ** 2
        return 3 * t * patch * patch * hv + blocks - depth * 2 * hv, projector, int(tokens)
    hv, iv, depth = v["hidden_size"], v["intermediate_size"], v["num_hidden_layers"]  # CLIP / SigLIP / InternViT
    patch, size = _pair(v["patch_size"]), _pair(v["image_size"])
    patches = (size // patch) ** 2
    encoder = 3 * patch * patch * hv + (patches + 1) * hv + depth * (4 * hv * hv + 2 * hv * iv + 9 * hv + iv) + 4 * hv
    if "insert_layer_id" in config:  # MiniCPM-V 4.6: a token merger inside the encoder, then an MLP merger
        vit_merger = 4 * hv * hv + 6 * hv + 8 * hv + 4 * hv * 8 * hv + 8 * hv + 8 * hv * hv + hv
        merger = config.get("merger_times", 1) * (8 * hv + 16 * hv * hv + 4 * hv + 4 * hv * h + h)
        encoder += vit_merger - 4 * hv + 2 * hv  # SigLIP: no class token, one post-norm
        # 16x downsampled per view; views: the whole image and up to 9 slices (the processor's default)
        return encoder, merger, max(1, patches // 16) * 10
    if "downsample_ratio" in config:  # InternVL: pixel shuffle, then LayerNorm + 2-layer MLP
        shuffled = int(hv / config["downsample_ratio"] ** 2)
        projector = 2 * shuffled + shuffled * h + h + h * h + h
        return encoder, projector, int(patches * config["downsample_ratio"] ** 2) * _tiles(config, size)
    if "mm_tokens_per_image" in config:  # Gemma 3: pooled to a fixed count, one projection
        return encoder, hv * h + hv, int(config["mm_tokens_per_image"])
    projector = hv * h + h + h * h + h
    return encoder, projector, patches * _tiles(config, size)


def _tiles(config: dict, size: int) -> int:
    """Image views of the largest anyres grid plus the base view (1 for fixed-size models)."""
    pinpoints = config.get("image_grid_pinpoints")
    if not pinpoints:
        return 1
    h, w = max(pinpoints, key=lambda p: p[0] * p[1])
    return (h // size) * (w // size) + 1
