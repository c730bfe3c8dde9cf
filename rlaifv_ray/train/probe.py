"""After DPO: the trained policy against its reference on probe pairs (docs/method.md, "Watching a
run"): the KL estimate and, on pairs held out of training, the reward margin. No Ray in here."""

from __future__ import annotations

import torch


def hold_out(examples: list[dict], n: int, seed: int) -> tuple[list[dict], tuple[list[dict], bool]]:
    """(the pairs to train on, (the probe pairs, whether they were held out)): N pairs held out by a
    seeded choice, or with N = 0 all pairs train and up to 32 of them probe the KL."""
    import random

    order = list(range(len(examples)))
    random.Random(f"heldout-{seed}").shuffle(order)
    if n:
        if n >= len(examples):
            raise ValueError(
                f"train.heldout_pairs ({n}) leaves none of the iteration's {len(examples)} pairs to train on"
            )
        held = set(order[:n])
        return [e for i, e in enumerate(examples) if i not in held], ([examples[i] for i in sorted(held)], True)
    return examples, ([examples[i] for i in sorted(order[:32])], False)


def probe_signals(trainer, examples: list[dict], held_out: bool, beta: float) -> dict:
    """The trained policy against its reference on PROBE pairs, one pair at a time through TRL's own
    loss and metrics (eval mode, no gradients; every rank takes part with the same pairs). TRL's
    reward of an answer y is beta * log r, r = pi(y) / pi_ref(y); the reference sampled every y, so
    the mean of k3 = r - 1 - log r over chosen and rejected answers estimates KL(pi_ref || pi) in
    nats per answer (non-negative, lower variance than the mean of -log r). With held-out pairs
    also their reward margin and accuracy."""
    import copy
    import math

    from .trl_seam import step_metrics
    from .variants import to_device

    model, metrics = trainer.model, step_metrics(trainer, "eval")
    was_training = model.training
    model.eval()
    metrics.clear()
    k3, margins, right = [], [], []
    with torch.no_grad():
        for example in examples:
            batch = trainer.data_collator(copy.deepcopy([example]))
            trainer.compute_loss(model, to_device(batch, trainer.args.device))
            for key in ("rewards/chosen", "rewards/rejected"):
                log_r = min(metrics[key][-1] / beta, 50.0)  # exp overflows past ~700; 50 nats is no KL anyway
                k3.append(math.expm1(log_r) - log_r)
            margins.append(metrics["rewards/margins"][-1])
            right.append(metrics["rewards/accuracies"][-1])
    metrics.clear()
    model.train(was_training)
    out = {"kl_ref_policy": round(sum(k3) / len(k3), 4) if k3 else None, "probe_pairs": len(examples)}
    if held_out and examples:
        out |= {
            "heldout_margin": round(sum(margins) / len(margins), 4),
            "heldout_reward_accuracy": round(sum(right) / len(right), 4),
        }
    return out
