"""Claim-level edits of an answer (`pairs.builder: claim_edit` and `mixed`, docs/method.md s.6):
each claim attributed to the sentence it came from, and the answer with every sentence that
carries a rejected claim removed, or replaced by a sentence about the same object from another
candidate whose claims were all accepted. Pure logic.

Attribution: a claim's content words (lower-cased, stop words and punctuation out) against each
sentence's; the claim belongs to the sentence holding the largest share of them (at least a half),
ties broken by the share of its adjacent word pairs ("red square" in "a red square", not in "a red
circle and a blue square"). A claim listed k times for k equally matching sentences (an answer that
says one thing twice) goes to them in order. Anything else (no sentence, an unbroken tie) is
unattributed, and the caller falls back to whole-answer pairs.

"About the same object": a donor sentence may replace a removed one only when the donor's content
words include every content word of the removed sentence's accepted claims, so what was true in the
removed sentence is said again, and the donor answer had no rejected claim at all; of those, the
sentence with the fewest content words, so the least is said beside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SENTENCE = re.compile(r"[^.!?]+[.!?]*")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
STOP = frozenset(
    "a an the is are was were be been there here this that these those it its of in on at to and or with "
    "i can see image picture shows show showing visible also some one".split()
)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, surrounding spaces excluded."""
    spans = []
    for m in _SENTENCE.finditer(text):
        start, end = m.start(), m.end()
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start < end:
            spans.append((start, end))
    return spans


def content_words(text: str) -> set[str]:
    return set(_content(text))


def _content(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOP]


def _bigrams(words: list[str]) -> set[tuple[str, str]]:
    return set(zip(words, words[1:]))


def attribute(answer: str, claims: list[str]) -> list[int | None]:
    """The index of the sentence each claim came from, or None when that cannot be told."""
    sentences = [_content(answer[s:e]) for s, e in sentence_spans(answer)]
    out, seen = [], {}
    for claim in claims:
        words = _content(claim)
        scores = [_match(words, s) for s in sentences]
        best = max(scores, default=(0.0, 0.0))
        tied = [i for i, sc in enumerate(scores) if sc == best]
        if best[0] < 0.5:
            out.append(None)
            continue
        # the same claim said in several sentences: the k-th time it is listed, the k-th sentence
        k = seen[claim] = seen.get(claim, -1) + 1
        same = claims.count(claim) == len(tied)
        out.append(tied[0] if len(tied) == 1 else tied[k] if same and k < len(tied) else None)
    return out


def _match(claim: list[str], sentence: list[str]) -> tuple[float, float]:
    """(share of the claim's content words in the sentence, share of its adjacent word pairs): "red
    square" belongs to "a red square", not to "a red circle and a blue square"."""
    if not claim:
        return (0.0, 0.0)
    words = len(set(claim) & set(sentence)) / len(set(claim))
    pairs = _bigrams(claim)
    return (words, len(pairs & _bigrams(sentence)) / len(pairs) if pairs else 0.0)


@dataclass(frozen=True)
class Candidate:
    answer: str
    claims: list[str]
    accepted: list[bool]


@dataclass(frozen=True)
class Edit:
    chosen: str  # the edited answer
    edited: list[tuple[int, int]]  # spans of the rejected answer that were removed or replaced
    removed: int
    replaced: int


def edit(answer: Candidate, donors: list[Candidate], replace: bool = True) -> Edit | None:
    """ANSWER with its rejected claims' sentences removed (or, with REPLACE, swapped for a donor's
    sentence about the same object). None when there is nothing to edit, a claim cannot be
    attributed, or nothing would be left."""
    where = attribute(answer.answer, answer.claims)
    if not answer.claims or None in where or all(answer.accepted):
        return None
    spans = sentence_spans(answer.answer)
    bad = sorted({i for i, ok in zip(where, answer.accepted) if not ok})
    pool = [s for d in donors if d.claims and all(d.accepted) for s in _checked(d)] if replace else []
    parts, edited, removed, replaced, last = [], [], 0, 0, 0
    for i in bad:
        start, end = spans[i]
        parts.append(answer.answer[last:start])
        true = [c for c, j, ok in zip(answer.claims, where, answer.accepted) if j == i and ok]
        kept = set().union(*map(content_words, true))
        fits = [s for s in pool if kept and kept <= content_words(s)]
        donor = min(fits, key=lambda s: len(content_words(s))) if fits else None  # the least said beside it
        if donor is not None:
            parts.append(donor)
            replaced += 1
        else:
            removed += 1
        edited.append((start, end))
        last = end
    parts.append(answer.answer[last:])
    chosen = re.sub(r"\s{2,}", " ", "".join(parts)).strip()
    if not chosen or chosen == answer.answer.strip():
        return None
    return Edit(chosen, edited, removed, replaced)


def _checked(donor: Candidate) -> list[str]:
    """The donor's sentences that some claim of it (all accepted) was attributed to: nothing unchecked."""
    spans, where = sentence_spans(donor.answer), set(attribute(donor.answer, donor.claims))
    return [donor.answer[s:e] for i, (s, e) in enumerate(spans) if i in where]
