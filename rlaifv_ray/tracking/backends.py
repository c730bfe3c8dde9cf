"""MLflow and W&B behind one small interface: start (a new run, or resume one by id), params,
metrics at a step of an axis (`iteration` or `dpo_step`), artifacts, close. Imported only when a
tracker is configured: neither package is needed otherwise."""

from __future__ import annotations

import os
import time
import uuid

from ..errors import ConfigError


def make_backends(config, store) -> list:
    t = config.tracking
    return [b for b in (t.mlflow and MlflowBackend(t.mlflow), t.wandb and WandbBackend(t.wandb, store)) if b]


def check_packages(config) -> None:
    """Before any work: each configured tracker's package is installed."""
    for what in ("mlflow", "wandb"):
        if getattr(config.tracking, what):
            _need(what, what)


def _need(module: str, what: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"tracking.{what} needs the {what} package: pip install 'rlaifv-ray[track]' (or pip install {what})"
        ) from None


class MlflowBackend:
    name = "mlflow"

    def __init__(self, cfg):
        self.cfg, self.started = cfg, False
        self.target = f"{cfg.uri} experiment {cfg.experiment}"
        # a tracker that is down answers within seconds, not after MLflow's default minutes of retries
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        _need("mlflow", "mlflow")

    def start(self, run_id: str | None, name: str, tags: dict[str, str]) -> str:
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri=self.cfg.uri)
        if run_id is None:
            experiment = self.client.get_experiment_by_name(self.cfg.experiment)
            eid = experiment.experiment_id if experiment else self.client.create_experiment(self.cfg.experiment)
            run_id = self.client.create_run(eid, run_name=name, tags=tags).info.run_id
        else:  # a resumed run: the same tracker run goes on
            self.client.update_run(run_id, status="RUNNING")
        self.run_id, self.started = run_id, True
        return run_id

    def log_params(self, params: dict) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow's batch limit
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def log_metrics(self, metrics: dict[str, float], step: int, axis: str) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, v, now, step) for k, v in metrics.items()]
        for i in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[i : i + 1000])

    def log_artifacts(self, paths: list[str], tags: dict[str, str]) -> None:
        for p in paths:
            self.client.log_artifact(self.run_id, p)
        for k, v in tags.items():
            self.client.set_tag(self.run_id, k, v)

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


class WandbBackend:
    name = "wandb"

    def __init__(self, cfg, store):
        self.cfg, self.started = cfg, False
        self.mode = cfg.mode or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
        # offline run files beside the run when it is local (RUN/wandb/), else in the working directory
        self.dir = store.root if "://" not in store.uri else os.getcwd()
        self.target = f"{cfg.entity or ''}/{cfg.project} ({self.mode})"
        _need("wandb", "wandb")

    def start(self, run_id: str | None, name: str, tags: dict[str, str]) -> str:
        import wandb

        os.makedirs(self.dir, exist_ok=True)
        self.run = wandb.init(
            project=self.cfg.project,
            entity=self.cfg.entity,
            group=self.cfg.group,
            name=name,
            id=run_id or uuid.uuid4().hex[:12],
            resume="allow",
            mode=self.mode,
            dir=self.dir,
            tags=[f"{k}={v}"[:64] for k, v in tags.items()],  # W&B's tag length limit
            config={"tags": tags},
            reinit="create_new",  # a sweep runs several in one process
            # its output capture would mix into the CLI's; the run's stats are not ours to log
            settings=wandb.Settings(console="off", silent=True, x_disable_stats=True, disable_git=True),
        )
        self.run.define_metric("iteration")
        self.run.define_metric("dpo_step")
        self._axes: dict[str, str] = {}
        self.started = True
        return self.run.id

    def log_params(self, params: dict) -> None:
        self.run.config.update(params, allow_val_change=True)

    def log_metrics(self, metrics: dict[str, float], step: int, axis: str) -> None:
        # W&B's own step must only grow: each metric is plotted against its axis instead
        for k in metrics:
            if self._axes.get(k) != axis:
                self.run.define_metric(k, step_metric=axis)
                self._axes[k] = axis
        self.run.log({**metrics, axis: step})

    def log_artifacts(self, paths: list[str], tags: dict[str, str]) -> None:
        import shutil

        for p in paths:  # copied into the run's own files folder: W&B may link a saved file, and P is temporary
            kept = shutil.copy(p, os.path.join(self.run.dir, os.path.basename(p)))
            self.run.save(kept, base_path=self.run.dir, policy="now")
        if tags:
            self.run.summary.update(tags)

    def close(self) -> None:
        self.run.finish()
