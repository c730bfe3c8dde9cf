"""The stage contract. A stage declares the columns it `reads` and `writes` (names from schema.py)
and implements `process(rows, images)`; everything else happens here, once, for every stage:

- the input's columns are checked against `reads` (one error naming every missing column);
- the batch (dict of column -> list) becomes rows and back: the output keeps the input's columns
  plus `writes`, plus `error` once any row has one: that is how every stage quarantines a row;
- a stage that reads `image` gets each distinct image decoded once per batch (equal bytes share
  one PIL object, so an engine encodes it once); a row whose image does not decode already carries
  its reason in `error`, is absent from `images`, and the stage passes it through untouched.

Stages know nothing of Ray: `pipeline/teed_stage.py` is the adapter that runs them in actors.
"""

from __future__ import annotations

from .. import schema as S
from ..media import DEFAULT_MAX_PIXELS


class Stage:
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    keeps_input_columns = True  # False: the output is `writes` alone (a stage that regroups rows)
    max_pixels = DEFAULT_MAX_PIXELS

    def process(self, rows: list[dict], images: dict[int, object]) -> list[dict]:
        raise NotImplementedError

    def row_ids(self, batch: dict[str, list]) -> list[str]:
        """Each input row's id (what names a batch's part and commits it: pipeline/teed_stage.py): a
        pair's chosen>rejected, else its answer's, else its prompt's."""
        if S.CHOSEN_ID in batch:
            return [f"{c}>{r}" for c, r in zip(batch[S.CHOSEN_ID], batch[S.REJECTED_ID])]
        return list(batch[S.ANSWER_ID] if S.ANSWER_ID in batch else batch[S.PROMPT_ID])

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        S.require_columns(batch, self.reads, type(self).__name__)
        rows = to_rows(batch)
        images = self.decode(rows) if S.IMAGE in self.reads else {}
        out = self.process(rows, images)
        keys = list(batch) if self.keeps_input_columns else []
        keys += [k for k in self.writes if k not in keys]
        if S.ERROR not in keys and any(r.get(S.ERROR) for r in out):  # a row this stage quarantines
            keys.append(S.ERROR)
        return to_batch(out, keys)

    def decode(self, rows: list[dict]) -> dict[int, object]:
        """Row index -> its decoded image; a row whose image fails gets the reason in `error`."""
        from ..media import load_image

        cache: dict[bytes, object] = {}
        images = {}
        for i, row in enumerate(rows):
            data = row.get(S.IMAGE)
            if row.get(S.ERROR) or data is None:
                continue
            if data not in cache:
                try:
                    name = f"{S.IMAGE} of {row.get(S.PROMPT_ID, i)}"
                    cache[data] = load_image(data, name=name, max_pixels=self.max_pixels)
                except Exception as exc:  # noqa: BLE001 - any decode failure quarantines the row
                    cache[data] = f"unreadable image: {exc}"
            if isinstance(cache[data], str):
                row[S.ERROR] = cache[data]
            else:
                images[i] = cache[data]
        return images


def to_rows(batch: dict[str, list]) -> list[dict]:
    keys = list(batch)
    n = len(batch[keys[0]]) if keys else 0
    return [{k: batch[k][i] for k in keys} for i in range(n)]


def to_batch(rows: list[dict], keys: list[str]) -> dict[str, list]:
    return {k: [r.get(k) for r in rows] for k in keys}
