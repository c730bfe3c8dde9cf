"""A run's pairs out as a shared preference dataset: parquet shards in the rlaifv or trl format
(preference_data.py), local or s3://, loadable with datasets.load_dataset("parquet", ...).

Shards are written one at a time from the pairs' part files: memory holds one shard's images.
"""

from __future__ import annotations

import logging
import math

from .. import schema as S
from ..errors import ConfigError
from ..preference_data import from_pairs
from ..storage.images import fetch_images
from ..storage.store import RunStore

log = logging.getLogger(__name__)


def finished_pairs(store: RunStore) -> list[int]:
    """Iterations of the run whose pairs stage finished."""
    from pyarrow.fs import FileSelector, FileType

    dirs = store.fs.get_file_info(FileSelector(store.root, allow_not_found=True))
    iters = sorted(
        int(i.base_name[5:])
        for i in dirs
        if i.type == FileType.Directory and i.base_name.startswith("iter_") and i.base_name[5:].isdigit()
    )
    return [k for k in iters if store.exists(f"iter_{k:03d}/pairs/_SUCCESS")]


def export_pairs(
    run_dir: str,
    out: str,
    fmt: str,
    iteration: int | str | None = None,
    rows_per_shard: int = 1000,
    overwrite: bool = False,
) -> dict:
    """ITERATION: a number, None (the last with pairs) or "best": the pairs the best policy was trained on."""
    import pyarrow.parquet as pq

    store, dest = RunStore(run_dir), RunStore(out)
    done = finished_pairs(store)
    if not done:
        raise ConfigError(f"export: {store.uri} has no finished pairs (run `rlaifv-ray run` or `feedback` first)")
    k = done[-1] if iteration is None else _best_iteration(store) if iteration == "best" else iteration
    if k not in done:
        raise ConfigError(f"export: iteration {k} of {store.uri} has no finished pairs; finished: {done}")
    if dest.files("") and not overwrite:
        raise ConfigError(f"export: {dest.uri} already holds parquet files; choose an empty folder or --overwrite")
    d = f"iter_{k:03d}"
    log.info(f"export: {d} pairs of {store.uri}")
    total = store.count_rows(f"{d}/pairs")
    shards = max(1, math.ceil(total / rows_per_shard))
    for old in dest.files(""):
        dest.fs.delete_file(old)
    buffer: dict[str, list] = {c: [] for c in S.PAIR_FILE}
    written = 0

    def flush():
        nonlocal written
        n = min(rows_per_shard, len(buffer[S.PROMPT_ID]))
        shard = {c: v[:n] for c, v in buffer.items()}
        table = from_pairs(shard, fetch_images(store, d, shard[S.IMAGE_ID]), fmt, origin=f"{store.uri}/{d}")
        name = f"train-{written // rows_per_shard:05d}-of-{shards:05d}.parquet"
        dest.fs.create_dir(dest.root, recursive=True)
        pq.write_table(table, dest.path(name), filesystem=dest.fs)
        written += n
        log.info(f"export: {name} ({written}/{total} pairs)")
        for c in buffer:
            del buffer[c][:n]

    for part in store.files(f"{d}/pairs"):
        table = pq.read_table(part, filesystem=store.fs, columns=list(S.PAIR_FILE)).to_pydict()
        for c in S.PAIR_FILE:
            buffer[c] += table[c]
        while len(buffer[S.PROMPT_ID]) >= rows_per_shard:
            flush()
    if buffer[S.PROMPT_ID] or not written:
        flush()
    return {"run": store.uri, "iteration": k, "format": fmt, "out": dest.uri, "pairs": written, "shards": shards}


def _best_iteration(store: RunStore) -> int:
    """The iteration whose pairs trained the best policy (policy k was trained in iter_{k-1})."""
    best = store.read_json("best.json")
    if best is None:
        raise ConfigError(f"export --iteration best: {store.uri} has no best.json (set eval.select and run)")
    if best["iteration"] == 0:
        raise ConfigError(
            f"export --iteration best: the best policy by {best['metric']} is the starting one "
            "(iteration 0), which no pairs trained"
        )
    return best["iteration"] - 1
