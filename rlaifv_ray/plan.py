"""Memory plan: per-GPU memory of every stage and of DPO, from the models' config.json alone.

No weights are read. Parameter counts follow the architecture (decoder, vision encoder, projector);
stage memory is weights + KV cache of one engine batch + a logits block; DPO memory is weights,
gradients and AdamW state (fp32 master weights; LoRA keeps the frozen base in bf16 on GPUs; fsdp
divides all of it, the frozen LoRA base included, by the workers) plus
activations (Korthikanti et al. 2022: ~34*s*h bytes per token-layer at 16-bit without
recomputation, ~2*s*h with gradient checkpointing), for chosen + rejected sequences. Estimates,
meant to catch a config that cannot fit before GPU time is spent, not to replace a profiler.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from .model_shapes import Shape, shape

GB = 1e9
_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "auto": 2}  # auto = bf16 on GPUs
_HEADROOM = 0.9  # CUDA context, allocator fragmentation


def model_config(path: str) -> dict:
    """config.json of a local folder, an s3:// folder or a hub id (only that file is fetched)."""
    try:
        return _read_config(path)
    except Exception as exc:  # noqa: BLE001 - any failure here means the same thing to the user
        from .errors import ModelLoadError

        raise ModelLoadError(f"model {path!r}: config.json cannot be read for the memory plan ({exc})") from None


def _read_config(path: str) -> dict:
    if "://" in path:
        from .storage.store import RunStore

        found = RunStore(path).read_json("config.json")
        if found is None:
            raise FileNotFoundError(f"{path}/config.json")
        return found
    local = Path(path) / "config.json"
    if local.exists():
        return json.loads(local.read_text())
    import os

    from huggingface_hub import hf_hub_download

    # the cache is read from the environment now (huggingface_hub fixes it at import time)
    return json.loads(Path(hf_hub_download(path, "config.json", cache_dir=os.environ.get("HF_HUB_CACHE"))).read_text())


@dataclass
class Row:
    what: str
    model: str
    params_b: float
    per_gpu_gb: float
    gpus: float
    parts: dict
    fits: bool | None
    fix: str = ""


def plan(config, feedback_gpu_gb: float | None = None, train_gpu_gb: float | None = None) -> list[Row]:
    """One row per GPU stage and one for DPO. fits is None where no GPU size is known."""
    r, s = config.resources, config.sampling
    px = config.data.max_image_pixels
    stages = config.stage_models()
    gpu_gb = feedback_gpu_gb or r.gpu_memory_gb
    rows = []
    for stage, spec in stages.items():
        res = getattr(r, stage)
        if spec is None or res.num_gpus == 0 or spec.engine == "sim":  # a simulated model holds nothing
            continue
        sh = shape(model_config(spec.path), px)
        weights = sh.params * _BYTES[spec.dtype]
        seq = sh.image_tokens + 128 + (s.max_new_tokens if stage != "label" else 16)
        # KV per token of the attention layers (sliding-window ones up to their window) plus the
        # fixed state of linear-attention layers, per sequence of the engine batch
        kv = sh.kv_bytes(seq, _BYTES[spec.dtype]) * res.engine_batch_size
        logits = 1 << 28  # the hf engine's bounded logits block (2**26 fp32 values)
        spread = _spread(spec, res.num_gpus)
        per_gpu = (weights + kv + logits) / spread / GB
        fits = None if not gpu_gb else per_gpu <= _HEADROOM * gpu_gb * min(res.num_gpus, 1.0)
        fix = (
            ""
            if fits is not False
            else (
                "spread the model: num_gpus with device_map: auto (hf) or vllm.tensor_parallel_size"
                if weights / spread / GB > 0.5 * gpu_gb
                else f"lower resources.{stage}.engine_batch_size"
            )
        )
        need, what = _context_need(stage, sh, config)
        if spec.engine == "vllm" and spec.vllm.max_model_len < need:
            fits, fix = False, f"vllm.max_model_len {spec.vllm.max_model_len} cannot hold {what} ({need}); raise it"
        rows.append(
            Row(
                f"stage {stage}",
                spec.path,
                round(sh.params / 1e9, 2),
                round(per_gpu, 1),
                spread,
                {
                    "weights_gb": round(weights / GB, 1),
                    "kv_cache_gb": round(kv / GB, 1),
                    "logits_gb": round(logits / GB, 2),
                    # a MoE holds every expert; one token computes through these
                    **({"active_params_b": round(sh.active_params / 1e9, 2)} if sh.active_params < sh.params else {}),
                },
                fits,
                fix,
            )
        )
    if config.train.use_gpu:
        rows.append(_dpo_row(config, train_gpu_gb or config.train.gpu_memory_gb))
    return rows


# Room for the text around what a stage's config bounds: a yes/no question with the label prompt,
# and the claim LLM's instructions around the answer it splits
_QUESTION_TOKENS = 128
_CLAIM_PROMPT_TOKENS = 256


def _context_need(stage: str, sh: Shape, config) -> tuple[int, str]:
    """The longest sequence STAGE's engine must hold, in tokens, and what it is made of."""
    s, instruction = config.sampling, config.data.max_instruction_tokens or 128
    if stage in ("sample", "reference"):
        return (
            sh.image_tokens + instruction + s.max_new_tokens,
            f"{sh.image_tokens} image tokens + the instruction bound + {s.max_new_tokens} answer tokens "
            "(or lower data.max_instruction_tokens)",
        )
    if stage == "label":
        return sh.image_tokens + _QUESTION_TOKENS + 1, f"{sh.image_tokens} image tokens + a question"
    facts = config.claim_extraction.max_new_tokens
    return (
        s.max_new_tokens + _CLAIM_PROMPT_TOKENS + facts,
        f"a {s.max_new_tokens}-token answer in the claim prompt + {facts} tokens of facts",
    )


def _spread(spec, num_gpus: float) -> float:
    if spec.engine == "vllm":
        return float(spec.vllm.tensor_parallel_size)
    return max(1.0, num_gpus) if spec.device_map == "auto" else 1.0


def _dpo_row(config, gpu_gb: float | None) -> Row:
    t = config.train
    sh = shape(model_config(config.models.policy.path), config.data.max_image_pixels)
    parts = _dpo_parts(t, sh, config.sampling.max_new_tokens, t.strategy, t.lora)
    per_gpu = sum(parts.values())
    fits = None if not gpu_gb else per_gpu <= _HEADROOM * gpu_gb
    return Row(
        "dpo",
        config.models.policy.path,
        round(sh.params / 1e9, 2),
        round(per_gpu, 1),
        1.0,
        {k: round(v, 1) for k, v in parts.items()},
        fits,
        _dpo_fix(t, sh, config, gpu_gb) if fits is False else "",
    )


def _dpo_parts(t, sh: Shape, max_new_tokens: int, strategy: str, lora) -> dict[str, float]:
    """Per-GPU DPO memory (GB) of the policy SH under STRATEGY, with or without LoRA."""
    trainable = sh.params - sh.vision_params
    per_device = max(1, t.batch_size // t.workers)
    tokens = 2 * per_device * (sh.image_tokens + 128 + max_new_tokens)  # chosen and rejected
    shards = t.workers if strategy == "fsdp" else 1  # FSDP: 1/workers of each, per GPU
    if lora:
        r, modules = lora.r, len(lora.target_modules)
        adapters = r * 2 * sh.hidden * sh.layers * modules  # ~r*(in+out) per layer
        parts = {"weights_gb": sh.params * 2 / GB / shards, "adapter_and_adam_gb": adapters * 16 / GB / shards}
    else:
        parts = {
            "weights_gb": sh.params * 4 / GB / shards,
            "grads_gb": trainable * 4 / GB / shards,
            "adam_gb": trainable * 8 / GB / shards,
        }
        if t.workers > 1 and strategy == "ddp":
            parts["ddp_buckets_gb"] = trainable * 4 / GB
    per_token_layer = 2 if t.gradient_checkpointing else 34
    parts["activations_gb"] = per_token_layer * tokens * sh.hidden * sh.layers / GB
    parts["logits_gb"] = tokens * sh.vocab * 4 * 2 / GB  # fp32 logits and their log-softmax
    return parts


def _dpo_fix(t, sh: Shape, config, gpu_gb: float) -> str:
    """The first of fsdp, fsdp + lora (or lora, on one worker) that fits; else what else shrinks DPO's memory."""
    from .config import LoraConfig

    candidates = []
    if t.workers > 1:
        candidates += [] if t.lora else [("fsdp", None, "train.strategy: fsdp")]
        candidates.append(("fsdp", t.lora or LoraConfig(), "train.strategy: fsdp with train.lora"))
    candidates += [] if t.lora else [(t.strategy, LoraConfig(), "train.lora")]
    for strategy, lora, name in candidates:
        if (strategy, lora) != (t.strategy, t.lora):
            need = sum(_dpo_parts(t, sh, config.sampling.max_new_tokens, strategy, lora).values())
            if need <= _HEADROOM * gpu_gb:
                return f"{name} (~{need:.1f} GB per GPU)"
    options = [] if t.gradient_checkpointing else ["train.gradient_checkpointing"]
    if max(1, t.batch_size // t.workers) > 1:
        options.append("a smaller train.batch_size")
    return ", ".join(options + ["more train.workers (GPUs to shard over) or a larger GPU"])


def table(rows: list[Row]) -> str:
    if not rows:
        return "no stage and no DPO uses a GPU in this config: nothing to plan"
    lines = [f"{'what':<16} {'params':>8} {'per GPU':>9} {'GPUs':>5}  fits  parts / fix"]
    for row in rows:
        ok = {True: "yes", False: "NO", None: "?"}[row.fits]
        parts = ", ".join(f"{k} {v}" for k, v in row.parts.items())
        lines.append(
            f"{row.what:<16} {row.params_b:>7}B {row.per_gpu_gb:>6} GB {row.gpus:>5g}  {ok:<4}  {parts}"
            + (f"\n{'':<46}fix: {row.fix}" if row.fix else "")
        )
    return "\n".join(lines)


def as_json(rows: list[Row]) -> list[dict]:
    return [asdict(r) for r in rows]
