"""DPO on CUDA (skipped on CPU machines): bf16 autocast over fp32 weights, vision tower frozen."""

import math

import pytest
import torch

from tests.test_train import _pairs, _with_images

pytestmark = pytest.mark.gpu


def test_dpo_trains_on_cuda_in_bf16(toy_models, tmp_path):
    """bf16 autocast over fp32 weights on the GPU: the vision tower stays as it was, the language
    side moves (compared parameter by parameter with the same model before training)."""
    from rlaifv_ray.config import TrainConfig
    from rlaifv_ray.train.dpo import build_trainer, dpo_args, load_policy, pair_examples

    path = str(toy_models / "policy")
    model, processor = load_policy(path)
    args = dpo_args(TrainConfig(use_gpu=True, batch_size=4, epochs=3, lr=1e-4), str(tmp_path / "out"))
    assert args.bf16 and not args.use_cpu
    trainer = build_trainer(model, processor, pair_examples(*_with_images(_pairs(path))), args)
    before = {k: v.detach().clone().cpu() for k, v in model.state_dict().items()}
    trainer.train()
    assert next(model.parameters()).device.type == "cuda"
    assert next(model.parameters()).dtype == torch.float32  # master weights stay fp32 under bf16 autocast
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
    after = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    assert after.keys() == before.keys()
    vision = [k for k in after if "vision_tower" in k]
    language = [k for k in after if "language_model" in k]
    assert vision and language
    assert all(torch.equal(after[k], before[k]) for k in vision)
    moved = sum(not torch.equal(after[k], before[k]) for k in language)
    assert moved >= len(language) // 2, f"{moved} of {len(language)} language parameters changed"
