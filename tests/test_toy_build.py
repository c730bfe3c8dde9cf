"""`rlaifv-ray toy build`: a smoke build (every builder end to end, each model learns, ~90 s) and the
full rebuild from seed 0 against the quality bars (about 16 minutes), both in `make test-slow`."""

import json
import subprocess
import sys

import pytest

from tests.bars import failures, measure


def _build(out, *extra, timeout):
    return subprocess.run(
        [sys.executable, "-m", "rlaifv_ray.cli", "toy", "build", "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _heldout_loss(model, processor, examples) -> float:
    import torch

    from rlaifv_ray.toyworld.sft import encode_examples, per_example_loss

    batch = encode_examples(examples, processor)
    labels = batch.pop("labels")
    with torch.no_grad():
        return float(per_example_loss(model(**batch).logits, labels))


@pytest.mark.slow  # ~90 s: `make test-slow`, with the full rebuild, after any change to toyworld/ builders
def test_smoke_build_runs_every_builder_and_each_model_learns(tmp_path, torch_threads):
    """The same build code at a twentieth of the steps: each saved model has a held-out loss far below
    the same architecture at random initialisation, and the vision tower beats 'nothing present'."""
    import torch
    import transformers

    from rlaifv_ray.toyworld import examples
    from rlaifv_ray.toyworld.world import OBJECTS, scene_and_image

    out = tmp_path / "toy"
    proc = _build(out, "--seed", "0", "--scale", "0.05", timeout=15 * 60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads(proc.stdout)
    assert "toy build: policy" in proc.stderr  # progress was shown
    assert manifest["plan"]["policy_steps"] == 75 and manifest["policy"]["steps"] == 75

    # a tower that saw nothing would answer 'absent' for every kind; its per-object accuracy on the
    # images the build measures the tower on (seed + 1)
    scenes = [scene_and_image(1, i)[0] for i in range(1000)]
    all_absent = 1 - sum(len(s.kinds) for s in scenes) / (len(OBJECTS) * len(scenes))
    assert manifest["vision_tower"]["per_object"] > all_absent + 0.01, (manifest["vision_tower"], all_absent)

    heldout = range(examples.HELDOUT_OFFSET, examples.HELDOUT_OFFSET + 16)
    examples = {
        "policy": [examples.caption_example(0, i, 0.0) for i in heldout],
        "labeler": [e for i in heldout for e in examples.qa_examples(0, i, 2)],
        "claim_llm": [e for i in heldout for e in examples.claim_examples(0, i)],
    }
    losses = {}
    for role, exs in examples.items():
        auto = transformers.AutoModelForCausalLM if role == "claim_llm" else transformers.AutoModelForImageTextToText
        processor = (transformers.AutoTokenizer if role == "claim_llm" else transformers.AutoProcessor).from_pretrained(
            out / role
        )
        built = auto.from_pretrained(out / role).eval()
        torch.manual_seed(0)
        fresh = auto.from_config(built.config).eval()
        losses[role] = (_heldout_loss(built, processor, exs), _heldout_loss(fresh, processor, exs))
    print(json.dumps({"manifest": manifest, "heldout_loss_built_vs_random": losses}, indent=2))
    for role, (built_loss, random_loss) in losses.items():
        assert built_loss < 0.5 * random_loss, (role, losses)

    again = _build(out, timeout=300)  # everything in place: trains nothing
    assert again.returncode == 0 and "nothing to do" in again.stderr


@pytest.mark.slow  # ~16 min on 2 cores: `make test-slow`, after any change to toyworld/ or the torch pin
def test_toy_build_reproduces_models_that_meet_the_bars(tmp_path):
    out = tmp_path / "toy"
    proc = _build(out, "--seed", "0", timeout=40 * 60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads(proc.stdout)
    assert "toy build: policy" in proc.stderr  # progress was shown
    assert manifest["vision_tower"]["per_object"] > 0.99
    metrics = measure(out)
    print(json.dumps({"manifest": manifest, "metrics": metrics}, indent=2))
    assert not failures(metrics), json.dumps(metrics, indent=2)
