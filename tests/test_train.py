"""DPO with stored reference log-probs: equal to TRL's live-reference loss; training on Ray Train."""

import copy

import pytest
import torch

from rlaifv_ray import schema as S
from rlaifv_ray.config import TrainConfig
from rlaifv_ray.engines import LogprobRequest, load_engine
from rlaifv_ray.engines.base import user_message
from rlaifv_ray.toyworld.world import png_bytes, scene_and_image

ANSWERS = [
    ("There is a red circle.", "There is a red circle. There is a blue square."),
    ("There is a green triangle and a yellow square.", "There is a green triangle."),
    ("There is a blue circle.", "A yellow There is a blue circle."),
    ("There is a yellow square.", "There is a red triangle and a yellow square."),
]


def _pairs(policy_path: str) -> dict[str, list]:
    """Four pairs with reference log-probs computed by the pipeline's engine (the reference model)."""
    engine = load_engine(policy_path)
    cols = {k: [] for k in (S.PROMPT_ID, S.IMAGE, S.INSTRUCTION, S.CHOSEN, S.REJECTED, S.REF_CHOSEN_LOGP,
                            S.REF_REJECTED_LOGP)}
    for i, (chosen, rejected) in enumerate(ANSWERS):
        image = scene_and_image(5, i)[1]
        msgs = user_message("Describe the image.", True)
        ref = engine.sequence_logprobs([LogprobRequest(msgs, chosen, image), LogprobRequest(msgs, rejected, image)])
        for k, v in ((S.PROMPT_ID, f"p{i}"), (S.IMAGE, png_bytes(image)), (S.INSTRUCTION, "Describe the image."),
                     (S.CHOSEN, chosen), (S.REJECTED, rejected), (S.REF_CHOSEN_LOGP, ref[0].total),
                     (S.REF_REJECTED_LOGP, ref[1].total)):
            cols[k].append(v)
    return cols


def test_precomputed_reference_loss_equals_trl_live_reference(toy_models, torch_threads, tmp_path):
    from trl import DPOTrainer

    from rlaifv_ray.train.dpo import build_trainer, dpo_args, load_policy, pair_examples

    path = str(toy_models / "policy")
    examples = pair_examples(_pairs(path), max_pixels=1 << 20)
    reference, processor = load_policy(path)
    policy = copy.deepcopy(reference)
    with torch.no_grad():  # move the policy away from its reference so the loss is not log 2
        gen = torch.Generator().manual_seed(0)
        for p in policy.model.language_model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.02)
    args = dpo_args(TrainConfig(beta=0.1, batch_size=4), str(tmp_path / "out"))

    ours = build_trainer(policy, processor, examples, args)
    assert ours.ref_model is None  # no reference model held in training memory
    batch = ours.data_collator(copy.deepcopy(examples))
    assert set(batch) >= {"ref_chosen_logps", "ref_rejected_logps", "pixel_values", "completion_mask"}

    import datasets

    live = DPOTrainer(model=policy, ref_model=reference, args=args, processing_class=processor,
                      train_dataset=datasets.Dataset.from_list(
                          [{k: v for k, v in e.items() if not k.startswith("ref_")} for e in examples]))
    live_batch = live.data_collator([{k: v for k, v in e.items() if not k.startswith("ref_")}
                                     for e in copy.deepcopy(examples)])
    assert torch.equal(live_batch["input_ids"], batch["input_ids"])
    with torch.no_grad():
        loss_ours = ours.compute_loss(policy, batch).item()
        loss_live = live.compute_loss(policy, live_batch).item()
    assert abs(loss_ours - 0.6931) > 1e-3, "policy and reference should differ in this test"
    assert loss_ours == pytest.approx(loss_live, abs=1e-4)


def test_dpo_on_two_ray_train_workers_updates_the_language_side_only(toy_models, ray_local, tmp_path):
    import json

    import pyarrow as pa
    from safetensors.torch import load_file

    from rlaifv_ray.config import validate_config
    from rlaifv_ray.pipeline.store import RunStore
    from rlaifv_ray.train.launch import train_dpo

    from .conftest import toy_config

    config = validate_config(toy_config(tmp_path, toy_models, **{
        "train.workers": 2, "train.batch_size": 4, "train.epochs": 2, "train.lr": 1e-4, "train.checkpoint_steps": 1}))
    policy = str(toy_models / "policy")
    store = RunStore(config.run_dir)
    cols = _pairs(policy)
    cols.update({S.TRUTH: [[]] * 4, S.CHOSEN_ID: [f"c{i}" for i in range(4)],
                 S.REJECTED_ID: [f"r{i}" for i in range(4)], S.CHOSEN_SCORE: [0] * 4, S.REJECTED_SCORE: [-1] * 4})
    store.write_part("iter_000/pairs", pa.table(cols, schema=S.schema("pairs")), cols[S.PROMPT_ID])

    logs = []
    result = train_dpo(config, 0, policy, log=logs.append)
    assert result["steps"] == 2 and result["loss_first"] is not None
    before = load_file(toy_models / "policy" / "model.safetensors")
    after = load_file(tmp_path / "run" / "iter_000" / "checkpoint" / "model.safetensors")
    assert set(before) == set(after)
    vision = [k for k in before if "vision_tower" in k]
    assert vision and all(torch.equal(before[k], after[k]) for k in vision)
    unchanged = [k for k in before if k not in vision and torch.equal(before[k], after[k])]
    assert not unchanged, f"trainable parameters that did not move: {unchanged}"
    steps = json.loads((tmp_path / "run" / "iter_000" / "train_log.json").read_text())["steps"]
    assert [s["step"] for s in steps] == [1, 2] and all(s["loss"] > 0 for s in steps)
    # the new policy loads through the standard HF path, processor included
    engine = load_engine(str(tmp_path / "run" / "iter_000" / "checkpoint"))
    assert engine.multimodal
    # a rerun finds the finished checkpoint and trains nothing
    assert train_dpo(config, 0, policy, log=logs.append)["checkpoint"] == result["checkpoint"]
    assert "finished earlier, skipped" in logs[-1]


def test_resumed_training_continues_from_the_checkpoints_weights(toy_models, torch_threads, tmp_path):
    """Resuming from a mid-run checkpoint logs the undisturbed run's losses. (Trainer's own loader
    matched none of a multimodal checkpoint's keys and silently kept the starting weights.)"""
    from transformers import TrainerCallback

    from rlaifv_ray.train.dpo import build_trainer, dpo_args, load_policy, pair_examples

    path = str(toy_models / "policy")
    examples = pair_examples(_pairs(path), max_pixels=1 << 20)
    args = dpo_args(TrainConfig(batch_size=1, epochs=1, lr=1e-4, checkpoint_steps=2), str(tmp_path / "out"))

    def losses(resume=None):
        logged = []

        class Log(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):
                if logs and "loss" in logs:
                    logged.append((state.global_step, logs["loss"]))

        model, processor = load_policy(path)
        build_trainer(model, processor, examples, args, callbacks=[Log()]).train(resume_from_checkpoint=resume)
        return logged

    undisturbed = losses()
    assert [s for s, _ in undisturbed] == [1, 2, 3, 4]
    resumed = losses(str(tmp_path / "out" / "checkpoint-2"))
    assert [s for s, _ in resumed] == [3, 4]
    for (_, a), (_, b) in zip(resumed, undisturbed[2:]):
        assert abs(a - b) < 1e-5, (resumed, undisturbed)
