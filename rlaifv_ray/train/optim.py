"""The optimizer and learning-rate schedule of both training loops: TRL's trainer (under ddp) builds
them here through Trainer's public `create_optimizer` / `create_scheduler`, train/fsdp.py's own loop
calls them directly. AdamW with `train.weight_decay` on every trainable weight but biases and norms
(Trainer's default grouping), and `train.lr_scheduler_type` warmed up over `train.warmup_ratio` of the
steps."""

from __future__ import annotations

import math

# Trainer's names of the parameters it keeps out of weight decay (Trainer.get_decay_parameter_names)
_NO_DECAY = [r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)"]


def adamw(model, lr: float, weight_decay: float):
    import torch
    from transformers.trainer_pt_utils import get_parameter_names

    decay = set(get_parameter_names(model, [torch.nn.LayerNorm], _NO_DECAY))
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in trainable if n in decay], "weight_decay": weight_decay},
        {"params": [p for n, p in trainable if n not in decay], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr)


def lr_schedule(optimizer, name: str, warmup: float, steps: int):
    """WARMUP: steps, or below 1 a share of STEPS (rounded up), as transformers reads warmup_steps."""
    from transformers import get_scheduler

    warmup_steps = int(warmup) if warmup >= 1 else math.ceil(warmup * steps)
    return get_scheduler(name, optimizer, num_warmup_steps=warmup_steps, num_training_steps=steps)
