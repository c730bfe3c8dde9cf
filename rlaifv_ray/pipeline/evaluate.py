"""Held-out evaluation of a policy after each iteration, as a Ray task placed like a sampling
actor (a GPU node on a cluster, not the driver's head node)."""

from __future__ import annotations

from ..config import RunConfig


def evaluates(config: RunConfig) -> bool:
    """CHAIR and recall need ground truth: only runs whose input carries it are evaluated."""
    from ..inputs import PromptSource

    return bool(config.eval.toy_heldout) and PromptSource(config.data.input or "").truth is not None


def evaluate_policy(config: RunConfig, policy: str) -> dict:
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
