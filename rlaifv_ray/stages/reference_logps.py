"""ReferenceLogps: summed log-probs of chosen and rejected under the reference model, stored with
each pair so DPO never holds a reference model in memory (docs/method.md s.2).

Two more sums, for DPO's variants: in an edit pair, the sums over the tokens its sides do not share
(pair_diff.py; train.token_weight scales them), and with `corruption` set the chosen answer's
sum under its image corrupted, seeded per pair (train.image_preference)."""

from __future__ import annotations

from .. import schema as S
from ..engines import LogprobRequest, load_engine
from ..engines.base import user_message
from ..media import corrupt_image, corruption_seed
from ..pair_diff import edited
from .base import Stage


class ReferenceLogps(Stage):
    reads = (S.IMAGE, S.INSTRUCTION, S.CHOSEN, S.REJECTED, S.PROMPT_ID, S.CHOSEN_ID)
    writes = (
        S.REF_CHOSEN_LOGP,
        S.REF_REJECTED_LOGP,
        S.REF_CHOSEN_EDITED_LOGP,
        S.REF_REJECTED_EDITED_LOGP,
        S.REF_CHOSEN_CORRUPT_LOGP,
    )

    def __init__(
        self,
        model: str,
        engine: str = "hf",
        engine_options: dict | None = None,
        max_pixels: int = 1024 * 1024,
        corruption: str | None = None,
        seed: int = 0,
    ):
        self.engine = load_engine(model, engine, **(engine_options or {}))
        self.max_pixels = max_pixels
        self.corruption, self.seed = corruption, seed

    def process(self, rows: list[dict], images: dict[int, object]) -> list[dict]:
        live = [i for i in range(len(rows)) if not rows[i].get(S.ERROR)]  # an undecodable image: quarantined
        requests = []
        for i in live:
            msgs = user_message(rows[i][S.INSTRUCTION], True)
            requests += [LogprobRequest(msgs, rows[i][c], images[i]) for c in (S.CHOSEN, S.REJECTED)]
            if self.corruption:
                seed = corruption_seed(self.seed, rows[i][S.PROMPT_ID], rows[i][S.CHOSEN_ID])
                image = corrupt_image(images[i], self.corruption, seed)
                requests.append(LogprobRequest(msgs, rows[i][S.CHOSEN], image))
        logps = self.engine.sequence_logprobs(requests) if requests else []
        per_row = 3 if self.corruption else 2
        for k, i in enumerate(live):
            chosen, rejected = logps[per_row * k], logps[per_row * k + 1]
            row = rows[i]
            row[S.REF_CHOSEN_LOGP], row[S.REF_REJECTED_LOGP] = chosen.total, rejected.total
            row[S.REF_CHOSEN_EDITED_LOGP] = row[S.REF_REJECTED_EDITED_LOGP] = row[S.REF_CHOSEN_CORRUPT_LOGP] = None
            if row[S.CHOSEN_ID].endswith(S.EDIT_SUFFIX):
                row[S.REF_CHOSEN_EDITED_LOGP], row[S.REF_REJECTED_EDITED_LOGP] = self._edited_sums(
                    requests[per_row * k], requests[per_row * k + 1], chosen.tokens, rejected.tokens
                )
            if self.corruption:
                row[S.REF_CHOSEN_CORRUPT_LOGP] = logps[per_row * k + 2].total
        return rows

    def _edited_sums(self, chosen, rejected, chosen_logps: list[float], rejected_logps: list[float]):
        """The reference's log-probs summed over each side's edited tokens, on the completion token
        ids DPO's collator makes (ChatFormat's rendering, tokenized without added special tokens)."""
        chat = self.engine.chat
        ids = [chat.token_ids(chat.completion(r.messages, r.answer)) for r in (chosen, rejected)]
        if [len(i) for i in ids] != [len(chosen_logps), len(rejected_logps)]:
            raise RuntimeError(
                f"reference log-probs cover {len(chosen_logps)}/{len(rejected_logps)} tokens, the completions "
                f"tokenize to {len(ids[0])}/{len(ids[1])}: token weights would not match DPO's"
            )
        masks = edited(*ids)
        return tuple(
            float(sum(lp for lp, e in zip(logps, mask) if e))
            for logps, mask in zip((chosen_logps, rejected_logps), masks)
        )
