"""An answer's score (docs/method.md s.1.4): the labels stage writes it, the pairs stage compares it."""

from __future__ import annotations


def answer_score(verdicts: list[bool]) -> int | None:
    """S = -rejected claims; an answer with no claims gets no score (excluded from pairs)."""
    if not verdicts:
        return None
    return -sum(1 for accepted in verdicts if not accepted)


def holistic_score(probs: list[tuple[float, float]]) -> int | None:
    """scoring holistic: the labeler's yes-probability for "is this description accurate?", of yes
    and no together, in thousandths (scores are integers; pairs.min_p_gap is scaled alike)."""
    if not probs or sum(probs[0]) <= 0:
        return None
    p_yes, p_no = probs[0]
    return round(1000 * p_yes / (p_yes + p_no))
