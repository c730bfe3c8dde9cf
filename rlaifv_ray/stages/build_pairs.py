"""Scoring, pair construction and length balancing (docs/method.md s.1.5-1.7). Pure logic."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from .. import schema as S
from ..seeds import derive_seed
from .base import Stage


@dataclass(frozen=True)
class Scored:
    answer_id: str
    answer: str
    score: int  # S = -(number of rejected claims); scoring holistic: the yes-probability in thousandths


def pairs_for_prompt(prompt_id: str, answers: list[Scored], min_gap: int, max_pairs: int, run_seed: int):
    """Every pair with |S_a - S_b| >= min_gap (higher score chosen, ties and identical texts out),
    then at most max_pairs of them, drawn with a seed derived from (run seed, prompt id)."""
    ordered = sorted(answers, key=lambda a: a.answer_id)
    candidates = []
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            if abs(a.score - b.score) < min_gap or a.answer.strip() == b.answer.strip():
                continue
            chosen, rejected = (a, b) if a.score > b.score else (b, a)
            candidates.append((chosen, rejected))
    if len(candidates) > max_pairs:
        rng = random.Random(derive_seed(run_seed, "pairs", prompt_id))
        candidates = rng.sample(candidates, max_pairs)
    return candidates


def word_count(text: str) -> int:
    return len(text.split())


CUTS = [step / 50 for step in range(50)]  # the cuts r length balancing tries


def kept(chosen_words: int, rejected_words: int, r: float) -> bool:
    """A pair survives cut r unless its rejected answer is longer by more than r (relative)."""
    c, j = chosen_words, rejected_words
    return not (j > 0 and (j - c) / j > r)


def balance_sums(lens: list[tuple[int, int]]) -> list[list[int]]:
    """Per cut of CUTS, [sum of chosen words, sum of rejected words, pairs] over the pairs it keeps:
    integers, so partial sums over parts of the pairs add up to exactly these."""
    sums = [[0, 0, 0] for _ in CUTS]
    for c, j in lens:
        for s, r in zip(sums, CUTS):
            if kept(c, j, r):
                s[0], s[1], s[2] = s[0] + c, s[1] + j, s[2] + 1
    return sums


def pick_cut(sums: list[list[int]]) -> float | None:
    """The cut whose kept pairs' mean chosen and mean rejected lengths are closest; from 0.98 down, so
    on a tie the cut that drops fewest pairs wins. None: no pairs."""
    best_r, best_gap = None, None
    for r, (c, j, n) in reversed(list(zip(CUTS, sums))):
        if not n:
            continue
        gap = abs(c / n - j / n)
        if best_gap is None or gap < best_gap - 1e-12:
            best_r, best_gap = r, gap
    return best_r


def length_balance(pairs: list[tuple[str, str]]) -> tuple[list[bool], float | None]:
    """Keep-mask over (chosen, rejected) texts and the cut r.

    Finds r in {0, 0.02, ..., 0.98} such that dropping pairs whose rejected answer is longer by
    more than r (relative: (len_rej - len_ch) / len_rej > r) makes mean chosen and mean rejected
    lengths closest; this stops DPO from learning "shorter is safer".
    """
    if not pairs:
        return [], None
    lens = [(word_count(c), word_count(r)) for c, r in pairs]
    best_r = pick_cut(balance_sums(lens))
    return [kept(c, j, best_r) for c, j in lens], best_r


class BuildPairs(Stage):
    """Group of one prompt's labelled answers -> its preference pairs (before length balancing)."""

    reads = (S.PROMPT_ID, S.ANSWER_ID, S.ANSWER, S.SCORE, S.IMAGE_ID, S.INSTRUCTION)
    writes = S.PAIR_BUILT
    keeps_input_columns = False  # a group of answers in, its pairs out

    def __init__(
        self,
        min_gap: int,
        max_per_prompt: int,
        run_seed: int,
        builder: str = "rlaif_v",
        replace: bool = True,
        edit_share: float = 0.5,
    ):
        self.min_gap, self.max_per_prompt, self.run_seed = min_gap, max_per_prompt, run_seed
        self.builder, self.replace, self.edit_share = builder, replace, edit_share
        if builder != "rlaif_v":  # edits need each answer's claims and verdicts
            self.reads = (*BuildPairs.reads, S.CLAIMS, S.ACCEPTED)
        # claim_edit / mixed: answers edited, answers whose claims could not be attributed to sentences,
        # prompts that fell back to whole-answer pairs
        self.counts: Counter = Counter()

    def process(self, rows: list[dict], images: dict[int, object]) -> list[dict]:
        if not rows:
            return []
        # in answer order: the pairs must not depend on the order the labels parts were read in
        rows = sorted(rows, key=lambda r: r[S.ANSWER_ID])
        first = rows[0]
        scored = [Scored(r[S.ANSWER_ID], r[S.ANSWER], r[S.SCORE]) for r in rows if r[S.SCORE] is not None]
        whole = pairs_for_prompt(first[S.PROMPT_ID], scored, self.min_gap, self.max_per_prompt, self.run_seed)
        if self.builder != "rlaif_v":
            whole = self._with_edits(first[S.PROMPT_ID], [r for r in rows if r[S.SCORE] is not None], whole)
        return [
            {
                S.PROMPT_ID: first[S.PROMPT_ID],
                S.IMAGE_ID: first[S.IMAGE_ID],
                S.INSTRUCTION: first[S.INSTRUCTION],
                S.TRUTH: first.get(S.TRUTH),
                S.CHOSEN: c.answer,
                S.REJECTED: r.answer,
                S.CHOSEN_ID: c.answer_id,
                S.REJECTED_ID: r.answer_id,
                S.CHOSEN_SCORE: c.score,
                S.REJECTED_SCORE: r.score,
            }
            for c, r in whole
        ]

    def _with_edits(self, prompt_id: str, rows: list[dict], whole: list) -> list:
        """Edit pairs (the edited answer chosen, its id ANSWER_ID + S.EDIT_SUFFIX; the answer itself rejected), at
        most max_per_prompt by a seeded draw; mixed: edit_share of them edits, the rest whole pairs."""
        from .claim_edit import Candidate, attribute, edit

        candidates = [Candidate(r[S.ANSWER], list(r[S.CLAIMS] or []), list(r[S.ACCEPTED] or [])) for r in rows]
        edits = []
        for r, c in zip(rows, candidates):
            if all(c.accepted):
                continue
            if None in attribute(c.answer, c.claims):
                self.counts["answers_unattributed"] += 1
                continue
            e = edit(c, [d for d in candidates if d is not c], self.replace)
            if e is not None:
                self.counts["answers_edited"] += 1
                edits.append(
                    (Scored(r[S.ANSWER_ID] + S.EDIT_SUFFIX, e.chosen, 0), Scored(r[S.ANSWER_ID], c.answer, r[S.SCORE]))
                )
        rng = random.Random(derive_seed(self.run_seed, "edits", prompt_id))
        n_edits = self.max_per_prompt if self.builder == "claim_edit" else round(self.edit_share * self.max_per_prompt)
        picked = rng.sample(edits, min(n_edits, len(edits)))
        if not picked and self.builder == "claim_edit":
            self.counts["prompts_whole_answer_fallback"] += 1
            return whole
        return picked + whole[: self.max_per_prompt - len(picked)]
