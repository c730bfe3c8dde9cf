"""The driver: feedback -> DPO -> evaluate, resumable after a kill. (`ray job submit` of the driver is in
test_s3.py, where the job writes its run directory to S3.)"""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import TRL_STEP_METRICS, checkpoint_registered, stage_pairs, toy_config, wait_until

pytestmark = pytest.mark.faults  # make test-cluster

ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1"}


def _mtimes(run: Path) -> dict:
    return {
        s: sorted(p.stat().st_mtime_ns for p in (run / "iter_000" / s).glob("*.parquet"))
        for s in ("prompts", "candidates", "claims", "labels", "pairs")
    }


def test_driver_killed_during_dpo_resumes_training_not_feedback(clean_run, tmp_path, toy_models, mlflow_server):
    """Also: the killed run and its rerun log to one MLflow run, each DPO step once (ddp's HF Trainer)."""
    from mlflow import MlflowClient

    # Start from a finished feedback iteration (same settings, so its stages count as done).
    run = tmp_path / "run"
    shutil.copytree(clean_run[0].run_dir, run)
    cfg = toy_config(
        tmp_path,
        toy_models,
        **{
            "data.input": "toy:16",
            "eval.toy_heldout": 16,
            "train.batch_size": 2,
            "train.epochs": 3,
            "train.checkpoint_steps": 3,
            "train.num_cpus_per_worker": 1,
            "tracking": {"mlflow": {"uri": mlflow_server, "experiment": "killed"}},
        },
    )
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    before = _mtimes(run)
    cmd = [sys.executable, "-m", "rlaifv_ray.cli", "run", str(tmp_path / "run.yaml")]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV, start_new_session=True
    )
    dpo = str(run / "iter_000" / "dpo")
    wait_until(lambda: checkpoint_registered(dpo), 300, "a registered DPO checkpoint", lambda: proc.poll() is None)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver, its local Ray and the Train workers, mid-DPO
    proc.wait()
    assert not (run / "iter_000" / "checkpoint" / "_SUCCESS").exists(), "DPO finished before the kill"

    again = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    for stage in ("candidates", "claims", "labels", "pairs"):
        assert f"{stage}: finished earlier, skipped" in again.stderr
    assert _mtimes(run) == before  # feedback was not recollected
    log = json.loads((run / "iter_000" / "train_log.json").read_text())
    assert log["resumed_from_step"] >= 2  # continued from Ray Train's checkpoint, not from step 0
    steps = [s["step"] for s in log["steps"]]
    assert steps == list(range(1, len(steps) + 1))  # every step logged once, none repeated
    summary = json.loads((run / "summary.json").read_text())
    assert [r["iteration"] for r in summary] == [0, 1]
    assert all(0 <= r["chair_s"] <= 1 and r["recall"] > 0.5 and r["mean_words"] > 3 for r in summary)
    assert summary[1]["pairs"] == len(stage_pairs(str(run)))
    assert (run / "report.html").exists() and (run / "metrics.png").stat().st_size > 1000
    assert (run / "iter_000" / "checkpoint" / "model.safetensors").exists()

    client = MlflowClient(mlflow_server)
    (tracked,) = client.search_runs([client.get_experiment_by_name("killed").experiment_id])
    assert json.loads((run / "tracking.json").read_text())["mlflow"]["run_id"] == tracked.info.run_id
    for metric in TRL_STEP_METRICS:  # the steps continue across the kill: none missing, none doubled
        assert sorted(m.step for m in client.get_metric_history(tracked.info.run_id, metric)) == steps, metric
    assert sorted(m.step for m in client.get_metric_history(tracked.info.run_id, "chair_s")) == [0, 1]
