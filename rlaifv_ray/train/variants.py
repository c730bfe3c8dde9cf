"""DPO's variants on top of TRL's loss (docs/method.md s.6): token weights on an edit pair's changed
tokens, and mDPO's image-conditioned preference and anchor. No Ray in here.

The per-token log-probs of TRL's forward pass pass through a forward hook: it scales them by the
batch's token weights before TRL sums them (so its loss, rewards and metrics are the weighted
ones) and keeps the unweighted ones for the mDPO terms, added after TRL's loss."""

from __future__ import annotations

import torch

from ..pair_diff import edited
from .trl_seam import log_metric

IMAGE_REF_KEYS = ("ref_chosen_corrupt_logps", "ref_chosen_whole_logps")


def token_weights(input_ids, completion_mask, weights: list[float]):
    """Per position of a collated [chosen; rejected] batch: WEIGHTS[i] on the completion tokens pair
    i's chosen and rejected rows do not share (pair_diff.edited), 1 elsewhere."""
    b = len(weights)
    out = torch.ones(input_ids.shape, dtype=torch.float32)
    for i, w in enumerate(weights):
        if w == 1:
            continue
        rows = (i, b + i)
        where = [completion_mask[r].bool().nonzero().flatten() for r in rows]
        masks = edited(*(input_ids[r][pos].tolist() for r, pos in zip(rows, where)))
        for r, pos, mask in zip(rows, where, masks):
            out[r, pos[torch.tensor(mask, dtype=torch.bool)]] = w
    return out


class VariantLosses:
    """Mixed into a TRL DPOTrainer (before it): the subclass sets image_weight and anchor, sets
    _weights and _seen to None, and registers _weigh_tokens as a forward hook of its model."""

    def _weigh_tokens(self, module, args, output):
        log_probs = getattr(output, "log_probs", None)
        if log_probs is None:
            return output
        self._seen = log_probs
        if self._weights is not None:
            w = self._weights[:, 1:].to(log_probs)  # log_probs[t] scores token t + 1
            n = w.size(1)
            output.log_probs = torch.cat([log_probs[:, :-n], log_probs[:, -n:] * w], dim=1)
        return output

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        weights = self._weights = inputs.pop("token_weights", None)
        corrupt = inputs.pop("corrupt_batch", None)
        image_refs = {k: inputs.pop(k, None) for k in IMAGE_REF_KEYS}
        try:
            result = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            seen = self._seen
        finally:
            self._weights = self._seen = None
        if corrupt is None and not self.anchor:
            return result
        loss = result[0] if return_outputs else result
        b, n = inputs["ref_chosen_logps"].size(0), inputs["completion_mask"].size(1) - 1
        chosen_tokens = seen[:b, -n:]  # as the forward returned them: unweighted
        if self.anchor:  # on the chosen reward TRL's loss uses (token-weighted if the batch is)
            w = weights[:b, 1:].to(chosen_tokens) if weights is not None else 1.0
            reward = self.beta * ((chosen_tokens * w).sum(1) - inputs["ref_chosen_logps"])
            loss = loss - torch.nn.functional.logsigmoid(reward).mean()
        if corrupt is not None:  # the same answer, its own image against the corrupted one
            corrupt_logps = _sequence_logps(model, corrupt)[:b]
            self._seen = None
            margin = self.beta * (
                (chosen_tokens.sum(1) - image_refs["ref_chosen_whole_logps"])
                - (corrupt_logps - image_refs["ref_chosen_corrupt_logps"])
            )
            loss = loss - self.image_weight * torch.nn.functional.logsigmoid(margin).mean()
            log_metric(self, "rewards/image_margins", self.accelerator.gather(margin.detach()).mean().item())
        return (loss, result[1]) if return_outputs else loss


def to_device(batch: dict, device) -> dict:
    """A collated batch on DEVICE, with the batch nested in it (image_preference's corrupt_batch)."""
    return {
        k: to_device(v, device) if isinstance(v, dict) else v.to(device) if hasattr(v, "to") else v
        for k, v in batch.items()
    }


def _sequence_logps(model, batch: dict):
    """Each row's summed completion log-probs in a collated batch, through the fused head as TRL's loss
    computes them."""
    mask = batch["completion_mask"]
    kwargs = {k: v for k, v in batch.items() if k != "completion_mask"}
    labels = batch["input_ids"].masked_fill(mask == 0, -100)
    out = model(**kwargs, labels=labels, fused_lm_head=True, use_cache=False)
    return out.log_probs[:, -(mask.size(1) - 1) :].sum(1)
