"""Held-out evaluation of a policy after each iteration, as a Ray task placed like a sampling
actor (a GPU node on a cluster, not the driver's head node). Its metrics are kept in
RUN/heldout/<tag>/_SUCCESS under a resume key, so a rerun (or another run of a sweep evaluating the
same policy) reads them instead of evaluating again."""

from __future__ import annotations

import logging

from ..config import RunConfig
from ..storage.store import RunStore, resume_key

log = logging.getLogger(__name__)

HELDOUT_DIR = "heldout"


def evaluates(config: RunConfig) -> bool:
    """CHAIR and recall need ground truth: only runs whose input carries it are evaluated."""
    from ..inputs import PromptSource

    return bool(config.eval.toy_heldout) and PromptSource(config.data.input or "").truth is not None


def evaluate_policy(config: RunConfig, policy: str, tag: str) -> dict:
    """POLICY's held-out metrics (TAG: its folder name, e.g. policy_001), evaluated once."""
    store, engine, ev = RunStore(config.run_dir), config.models.policy, config.eval
    rel = f"{HELDOUT_DIR}/{tag}"
    key = resume_key("heldout", policy, engine.engine, engine.engine_options(), ev.toy_heldout, ev.seed, ev.temperature)
    if store.finished(rel, key):
        log.info(f"[{tag}] held-out evaluation: finished earlier, read")
        return store.read_json(f"{rel}/_SUCCESS")["metrics"]
    metrics = _run(config, policy)
    store.mark_finished(rel, key, metrics=metrics)
    return metrics


def _run(config: RunConfig, policy: str) -> dict:
    import ray

    res = config.resources.sample
    task = ray.remote(num_cpus=res.num_cpus, num_gpus=res.num_gpus, max_retries=1)(_evaluate)
    engine = config.models.policy
    return ray.get(
        task.remote(
            config.data.input,
            policy,
            engine.engine,
            engine.engine_options(),
            config.eval.model_dump(),
            max(1, int(res.num_cpus)),
        )
    )


def _evaluate(spec: str, policy: str, engine: str, options: dict, ev: dict, threads: int) -> dict:
    import torch

    from ..engines import load_engine
    from ..inputs import PromptSource

    torch.set_num_threads(threads)
    truth = PromptSource(spec).truth
    return truth.evaluate(load_engine(policy, engine, **options), ev["toy_heldout"], ev["seed"], ev["temperature"])
