"""Run by tests/test_multinode.py in its own process: a Ray cluster of several raylets on this
machine (ray.cluster_utils.Cluster), a feedback iteration whose labeling restarts on a backlog,
and DPO with its workers on two raylets. Prints one JSON line of what happened."""

import glob
import json
import os
import sys
import time
from pathlib import Path

import ray
from ray.cluster_utils import Cluster

from rlaifv_ray.config import validate_config
from rlaifv_ray.pipeline.feedback import run_feedback
from rlaifv_ray.train.launch import train_dpo

sys.path.insert(0, str(Path(__file__).parent))
from conftest import PRETRAINED, stage_pairs, toy_config


def pool_over_time(timings: list[dict]) -> list[int]:
    """Labeler actors busy in each second of the stage (an actor counts from its first batch
    to its last)."""
    spans = {}
    for t in timings:
        lo, hi = spans.get(t["actor"], (t["start"], t["end"]))
        spans[t["actor"]] = (min(lo, t["start"]), max(hi, t["end"]))
    t0, t1 = min(s for s, _ in spans.values()), max(e for _, e in spans.values())
    return [sum(s <= t0 + i + 1 and e >= t0 + i for s, e in spans.values()) for i in range(int(t1 - t0) + 1)]


def main(root: Path, prompts: int) -> None:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(3):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        _run(root, prompts)
    finally:
        ray.shutdown()
        cluster.shutdown()


def _run(root: Path, prompts: int) -> None:
    raw = toy_config(
        root,
        PRETRAINED,
        **{"models.claims": "rules", "train.workers": 2, "train.num_cpus_per_worker": 1, "train.batch_size": 4},
    )
    raw["resources"] = {
        "sample": {"concurrency": [2, 2], "batch_size": 8, "num_cpus": 0.5},
        "claims": {"concurrency": [1, 1], "batch_size": 8, "num_cpus": 0.25},
        "label": {"concurrency": [1, 2], "batch_size": 8, "num_cpus": 0.5},
        "reference": {"concurrency": [1, 1], "batch_size": 16, "num_cpus": 0.5},
    }
    config = validate_config(raw)
    run = Path(config.run_dir) / "iter_000"
    start = time.time()
    run_feedback(config, 0, config.models.policy.path, f"toy:{prompts}")
    feedback_seconds = round(time.time() - start, 1)
    undisturbed = stage_pairs(config.run_dir)
    # a run killed while labeling: candidates and claims are finished, labels and pairs are not.
    # The rerun streams every claim into the labeler pool at once, a backlog it scales out for.
    for stage in ("labels", "pairs"):
        (run / stage / "_SUCCESS").unlink()
    # one claim per forward pass: a slower labeler, so that a small run still backs up on it (the
    # labels stage reruns either way; its verdicts do not depend on the batching)
    raw["resources"]["label"]["engine_batch_size"] = 1
    t0 = time.time()
    metrics = run_feedback(validate_config(raw), 0, config.models.policy.path, f"toy:{prompts}")
    timings = [json.load(open(f)) for f in glob.glob(str(run / "_timings" / "labels" / "*.json"))]
    pool = pool_over_time(timings)
    dpo_start = time.time()
    dpo = train_dpo(config, 0, config.models.policy.path)
    dpo_seconds = round(time.time() - dpo_start, 1)
    nodes = json.loads((run / "train_log.json").read_text())["worker_nodes"]
    print(
        json.dumps(
            {
                "feedback_seconds": feedback_seconds,
                "label_seconds": round(dpo_start - t0, 1),
                "dpo_seconds": dpo_seconds,
                "label_batches": len(timings),
                "label_actors": len({t["actor"] for t in timings}),
                "label_pool_per_second": pool,
                "labels": metrics["rows"]["labels"],
                "candidates": metrics["rows"]["candidates"],
                "pairs_equal": stage_pairs(config.run_dir) == undisturbed,
                "pairs": len(undisturbed),
                "dpo_steps": dpo["steps"],
                "dpo_worker_nodes": nodes,
                "cluster_nodes": len(ray.nodes()),
            }
        )
    )


if __name__ == "__main__":
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    main(Path(sys.argv[1]), int(sys.argv[2]))
