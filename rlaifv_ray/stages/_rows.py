"""Batch <-> rows helpers: stages see a batch as a dict of equal-length column lists."""

from __future__ import annotations


def to_rows(batch: dict[str, list]) -> list[dict]:
    keys = list(batch)
    n = len(batch[keys[0]]) if keys else 0
    return [{k: batch[k][i] for k in keys} for i in range(n)]


def to_batch(rows: list[dict], keys: list[str]) -> dict[str, list]:
    return {k: [r.get(k) for r in rows] for k in keys}


def output_keys(batch: dict[str, list], writes) -> list[str]:
    return list(batch) + [k for k in writes if k not in batch]


def decode_images(rows: list[dict], column: str, max_pixels: int) -> dict[int, object]:
    """Decode each distinct image once per batch; equal bytes share one PIL object, which lets
    the engine encode an image once for all questions about it. Errors are returned as strings."""
    from ..media import load_image

    cache: dict[bytes, object] = {}
    out = {}
    for i, row in enumerate(rows):
        data = row[column]
        if data not in cache:
            try:
                cache[data] = load_image(data, name=f"{column} of {row.get('prompt_id', i)}", max_pixels=max_pixels)
            except Exception as exc:  # noqa: BLE001 - any decode failure quarantines the row
                cache[data] = f"unreadable image: {exc}"
        out[i] = cache[data]
    return out
