"""What an edit pair's two sides do not share: its tokens (train.token_weight: the one rule the
reference stage and DPO both apply, on the same completion token ids) and its character spans (the
provenance an export carries). Pure logic.

An edit pair's chosen side is its rejected side with sentences removed or replaced (stages/
claim_edit.py), so most tokens are common to both and carry no preference. The longest matching
blocks of the two token sequences (difflib, without its popular-token heuristic, which would leave
common tokens like "." unmatched in long answers) are the shared tokens; every other token is
edited and weighs W in the summed log-probs of both the policy and the reference."""

from __future__ import annotations

import re
from difflib import SequenceMatcher

_SENTENCE_SPAN = re.compile(r"[^.!?\n]+(?:[.!?]+|$)\s*|\n+")


def edited(chosen: list, rejected: list) -> tuple[list[bool], list[bool]]:
    """Per item (token) of CHOSEN and of REJECTED: True where it lies outside their matching blocks."""
    in_chosen, in_rejected = [True] * len(chosen), [True] * len(rejected)
    for i, j, n in SequenceMatcher(None, chosen, rejected, autojunk=False).get_matching_blocks():
        in_chosen[i : i + n] = [False] * n
        in_rejected[j : j + n] = [False] * n
    return in_chosen, in_rejected


def edited_spans(chosen: str, rejected: str) -> tuple[list[list[int]], list[list[int]]]:
    """The [start, end) character spans of the sentences of CHOSEN and of REJECTED outside their
    matching blocks: what the edit inserted, and what it removed or replaced. By sentence, since an
    edit changes whole sentences (a character diff may align "There is a" across two of them)."""
    sides = [[m.span() for m in _SENTENCE_SPAN.finditer(text)] for text in (chosen, rejected)]
    texts = [[text[i:j].strip() for i, j in spans] for text, spans in zip((chosen, rejected), sides)]
    masks = edited(*texts)
    return tuple(_merge([list(span) for span, on in zip(spans, mask) if on]) for spans, mask in zip(sides, masks))


def _merge(spans: list[list[int]]) -> list[list[int]]:
    out: list[list[int]] = []
    for start, end in spans:
        if out and out[-1][1] == start:
            out[-1][1] = end
        else:
            out.append([start, end])
    return out


def weighted(total: float, edited_sum: float | None, weight: float) -> float:
    """A summed log-prob with its edited tokens counted WEIGHT times: total + (W - 1) x their sum
    (exactly TOTAL at W = 1, and for a pair that is not an edit)."""
    return total if edited_sum is None or weight == 1 else total + (weight - 1) * edited_sum
