"""A stream stopped mid-way resumes where it stopped: what each stage already did is kept, and each
stage is fed only the rows it has not done.

A stage's batch writes its good part, its quarantine part, then its timing record, each named by
the hash of the batch's input ids (pipeline/teed_stage.py). The timing record is the batch's
commit: a part without one was cut off mid-batch and is deleted. The record lists the batch's
input ids, so the ids a stage has done are known. A restarted stream feeds each stage its
upstream's committed rows minus those, plus what its upstream makes now. The ids come to the driver
as 8-byte hashes in one sorted array (8 MB at 1M answers), as Ray Data's checkpoint filter keeps
them. A stage begun under another resume key starts over.
"""

from __future__ import annotations

import hashlib
import json

from .. import schema as S

STARTED = "_STARTED"
RECORDS_PER_TASK = 256


def begin(store, d: str, stage: str, key: str) -> bool:
    """Start STAGE of iteration directory D, or resume it: True when it resumes work begun under the
    same KEY (its uncommitted parts deleted), False when it starts over (its old output cleared)."""
    started = store.read_json(f"{d}/{stage}/{STARTED}")
    if started and started.get("key") == key:
        _drop_uncommitted(store, d, stage)
        return True
    for rel in (stage, f"quarantine/{stage}", f"_timings/{stage}"):
        store.clear(f"{d}/{rel}")
    store.write_json(f"{d}/{stage}/{STARTED}", {"key": key})
    return False


def _drop_uncommitted(store, d: str, stage: str) -> None:
    committed = {_hash_of(f) for f in store.files(f"{d}/_timings/{stage}", suffix=".json")}
    for rel in (stage, f"quarantine/{stage}"):
        for f in store.files(f"{d}/{rel}", hidden=True):
            if _hash_of(f) not in committed:
                store.fs.delete_file(f)


def _hash_of(path: str) -> str:
    """part-<hash>.parquet, .part-<hash>.parquet (a write cut off) and <hash>.json -> <hash>."""
    return path.rsplit("/", 1)[-1].lstrip(".").split(".")[0].removeprefix("part-")


def done_ids(store, d: str, stage: str):
    """The hashes of the input ids STAGE's committed batches hold: a sorted uint64 array, folded from
    its timing records on Ray's workers."""
    import numpy as np
    import ray

    files = store.files(f"{d}/_timings/{stage}", suffix=".json")
    groups = [files[i : i + RECORDS_PER_TASK] for i in range(0, len(files), RECORDS_PER_TASK)]
    task = ray.remote(num_cpus=0.1)(_record_ids)  # a sliver: model actors may hold the cores
    parts = ray.get([task.remote(store.uri, g) for g in groups])
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.uint64)


def _record_ids(uri: str, paths: list[str]):
    from ..storage.store import RunStore

    fs = RunStore(uri).fs
    ids: list[str] = []
    for p in paths:
        with fs.open_input_stream(p) as fh:
            ids += json.loads(fh.read()).get("ids", [])
    return id_hashes(ids)


def id_hashes(ids: list[str]):
    import numpy as np

    return np.frombuffer(b"".join(hashlib.blake2b(i.encode(), digest_size=8).digest() for i in ids), dtype="<u8")


def not_done(table, done):
    """TABLE's rows whose input id (an answer's, else a prompt's) is not in DONE (`done_ids`)."""
    import numpy as np
    import pyarrow as pa

    column = S.ANSWER_ID if S.ANSWER_ID in table.column_names else S.PROMPT_ID
    mask = ~np.isin(id_hashes(table.column(column).to_pylist()), done)
    return table.filter(pa.array(mask, pa.bool_()))
