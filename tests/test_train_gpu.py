"""DPO on CUDA (skipped on CPU machines): bf16 autocast over fp32 weights, vision tower frozen."""

import math

import pytest
import torch

from .test_train import _pairs

pytestmark = pytest.mark.gpu


def test_dpo_trains_on_cuda_in_bf16(toy_models, tmp_path):
    from safetensors.torch import load_file

    from rlaifv_ray.config import TrainConfig
    from rlaifv_ray.train.dpo import build_trainer, dpo_args, load_policy, pair_examples

    path = str(toy_models / "policy")
    model, processor = load_policy(path)
    args = dpo_args(TrainConfig(use_gpu=True, batch_size=4, epochs=3, lr=1e-4), str(tmp_path / "out"))
    assert args.bf16 and not args.use_cpu
    trainer = build_trainer(model, processor, pair_examples(_pairs(path), max_pixels=1 << 20), args)
    trainer.train()
    assert next(model.parameters()).device.type == "cuda"
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
    before = load_file(f"{path}/model.safetensors")
    after = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
    vision = [k for k in after if "vision_tower" in k]
    language = [k for k in after if "language_model" in k]
    assert vision and language
    # state_dict keys may be prefixed differently from the file's; compare by suffix
    by_suffix = {k.split("vision_tower.", 1)[-1]: v for k, v in before.items() if "vision_tower" in k}
    assert all(torch.equal(after[k], by_suffix[k.split("vision_tower.", 1)[-1]]) for k in vision)
    moved = sum(not torch.equal(after[k], before.get(k, after[k] + 1)) for k in language)
    assert moved >= len(language) // 2
