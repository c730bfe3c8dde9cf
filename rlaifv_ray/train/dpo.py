"""DPO with TRL on pairs that carry their reference log-probs (docs/method.md s.2). No Ray in here.

TRL refuses precomputed reference log-probs for vision data and its vision collator drops them,
so two thin pieces fill the gap: a collator that passes `ref_chosen_logps`/`ref_rejected_logps`
through, and a trainer that takes them from the batch instead of holding a reference model. The
reference values come from the pipeline's ReferenceLogps stage, which tokenizes prompt and
completion the way TRL's collator does (tests/test_train.py checks the loss against TRL's own
live-reference computation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from trl import DPOConfig, DPOTrainer
from trl.trainer.dpo_trainer import DataCollatorForVisionPreference

from .. import schema as S
from ..media import corruption_seed
from ..pair_diff import weighted
from .lora import VISION_TOWER_NAMES as _VISION_TOWER_NAMES
from .lora import _load_adapter, is_peft, lora_config
from .optim import adamw, lr_schedule
from .trl_seam import ResumeHook, no_reference_model, use_stored_reference
from .variants import IMAGE_REF_KEYS, VariantLosses, token_weights

# Where the image encoder sits (lora.VISION_TOWER_NAMES), and the projectors that some families
# keep inside it (Qwen2/3-VL's `visual.merger`, Qwen3-VL's deepstack mergers): those
# train, as LLaVA's, InternVL's and Gemma 3's `multi_modal_projector`, Idefics3's `connector` and
# MiniCPM-V's `merger` (outside the encoder) do. MiniCPM-V's `vit_merger` sits between encoder
# layers: it is part of the encoder and stays frozen.
_PROJECTORS_INSIDE = ("merger", "deepstack_merger_list")
REF_KEYS = ("ref_chosen_logps", "ref_rejected_logps")


def pair_examples(pairs: dict[str, list], images: list[bytes], train=None, seed: int = 0) -> list[dict]:
    """Pairs columns and each pair's encoded image -> TRL conversational vision examples with their
    reference log-probs. Images stay encoded: the collator decodes each batch's.

    TRAIN (our TrainConfig) adds what its DPO variants need: with token_weight, an edit pair's
    reference sums count their edited tokens W times and the example carries W (`edit_weight`);
    with image_preference, the chosen answer's reference sum under its corrupted image, the seed of
    that image (the reference stage's), and the chosen answer's plain sum."""
    w = train.token_weight.edited if train is not None and train.token_weight else 1.0
    image_pref = train is not None and train.image_preference is not None
    n = len(pairs[S.PROMPT_ID])
    column = {c: pairs.get(c) or [None] * n for c in (S.REF_CHOSEN_EDITED_LOGP, S.REF_REJECTED_EDITED_LOGP)}
    out = []
    for i, pid in enumerate(pairs[S.PROMPT_ID]):
        ref_c, ref_r = pairs[S.REF_CHOSEN_LOGP][i], pairs[S.REF_REJECTED_LOGP][i]
        if ref_c is None or ref_r is None:
            raise ValueError(f"pair of prompt {pid} has no reference log-probs (rerun the pairs stage)")
        edit_c, edit_r = column[S.REF_CHOSEN_EDITED_LOGP][i], column[S.REF_REJECTED_EDITED_LOGP][i]
        example = {
            "images": [images[i]],
            "prompt": [{"role": "user", "content": pairs[S.INSTRUCTION][i]}],
            "chosen": [{"role": "assistant", "content": pairs[S.CHOSEN][i]}],
            "rejected": [{"role": "assistant", "content": pairs[S.REJECTED][i]}],
            "ref_chosen_logps": weighted(float(ref_c), edit_c, w),
            "ref_rejected_logps": weighted(float(ref_r), edit_r, w),
            "edit_weight": w if edit_c is not None else 1.0,
        }
        if image_pref:
            corrupt = (pairs.get(S.REF_CHOSEN_CORRUPT_LOGP) or [None] * n)[i]
            if corrupt is None:
                raise ValueError(f"pair of prompt {pid} has no reference log-prob on a corrupted image (rerun pairs)")
            example |= {
                "ref_chosen_corrupt_logps": float(corrupt),
                "ref_chosen_whole_logps": float(ref_c),
                "corrupt_seed": corruption_seed(seed, pid, pairs[S.CHOSEN_ID][i]),
            }
        out.append(example)
    return out


@dataclass
class PrecomputedRefCollator(DataCollatorForVisionPreference):
    """TRL's vision preference collator, plus the stored reference log-probs as tensors; decodes
    (and downscales) each batch's images, so no worker holds every pair's pixels at once.

    Prompts and completions are rendered by the engines' own ChatFormat (with the policy's
    chat_template_kwargs), so DPO scores exactly the tokens the reference stage scored and the
    policy generated: the answer and its end of turn, never a thinking template's markup that
    TRL's own rendering would count as completion.

    DPO's variants: `token_weights` (2B x L, 1 but on an edit pair's edited completion tokens)
    when a pair of the batch carries an edit_weight; `corrupt_batch`, the chosen answers under
    their corrupted images (`corruption`), when the examples carry a corrupt_seed."""

    max_pixels: int = 1024 * 1024
    chat_template_kwargs: dict | None = None
    corruption: str = "crop"
    _chat: object = field(default=None, init=False, repr=False)

    def torch_call(self, examples: list[dict]) -> dict:
        from ..engines.base import user_message
        from ..engines.chat import ChatFormat
        from ..media import corrupt_image, load_image

        if self._chat is None:
            self._chat = ChatFormat(self.processor, self.processor.tokenizer, True, self.chat_template_kwargs)
        keys = REF_KEYS + (IMAGE_REF_KEYS if "corrupt_seed" in examples[0] else ())
        refs = {k: torch.tensor([float(e[k]) for e in examples], dtype=torch.float32) for k in keys}
        rendered = []
        for e in examples:
            messages = user_message(e["prompt"][0]["content"], True)
            rendered.append(
                {
                    "prompt": self._chat.prompt(messages),
                    "chosen": self._chat.completion(messages, e["chosen"][0]["content"]),
                    "rejected": self._chat.completion(messages, e["rejected"][0]["content"]),
                    "images": [
                        load_image(img, name="image of a pair", max_pixels=self.max_pixels) for img in e["images"]
                    ],
                }
            )
        out = super().torch_call(rendered)
        out.update(refs)
        weights = [float(e.get("edit_weight", 1.0)) for e in examples]
        if any(w != 1 for w in weights):
            out["token_weights"] = token_weights(out["input_ids"], out["completion_mask"], weights)
        if "corrupt_seed" in examples[0]:
            # the chosen answer on both sides: TRL's collator makes pairs; the loss reads the first half
            corrupt = [
                {**r, "rejected": r["chosen"], "images": [corrupt_image(r["images"][0], self.corruption, seed)]}
                for r, seed in zip(rendered, (e["corrupt_seed"] for e in examples))
            ]
            out["corrupt_batch"] = super().torch_call(corrupt)
        return out


class PrecomputedRefDPOTrainer(VariantLosses, ResumeHook, DPOTrainer):
    """TRL's DPO trainer on stored reference log-probs, plus token weights and two terms of mDPO
    (`image_weight`: the image-conditioned preference; `anchor`: the chosen reward kept positive),
    added by VariantLosses (train/variants.py)."""

    def __init__(self, *args, processing_class, image_weight: float = 0.0, anchor: bool = False, **kwargs):
        kwargs.setdefault("data_collator", PrecomputedRefCollator(processor=processing_class))
        with no_reference_model():  # the pairs carry its log-probs (train/trl_seam.py)
            super().__init__(*args, processing_class=processing_class, **kwargs)
        use_stored_reference(self)
        self.image_weight, self.anchor = image_weight, anchor
        self._weights, self._seen = None, None
        self.model.register_forward_hook(self._weigh_tokens)

    def create_optimizer(self, model=None):
        """Trainer's optimizer, as train/fsdp.py's loop builds it (train/optim.py)."""
        if self.optimizer is None:
            self.optimizer = adamw(model or self.model, self.args.learning_rate, self.args.weight_decay)
        return self.optimizer

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        if self.lr_scheduler is None:
            self.lr_scheduler = lr_schedule(
                optimizer or self.optimizer, self.args.lr_scheduler_type, self.args.warmup_steps, num_training_steps
            )
        return self.lr_scheduler

    def load_checkpoint(self, resume_from_checkpoint: str, model) -> None:
        """A resumed run's weights (Trainer's resume, through trl_seam.ResumeHook)."""
        if is_peft(model):
            return _load_adapter(model, resume_from_checkpoint)
        return self._load_full_weights(resume_from_checkpoint, model)

    def _load_full_weights(self, resume_from_checkpoint: str, model) -> None:
        """The weights of a resumed run, read through from_pretrained. transformers 5 saves
        multimodal models under their hub key names (`language_model.model.*`), which match none
        of the module's own keys (`model.language_model.*`); Trainer's non-strict load_state_dict
        then kept the starting weights without an error, and a resumed DPO went on from the initial
        policy with the optimizer state of a trained one. Strict here: a key mismatch raises."""
        saved = type(model).from_pretrained(resume_from_checkpoint, dtype=next(model.parameters()).dtype)
        model.load_state_dict(saved.state_dict(), strict=True)
        del saved


def freeze_vision_tower(model) -> list[str]:
    """No gradients into the image encoder (docs/method.md s.2); returns the frozen module's name."""
    for name, module in model.named_modules():
        if name.rsplit(".", 1)[-1] in _VISION_TOWER_NAMES:
            module.requires_grad_(False)
            for sub_name, sub in module.named_children():
                if sub_name in _PROJECTORS_INSIDE:
                    sub.requires_grad_(True)
            return [name]
    raise ValueError(f"{type(model).__name__}: no vision tower found (looked for {', '.join(_VISION_TOWER_NAMES)})")


def dpo_args(train, output_dir: str, world_size: int = 1, seed: int = 0, save_steps: int | None = None) -> DPOConfig:
    """TRL arguments from our TrainConfig: its preference loss (sigmoid DPO by default) with beta and
    lr from the config, plus an SFT term when train.sft_weight is set. Master weights are fp32 (the
    model is loaded so); on GPUs bf16 autocast does the compute."""
    per_device = max(1, train.batch_size // world_size)
    return DPOConfig(
        output_dir=output_dir,
        beta=train.beta,
        loss_type=[train.loss_type] + (["sft"] if train.sft_weight else []),
        loss_weights=[1.0, train.sft_weight] if train.sft_weight else None,
        learning_rate=train.lr,
        lr_scheduler_type=train.lr_scheduler_type,
        warmup_steps=train.warmup_ratio,  # transformers 5: a value below 1 is a share of the steps
        weight_decay=train.weight_decay,
        num_train_epochs=train.epochs,
        per_device_train_batch_size=per_device,
        max_length=None,  # truncation would cut image tokens
        bf16=train.use_gpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        use_cpu=not train.use_gpu,
        remove_unused_columns=False,  # the collator needs images and reference log-probs
        save_strategy="steps",  # train/launch.py reports each save to Ray Train
        save_steps=save_steps or train.checkpoint_steps,
        save_total_limit=1,  # locally (train/launch.py deletes each once uploaded)
        gradient_checkpointing=train.gradient_checkpointing,
        logging_steps=1,
        report_to=list(train.report_to) or "none",  # tensorboard: under $TENSORBOARD_LOGGING_DIR
        seed=seed,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )


def build_trainer(
    model,
    processor,
    examples: list[dict],
    args: DPOConfig,
    callbacks=(),
    lora=None,
    max_pixels: int = 1024 * 1024,
    chat_template_kwargs: dict | None = None,
    train=None,
) -> PrecomputedRefDPOTrainer:
    """lora: our LoraConfig (or None for full fine-tuning of everything but the vision encoder);
    max_pixels: larger images are downscaled to this many pixels when their batch is collated;
    chat_template_kwargs: the policy's (models.policy.chat_template_kwargs); train: our TrainConfig,
    for its image_preference and anchor (the examples carry what they need: pair_examples)."""
    import datasets

    image_pref = train.image_preference if train is not None else None

    if not examples:
        raise ValueError("no preference pairs to train on")
    freeze_vision_tower(model)
    return PrecomputedRefDPOTrainer(
        model=model,
        args=args,
        train_dataset=datasets.Dataset.from_list(examples),
        processing_class=processor,
        callbacks=list(callbacks),
        peft_config=lora_config(lora) if lora else None,
        data_collator=PrecomputedRefCollator(
            processor=processor,
            max_pixels=max_pixels,
            chat_template_kwargs=chat_template_kwargs,
            corruption=image_pref.corruption if image_pref else "crop",
        ),
        image_weight=image_pref.weight if image_pref else 0.0,
        anchor=bool(train is not None and train.anchor),
    )


def save_policy(trainer, processor, out: str) -> None:
    """The trained policy as an HF folder both engines load; with LoRA the merged model, and the
    adapter itself in OUT/adapter. Call on every rank (sharded strategies gather); rank 0 writes."""
    import os

    if not is_peft(trainer.model):
        trainer.save_model(out)
    elif trainer.is_world_process_zero():
        trainer.model.save_pretrained(os.path.join(out, "adapter"))
        trainer.model.merge_and_unload().save_pretrained(out)
    if trainer.is_world_process_zero():
        processor.save_pretrained(out)


def load_policy(path: str, dtype: str = "float32"):
    import transformers

    from ..engines.chat import ensure_pad_token
    from ..engines.processors import load_processor
    from ..storage.model_cache import local_model

    path = local_model(path)
    processor = load_processor(path, transformers.AutoConfig.from_pretrained(path).model_type)
    ensure_pad_token(processor.tokenizer)
    model = transformers.AutoModelForImageTextToText.from_pretrained(path, dtype=getattr(torch, dtype))
    return model, processor
