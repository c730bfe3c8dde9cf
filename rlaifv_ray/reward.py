"""The implicit DPO reward of docs/method.md s.3, for best-of-N ranking.

r(y) = (beta / T) * sum_t [log pi_theta(y_t | x, y_<t) - log pi_ref(y_t | x, y_<t)] over the T
tokens of the answer text. The chat template's closing markup (end-of-turn token, newline) is left
out although DPO trains on it: its log-ratio is one per-answer term, the policy's learned "stop
here", and divided by T it would turn into a bias towards short answers (measured on ShapesWorld
best-of-8, 200 images: with those tokens the picks were 10.7% shorter than the samples and recall
was 0.857, without them 2.0% shorter and 0.905, CHAIRs 0.070 either way). The unnormalized sum
over the same tokens is returned for comparison. Every candidate is scored on its own sequence, so
a score does not depend on what else is in the batch.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .engines import LogprobRequest, SamplingParams, load_engine
from .engines.base import GenerateRequest, user_message
from .seeds import derive_seed


@dataclass(frozen=True)
class Reward:
    normalized: float  # (beta / T) * sum log-ratio: the ranking score
    summed: float  # beta * sum log-ratio (for comparison: its length bias has the sign of the mean log-ratio)
    tokens: int  # T: the answer's tokens


def rewards(policy_logps, reference_logps, beta: float, spans=None) -> list[Reward]:
    """spans: per candidate, the [first, end) range of its completion tokens that spell the answer
    (None, or a None entry: all of them)."""
    out = []
    for i, (p, r) in enumerate(zip(policy_logps, reference_logps, strict=True)):
        if len(p.tokens) != len(r.tokens):
            raise ValueError("policy and reference tokenize the answer differently; use the same tokenizer")
        first, end = (spans[i] if spans else None) or (0, len(p.tokens))
        ratio = sum(a - b for a, b in zip(p.tokens[first:end], r.tokens[first:end]))
        out.append(Reward(beta * ratio / max(1, end - first), beta * ratio, end - first))
    return out


class Ranker:
    """Scores candidate answers by the normalized implicit reward; samples and ranks (best-of-N)."""

    def __init__(self, policy, reference, beta: float):
        self.policy, self.reference, self.beta = policy, reference, beta  # two engines

    @classmethod
    def load(cls, policy: str, reference: str, beta: float, engine: str = "hf", **engine_options) -> Ranker:
        return cls(
            load_engine(policy, engine, **engine_options), load_engine(reference, engine, **engine_options), beta
        )

    def score(self, items: list[tuple[object, str, list[str]]]) -> list[list[Reward]]:
        """items: (image, instruction, candidates); one engine pass per model for all of them."""
        requests = [
            LogprobRequest(user_message(instr, image is not None), c, image)
            for image, instr, cands in items
            for c in cands
        ]
        flat = []
        if requests:
            policy = self.policy.sequence_logprobs(requests)
            spans = self.policy.chat.answer_spans(
                [r.messages for r in requests], [r.answer for r in requests], [len(p.tokens) for p in policy]
            )
            flat = rewards(policy, self.reference.sequence_logprobs(requests), self.beta, spans)
        out, i = [], 0
        for _, _, cands in items:
            out.append(flat[i : i + len(cands)])
            i += len(cands)
        return out

    def sample(self, image, instruction: str, n: int, seed: int, params: SamplingParams) -> list[str]:
        msgs = user_message(instruction, image is not None)
        return self.policy.generate(
            [GenerateRequest(msgs, image, params, derive_seed(seed, "best-of-n", k)) for k in range(n)]
        )


def pick(scores: list[Reward], how: str, seed: int = 0) -> int:
    """Index of the chosen candidate: 'normalized' (the method), 'summed' or 'random' (baselines)."""
    if how == "random":
        return random.Random(seed).randrange(len(scores))
    key = (lambda r: r.normalized) if how == "normalized" else (lambda r: r.summed)
    return max(range(len(scores)), key=lambda i: key(scores[i]))
