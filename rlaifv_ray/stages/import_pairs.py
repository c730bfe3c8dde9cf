"""ImportPairs: rows of a shared preference dataset (rlaifv or trl format) -> our pairs, with each
pair's image checked to decode; rows without a usable image or answer carry their reason."""

from __future__ import annotations

from .. import schema as S
from ..preference_data import SOURCE, to_pairs


class ImportPairs:
    reads = (SOURCE,)
    writes = (S.IMAGE, S.PROMPT_ID, S.INSTRUCTION, S.CHOSEN, S.REJECTED, S.CHOSEN_ID, S.REJECTED_ID)

    def __init__(self, fmt: str, max_pixels: int = 1024 * 1024):
        self.fmt, self.max_pixels = fmt, max_pixels

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        from ..media import load_image

        S.require_columns(batch, self.reads, type(self).__name__)
        out = to_pairs(batch, self.fmt)
        for i, image in enumerate(out[S.IMAGE]):
            if image is not None and not out[S.ERROR][i]:
                try:  # decoded at the reference stage's size: what fails here would fail there
                    load_image(image, name=f"of {out[S.PROMPT_ID][i]}", max_pixels=self.max_pixels)
                except Exception as exc:  # noqa: BLE001 - any decode failure quarantines the row
                    out[S.ERROR][i] = f"unreadable image: {exc}"
        return out
