"""What each Ray Train worker of train/launch.py runs: read the pairs, load the policy, train it with
TRL's DPOTrainer (strategy ddp) or our sharded loop around TRL's loss (fsdp, train/fsdp.py), report
checkpoints to Ray Train, and upload the trained policy and its log (rank 0)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile

from .. import schema as S
from ..storage.images import fetch_images
from ..storage.store import RunStore


def worker_loop(cfg: dict) -> None:
    """One Ray Train worker: the whole pairs table (each strategy gives every rank its slice)."""
    import ray.train
    import torch

    from ..config import TrainConfig
    from .dpo import load_policy, pair_examples
    from .probe import hold_out

    ctx = ray.train.get_context()
    train = TrainConfig(**cfg["train"])
    torch.set_num_threads(max(1, int(train.num_cpus_per_worker)))  # workers share the node's cores
    store = RunStore(cfg["run_uri"])
    pairs = store.read_table(f"{cfg['iter_dir']}/pairs", S.schema("pairs")).to_pydict()
    examples = pair_examples(pairs, fetch_images(store, cfg["iter_dir"], pairs[S.IMAGE_ID]), train, cfg["seed"])
    examples, cfg["probe"] = hold_out(examples, train.heldout_pairs, cfg["seed"])
    model, processor = load_policy(cfg["policy"], _base_dtype(train))
    local = tempfile.mkdtemp(prefix="rlaifv-dpo-")
    try:
        _train_and_upload(cfg, train, ctx, store, examples, model, processor, local)
    finally:  # the final policy and logs are in the run dir by now; a 7B copy must not pile up in /tmp
        shutil.rmtree(local, ignore_errors=True)


def _train_and_upload(cfg, train, ctx, store, examples, model, processor, local) -> None:
    import ray
    import torch

    from .dpo import dpo_args

    os.environ["TENSORBOARD_LOGGING_DIR"] = os.path.join(local, "tensorboard")  # uploaded to the run dir below
    args = dpo_args(train, os.path.join(local, "trainer"), world_size=ctx.get_world_size(), seed=cfg["seed"])
    final = os.path.join(local, "final")
    run = _fsdp if train.strategy == "fsdp" else _hf_trainer
    history, resumed_step, extra = run(cfg, train, model, processor, examples, args, local, final)
    nodes = [ray.get_runtime_context().get_node_id()]  # where each rank ran: the audit of multi-node runs
    if torch.distributed.is_initialized():
        nodes = [None] * ctx.get_world_size()
        torch.distributed.all_gather_object(nodes, ray.get_runtime_context().get_node_id())
    if ctx.get_world_rank() == 0:
        store.upload_dir(final, f"{cfg['iter_dir']}/checkpoint")
        if "tensorboard" in train.report_to and os.path.isdir(os.path.join(local, "tensorboard")):
            store.upload_dir(os.path.join(local, "tensorboard"), f"{cfg['iter_dir']}/tensorboard")
        store.write_json(
            f"{cfg['iter_dir']}/train_log.json",
            {"resumed_from_step": resumed_step, "steps": history, "worker_nodes": nodes, **extra},
        )


def _hf_trainer(cfg, train, model, processor, examples, args, local, final):
    """ddp: TRL's DPOTrainer under Ray Train (HF Trainer checkpoints, reported by Ray's callback)."""
    import ray.train
    from ray.train.huggingface.transformers import prepare_trainer
    from transformers import TrainerCallback
    from transformers.trainer_utils import get_last_checkpoint

    from .dpo import build_trainer, save_policy
    from .probe import probe_signals

    history: list[dict] = []

    class _History(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                history.append({"step": state.global_step, **logs})

    class _Report(TrainerCallback):
        """Ray's RayTrainReportCallback copies each HF checkpoint before uploading it and keeps the
        original: three full copies (with optimizer state, ~82 GB at 7B) on a worker's disk. This one
        uploads the HF folder itself and deletes it once stored."""

        def on_save(self, args, state, control, **kwargs):
            metrics = {k: v for log in state.log_history for k, v in log.items()}
            path = get_last_checkpoint(args.output_dir)
            ray.train.report(
                metrics,
                checkpoint=ray.train.Checkpoint.from_directory(path) if path else None,
                delete_local_checkpoint_after_upload=True,
            )

    trainer = prepare_trainer(
        build_trainer(
            model,
            processor,
            examples,
            args,
            callbacks=[_Report(), _History()],
            lora=train.lora,
            max_pixels=cfg["max_pixels"],
            chat_template_kwargs=cfg.get("chat_template_kwargs"),
            train=train,
        )
    )
    resume, resumed_step = None, 0
    checkpoint = ray.train.get_checkpoint()
    with checkpoint.as_directory() if checkpoint else contextlib.nullcontext() as ckpt_dir:
        if ckpt_dir:  # a restarted worker group or a rerun driver: continue from the last save
            resume = ckpt_dir
            with open(os.path.join(resume, "trainer_state.json")) as f:
                state = json.load(f)
            resumed_step = state["global_step"]
            history += [h for h in state["log_history"] if "loss" in h]
        trainer.train(resume_from_checkpoint=resume)
    signals = probe_signals(trainer, *cfg["probe"], train.beta)
    save_policy(trainer, processor, final)
    return history, resumed_step, {"signals": signals}


def _fsdp(cfg, train, model, processor, examples, args, local, final):
    """fsdp: our sharded loop around TRL's loss (train/fsdp.py); with train.lora, adapters on the
    sharded frozen base."""
    import ray.train
    import torch

    from .dpo import build_trainer
    from .fsdp import local_fraction, reshard, save_adapted, save_full, shard, train_sharded
    from .probe import probe_signals

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    trainer = build_trainer(
        model,
        processor,
        examples,
        args,
        lora=train.lora,  # its collator, its loss
        max_pixels=cfg["max_pixels"],
        chat_template_kwargs=cfg.get("chat_template_kwargs"),
        train=train,
    )
    shard(trainer.model, train.use_gpu)

    def report(metrics, path):
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(path) if path else None)

    checkpoint = ray.train.get_checkpoint()
    with checkpoint.as_directory() if checkpoint else contextlib.nullcontext() as ckpt_dir:
        history, resumed_step = train_sharded(
            trainer, examples, train, cfg["seed"], rank, world, ckpt_dir, os.path.join(local, "checkpoints"), report
        )
    signals = probe_signals(trainer, *cfg["probe"], train.beta)
    reshard(trainer.model)
    if train.lora:
        save_adapted(trainer.model, cfg["policy"], train.lora, final, rank, _base_dtype(train))
    else:
        save_full(trainer.model, cfg["policy"], final, rank)
    if rank == 0:
        processor.save_pretrained(final)
    shares = {}
    for key, trainable in (("fsdp_param_share_per_rank", True), ("fsdp_frozen_share_per_rank", False)):
        shares[key] = [None] * world
        torch.distributed.all_gather_object(shares[key], local_fraction(trainer.model, trainable))
    return history, resumed_step, {**shares, "signals": signals}


def _base_dtype(train) -> str:
    """fp32 master weights whatever the inference dtype; a LoRA run's frozen base needs none (bf16 on GPUs)."""
    return "bfloat16" if train.lora and train.use_gpu else "float32"
