"""A feedback stream killed mid-way resumes where it stopped (pipeline/stream_resume.py): committed
batches are kept and skipped, a batch cut off mid-write is deleted and done again, nothing is lost
or doubled, and the pairs are those of an undisturbed run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from rlaifv_ray import schema as S
from rlaifv_ray.pipeline import stream_resume
from rlaifv_ray.storage.store import RunStore

REPO = Path(__file__).resolve().parents[1]
PROMPTS, N = 24, 4


def test_begin_keeps_committed_batches_of_the_same_key_and_clears_another_keys(tmp_path):
    store = RunStore(str(tmp_path / "run"))
    d = "iter_000"
    assert stream_resume.begin(store, d, "claims", "k1") is False  # a fresh start
    for ids in (["a1", "a2"], ["a3"], ["a4"]):
        store.write_part(f"{d}/claims", pa.table({"x": [1] * len(ids)}), ids)
    store.write_part(f"{d}/quarantine/claims", pa.table({"x": [1]}), ["a3"])
    committed = [["a1", "a2"], ["a3"]]  # a4's batch was cut off before its timing record
    for ids in committed:  # a batch's timing record is named by its ids' hash, as its parts are
        store.write_json(f"{d}/_timings/claims/{_hash(ids)}.json", {"ids": ids, "seconds": 0.1})
    (tmp_path / "run" / d / "claims" / ".part-0123456789abcdef0123.parquet").write_bytes(b"half a write")

    assert stream_resume.begin(store, d, "claims", "k1") is True
    left = sorted(Path(f).name for f in store.files(f"{d}/claims", hidden=True))
    assert left == sorted(f"part-{_hash(ids)}.parquet" for ids in committed)
    assert len(store.files(f"{d}/quarantine/claims")) == 1
    assert stream_resume.not_done(pa.table({S.ANSWER_ID: ["a1", "a4", "a3", "a5"]}), _done(store)).column(
        S.ANSWER_ID
    ).to_pylist() == ["a4", "a5"]

    assert stream_resume.begin(store, d, "claims", "k2") is False  # another key: starts over
    assert store.files(f"{d}/claims") == [] and store.files(f"{d}/_timings/claims", suffix=".json") == []


def _hash(ids: list[str]) -> str:
    import hashlib

    return hashlib.sha1("\n".join(sorted(ids)).encode()).hexdigest()[:20]


def _done(store):
    import numpy as np

    files = store.files("iter_000/_timings/claims", suffix=".json")
    return np.unique(stream_resume._record_ids(store.uri, files))


def _config(run_dir: Path) -> dict:
    sim = {"engine": "sim", "sim": {"time_scale": 2.0}}
    return {
        "run_dir": str(run_dir),
        "models": {
            "policy": {"path": "sim:7b", **sim},
            "claim_llm": {"path": "sim:8b", **sim},
            "labeler": {"path": "sim:34b", **sim},
        },
        "sampling": {"n": N, "max_new_tokens": 512},
        "resources": {s: {"batch_size": 4 if s == "sample" else 8} for s in ("sample", "claims", "label")},
    }


_DRIVER = f"""
import json, sys, ray
from rlaifv_ray.config import validate_config
from rlaifv_ray.pipeline.feedback import run_feedback
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
run_feedback(validate_config(json.loads(sys.argv[1])), 0, "sim:7b", "toy:{PROMPTS}")
"""


@pytest.mark.faults
def test_a_stream_killed_mid_way_resumes_and_gives_the_undisturbed_pairs(tmp_path, ray_local, caplog):
    from rlaifv_ray.config import validate_config
    from rlaifv_ray.pipeline.feedback import run_feedback

    raw = _config(tmp_path / "run")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _DRIVER, json.dumps(raw)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    labels = tmp_path / "run" / "iter_000" / "_timings" / "labels"
    deadline = time.time() + 240
    try:
        while proc.poll() is None and time.time() < deadline and len(list(labels.glob("*.json"))) < 2:
            time.sleep(0.1)
        assert proc.poll() is None, proc.stderr.read()[-3000:]  # still streaming when killed
        assert time.time() < deadline, "no labels were committed within 240 s"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its Ray, mid-stream
        proc.wait()
    store = RunStore(raw["run_dir"])
    assert not store.finished("iter_000/labels", "any") and store.read_json("iter_000/labels/_SUCCESS") is None
    before = {s: len(store.files(f"iter_000/_timings/{s}", suffix=".json")) for s in ("candidates", "claims", "labels")}

    t0 = time.time()
    resumed = run_feedback(validate_config(raw), 0, "sim:7b", f"toy:{PROMPTS}")
    assert "(resuming candidates, claims, labels)" in caplog.text
    assert resumed["rows"]["candidates"] == resumed["rows"]["labels"] == PROMPTS * N  # nothing lost or doubled
    labelled = store.read_table("iter_000/labels", S.schema("labels"), columns=[S.ANSWER_ID]).column(0).to_pylist()
    assert len(set(labelled)) == len(labelled) == PROMPTS * N
    # the batches committed before the kill were not done again
    records = [json.loads(Path(f).read_text()) for f in store.files("iter_000/_timings/labels", suffix=".json")]
    redone = [r for r in records if r["start"] >= t0]
    assert before["labels"] >= 2 and len(records) - len(redone) >= 2
    assert sum(len(r["ids"]) for r in records) == PROMPTS * N

    undisturbed = validate_config({**raw, "run_dir": str(tmp_path / "undisturbed")})
    run_feedback(undisturbed, 0, "sim:7b", f"toy:{PROMPTS}")
    pairs = store.read_table("iter_000/pairs", S.schema("pairs")).to_pylist()
    want = RunStore(undisturbed.run_dir).read_table("iter_000/pairs", S.schema("pairs")).to_pylist()
    assert len(pairs) > 5 and pairs == want
