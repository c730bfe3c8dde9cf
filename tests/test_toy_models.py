"""The committed ShapesWorld models meet the bars the rest of the project relies on."""

import json

import pytest

from tests.bars import failures, measure


@pytest.fixture(scope="module")
def committed_metrics(toy_models, torch_threads):
    return measure(toy_models)


def test_committed_models_meet_the_bars(committed_metrics):
    print(json.dumps(committed_metrics, indent=2))
    assert not failures(committed_metrics), json.dumps(committed_metrics, indent=2)


def test_committed_models_are_small_hf_folders(toy_models):
    for role in ("policy", "labeler", "claim_llm"):
        weights = toy_models / role / "model.safetensors"
        assert weights.exists() and weights.stat().st_size < 5 * 1024 * 1024
        assert (toy_models / role / "tokenizer.json").exists()
    assert (toy_models / "policy" / "processor_config.json").exists()
