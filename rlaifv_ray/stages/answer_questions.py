"""AnswerQuestions: the policy's greedy answer to each benchmark question about its image."""

from __future__ import annotations

from .. import schema as S
from ..engines import GenerateRequest, SamplingParams, load_engine
from ..engines.base import user_message
from ._rows import decode_images, output_keys, to_batch, to_rows


class AnswerQuestions:
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

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        S.require_columns(batch, self.reads, type(self).__name__)
        rows = to_rows(batch)
        images = decode_images(rows, S.IMAGE, self.max_pixels)
        asked = [i for i in range(len(rows)) if not isinstance(images[i], str)]
        answers = (
            self.engine.generate(
                [GenerateRequest(user_message(rows[i][S.INSTRUCTION], True), images[i], self.params) for i in asked]
            )
            if asked
            else []
        )
        for i, row in enumerate(rows):
            row[S.ANSWER], row[S.ERROR] = "", images[i] if isinstance(images[i], str) else None
        for i, text in zip(asked, answers):
            rows[i][S.ANSWER] = text
        return to_batch(rows, output_keys(batch, self.writes))
