"""DPO with stored reference log-probs: equal to TRL's live-reference loss; training on Ray Train."""

import copy
import math
import os
from pathlib import Path

import pytest
import torch

from rlaifv_ray import schema as S
from rlaifv_ray.config import TrainConfig
from rlaifv_ray.engines import LogprobRequest, load_engine
from rlaifv_ray.engines.base import user_message
from rlaifv_ray.toyworld.world import png_bytes, scene_and_image
from tests.conftest import TRL_STEP_METRICS

ANSWERS = [
    ("There is a red circle.", "There is a red circle. There is a blue square."),
    ("There is a green triangle and a yellow square.", "There is a green triangle."),
    ("There is a blue circle.", "A yellow There is a blue circle."),
    ("There is a yellow square.", "There is a red triangle and a yellow square."),
]


def _pairs(policy_path: str) -> dict[str, list]:
    """Four pairs with reference log-probs computed by the pipeline's engine (the reference model)."""
    engine = load_engine(policy_path)
    cols = {
        k: []
        for k in (S.PROMPT_ID, S.IMAGE, S.INSTRUCTION, S.CHOSEN, S.REJECTED, S.REF_CHOSEN_LOGP, S.REF_REJECTED_LOGP)
    }
    for i, (chosen, rejected) in enumerate(ANSWERS):
        image = scene_and_image(5, i)[1]
        msgs = user_message("Describe the image.", True)
        ref = engine.sequence_logprobs([LogprobRequest(msgs, chosen, image), LogprobRequest(msgs, rejected, image)])
        for k, v in (
            (S.PROMPT_ID, f"p{i}"),
            (S.IMAGE, png_bytes(image)),
            (S.INSTRUCTION, "Describe the image."),
            (S.CHOSEN, chosen),
            (S.REJECTED, rejected),
            (S.REF_CHOSEN_LOGP, ref[0].total),
            (S.REF_REJECTED_LOGP, ref[1].total),
        ):
            cols[k].append(v)
    return cols


def _with_images(cols: dict[str, list]) -> tuple[dict, list]:
    return cols, cols[S.IMAGE]


def _for_trl(examples: list[dict]) -> list[dict]:
    """Our examples as TRL's own trainer takes them: no stored reference, images decoded (our
    collator decodes the encoded bytes itself, per batch)."""
    from rlaifv_ray.media import load_image

    return [
        {**{k: v for k, v in e.items() if not k.startswith("ref_")}, "images": [load_image(b) for b in e["images"]]}
        for e in examples
    ]


def _write_pairs(run_dir: str, cols: dict[str, list]) -> None:
    """COLS as iteration 0's pairs stage would have written them (images stored by id)."""
    import pyarrow as pa

    from rlaifv_ray.storage.images import put_images
    from rlaifv_ray.storage.store import RunStore

    store = RunStore(run_dir)
    n = len(cols[S.PROMPT_ID])
    stored = {
        **cols,
        S.IMAGE_ID: put_images(store, "iter_000", cols[S.IMAGE]),
        S.TRUTH: [[]] * n,
        S.CHOSEN_ID: cols.get(S.CHOSEN_ID) or [f"c{i}" for i in range(n)],
        S.REJECTED_ID: [f"r{i}" for i in range(n)],
        S.CHOSEN_SCORE: [0] * n,
        S.REJECTED_SCORE: [-1] * n,
    }
    schema = S.schema("pairs")
    store.write_part(
        "iter_000/pairs",
        pa.table({f.name: stored.get(f.name, [None] * n) for f in schema}, schema=schema),
        cols[S.PROMPT_ID],
    )


def test_precomputed_reference_loss_equals_trl_live_reference(toy_models, torch_threads, tmp_path):
    from trl import DPOTrainer

    from rlaifv_ray.train.dpo import build_trainer, dpo_args, load_policy, pair_examples

    path = str(toy_models / "policy")
    examples = pair_examples(*_with_images(_pairs(path)))
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

    live = DPOTrainer(
        model=policy,
        ref_model=reference,
        args=args,
        processing_class=processor,
        train_dataset=datasets.Dataset.from_list(_for_trl(examples)),
    )
    live_batch = live.data_collator(_for_trl(examples))
    assert torch.equal(live_batch["input_ids"], batch["input_ids"])
    with torch.no_grad():
        loss_ours = ours.compute_loss(policy, batch).item()
        loss_live = live.compute_loss(policy, live_batch).item()
    assert abs(loss_ours - 0.6931) > 1e-3, "policy and reference should differ in this test"
    assert loss_ours == pytest.approx(loss_live, abs=1e-4)


def test_sft_weight_adds_the_chosen_answers_mean_token_nll_to_the_dpo_loss(toy_models, torch_threads, tmp_path):
    """train.sft_weight w: loss = DPO + w x the mean negative log-likelihood of the chosen answers'
    tokens, that mean computed here by the inference engine (tokens TRL trains on: test_families)."""
    from rlaifv_ray.train.dpo import build_trainer, dpo_args, load_policy, pair_examples

    path = str(toy_models / "policy")
    cols = _pairs(path)
    examples = pair_examples(*_with_images(cols))
    engine = load_engine(path)
    msgs = user_message("Describe the image.", True)
    chosen = engine.sequence_logprobs(
        [LogprobRequest(msgs, c, scene_and_image(5, i)[1]) for i, c in enumerate(cols[S.CHOSEN])]
    )
    nll = -sum(sum(x.tokens) for x in chosen) / sum(len(x.tokens) for x in chosen)
    losses = {}
    for w in (0.0, 0.5):
        args = dpo_args(TrainConfig(beta=0.1, batch_size=4, sft_weight=w), str(tmp_path / f"out{w}"))
        trainer = build_trainer(load_policy(path)[0], load_policy(path)[1], copy.deepcopy(examples), args)
        with torch.no_grad():
            losses[w] = trainer.compute_loss(trainer.model, trainer.data_collator(copy.deepcopy(examples))).item()
    assert losses[0.0] == pytest.approx(math.log(2), abs=1e-4)  # the policy is its own reference
    assert losses[0.5] - losses[0.0] == pytest.approx(0.5 * nll, rel=1e-3) and nll > 0.1


def test_new_train_fields_at_their_defaults_keep_a_runs_resume_key():
    """A run made before train.loss_type, sft_weight, heldout_pairs, token_weight, image_preference
    and anchor existed resumes as finished; setting any is a new DPO."""
    from rlaifv_ray.train.launch import _key_settings

    # the train settings in the resume key of a run made before those fields: written out here, not
    # taken from TrainConfig, so that a field added later without a key-keeping default fails
    before = {
        "beta": 0.1,
        "lr": 5e-05,
        "epochs": 1,
        "batch_size": 8,
        "warmup_ratio": 0.05,
        "workers": 1,
        "use_gpu": False,
        "gpu_memory_gb": None,
        "num_cpus_per_worker": 1.0,
        "checkpoint_steps": 10,
        "max_failures": 2,
        "strategy": "ddp",
        "lora": None,
        "gradient_checkpointing": False,
        "report_to": [],
    }
    assert _key_settings(TrainConfig()) == before
    assert _key_settings(TrainConfig(sft_weight=0.1))["sft_weight"] == 0.1
    assert _key_settings(TrainConfig(loss_type="ipo"))["loss_type"] == "ipo"
    assert _key_settings(TrainConfig(heldout_pairs=16))["heldout_pairs"] == 16
    assert _key_settings(TrainConfig(token_weight={"edited": 2}))["token_weight"] == {"edited": 2.0}
    assert _key_settings(TrainConfig(anchor=True))["anchor"] is True


def test_lora_dpo_on_two_ray_train_workers_under_ddp_and_on_a_sharded_base(toy_models, ray_local, tmp_path, caplog):
    """Ray Train, 2 workers, LoRA under ddp (TRL's trainer) and on an FSDP-sharded base: only the
    adapted layers of the language model move; the checkpoint is the merged model with the adapter
    beside it, and scores as the base with that adapter applied; step 1 is ln 2 (LoRA's B starts at
    zero). On the sharded base each rank holds half of the frozen weights, and the per-step losses
    equal ddp's on the same pairs (a global batch of all 4: the data order cannot differ). ddp also
    writes tensorboard logs. Each run keeps one checkpoint in the run dir and leaves nothing in /tmp.
    (Full fine-tuning through Ray Train: test_s3, test_pairs_io, test_driver; full fsdp, against the
    same loop in one process: test_faults.)"""
    import glob
    import json
    import math
    import tempfile

    from peft import PeftModel
    from safetensors.torch import load_file

    from rlaifv_ray.config import validate_config
    from rlaifv_ray.train.dpo import PrecomputedRefCollator, load_policy, pair_examples
    from rlaifv_ray.train.launch import train_dpo
    from tests.conftest import toy_config

    policy = str(toy_models / "policy")
    cols = _pairs(policy)
    batch = PrecomputedRefCollator(processor=load_policy(policy)[1])(pair_examples(*_with_images(cols)))
    before = load_file(toy_models / "policy" / "model.safetensors")
    adapted = [k for k in before if "language_model" in k and k.endswith(("q_proj.weight", "v_proj.weight"))]
    lora = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    losses, signals = {}, {}
    temp_before = set(glob.glob(os.path.join(tempfile.gettempdir(), "rlaifv-dpo-*")))
    for strategy in ("ddp", "fsdp"):
        config = validate_config(
            toy_config(
                tmp_path / strategy,
                toy_models,
                **{
                    "train.workers": 2,
                    "train.batch_size": 4,
                    "train.epochs": 3,
                    "train.lr": 5e-3,
                    "train.checkpoint_steps": 1,
                    "train.lora": lora,
                    "train.strategy": strategy,
                    "train.report_to": ["tensorboard"],
                },
            )
        )
        _write_pairs(config.run_dir, cols)
        result = train_dpo(config, 0, policy)
        iteration = Path(config.run_dir) / "iter_000"
        train_log = json.loads((iteration / "train_log.json").read_text())
        losses[strategy] = [s["loss"] for s in train_log["steps"]]
        assert len(list((iteration / "dpo").glob("checkpoint_20*"))) == 1  # of one per step
        assert set(glob.glob(os.path.join(tempfile.gettempdir(), "rlaifv-dpo-*"))) <= temp_before
        assert result["steps"] == 3 and [s["step"] for s in train_log["steps"]] == [1, 2, 3]
        # every strategy logs TRL's step metrics under TRL's names (the trackers read them from here)
        assert all(set(TRL_STEP_METRICS) <= set(s) for s in train_log["steps"]), train_log["steps"][0]
        signals[strategy] = train_log["signals"]
        assert result["kl_ref_policy"] == signals[strategy]["kl_ref_policy"] and "heldout_margin" not in result
        assert losses[strategy][0] == pytest.approx(math.log(2), abs=1e-4)
        assert abs(losses[strategy][2] - math.log(2)) > 1e-3  # it learned: the comparisons are not of constants
        after = load_file(iteration / "checkpoint" / "model.safetensors")
        assert set(before) == set(after) and all(not torch.equal(before[k], after[k]) for k in adapted)
        assert all(torch.equal(before[k], after[k]) for k in before if k not in adapted)  # vision tower included
        merged = _completion_logps(load_policy(str(iteration / "checkpoint"))[0], batch)
        with_adapter = PeftModel.from_pretrained(load_policy(policy)[0], str(iteration / "checkpoint" / "adapter"))
        assert torch.allclose(merged, _completion_logps(with_adapter, batch), atol=1e-4)
        assert load_engine(str(iteration / "checkpoint")).multimodal  # the next iteration's policy loads
        # a rerun finds the finished checkpoint and trains nothing
        caplog.clear()
        assert train_dpo(config, 0, policy)["checkpoint"] == result["checkpoint"]
        assert "finished earlier, skipped" in caplog.messages[-1]
    assert list((tmp_path / "ddp" / "run" / "iter_000" / "tensorboard").rglob("events.out.tfevents*"))
    assert train_log["fsdp_frozen_share_per_rank"] == pytest.approx([0.5, 0.5], abs=0.05)
    assert losses["fsdp"] == pytest.approx(losses["ddp"], abs=1e-4)
    # the KL probe: the same trained adapters, the same pairs, the same estimate
    assert signals["fsdp"]["kl_ref_policy"] == pytest.approx(signals["ddp"]["kl_ref_policy"], abs=1e-3)
    assert signals["ddp"]["probe_pairs"] == len(cols[S.PROMPT_ID])


def test_resumed_training_continues_from_the_checkpoints_weights(toy_models, torch_threads, tmp_path):
    """Resuming from a mid-run checkpoint logs the undisturbed run's losses. (Trainer's own loader
    matched none of a multimodal checkpoint's keys and silently kept the starting weights.)"""
    from transformers import TrainerCallback

    from rlaifv_ray.train.dpo import build_trainer, dpo_args, load_policy, pair_examples

    path = str(toy_models / "policy")
    examples = pair_examples(*_with_images(_pairs(path)))
    args = dpo_args(TrainConfig(batch_size=1, epochs=1, lr=1e-4, checkpoint_steps=2), str(tmp_path / "out"))
    args.save_total_limit = None  # keep checkpoint-2 to resume from

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


def _completion_logps(model, batch) -> torch.Tensor:
    """Summed log-probs of each row's completion tokens (as DPO scores them)."""
    inputs = {k: v for k, v in batch.items() if k not in ("completion_mask",) and not k.startswith("ref_")}
    with torch.no_grad():
        logits = model(**inputs).logits[:, :-1].float()
    logp = torch.log_softmax(logits, -1).gather(-1, batch["input_ids"][:, 1:, None])[..., 0]
    return (logp * batch["completion_mask"][:, 1:]).sum(1)


def test_lora_trains_only_adapters_and_the_merged_policy_scores_as_the_adapted_one(toy_models, torch_threads, tmp_path):
    from rlaifv_ray.config import LoraConfig
    from rlaifv_ray.train.dpo import build_trainer, dpo_args, load_policy, pair_examples, save_policy

    path = str(toy_models / "policy")
    examples = pair_examples(*_with_images(_pairs(path)))
    train = TrainConfig(batch_size=2, lr=5e-3, checkpoint_steps=100, lora=LoraConfig(r=4, alpha=8, dropout=0.0))
    model, processor = load_policy(path)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = build_trainer(model, processor, examples, dpo_args(train, str(tmp_path / "out")), lora=train.lora)
    trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert not any("vision_tower" in n for n in trainable)  # no adapters in the vision encoder
    batch = trainer.data_collator(copy.deepcopy(examples))
    with torch.no_grad():  # LoRA's B starts at zero: the adapted policy is its own reference
        assert trainer.compute_loss(trainer.model, batch).item() == pytest.approx(0.693147, abs=1e-4)
    trainer.train()
    base = trainer.model.get_base_model().state_dict()
    frozen = {k.replace(".base_layer", ""): v for k, v in base.items() if "lora_" not in k}
    assert set(frozen) == set(before) and all(torch.equal(frozen[k], before[k]) for k in before)
    adapted = _completion_logps(trainer.model, batch)
    assert not torch.allclose(adapted, _completion_logps(load_policy(path)[0], batch), atol=1e-3)  # it learned

    save_policy(trainer, processor, str(tmp_path / "final"))
    assert (tmp_path / "final" / "adapter" / "adapter_model.safetensors").exists()
    merged, _ = load_policy(str(tmp_path / "final"))
    assert torch.allclose(_completion_logps(merged, batch), adapted, atol=1e-4)
    assert load_engine(str(tmp_path / "final")).multimodal  # the next iteration's policy loads in the engine


def test_lora_run_resumes_from_its_adapter_checkpoint(toy_models, torch_threads, tmp_path):
    from transformers import TrainerCallback

    from rlaifv_ray.config import LoraConfig
    from rlaifv_ray.train.dpo import build_trainer, dpo_args, load_policy, pair_examples

    path = str(toy_models / "policy")
    examples = pair_examples(*_with_images(_pairs(path)))
    train = TrainConfig(batch_size=1, lr=5e-3, checkpoint_steps=2, lora=LoraConfig(r=4, alpha=8, dropout=0.0))
    args = dpo_args(train, str(tmp_path / "out"))
    args.save_total_limit = None

    def losses(resume=None):
        logged = []

        class Log(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):
                if logs and "loss" in logs:
                    logged.append(logs["loss"])

        model, processor = load_policy(path)
        build_trainer(model, processor, examples, args, callbacks=[Log()], lora=train.lora).train(
            resume_from_checkpoint=resume
        )
        return logged

    undisturbed = losses()
    assert len(undisturbed) == 4 and abs(undisturbed[3] - undisturbed[0]) > 1e-4
    resumed = losses(str(tmp_path / "out" / "checkpoint-2"))
    assert resumed == pytest.approx(undisturbed[2:], abs=1e-5)


@pytest.mark.gpu
def test_lora_on_a_sharded_base_on_gpus(toy_models, ray_local, tmp_path):
    """The GPU path of the test above: the frozen base in bf16 sharded by FSDP2 (bf16 compute), the
    adapters fp32, on every GPU of the machine (one rank each)."""
    import json
    import math

    from rlaifv_ray.config import validate_config
    from rlaifv_ray.train.dpo import load_policy
    from rlaifv_ray.train.launch import train_dpo
    from tests.conftest import toy_config

    gpus = torch.cuda.device_count()
    policy = str(toy_models / "policy")
    config = validate_config(
        toy_config(
            tmp_path,
            toy_models,
            **{
                "train.workers": gpus,
                "train.use_gpu": True,
                "train.batch_size": 4 * gpus,
                "train.epochs": 3,
                "train.lr": 5e-3,
                "train.strategy": "fsdp",
                "train.lora": {"r": 4, "alpha": 8, "dropout": 0.0},
            },
        )
    )
    _write_pairs(config.run_dir, {k: v * gpus for k, v in _pairs(policy).items()})
    result = train_dpo(config, 0, policy)
    steps = json.loads((Path(config.run_dir) / "iter_000" / "train_log.json").read_text())["steps"]
    assert result["steps"] == 3 and steps[0]["loss"] == pytest.approx(math.log(2), abs=1e-2)  # bf16 compute
    assert all(math.isfinite(s["loss"]) for s in steps) and steps[2]["loss"] != steps[0]["loss"]
    assert load_policy(result["checkpoint"])[0] is not None


def test_trl_outside_the_checked_range_fails_at_import_with_what_to_install():
    from rlaifv_ray.train.trl_seam import TrlVersionError, check_trl_version

    check_trl_version("1.16.3")
    for version in ("1.15.0", "1.17.0", "2.0.0", "main"):
        with pytest.raises(TrlVersionError, match=r"pip install 'trl>=1\.16,<1\.17'"):
            check_trl_version(version)


def test_train_settings_reach_trl_under_its_names():
    from rlaifv_ray.train.dpo import dpo_args

    train = TrainConfig(
        beta=0.2, lr=1e-5, epochs=3, batch_size=8, warmup_ratio=0.1, lr_scheduler_type="linear", weight_decay=0.0
    )
    args = dpo_args(train, "/tmp/unused", world_size=2)
    assert (args.beta, args.learning_rate, args.num_train_epochs) == (0.2, 1e-5, 3)
    assert (args.lr_scheduler_type, args.weight_decay, args.warmup_steps) == ("linear", 0.0, 0.1)
    assert args.per_device_train_batch_size == 4  # the global batch over 2 workers
    assert args.get_warmup_steps(40) == 4
