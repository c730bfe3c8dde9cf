"""ImportPairs: rows of a shared preference dataset (rlaifv or trl format) -> our pairs, with each
pair's image checked to decode; rows without a usable image or answer carry their reason."""

from __future__ import annotations

from ..config import DataConfig
from ..preference_data import IMPORTED_COLUMNS, SOURCE, to_pairs
from .base import Stage, to_batch, to_rows


class ImportPairs(Stage):
    reads = (SOURCE,)
    writes = IMPORTED_COLUMNS
    keeps_input_columns = False  # a dataset's own columns, in its format, become ours

    def __init__(
        self,
        fmt: str,
        max_pixels: int = 1024 * 1024,
        max_image_bytes: int = DataConfig().max_image_bytes,
        http_timeout_s: float = DataConfig().http_timeout_s,
    ):
        self.fmt, self.max_pixels = fmt, max_pixels
        self.max_image_bytes, self.http_timeout_s = max_image_bytes, http_timeout_s

    def _fetch(self, url: str) -> tuple[bytes, str | None]:
        """An image the dataset gives only by URL, within the run's data limits."""
        from ..storage.image_refs import fetch

        return fetch(url, "the pairs", self.max_image_bytes, self.http_timeout_s)

    def row_ids(self, batch: dict[str, list]) -> list[str]:
        return list(batch[SOURCE])  # FILE#ROW: a dataset's rows have no id of ours yet

    def process(self, rows: list[dict], images: dict[int, object]) -> list[dict]:
        pairs = to_rows(to_pairs(to_batch(rows, list(rows[0]) if rows else [SOURCE]), self.fmt, self._fetch))
        self.decode(pairs)  # at the reference stage's size: what fails here would fail there
        return pairs
