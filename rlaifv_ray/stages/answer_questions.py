"""AnswerQuestions: the policy's greedy answer to each benchmark question about its image."""

from __future__ import annotations

from .. import schema as S
from ..engines import GenerateRequest, SamplingParams, load_engine
from ..engines.base import user_message
from .base import Stage


class AnswerQuestions(Stage):
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
        self.params = SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens)  # greedy: benchmarks are exams
        self.max_pixels = max_pixels

    def process(self, rows: list[dict], images: dict[int, object]) -> list[dict]:
        asked = [i for i in range(len(rows)) if i in images]
        messages = [user_message(rows[i][S.INSTRUCTION], True) for i in asked]
        requests = [GenerateRequest(m, images[i], self.params) for m, i in zip(messages, asked)]
        answers = self.engine.generate(requests) if requests else []
        for row in rows:
            row[S.ANSWER] = ""
        for i, text in zip(asked, answers):
            rows[i][S.ANSWER] = text
        return rows
