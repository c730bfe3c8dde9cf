"""ReferenceLogps: summed log-probs of chosen and rejected under the reference model, stored with
each pair so DPO never holds a reference model in memory (docs/method.md s.2)."""

from __future__ import annotations

from .. import schema as S
from ..engines import LogprobRequest, load_engine
from ..engines.base import user_message
from .base import Stage


class ReferenceLogps(Stage):
    reads = (S.IMAGE, S.INSTRUCTION, S.CHOSEN, S.REJECTED)
    writes = (S.REF_CHOSEN_LOGP, S.REF_REJECTED_LOGP)

    def __init__(
        self, model: str, engine: str = "hf", engine_options: dict | None = None, max_pixels: int = 1024 * 1024
    ):
        self.engine = load_engine(model, engine, **(engine_options or {}))
        self.max_pixels = max_pixels

    def process(self, rows: list[dict], images: dict[int, object]) -> list[dict]:
        live = [i for i in range(len(rows)) if not rows[i].get(S.ERROR)]  # an undecodable image: quarantined
        requests = []
        for i in live:
            msgs = user_message(rows[i][S.INSTRUCTION], True)
            requests += [LogprobRequest(msgs, rows[i][c], images[i]) for c in (S.CHOSEN, S.REJECTED)]
        logps = self.engine.sequence_logprobs(requests) if requests else []
        for k, i in enumerate(live):
            rows[i][S.REF_CHOSEN_LOGP] = logps[2 * k].total
            rows[i][S.REF_REJECTED_LOGP] = logps[2 * k + 1].total
        return rows
