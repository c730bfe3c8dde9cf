"""Hallucination metrics from ground truth (CHAIR-style, as Object HalBench computes them)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from .world import COLOURS, SHAPES

_MENTION = re.compile(r"\b(" + "|".join(COLOURS) + r")\s+(" + "|".join(SHAPES) + r")s?\b", re.I)


def mentions(text: str) -> list[str]:
    """Distinct object kinds mentioned in a text, in order of first mention."""
    seen: list[str] = []
    for m in _MENTION.finditer(text):
        kind = f"{m.group(1).lower()} {m.group(2).lower()}"
        if kind not in seen:
            seen.append(kind)
    return seen


def hallucination_metrics(answers: Sequence[str], truths: Sequence[Iterable[str]]) -> dict:
    """CHAIRs, CHAIRi, recall and mean words over paired answers and ground-truth object lists.

    CHAIRs: share of answers mentioning at least one absent object.
    CHAIRi: absent mentions / all mentions. recall: present objects mentioned / present objects.
    """
    if len(answers) != len(truths):
        raise ValueError(f"{len(answers)} answers but {len(truths)} ground-truth lists")
    n = len(answers)
    bad_answers = bad_mentions = all_mentions = hit = total_truth = words = 0
    for answer, truth in zip(answers, truths):
        truth = set(truth)
        said = mentions(answer)
        wrong = [k for k in said if k not in truth]
        bad_answers += bool(wrong)
        bad_mentions += len(wrong)
        all_mentions += len(said)
        hit += len(truth & set(said))
        total_truth += len(truth)
        words += len(answer.split())
    return {
        "n": n,
        "chair_s": bad_answers / n if n else 0.0,
        "chair_i": bad_mentions / all_mentions if all_mentions else 0.0,
        "recall": hit / total_truth if total_truth else 0.0,
        "mean_words": words / n if n else 0.0,
    }


def planted_share(answers: Sequence[str], truths: Sequence[Iterable[str]], bias_pairs: dict) -> float:
    """Share of hallucinated mentions that are the planted partner of a present trigger."""
    planted = total = 0
    for answer, truth in zip(answers, truths):
        truth = set(truth)
        partners = {bias_pairs[t] for t in truth if t in bias_pairs}
        for kind in mentions(answer):
            if kind not in truth:
                total += 1
                planted += kind in partners
    return planted / total if total else 0.0


def claim_truth(claim: str, truth: Iterable[str]) -> bool | None:
    """Whether a claim is true of the image; None if it names no object (cannot be judged)."""
    said = mentions(claim)
    if not said:
        return None
    truth = set(truth)
    return all(k in truth for k in said)
