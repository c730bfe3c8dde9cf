"""LabelClaims: the labeler answers each question from the image alone (docs/method.md s.1.4).

Input rows are answers with their question lists; all questions of a batch go to the engine in
one call, grouped by image so each image is encoded once. p_yes = P(yes)+P(Yes), p_no likewise,
from one forward pass; a claim is accepted iff p_yes > p_no. `GroundTruthLabels` is the
ShapesWorld control (truth, optionally with seeded flips): an experiment, never the default.
"""

from __future__ import annotations

import random

from .. import schema as S
from ..engines import YesNoRequest, load_engine
from ..prompts import LABEL_PROMPT
from ..seeds import derive_seed
from .base import Stage
from .scores import answer_score, holistic_score


class LabelClaims(Stage):
    reads = (S.IMAGE, S.QUESTIONS)
    writes = (S.P_YES, S.P_NO, S.ACCEPTED, S.SCORE)

    def __init__(
        self,
        model: str,
        engine: str = "hf",
        engine_options: dict | None = None,
        max_pixels: int = 1024 * 1024,
        holistic: bool = False,
    ):
        self.engine = load_engine(model, engine, **(engine_options or {}))
        self.max_pixels, self.holistic = max_pixels, holistic

    def process(self, rows: list[dict], images: dict[int, object]) -> list[dict]:
        requests, owners = [], []
        for i, row in enumerate(rows):
            if row.get(S.ERROR):
                continue
            for q in row[S.QUESTIONS]:
                requests.append(YesNoRequest(LABEL_PROMPT.format(question=q), images[i]))
                owners.append(i)
        probs = self.engine.yes_no(requests) if requests else []
        verdicts: dict[int, list] = {i: [] for i in range(len(rows))}
        for i, p in zip(owners, probs):
            verdicts[i].append(p)
        for i, row in enumerate(rows):
            _fill(row, verdicts[i], self.holistic)
        return rows


class GroundTruthLabels(Stage):
    """Labels from ShapesWorld truth; each verdict flipped with probability flip_rate (seeded)."""

    reads = (S.TRUTH, S.CLAIMS, S.ANSWER_ID)
    writes = LabelClaims.writes

    def __init__(self, flip_rate: float = 0.0, run_seed: int = 0, truth=None):
        if not 0 <= flip_rate <= 1:
            raise ValueError(f"flip_rate must be in [0, 1], got {flip_rate}")
        if truth is None:
            raise ValueError("ground-truth labels need an input with truth (toy:N)")
        self.flip_rate, self.run_seed, self.truth = flip_rate, run_seed, truth

    def process(self, rows: list[dict], images: dict[int, object]) -> list[dict]:
        for row in rows:
            probs = []
            for k, claim in enumerate(row[S.CLAIMS] if not row.get(S.ERROR) else []):
                true = bool(self.truth.claim_truth(claim, row[S.TRUTH] or []))
                rng = random.Random(derive_seed(self.run_seed, "flip", row[S.ANSWER_ID], k))
                if rng.random() < self.flip_rate:
                    true = not true
                probs.append((1.0, 0.0) if true else (0.0, 1.0))
            _fill(row, probs)
        return rows


def _fill(row: dict, probs: list[tuple[float, float]], holistic: bool = False) -> None:
    row[S.P_YES] = [y for y, _ in probs]
    row[S.P_NO] = [n for _, n in probs]
    row[S.ACCEPTED] = [y > n for y, n in probs]
    usable = not row.get(S.ERROR) and not row.get(S.CLAIM_ERROR)
    row[S.SCORE] = (holistic_score(probs) if holistic else answer_score(row[S.ACCEPTED])) if usable else None
