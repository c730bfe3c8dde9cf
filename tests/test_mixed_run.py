"""One RLAIF-V iteration through the CLI with three different model families, as a user mixes them:
a Qwen2.5-VL policy, a LLaVA-NeXT labeler and a Llama-3-format claim LLM (no pad token, BOS added
by both its template and its tokenizer, two eos ids). The policy and claim LLM are zoo models taught
ShapesWorld briefly (so answers name objects and claims parse); the labeler is random-init."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from tests import zoo
from tests.test_readme import ENV

CLI = Path(sys.executable).parent / "rlaifv-ray"


def test_mixed_families_run_one_iteration_with_reference_logps_equal_to_trls(tmp_path):
    models = {
        "policy": ("qwen2_5_vl", "captions", 80),
        "labeler": ("llava_next", None, 0),
        "claim_llm": ("llama3", "claims", 200),
    }
    for role, (family, task, steps) in models.items():
        zoo.build(family, tmp_path / role)
        if task:
            zoo.train(tmp_path / role, task, steps)
    config = {
        "run_dir": str(tmp_path / "run"),
        "iterations": 1,
        "models": {role: {"path": str(tmp_path / role)} for role in models},
        "claim_extraction": {"prompts": "shapesworld", "max_new_tokens": 64},
        "data": {"input": "toy:8"},
        "sampling": {"n": 4, "max_new_tokens": 32},
        "pairs": {"length_balance": False},
        # lr ~ 0: the policy stays its own reference, so every DPO loss is ln 2 exactly when the
        # stored reference log-probs cover the tokens TRL trains on (here: Qwen's M-RoPE inputs;
        # test_families checks each family, BOS-adding ones included)
        "train": {"lr": 1e-12, "batch_size": 8, "checkpoint_steps": 100},
        "eval": {"toy_heldout": 0},
        "resources": {
            k: {"concurrency": [1, 1], "batch_size": 8, "num_cpus": 0.5}
            for k in ("sample", "claims", "label", "reference")
        },
    }
    path = tmp_path / "mixed.yaml"
    path.write_text(yaml.safe_dump(config))
    out = subprocess.run([str(CLI), "run", str(path)], capture_output=True, text=True, env=ENV, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]

    run = tmp_path / "run" / "iter_000"
    pairs = pq.read_table(run / "pairs").to_pylist()
    assert pairs, "no preference pairs"
    assert all(math.isfinite(p["ref_chosen_logp"]) and math.isfinite(p["ref_rejected_logp"]) for p in pairs)
    claims = pq.read_table(run / "claims").to_pylist()
    assert sum(not c["claim_error"] for c in claims) >= len(claims) // 2  # the claim LLM's lists parse
    log = json.loads((run / "train_log.json").read_text())
    losses = [s["loss"] for s in log["steps"] if "loss" in s]
    assert losses and all(abs(x - math.log(2)) < 1e-4 for x in losses), losses
