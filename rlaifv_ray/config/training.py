"""DPO training settings: train.* and train.lora.*."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .fields import Strict


class LoraConfig(Strict):
    r: int = Field(16, ge=1, description="LoRA rank.")
    alpha: int = Field(32, ge=1, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        min_length=1,
        description="Linear layers of the language model that get adapters (the vision encoder never does).",
    )


class TokenWeightConfig(Strict):
    edited: float = Field(
        1.0,
        gt=0,
        description="Weight of the tokens an edit pair's two sides do not share (pairs.builder claim_edit / mixed), "
        "in the policy's and the reference's summed log-probs alike; shared tokens weigh 1. 1: plain DPO.",
    )


class ImagePreferenceConfig(Strict):
    weight: float = Field(1.0, gt=0, description="Weight of the image-conditioned preference term in the loss.")
    corruption: Literal["crop", "noise", "blank"] = Field(
        "crop",
        description="The rejected image: crop (a random box of 10-20% of the area, scaled back: mDPO's), noise "
        "(Gaussian, sd 64 of 255) or blank (the mean colour); seeded per pair.",
    )


class TrainConfig(Strict):
    """DPO's settings. Where a field is TRL's (DPOConfig) it has TRL's name; the others say what they
    become there: lr is learning_rate, epochs num_train_epochs, batch_size the global batch (TRL's
    per_device_train_batch_size times the workers), warmup_ratio TRL's warmup_steps (below 1, a share of
    the steps), sft_weight an `sft` term in loss_type with its loss_weights, checkpoint_steps save_steps.
    The same settings drive strategy fsdp's own loop (train/fsdp.py, train/optim.py)."""

    beta: float = Field(0.1, gt=0, description="DPO beta.")
    loss_type: Literal["sigmoid", "ipo", "hinge", "robust", "sigmoid_norm", "apo_zero", "apo_down"] = Field(
        "sigmoid", description="TRL's preference loss (DPOConfig.loss_type); sigmoid is DPO's, the paper's."
    )
    sft_weight: float = Field(
        0.0,
        ge=0,
        description="Weight of an SFT term (the mean negative log-likelihood of the chosen answers' tokens: TRL's "
        "loss_type sft) added to the preference loss, as RPO does: it keeps the policy's hold on what the labeler "
        "accepted, and with it recall. 0: DPO alone.",
    )
    lr: float = Field(
        5e-5,
        gt=0,
        lt=1.0,
        description="Learning rate; tiny models collapse above ~1.5e-4 (docs/shapesworld.md lesson 3).",
    )
    epochs: int = Field(1, ge=1, description="Epochs over each iteration's pairs.")
    batch_size: int = Field(8, ge=1, description="Global batch size (pairs per optimizer step), split over workers.")
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="Share of steps with linear warm-up.")
    lr_scheduler_type: Literal["cosine", "linear", "constant_with_warmup"] = Field(
        "cosine", description="The learning rate after warm-up (transformers' schedules, TRL's lr_scheduler_type)."
    )
    weight_decay: float = Field(
        0.01, ge=0, lt=1, description="AdamW's weight decay, on every trainable weight but biases and norms."
    )
    workers: int = Field(1, ge=1, description="Ray Train workers (data parallel).")
    use_gpu: bool = Field(False, description="Train on GPUs (one per worker).")
    gpu_memory_gb: float | None = Field(
        None,
        gt=0,
        description="Memory of one training GPU (e.g. 40 for an A100 40GB); "
        "when set, the memory plan must fit before any work.",
    )
    num_cpus_per_worker: float = Field(1.0, gt=0, description="CPUs per Ray Train worker (also its torch threads).")
    checkpoint_steps: int = Field(10, ge=1, description="Save a resumable Ray Train checkpoint every this many steps.")
    max_failures: int = Field(2, ge=0, description="Worker-group restarts (from the last checkpoint) before DPO fails.")
    strategy: Literal["ddp", "fsdp"] = Field(
        "ddp",
        description="ddp: every worker holds the whole model (HF Trainer); fsdp: FSDP2 shards parameters, "
        "gradients and AdamW state over the workers (fp32 master weights, bf16 compute on GPUs); "
        "with train.lora, fsdp shards the frozen base (bf16 on GPUs) and trains fp32 adapters.",
    )
    lora: LoraConfig | None = Field(
        None,
        description="Train LoRA adapters instead of every weight (peft); the next "
        "policy is the merged model, the adapter is saved beside it.",
    )
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations in the backward pass: less memory, about a third more compute."
    )
    heldout_pairs: int = Field(
        0,
        ge=0,
        description="Pairs held out of DPO each iteration (a seeded choice): after training, the reward margin "
        "and the KL to the reference are measured on them (summary.json's heldout_margin, kl_ref_policy). "
        "0: nothing held out, and the KL is measured on up to 32 of the trained pairs.",
    )
    token_weight: TokenWeightConfig | None = Field(
        None,
        description="Token-weighted DPO on edit pairs (RLHF-V's): the edited tokens weigh token_weight.edited. "
        "Pairs that are not edits train as plain DPO.",
    )
    image_preference: ImagePreferenceConfig | None = Field(
        None,
        description="mDPO's image-conditioned preference: the chosen answer under a corrupted image is a second "
        "rejected side, so the policy learns to prefer an answer because of the image. The reference stage scores "
        "the corrupted side too (the pairs stage reruns when this is set).",
    )
    anchor: bool = Field(
        False,
        description="mDPO's anchor: a term -log sigmoid(chosen reward) that keeps the chosen answers' reward "
        "positive, so their likelihood does not fall while the rejected ones' falls faster.",
    )
    report_to: list[Literal["tensorboard", "wandb", "mlflow"]] = Field(
        default_factory=list,
        description="The HF Trainer's own loggers, per iteration (strategy ddp); tensorboard logs land in "
        "RUN/iter_NNN/tensorboard/. For MLflow / W&B prefer `tracking:`: one tracker run across iterations, "
        "every strategy's DPO steps, evaluation and feedback metrics.",
    )

    @model_validator(mode="after")
    def _strategy_supports(self) -> TrainConfig:
        if self.strategy == "fsdp" and self.batch_size % self.workers:
            raise ValueError(
                f"train.strategy fsdp needs train.batch_size ({self.batch_size}) divisible by "
                f"train.workers ({self.workers})"
            )
        return self
