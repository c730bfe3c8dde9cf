"""DPO on Ray Train: a TorchTrainer whose workers run TRL's DPOTrainer (strategy ddp) or our sharded
loop around TRL's loss (fsdp, train/fsdp.py).

RUN/iter_NNN/dpo/      Ray Train's run storage: the last resumable checkpoint (model, optimizer, step);
                       a worker deletes its local copy of each once uploaded
RUN/iter_NNN/checkpoint/   the trained policy in HF format (+ processor), with a _SUCCESS manifest
RUN/iter_NNN/train_log.json  loss and reward metrics per step

A lost worker restarts the group from the last reported checkpoint (FailureConfig), and a rerun
of a killed driver finds Ray Train's snapshot in the same storage and continues from it too.
"""

from __future__ import annotations

import logging
import time

from ..config import RunConfig
from ..errors import RlaifvError
from ..storage.store import RunStore, resume_key

log = logging.getLogger(__name__)

RUN_NAME = "dpo"


def train_dpo(config: RunConfig, iteration: int, policy: str) -> dict:
    """Train `policy` on iteration K's pairs (their reference log-probs came from `policy`).
    Returns {"checkpoint": path or uri of the new policy, ...metrics}; skips finished work."""
    store = RunStore(config.run_dir)
    d = f"iter_{iteration:03d}"
    # what the trained policy depends on: its pairs (their own resume key), the train settings, the policy
    pairs_key = (store.read_json(f"{d}/pairs/_SUCCESS") or {}).get("config_hash")
    template = config.models.policy.chat_template_kwargs  # the tokens DPO scores (in the key only when set)
    digest = resume_key("dpo", pairs_key, _key_settings(config.train), policy, *([template] if template else []))
    out = f"{d}/checkpoint"
    if store.finished(out, digest, companions=(f"{d}/train_log.json",)):
        log.info(f"[{d}] dpo: finished earlier, skipped")
        return store.read_json(f"{out}/_SUCCESS")
    n_pairs = store.count_rows(f"{d}/pairs")
    if not n_pairs:
        raise RlaifvError(
            f"{d}: no preference pairs to train on; see {store.uri_of(d, 'metrics.json')} "
            "(pair yield, quarantine, length balance) - more prompts or candidates may help"
        )
    if config.train.heldout_pairs >= n_pairs:
        raise RlaifvError(
            f"{d}: train.heldout_pairs ({config.train.heldout_pairs}) leaves none of its {n_pairs} pairs to train on"
        )
    store.clear(out)
    if (store.read_json(f"{d}/{RUN_NAME}_config.json") or {}).get("config_hash") != digest:
        store.clear(f"{d}/{RUN_NAME}")  # checkpoints of other settings must not be resumed
        store.write_json(f"{d}/{RUN_NAME}_config.json", {"config_hash": digest})
    t = config.train
    log.info(
        f"[{d}] dpo: {n_pairs} pairs, {t.workers} worker(s), {t.epochs} epoch(s), batch {t.batch_size}, "
        f"lr {t.lr}, beta {t.beta}"
    )
    t0 = time.time()
    _trainer(config, store, d, policy).fit()
    manifest = {"checkpoint": store.uri_of(out), "pairs": n_pairs, **_summary(store.read_json(f"{d}/train_log.json"))}
    manifest["seconds"] = round(time.time() - t0, 1)
    manifest["config_hash"] = digest
    store.write_json(f"{out}/_SUCCESS", manifest)
    log.info(
        f"[{d}] dpo: {manifest['steps']} steps, loss {manifest['loss_first']} -> {manifest['loss_last']}, "
        f"{manifest['seconds']} s"
    )
    return manifest


# train.* fields added after runs existed: at these values they leave a run's resume keys as they were
_ADDED_FIELDS = {
    "loss_type": "sigmoid",
    "sft_weight": 0.0,
    "heldout_pairs": 0,
    "token_weight": None,
    "image_preference": None,
    "anchor": False,
    "lr_scheduler_type": "cosine",
    "weight_decay": 0.01,
}


def _key_settings(train) -> dict:
    return {k: v for k, v in train.model_dump(mode="json").items() if _ADDED_FIELDS.get(k, ...) != v}


def _trainer(config: RunConfig, store: RunStore, d: str, policy: str):
    import ray.train
    from ray.train.torch import TorchTrainer

    from .workers import worker_loop

    t = config.train
    return TorchTrainer(
        worker_loop,
        train_loop_config={
            "run_uri": store.uri,
            "iter_dir": d,
            "policy": policy,
            "chat_template_kwargs": config.models.policy.chat_template_kwargs,
            "train": t.model_dump(),
            "seed": config.seed,
            "max_pixels": config.data.max_image_pixels,
        },
        scaling_config=ray.train.ScalingConfig(
            num_workers=t.workers, use_gpu=t.use_gpu, resources_per_worker={"CPU": t.num_cpus_per_worker}
        ),
        run_config=ray.train.RunConfig(
            name=RUN_NAME,
            storage_path=store.path(d),
            storage_filesystem=store.fs,
            failure_config=ray.train.FailureConfig(max_failures=t.max_failures),
            # with each local copy deleted once uploaded, at most two checkpoints exist anywhere:
            # the one kept here and the one being written
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=1),
        ),
    )


_ACC = "rewards/accuracies"


def _summary(train_log: dict | None) -> dict:
    steps = (train_log or {}).get("steps", [])
    losses = [s["loss"] for s in steps if "loss" in s]
    return {
        "steps": len(losses),
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "reward_accuracy_last": next(
            (s["rewards/accuracies"] for s in reversed(steps) if "rewards/accuracies" in s), None
        ),
        "resumed_from_step": (train_log or {}).get("resumed_from_step", 0),
        **(train_log or {}).get("signals", {}),
    }
