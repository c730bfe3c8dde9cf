"""The run in MLflow and W&B (tracking.*): one tracker run per run directory, across iterations and
resumes. Only the driver logs; DPO's steps come from the train_log.json that Ray Train's rank 0
writes, numbered across iterations.

RUN/tracking.json  per tracker: its run id and what was logged to it (params, iteration/K, dpo/K).
                   A resumed run continues the same tracker run and logs only what is missing, so no
                   step is doubled; a tracker that was down is filled in by the next rerun.

A tracker that cannot be reached warns once and is left alone for the rest of the process: the run
goes on, and summary.json keeps every number.
"""

from __future__ import annotations

import json
import logging
import math
import re

from ..storage.store import RunStore

log = logging.getLogger(__name__)

TRACKING_STATE = "tracking.json"
ARTIFACTS = ("report.html", "summary.json", "best.json", "stopped.json")  # and the report's plots (*.png)
_KEY = re.compile(r"[^A-Za-z0-9_\-. :/]")  # what MLflow accepts in a metric name


class Tracking:
    """The configured trackers of one run; every method is a no-op without any."""

    def __init__(self, config, store: RunStore):
        from .backends import make_backends

        self.config, self.store = config, store
        self.state = store.read_json(TRACKING_STATE) or {}
        self.backends = make_backends(config, store) if config.tracking.enabled else []
        self._down: set[str] = set()

    def _each(self, key: str | None, what: str, call) -> None:
        """CALL(backend) on every live backend that has not logged KEY yet; then KEY is marked."""
        for backend in self.backends:
            if backend.name in self._down:
                continue
            entry = self.state.setdefault(backend.name, {})
            if key and key in entry.get("logged", []):
                continue
            try:
                if not entry.get("run_id") or entry.get("target") != backend.target:
                    entry.clear()  # another server or experiment: a new tracker run there
                    entry.update(run_id=backend.start(None, self._name(), self._tags()), target=backend.target)
                elif not backend.started:
                    backend.start(entry["run_id"], self._name(), self._tags())
                call(backend)
            except Exception as exc:  # noqa: BLE001 - a tracker must never end the run
                self._down.add(backend.name)
                log.warning(
                    f"tracking: {backend.name} ({backend.target}) failed while logging {what} ({_short(exc)}); "
                    "the run goes on without it and summary.json keeps every number; a rerun logs what is missing"
                )
                continue
            if key:
                entry.setdefault("logged", []).append(key)
            self.store.write_json(TRACKING_STATE, self.state)

    def start(self) -> None:
        """The run's params (the resolved config, flattened, and tracking.params); once per tracker run."""
        params = {**flatten(self.config.model_dump(mode="json")), **self.config.tracking.params}
        self._each("params", "params", lambda b: b.log_params(params))

    def iteration(self, row: dict, extra: dict | None = None) -> None:
        """Summary row K's metrics (and iteration K-1's feedback extras) at step K."""
        k = row["iteration"]
        metrics = {**numeric(row), **numeric(flatten(extra or {}))}
        metrics.pop("iteration", None)
        self._each(f"iteration/{k}", f"iteration {k}", lambda b: b.log_metrics(metrics, k, "iteration"))

    def dpo(self, k: int, train_log: dict | None) -> None:
        """Iteration K's DPO steps, under TRL's names, numbered after every earlier iteration's."""
        if not train_log:
            return
        offset = sum(
            len((self.store.read_json(f"iter_{j:03d}/train_log.json") or {}).get("steps", [])) for j in range(k)
        )

        def log_steps(backend):
            for s in train_log.get("steps", []):
                backend.log_metrics(
                    numeric({m: v for m, v in s.items() if m != "step"}), offset + s["step"], "dpo_step"
                )

        self._each(f"dpo/{k}", f"iteration {k}'s DPO steps", log_steps)

    def finish(self, stopped: dict | None = None) -> None:
        """The report, its plots, best.json and summary.json as artifacts (every time: they change);
        the stop reason as a tag."""
        import os
        import tempfile

        if not self.backends:
            return
        names = [n for n in ARTIFACTS if self.store.exists(n)]
        names += sorted(p.rsplit("/", 1)[-1] for p in self.store.files("", suffix=".png"))
        with tempfile.TemporaryDirectory(prefix="rlaifv-artifacts-") as tmp:
            paths = []
            for n in names:
                paths.append(os.path.join(tmp, n))
                with open(paths[-1], "wb") as f:
                    f.write(self.store.read_bytes(n))
            tags = {"stopped": f"{stopped['rule']}: {stopped['reason']}"} if stopped else {}
            self._each(None, "artifacts", lambda b: b.log_artifacts(paths, tags))
        for backend in self.backends:
            if backend.started:
                try:
                    backend.close()
                except Exception as exc:  # noqa: BLE001 - nor its closing
                    log.warning(f"tracking: {backend.name} did not close cleanly ({_short(exc)})")

    def _name(self) -> str:
        return self.config.tracking.run_name or self.store.uri.rstrip("/").rsplit("/", 1)[-1]

    def _tags(self) -> dict[str, str]:
        from importlib.metadata import PackageNotFoundError, version

        try:
            package = version("rlaifv-ray")
        except PackageNotFoundError:
            package = "unknown"
        tags = {"run_dir": self.store.uri, "rlaifv_ray.version": package, **self.config.tracking.tags}
        commit = git_commit()
        return {**tags, "git_commit": commit} if commit else tags


def open_tracking(config, store: RunStore) -> Tracking:
    tracking = Tracking(config, store)
    tracking.start()
    return tracking


def flatten(obj, prefix: str = "") -> dict:
    """{"train": {"lr": 1e-5}} -> {"train.lr": 1e-5}; lists as JSON."""
    out = {}
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out |= flatten(v, key + ".")
        else:
            out[key] = json.dumps(v) if isinstance(v, list | dict) else v
    return out


def numeric(metrics: dict) -> dict[str, float]:
    """The finite numbers of METRICS under names every tracker accepts (booleans and text left out)."""
    return {
        _KEY.sub("_", k): float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


def git_commit() -> str | None:
    """The engine's git commit, when it runs from a checkout (not from a wheel)."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).parents[2]
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
