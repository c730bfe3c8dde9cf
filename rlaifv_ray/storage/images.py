"""Each iteration stores each distinct image once, named by its content: RUN/iter_NNN/images/<id>.

Every row after the prompts carries the image's id only. The Ray adapter of a stage that reads
pixels (sampling, labeling, reference log-probs) fetches its batch's images (teed_stage.py), and
DPO workers fetch the pairs' images; nothing else moves or rewrites image bytes.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

from ..errors import StorageError

# object stores answer many small reads in parallel far faster than one after another
_IO_THREADS = 8


def image_id(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def put_images(store, iter_dir: str, images: list[bytes]) -> list[str]:
    """Store each distinct image not stored yet; returns the id of each, in order."""
    ids = [image_id(b) for b in images]
    todo = {i: b for i, b in zip(ids, images) if not store.exists(f"{iter_dir}/images/{i}")}
    with ThreadPoolExecutor(_IO_THREADS) as pool:
        list(pool.map(lambda item: store.write_bytes(f"{iter_dir}/images/{item[0]}", item[1]), todo.items()))
    return ids


def fetch_images(store, iter_dir: str, ids: list[str]) -> list[bytes]:
    """The bytes of each id, in order (each distinct image read once)."""
    distinct = sorted(set(ids))
    try:
        with ThreadPoolExecutor(_IO_THREADS) as pool:
            found = dict(zip(distinct, pool.map(lambda i: store.read_bytes(f"{iter_dir}/images/{i}"), distinct)))
    except FileNotFoundError:
        missing = [i for i in distinct if not store.exists(f"{iter_dir}/images/{i}")]
        raise StorageError(
            f"{store.uri_of(iter_dir, 'images')}: {len(missing)} image(s) the rows name are missing "
            f"(e.g. {(missing or ['?'])[0]}); the prompts stage stores them: rerun the iteration's feedback, "
            "or copy the images/ folder with its rows"
        ) from None
    return [found[i] for i in ids]
