"""The driver: feedback -> DPO -> evaluate, resumable after a kill, and submittable as a Ray job."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from .conftest import REPO, stage_pairs, toy_config, wait_for_http

ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1"}


def _mtimes(run: Path) -> dict:
    return {s: sorted(p.stat().st_mtime_ns for p in (run / "iter_000" / s).glob("*.parquet"))
            for s in ("prompts", "candidates", "claims", "labels", "pairs")}


def test_driver_killed_during_dpo_resumes_training_not_feedback(clean_run, tmp_path, toy_models):
    # Start from a finished feedback iteration (same settings, so its stages count as done).
    run = tmp_path / "run"
    shutil.copytree(clean_run[0].run_dir, run)
    cfg = toy_config(tmp_path, toy_models, **{
        "data.input": "toy:16", "eval.toy_heldout": 16, "train.batch_size": 2, "train.epochs": 6,
        "train.checkpoint_steps": 3, "train.num_cpus_per_worker": 1})
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    before = _mtimes(run)
    cmd = [sys.executable, "-m", "rlaifv_ray.cli", "run", str(tmp_path / "run.yaml")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV,
                            start_new_session=True)
    deadline = time.time() + 300
    while not list((run / "iter_000" / "dpo").glob("checkpoint_*")) and proc.poll() is None \
            and time.time() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, proc.stderr.read()[-3000:]
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


def _free_ports(n: int) -> list[int]:
    import socket

    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.fixture
def ray_head():
    """A real `ray start --head` cluster (2 CPUs) in its own process group, killed afterwards
    (`ray stop` would also stop the test session's own local Ray)."""
    import tempfile

    temp_dir = tempfile.mkdtemp(prefix="rj", dir="/tmp")  # Ray's socket paths must stay under 107 bytes
    env = {**ENV, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    ports = _free_ports(6)  # every listening port explicit: another Ray may run on this machine
    head = subprocess.Popen([str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
                             f"--port={ports[0]}", "--num-cpus=2", "--dashboard-host=127.0.0.1",
                             f"--dashboard-port={ports[1]}", f"--dashboard-agent-listen-port={ports[2]}",
                             f"--dashboard-agent-grpc-port={ports[3]}", f"--metrics-export-port={ports[4]}",
                             f"--ray-client-server-port={ports[5]}", "--include-dashboard=true",
                             f"--temp-dir={temp_dir}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    address = f"http://127.0.0.1:{ports[1]}"
    try:
        wait_for_http(f"{address}/api/version", head, 120, lambda: head.stderr.read())
        yield env, address
    finally:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_ray_job_submit_runs_one_iteration(ray_head, tmp_path, toy_models):
    env, address = ray_head
    cfg = toy_config(tmp_path, toy_models, **{"data.input": "toy:16", "eval.toy_heldout": 8, "train.batch_size": 2})
    config_file = tmp_path / "job.yaml"
    config_file.write_text(yaml.safe_dump(cfg))
    submit = [str(Path(sys.executable).parent / "ray"), "job", "submit", "--address", address,
              "--working-dir", str(REPO), "--", "python", "jobs/iterate.py", "--config", str(config_file)]
    deadline = time.time() + 90
    while True:  # the dashboard answers a few seconds before its job agent does
        job = subprocess.run(submit, capture_output=True, text=True, env=env, timeout=900)
        if "No available agent" not in job.stderr or time.time() > deadline:
            break
        time.sleep(2)
    assert job.returncode == 0 and "succeeded" in job.stdout, (job.stdout + job.stderr)[-4000:]
    run = Path(cfg["run_dir"])
    summary = json.loads((run / "summary.json").read_text())
    assert [r["iteration"] for r in summary] == [0, 1]
    assert (run / "iter_000" / "checkpoint" / "model.safetensors").exists()
    assert list((run / "iter_000" / "dpo").glob("checkpoint_*"))  # Ray Train's resumable checkpoints
