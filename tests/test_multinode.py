"""Several raylets on this machine (ray.cluster_utils.Cluster, 3 nodes x 1 CPU): the labeler pool
grows past its minimum under a backlog and every row comes out; DPO runs with its two workers on
two raylets. Runs tests/multinode_run.py in its own process (its own Ray cluster, not the session's)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.cluster  # make test-cluster


def test_elastic_labelers_and_dpo_across_raylets(tmp_path):
    script = Path(__file__).with_name("multinode_run.py")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(script.parents[1])}
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path), "128"], capture_output=True, text=True, env=env, timeout=900
    )
    assert out.returncode == 0, out.stderr[-4000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps(result))  # the pool over time, for the record (pytest -s)
    pool = result["label_pool_per_second"]
    assert pool[0] == 1 and max(pool) >= 2, f"the labeler pool never grew past its minimum: {pool}"
    assert result["label_actors"] >= 2
    assert result["labels"] == result["candidates"] == 128 * 4  # all rows out
    assert result["pairs_equal"], "the relabelled run must give the undisturbed run's pairs"
    assert result["cluster_nodes"] == 4
    assert result["dpo_steps"] > 0 and len(set(result["dpo_worker_nodes"])) == 2
