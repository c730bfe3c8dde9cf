"""One RLAIF-V feedback iteration through the CLI with three different model families, as a user
mixes them today: a Qwen3.5 policy (hybrid linear-attention decoder, M-RoPE, a template that opens
a reasoning block), a Gemma 3 labeler (one image list per prompt, BOS written twice) and a Qwen3
claim LLM in non-thinking mode (`chat_template_kwargs`). The policy and claim LLM are zoo models
taught ShapesWorld briefly (so answers name objects and claims parse); the labeler is random-init.
No stage may run a batch row by row (the engines' silent fallback before). The pairs' reference
log-probs, computed by the pipeline's reference stage in a Ray actor, are checked against TRL's loss
at step 0 of DPO on those pairs (Ray Train's part of DPO is family-blind: test_train, test_s3 and
test_pairs_io run it end to end; tests/test_families.py checks every family at the engine level)."""

import json
import math

import pyarrow.parquet as pq
import torch
import yaml

from rlaifv_ray import schema as S
from rlaifv_ray.cli import main
from tests import zoo


def _dpo_step0_losses(policy: str, run_dir: str, out_dir: str) -> list[float]:
    """TRL's DPO loss on each batch of the run's pairs before any step, read and collated as a Ray
    Train worker does (train/launch.py): ln 2 exactly when the stored reference log-probs are the
    policy's own on the tokens TRL trains on (here: Qwen's M-RoPE inputs after a closed think block)."""
    from rlaifv_ray.config import TrainConfig
    from rlaifv_ray.storage.images import fetch_images
    from rlaifv_ray.storage.store import RunStore
    from rlaifv_ray.train.dpo import build_trainer, dpo_args, load_policy, pair_examples

    store = RunStore(run_dir)
    pairs = store.read_table("iter_000/pairs", S.schema("pairs")).to_pydict()
    examples = pair_examples(pairs, fetch_images(store, "iter_000", pairs[S.IMAGE_ID]))
    model, processor = load_policy(policy)
    trainer = build_trainer(model, processor, examples, dpo_args(TrainConfig(beta=0.1, batch_size=8), out_dir))
    with torch.no_grad():
        return [
            trainer.compute_loss(trainer.model, trainer.data_collator(examples[i : i + 8])).item()
            for i in range(0, len(examples), 8)
        ]


def test_mixed_families_collect_feedback_whose_reference_logps_equal_trls(tmp_path, ray_local, torch_threads, capsys):
    models = {
        "policy": ("qwen3_5", "captions", 80),
        "labeler": ("gemma3", None, 0),
        "claim_llm": ("qwen3", "claims", 200),
    }
    for role, (family, task, steps) in models.items():
        zoo.build(family, tmp_path / role)
        if task:
            zoo.train(tmp_path / role, task, steps)
    config = {
        "run_dir": str(tmp_path / "run"),
        "models": {role: {"path": str(tmp_path / role)} for role in models},
        "claim_extraction": {"prompts": "shapesworld", "max_new_tokens": 64},
        "sampling": {"n": 4, "max_new_tokens": 32},
        "pairs": {"length_balance": False},
        "resources": {
            k: {"concurrency": [1, 1], "batch_size": 8, "num_cpus": 0.5}
            for k in ("sample", "claims", "label", "reference")
        },
    }
    config["models"]["claim_llm"]["chat_template_kwargs"] = {"enable_thinking": False}
    path = tmp_path / "mixed.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["feedback", str(path), "--toy", "8"]) == 0
    metrics = json.loads(capsys.readouterr().out)

    run = tmp_path / "run" / "iter_000"
    pairs = pq.read_table(run / "pairs").to_pylist()
    assert pairs and metrics["rows"]["pairs"] == len(pairs), metrics
    assert metrics["batches_retried_row_by_row"] == {}, metrics["batches_retried_row_by_row"]
    assert all(math.isfinite(p["ref_chosen_logp"]) and math.isfinite(p["ref_rejected_logp"]) for p in pairs)
    claims = pq.read_table(run / "claims").to_pylist()
    assert sum(not c["claim_error"] for c in claims) >= len(claims) // 2  # the claim LLM's lists parse
    losses = _dpo_step0_losses(str(tmp_path / "policy"), str(tmp_path / "run"), str(tmp_path / "dpo"))
    assert losses and all(abs(x - math.log(2)) < 1e-4 for x in losses), losses
