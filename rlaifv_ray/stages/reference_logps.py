"""ReferenceLogps: summed log-probs of chosen and rejected under the reference model, stored with
each pair so DPO never holds a reference model in memory (METHOD s.2)."""

from __future__ import annotations

from .. import schema as S
from ..engines import LogprobRequest, load_engine
from ..engines.base import user_message
from ._rows import decode_images, output_keys, to_batch, to_rows


class ReferenceLogps:
    reads = (S.IMAGE, S.INSTRUCTION, S.CHOSEN, S.REJECTED)
    writes = (S.REF_CHOSEN_LOGP, S.REF_REJECTED_LOGP)

    def __init__(
        self, model: str, engine: str = "hf", engine_options: dict | None = None, max_pixels: int = 1024 * 1024
    ):
        self.engine = load_engine(model, engine, **(engine_options or {}))
        self.max_pixels = max_pixels

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        S.require_columns(batch, self.reads, type(self).__name__)
        rows = to_rows(batch)
        images = decode_images(rows, S.IMAGE, self.max_pixels)
        requests = []
        for i, row in enumerate(rows):
            msgs = user_message(row[S.INSTRUCTION], True)
            requests += [
                LogprobRequest(msgs, row[S.CHOSEN], images[i]),
                LogprobRequest(msgs, row[S.REJECTED], images[i]),
            ]
        logps = self.engine.sequence_logprobs(requests) if requests else []
        for i, row in enumerate(rows):
            row[S.REF_CHOSEN_LOGP] = logps[2 * i].total
            row[S.REF_REJECTED_LOGP] = logps[2 * i + 1].total
        return to_batch(rows, output_keys(batch, self.writes))
