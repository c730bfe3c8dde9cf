"""A sweep's runs on Ray. Each run is a Ray task (no resources of its own) that drives one ordinary
run, whose stages then take their actors and Ray Train workers from the cluster like any run's; at
most K run at once, K by default as many as the cluster's CPUs and GPUs hold (one on a small
machine). Runs start variant by variant, and a run starts only once every earlier run of its seed
is past iteration 0: what variants share (iteration 0's feedback, its DPO when only later
iterations differ, the starting policy's evaluation) is computed by the first and copied by the
others (storage/store.py: shared stages), while their later iterations, which depend on each run's
own trained policy, overlap. Different seeds share nothing but the starting policy's evaluation and
run side by side. A run that fails is recorded with its reason; the others go on.

OUT/status.json   each run's state (waiting, running, done, failed), its current step and seconds
OUT/run.log       the sweep's progress lines; each run's own lines are in its RUN/run.log
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..config import RunConfig
from ..storage.store import SHARED_STAGES, RunStore

log = logging.getLogger(__name__)

STATUS = "status.json"


@dataclass(frozen=True)
class SweepRun:
    variant: str
    seed: int
    config: RunConfig

    @property
    def name(self) -> str:
        return f"{self.variant}/seed_{self.seed}"


def run_sweep(
    runs: list[SweepRun],
    out: str,
    run_one: Callable[[RunConfig], object],
    max_concurrent: int | None = None,
    poll_s: float = 10.0,
) -> dict[str, dict]:
    """Run (or resume) every one of RUNS (variant-major), each by RUN_ONE(config) in a Ray task
    (the loop: driver.run_recorded); returns OUT/status.json's content."""
    import ray

    uris = [RunStore(r.config.run_dir).uri for r in runs]
    for uri in uris:
        RunStore(uri).write_json(SHARED_STAGES, {"sweep": out, "runs": uris})
    k = max_concurrent or fits(runs, ray.cluster_resources())
    log.info(f"sweep: {len(runs)} runs in {out}, at most {k} at once")
    board = ray.remote(num_cpus=0)(_Board).remote()
    drive = ray.remote(num_cpus=0, max_retries=0)(_drive)
    status = {r.name: {"state": "waiting"} for r in runs}
    waiting, running = list(runs), {}
    shown = None
    while waiting or running:
        while len(running) < k:
            run = next((r for r in waiting if _ready(r, runs, status)), None)
            if run is None:
                break
            waiting.remove(run)
            running[drive.remote(run.config, run.name, board, run_one)] = run
            status[run.name] = {"state": "running", "step": "starting", "started": time.time()}
        done, _ = ray.wait(list(running), num_returns=1, timeout=poll_s)
        for ref in done:
            run = running.pop(ref)
            status[run.name] = _finished(run, ref, status[run.name]["started"])
        for name, step in ray.get(board.steps.remote()).items():
            if status[name]["state"] == "running":
                status[name]["step"] = step
        line = _progress(status)
        if line != shown:
            log.info(line)
            shown = line
            RunStore(out).write_json(STATUS, status)
    RunStore(out).write_json(STATUS, status)
    return status


def _ready(run: SweepRun, runs: list[SweepRun], status: dict[str, dict]) -> bool:
    """RUN may start: every earlier run of its seed has finished, failed, or begun iteration 1."""
    earlier = [r for r in runs[: runs.index(run)] if r.seed == run.seed]
    return all(_past_iteration_0(status[r.name]) for r in earlier)


def _past_iteration_0(status: dict) -> bool:
    step = status.get("step", "")
    return status["state"] in ("done", "failed") or (step.startswith("[iter_") and not step.startswith("[iter_000]"))


def fits(runs: list[SweepRun], cluster: dict[str, float]) -> int:
    """How many runs CLUSTER (Ray's resource totals) holds at once: its CPUs and GPUs over what one
    run's feedback stream (every pool at its minimum size) or its DPO needs at a time, whichever is
    more. Fewer would leave runs' actors waiting on each other's resources."""
    needs = [_needs(r.config) for r in runs]
    need = {res: max(n[res] for n in needs) for res in ("CPU", "GPU")}
    return max(1, min(int(cluster.get(res, 0) // v) for res, v in need.items() if v > 0))


def _needs(config: RunConfig) -> dict[str, float]:
    r, t = config.resources, config.train
    stream = [(s, s.concurrency[0]) for s in (r.sample, r.claims, r.label)]
    return {
        "CPU": max(t.workers * t.num_cpus_per_worker, sum(s.num_cpus * n for s, n in stream)),
        "GPU": max(t.workers if t.use_gpu else 0, sum(s.num_gpus * n for s, n in stream)),
    }


def _finished(run: SweepRun, ref, started: float) -> dict:
    import ray

    seconds = round(time.time() - started)
    try:
        error = ray.get(ref)
    except Exception as exc:  # noqa: BLE001 - the run's process died (killed, out of memory): Ray says why
        error = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
    if error:
        log.warning(f"{run.name}: failed after {seconds} s: {error}")
        return {"state": "failed", "error": error, "seconds": seconds}
    log.info(f"{run.name}: done in {seconds} s")
    return {"state": "done", "seconds": seconds}


def _progress(status: dict[str, dict]) -> str:
    by_state = {s: [n for n, v in status.items() if v["state"] == s] for s in ("done", "failed", "running", "waiting")}
    counts = ", ".join(f"{len(names)} {s}" for s, names in by_state.items())
    steps = "; ".join(f"{n}: {status[n].get('step', '')}" for n in by_state["running"])
    return f"sweep: {counts}" + (f" | {steps}" if steps else "")


class _Board:
    """The step each running run is in, as its driver logs it ('[iter_001] dpo ...')."""

    def __init__(self):
        self._steps: dict[str, str] = {}

    def step(self, name: str, line: str) -> None:
        self._steps[name] = line

    def steps(self) -> dict[str, str]:
        return dict(self._steps)


class _ToBoard(logging.Handler):
    def __init__(self, board, name: str):
        super().__init__(logging.INFO)
        self.board, self.name = board, name

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        if line.startswith("[iter_") and line.endswith("..."):  # the driver starting a step
            self.board.step.remote(self.name, line[:-4])


def _drive(config: RunConfig, name: str, board, run_one) -> str | None:
    """One run, in its own Ray worker process: None when it finished, else why it failed (also at
    the end of its RUN/run.log)."""
    from .. import logs
    from ..errors import user_error_in

    root = logging.getLogger(logs.ROOT)
    root.setLevel(logging.INFO)
    forward = _ToBoard(board, name)
    root.addHandler(forward)
    try:
        run_one(config)
        return None
    except Exception as exc:
        cause = user_error_in(exc)
        if cause is None:
            log.exception(f"{name}: failed")  # a bug: its traceback in the run's log
        # a Ray-wrapped error's text is a remote traceback; its last line names the exception
        error = str(cause) if cause is not None else (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
        logs.to_run_logs_only(logging.ERROR, error)
        return error
    finally:
        root.removeHandler(forward)
        logs.close_run_logs()
