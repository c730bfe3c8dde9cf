"""Faults mid-run on a real local Ray: each run ends with the same pairs as the undisturbed one
(`clean_run`) or the same losses, nothing lost and nothing twice. (The driver killed mid-DPO is in
test_driver.py; a feedback run whose S3 store stops mid-write, rerun, in test_s3.py.)"""

import glob
import json
import os
import signal
import threading
import time

import pytest

from rlaifv_ray.config import validate_config
from rlaifv_ray.pipeline.feedback import run_feedback
from tests.conftest import checkpoint_registered, stage_pairs, toy_config, unsharded_training, wait_until

pytestmark = pytest.mark.faults  # make test-cluster


def _in_thread(fn, *args):
    result = {}

    def target():
        try:
            result["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, result


def _wait_for(pattern: str, thread, timeout: float = 300) -> list[str]:
    deadline = time.time() + timeout
    while time.time() < deadline and thread.is_alive():
        found = glob.glob(pattern)
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"nothing matched {pattern} before the run ended")


def _finish(thread, timeout: float = 600) -> None:
    thread.join(timeout)
    assert not thread.is_alive(), f"the run did not end within {timeout} s"


def _train_worker_pids() -> set[int]:
    """PIDs of this test session's live Ray Train workers, from Ray's own actor table (the GCS):
    never a process of another run on the machine, nor a child process that shares a worker's title."""
    import ray
    from ray._private import state  # the GCS actor table; the session's Ray has no dashboard (state API)

    job = ray.get_runtime_context().get_job_id()
    return {
        a["Pid"]
        for a in state.actors(actor_state_name="ALIVE").values()
        if a["ActorClassName"] == "RayTrainWorker" and a["JobID"] == job
    }


def test_labeler_actor_killed_mid_run(clean_run, tmp_path, toy_models):
    config = validate_config(toy_config(tmp_path, toy_models, **{"resources.label.batch_size": 4}))
    thread, result = _in_thread(run_feedback, config, 0, config.models.policy.path, "toy:16")
    timing = _wait_for(os.path.join(config.run_dir, "iter_000", "_timings", "labels", "*.json"), thread)[0]
    actor = json.load(open(timing))["actor"]
    os.kill(int(actor.split(":")[1]), signal.SIGKILL)  # Ray Data restarts the actor and retries its batch
    _finish(thread)
    assert "error" not in result, result.get("error")
    timings = [
        json.load(open(f)) for f in glob.glob(os.path.join(config.run_dir, "iter_000", "_timings", "labels", "*.json"))
    ]
    assert len({t["actor"] for t in timings} - {actor}) >= 1, "a new labeler actor should have taken over"
    assert stage_pairs(config.run_dir) == stage_pairs(clean_run[0].run_dir)
    assert result["value"]["rows"]["labels"] == clean_run[1]["rows"]["labels"]


# One variant in CI: fsdp, whose sharded checkpoint is the hardest to resume. The others (~70-90 s
# each) run with make test-slow; ddp's resume from a Ray Train checkpoint is also what
# test_driver.py's driver killed mid-DPO exercises, in CI.
@pytest.mark.parametrize(
    "strategy, lora",
    [
        pytest.param("ddp", None, marks=pytest.mark.slow),
        ("fsdp", None),
        pytest.param("ddp", {"r": 4, "alpha": 8}, marks=pytest.mark.slow),
        pytest.param("fsdp", {"r": 4, "alpha": 8, "dropout": 0.0}, marks=pytest.mark.slow),
    ],
    ids=["ddp", "fsdp", "lora", "fsdp-lora"],
)
def test_train_worker_killed_mid_dpo(clean_run, tmp_path, toy_models, strategy, lora):
    """Ray Train restarts the worker group from the last checkpoint (fsdp: its sharded checkpoint;
    LoRA: its adapter; LoRA on the sharded base: its sharded adapters): every step is logged once, and
    the losses are those of an undisturbed training on the same pairs. fsdp's undisturbed run is the
    same loop in one process without sharding (tests/conftest.py: unsharded_training): each rank
    holds half of the parameters, and the gathered checkpoint, loaded with from_pretrained, holds
    that process's final weights."""
    import math
    import shutil

    from rlaifv_ray.train.launch import train_dpo

    # 7 pairs x 3 epochs at 2 per step: 12 steps, a checkpoint every 4 (each costs ~1.4 s here)
    settings = {
        "train.workers": 2,
        "train.batch_size": 2,
        "train.epochs": 3,
        "train.checkpoint_steps": 4,
        "train.max_failures": 2,
        "train.strategy": strategy,
        "train.lora": lora,
    }
    runs = {}
    for name in ("undisturbed", "killed"):
        for part in ("pairs", "images"):  # what DPO reads: the pairs and the images they name
            shutil.copytree(
                os.path.join(clean_run[0].run_dir, "iter_000", part), tmp_path / name / "run" / "iter_000" / part
            )
        runs[name] = validate_config(toy_config(tmp_path / name, toy_models, **settings))
    policy = str(toy_models / "policy")
    if strategy == "fsdp" and not lora:  # the same loop in this process, unsharded, is the undisturbed run
        undisturbed, one_process = unsharded_training(runs["undisturbed"], policy, tmp_path / "undisturbed")
    else:  # TRL's trainer (ddp) and LoRA's adapters: an undisturbed run on Ray Train
        train_dpo(runs["undisturbed"], 0, policy)
        with open(os.path.join(runs["undisturbed"].run_dir, "iter_000", "train_log.json")) as f:
            undisturbed = json.load(f)["steps"]
    config = runs["killed"]

    thread, result = _in_thread(train_dpo, config, 0, policy)
    # a checkpoint counts once Ray Train has registered it (the snapshot lists it), not when its files appear
    dpo = os.path.join(config.run_dir, "iter_000", "dpo")
    wait_until(lambda: checkpoint_registered(dpo), 300, "a registered checkpoint", thread.is_alive, 0.05)
    workers = _train_worker_pids()
    assert len(workers) == 2, workers
    os.kill(max(workers), signal.SIGKILL)
    wait_until(lambda: _train_worker_pids() - workers, 300, "a new Train worker group", thread.is_alive, 0.05)
    _finish(thread)
    assert "error" not in result, result.get("error")

    with open(os.path.join(config.run_dir, "iter_000", "train_log.json")) as f:
        killed = json.load(f)
    assert killed["resumed_from_step"] >= 1
    assert [s["step"] for s in killed["steps"]] == [s["step"] for s in undisturbed]
    for a, b in zip(killed["steps"], undisturbed):
        assert abs(a["loss"] - b["loss"]) < 1e-3, (a, b)
    assert killed["steps"][0]["loss"] == pytest.approx(math.log(2), abs=1e-4)  # stored reference == policy
    if strategy == "fsdp" and not lora:
        import torch

        from rlaifv_ray.train.dpo import load_policy

        assert killed["fsdp_param_share_per_rank"] == pytest.approx([0.5, 0.5], abs=0.05)
        trained = load_policy(result["value"]["checkpoint"])[0].state_dict()
        reference = one_process.state_dict()
        assert trained.keys() == reference.keys()
        assert all(torch.allclose(v, reference[k], atol=1e-4) for k, v in trained.items())
        start = load_policy(policy)[0].state_dict()  # the comparison is finer than what training moved
        assert not all(torch.allclose(v, start[k], atol=1e-4) for k, v in trained.items())


def test_serve_stopped_as_soon_as_it_answers_exits_cleanly(tmp_path, toy_models):
    """A SIGTERM the moment /healthz first answers (a rolling update stops a pod that just came up):
    one line, exit 0, no fatal-signal trace and nothing from Serve's own shutdown."""
    import subprocess
    import sys
    import urllib.request

    import yaml

    from tests.conftest import REPO, _free_ports

    port = _free_ports(1)[0]
    (tmp_path / "serve.yaml").write_text(yaml.safe_dump(toy_config(tmp_path, toy_models, **{"serve.port": port})))
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rlaifv_ray.cli", "serve", str(tmp_path / "serve.yaml")],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
            env={**os.environ, "RAY_AUTH_MODE": "disabled"},
        )
        deadline = time.time() + 180
        try:
            while proc.poll() is None and time.time() < deadline:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.05)
            assert proc.poll() is None and time.time() < deadline, log.read_text()[-3000:]
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    assert code == 0, text[-3000:]
    for noise in ("SIGTERM received", "Fatal Python error", "Traceback", "graceful_shutdown failed"):
        assert noise not in text, text[-3000:]
    assert text.strip().splitlines()[-1].startswith("rlaifv-ray serve: SIGTERM")
