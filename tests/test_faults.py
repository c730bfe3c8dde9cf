"""Faults mid-run on a real local Ray: each run ends with the same pairs as the undisturbed one
(`clean_run`), nothing lost and nothing twice. (The driver killed mid-iteration is in
test_feedback_pipeline.py and test_driver.py; the S3 server stopped mid-write in test_s3.py.)"""

import glob
import json
import os
import signal
import threading
import time

from rlaifv_ray.config import validate_config
from rlaifv_ray.pipeline.feedback import run_feedback

from .conftest import stage_pairs, toy_config


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


def test_labeler_actor_killed_mid_run(clean_run, tmp_path, toy_models):
    config = validate_config(toy_config(tmp_path, toy_models, **{"resources.label.batch_size": 4}))
    thread, result = _in_thread(run_feedback, config, 0, config.models.policy.path, "toy:16")
    timing = _wait_for(os.path.join(config.run_dir, "iter_000", "_timings", "labels", "*.json"), thread)[0]
    actor = json.load(open(timing))["actor"]
    os.kill(int(actor.split(":")[1]), signal.SIGKILL)  # Ray Data restarts the actor and retries its batch
    thread.join(600)
    assert "error" not in result, result.get("error")
    timings = [json.load(open(f)) for f in glob.glob(os.path.join(config.run_dir, "iter_000", "_timings", "labels", "*.json"))]
    assert len({t["actor"] for t in timings} - {actor}) >= 1, "a new labeler actor should have taken over"
    assert stage_pairs(config.run_dir) == stage_pairs(clean_run[0].run_dir)
    assert result["value"]["rows"]["labels"] == clean_run[1]["rows"]["labels"]
