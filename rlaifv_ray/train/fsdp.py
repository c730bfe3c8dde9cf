"""Sharded DPO: FSDP2 (`fully_shard`) in a lean loop around TRL's DPO loss, on Ray Train workers.

Why a loop of our own: accelerate enables FSDP only on GPU device types (on CPU it silently falls
back to DDP), so HF Trainer cannot be tested sharded here; the loss itself stays TRL's
(`PrecomputedRefDPOTrainer.compute_loss`, the stored-reference loss test_train checks).

- Every decoder layer and then the root are sharded: each rank holds 1/world of every parameter,
  its gradient and its AdamW state. Parameters stay fp32 (the master weights); on GPUs compute runs
  in bf16 and gradients reduce in fp32 (MixedPrecisionPolicy).
- Data: step s of epoch e takes pairs perm_e[s*B:(s+1)*B] of a seeded permutation, rank r the r-th
  slice: one step equals one global-batch step of unsharded training.
- Checkpoints (every `checkpoint_steps`): torch.distributed.checkpoint, each rank writing its own
  shards into one Ray Train checkpoint, with the step and the loss history; a restarted group loads
  them and continues at the next step.
- The trained policy: the full state dict gathered to rank 0, loaded into a fresh copy of the
  policy and saved with save_pretrained (a plain HF folder both engines load).
- LoRA on the sharded base (train.lora): the frozen base is sharded like any weight (bf16 on GPUs),
  only the adapters train (fp32, with their AdamW state). Checkpoints hold the adapters and their
  optimizer state only, and a resume is strict both ways (every adapter key saved, no other key
  found). The output gathers the adapters alone (a few MB) and applies them to a fresh copy of the
  policy on rank 0: the merged policy, and the adapter in OUT/adapter, as LoRA under ddp writes them.
"""

from __future__ import annotations

import json
import os
import random
import shutil

LOOP_STATE = "loop_state.json"


def shard(model, use_gpu: bool) -> None:
    import torch
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    kw = {"mp_policy": MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)} if use_gpu else {}
    for module in list(model.modules()):
        if type(module).__name__.endswith(("DecoderLayer", "EncoderLayer")):
            fully_shard(module, **kw)
    fully_shard(model, **kw)


def reshard(model) -> None:
    """Free the gathered parameters a forward without backward leaves behind (the root module keeps
    its parameters unsharded after forward, expecting the backward)."""
    from torch.distributed.fsdp import FSDPModule

    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.reshard()


def local_fraction(model, trainable: bool = True) -> float:
    """Share of the trainable (or of the frozen) parameters this rank holds."""
    held = total = 0
    for p in model.parameters():
        if p.requires_grad == trainable:
            held += p.to_local().numel() if hasattr(p, "to_local") else p.numel()
            total += p.numel()
    return held / max(1, total)


def batches(n_examples: int, global_batch: int, rank: int, world: int, seed: int, epochs: int):
    """(epoch, step, indices of this rank's slice) for every optimizer step, in order."""
    per_rank = global_batch // world
    steps = n_examples // global_batch if n_examples >= global_batch else 1
    out = []
    for epoch in range(epochs):
        order = list(range(n_examples))
        random.Random(f"{seed}-{epoch}").shuffle(order)
        for s in range(steps):
            chunk = order[s * global_batch : (s + 1) * global_batch] or order
            mine = chunk[rank * per_rank : (rank + 1) * per_rank] or chunk[:1]
            out.append((epoch, s, mine))
    return out


def train_sharded(
    trainer,
    examples: list[dict],
    train,
    seed: int,
    rank: int,
    world: int,
    checkpoint_dir: str | None,
    save_dir: str,
    report,
) -> tuple[list[dict], int]:
    """Run the loop; `report(metrics, checkpoint_path or None)` reports to Ray Train. Returns the
    loss history (steps before a resume included) and the step it resumed from. Without a process
    group (one process, an unsharded model) it is the same loop: the reference the tests compare to."""
    import copy

    from torch.distributed.checkpoint.state_dict import get_state_dict

    from .lora import is_peft
    from .optim import adamw, lr_schedule
    from .trl_seam import step_metrics

    model = trainer.model
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = adamw(model, train.lr, train.weight_decay)
    plan = batches(len(examples), train.batch_size, rank, world, seed, train.epochs)
    schedule = lr_schedule(optimizer, train.lr_scheduler_type, train.warmup_ratio, len(plan))
    history, start = [], 0
    adapters_only = is_peft(model)  # the frozen base is the policy's: not checkpointed

    def state_dict():
        model_sd, optim_sd = get_state_dict(model, optimizer)
        if adapters_only:
            trained = {n for n, p in model.named_parameters() if p.requires_grad}
            model_sd = {k: v for k, v in model_sd.items() if k in trained}
        return {"model": model_sd, "optim": optim_sd}

    if checkpoint_dir:
        start, history = _load(checkpoint_dir, model, optimizer, state_dict(), adapters_only)
        for _ in range(start):
            schedule.step()
    model.train()
    for step in range(start, len(plan)):
        batch = trainer.data_collator(copy.deepcopy([examples[i] for i in plan[step][2]]))
        lr = schedule.get_last_lr()[0]
        loss, grad_norm = _step(trainer, model, batch, params, optimizer, schedule)
        # TRL's own step metrics (rewards/*, logps/*), as the HF Trainer logs them under ddp
        trl = {k: v[-1] for k, v in step_metrics(trainer, "train").items() if k.startswith(("rewards/", "logps/"))}
        step_metrics(trainer, "train").clear()
        history.append({"step": step + 1, "loss": loss, "grad_norm": grad_norm, "learning_rate": lr, **trl})
        path = None
        if (step + 1) % train.checkpoint_steps == 0 or step + 1 == len(plan):
            path = os.path.join(save_dir, f"step-{step + 1}")
            _save(path, state_dict(), rank, {"step": step + 1, "history": history})
        report({"step": step + 1, "loss": loss}, path)
        if path:  # uploaded by report: no local copy stays behind
            shutil.rmtree(path, ignore_errors=True)
    return history, start


def _step(trainer, model, batch: dict, params: list, optimizer, schedule) -> tuple[float, float]:
    """One optimizer step; returns the loss averaged over the ranks and the gradient norm (before clipping)."""
    import torch
    import torch.distributed as dist

    from .variants import to_device

    batch = to_device(batch, trainer.args.device)
    loss = trainer.compute_loss(model, batch)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
    norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm  # a DTensor when sharded
    optimizer.step()
    schedule.step()
    optimizer.zero_grad(set_to_none=True)
    mean = loss.detach().float().clone()
    if dist.is_initialized():
        dist.all_reduce(mean, op=dist.ReduceOp.AVG)
    return mean.item(), norm.item()


def _load(checkpoint_dir: str, model, optimizer, state: dict, adapters_only: bool) -> tuple[int, list[dict]]:
    """Model and optimizer state from a checkpoint, strictly; returns (its step, the loss history)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    if adapters_only:
        _check_adapter_keys(checkpoint_dir, state["model"])
    dcp.load(state, checkpoint_id=checkpoint_dir)  # raises if a key of `state` was not saved
    set_state_dict(
        model,
        optimizer,
        model_state_dict=state["model"],
        optim_state_dict=state["optim"],
        options=StateDictOptions(strict=not adapters_only),
    )
    with open(os.path.join(checkpoint_dir, LOOP_STATE)) as f:
        saved = json.load(f)
    return saved["step"], saved["history"]


def _save(path: str, state: dict, rank: int, progress: dict) -> None:
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp

    dcp.save(state, checkpoint_id=path)  # each rank its shards
    if rank == 0:
        with open(os.path.join(path, LOOP_STATE), "w") as f:
            json.dump(progress, f)
    if dist.is_initialized():
        dist.barrier()


def save_full(model, policy_path: str, out: str, rank: int) -> None:
    """Gather the full state dict to rank 0 and save it as an HF folder of the policy's class."""
    import torch
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if rank == 0:
        from .dpo import load_policy

        fresh, _ = load_policy(policy_path, "float32")
        fresh.load_state_dict({k: v.to(torch.float32) for k, v in full.items()}, strict=True)
        fresh.save_pretrained(out)


def _check_adapter_keys(checkpoint_dir: str, expected: dict) -> None:
    """A LoRA checkpoint must hold exactly this model's adapters (another r or target_modules fails)."""
    import torch.distributed.checkpoint as dcp

    saved = {
        k.split(".", 1)[1]
        for k in dcp.FileSystemReader(checkpoint_dir).read_metadata().state_dict_metadata
        if k.startswith("model.")
    }
    if saved != set(expected):
        extra, missing = sorted(saved - set(expected)), sorted(set(expected) - saved)
        raise ValueError(
            f"{checkpoint_dir}: the checkpoint's adapters differ from the model's "
            f"(only saved: {extra[:3]}, never saved: {missing[:3]})"
        )


def save_adapted(model, policy_path: str, lora, out: str, rank: int, dtype: str) -> None:
    """LoRA on a sharded base: gather the adapters (every rank takes part), then on rank 0 apply them
    to a fresh copy of the policy in DTYPE: OUT/adapter (peft's folder) and the merged model in OUT."""
    import torch

    adapters = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            full = p.full_tensor() if hasattr(p, "full_tensor") else p
            adapters[name] = full.detach().to("cpu", torch.float32)
    if rank != 0:
        return
    from peft import get_peft_model

    from .dpo import load_policy
    from .lora import lora_config

    fresh, _ = load_policy(policy_path, dtype)
    adapted = get_peft_model(fresh, lora_config(lora))
    own = {n for n, _ in adapted.named_parameters() if "lora_" in n}
    if own != set(adapters):
        raise ValueError(
            f"the trained adapters do not fit a fresh {type(fresh).__name__} ({sorted(own ^ set(adapters))[:3]} ...)"
        )
    adapted.load_state_dict(adapters, strict=False)
    adapted.save_pretrained(os.path.join(out, "adapter"))
    adapted.merge_and_unload().save_pretrained(out)
