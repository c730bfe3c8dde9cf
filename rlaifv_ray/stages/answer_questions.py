"""AnswerQuestions: the policy's greedy answer to each benchmark question about its image."""

from __future__ import annotations

from .. import schema as S
from ..engines import GenerateRequest, SamplingParams, load_engine
from ..engines.base import user_message
from .base import Stage


class AnswerQuestions(Stage):
    """Rows may carry their own length cap (S.MAX_NEW_TOKENS: one pass answers yes/no questions and
    captions together); the others get max_new_tokens."""

    reads = (S.IMAGE, S.INSTRUCTION)
    writes = (S.ANSWER, S.ERROR)

    def __init__(
        self,
        model: str,
        engine: str = "hf",
        engine_options: dict | None = None,
        max_new_tokens: int = 8,
        max_pixels: int = 1024 * 1024,
    ):
        self.engine = load_engine(model, engine, **(engine_options or {}))
        self.max_new_tokens = max_new_tokens
        self.max_pixels = max_pixels

    def process(self, rows: list[dict], images: dict[int, object]) -> list[dict]:
        asked = [i for i in range(len(rows)) if i in images]
        requests = [
            GenerateRequest(
                user_message(rows[i][S.INSTRUCTION], True),
                images[i],
                # greedy: benchmarks are exams
                SamplingParams(temperature=0.0, max_new_tokens=rows[i].get(S.MAX_NEW_TOKENS) or self.max_new_tokens),
            )
            for i in asked
        ]
        answers = self.engine.generate(requests) if requests else []
        for row in rows:
            row[S.ANSWER] = ""
        for i, text in zip(asked, answers):
            rows[i][S.ANSWER] = text
        return rows
