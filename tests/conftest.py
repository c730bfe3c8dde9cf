import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PRETRAINED = REPO / "rlaifv_ray" / "toyworld" / "pretrained"

os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # tests only; the product keeps Ray's default
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may reach a model hub in tests
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(config, items):
    import importlib.util

    has_cuda = False
    if importlib.util.find_spec("torch"):
        import torch

        has_cuda = torch.cuda.is_available()
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def toy_models() -> Path:
    """The committed ShapesWorld models (built by `rlaifv-ray toy build`)."""
    if not (PRETRAINED / "policy" / "config.json").exists():
        pytest.fail(f"committed toy models missing under {PRETRAINED}")
    return PRETRAINED


@pytest.fixture(scope="session")
def torch_threads():
    import torch

    torch.set_num_threads(2)
