"""Tensor helpers of the transformers backend (engines/hf.py): per-row seeded sampling (HF's own
sampling shares one random generator per batch), shared-prompt prefixes and their KV caches, and
batching. Nothing here loads a model."""

from __future__ import annotations

from .base import SequenceLogprobs


def split_logprobs(token_logps, counts: list[int]) -> list[SequenceLogprobs]:
    out, start = [], 0
    for n in counts:
        tokens = token_logps[start : start + n]
        out.append(SequenceLogprobs(float(tokens.sum()), tokens.tolist()))
        start += n
    return out


def cache_of(out):
    """The KV cache of a forward pass and the keyword that passes it back (transformers >= 5.24
    names it `cache`, older releases `past_key_values`)."""
    return (out.cache, "cache") if hasattr(out, "cache") else (out.past_key_values, "past_key_values")


class SeededSampler:
    """Logits processor: temperature + top-p sampling with one torch.Generator per row."""

    def __init__(self, seeds: list[int], temperature: float, top_p: float, device: str):
        import torch

        self.temperature, self.top_p = temperature, top_p
        self.generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]

    def __call__(self, input_ids, scores):
        import torch

        if self.temperature <= 0:
            return scores  # greedy
        probs = torch.softmax(scores.float() / self.temperature, dim=-1)
        if self.top_p < 1.0:
            sorted_p, order = probs.sort(dim=-1, descending=True)
            drop = sorted_p.cumsum(-1) - sorted_p > self.top_p
            sorted_p[drop] = 0
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
        chosen = torch.stack([torch.multinomial(p, 1, generator=g)[0] for p, g in zip(probs, self.generators)])
        forced = torch.full_like(scores, float("-inf"))
        forced[torch.arange(len(chosen)), chosen] = 0.0
        return forced


def common_prefix(ids, mask) -> int:
    """Length of the token prefix shared by every row (at least one token left per row)."""
    shortest = int(mask.sum(1).min())
    same = (ids[:, :shortest] == ids[:1, :shortest]).all(0)
    prefix = int(same.long().cumprod(0).sum())
    return min(prefix, shortest - 1)


def chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def param_chunks(requests: list, size: int):
    """Indices of REQUESTS in batches of at most SIZE that share their sampling params (one
    model.generate call takes one setting)."""
    groups: dict = {}
    for i, r in enumerate(requests):
        groups.setdefault(r.params, []).append(i)
    for group in groups.values():
        yield from chunks(group, size)
