"""Supervised training of the ShapesWorld models: plain torch on CPU, seeded, with progress.

The loss covers answer tokens only, averaged per example, so that a one-word yes/no answer
weighs as much as a caption.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .examples import Example


def encode_examples(examples: list[Example], processor):
    """Tokenize chat-formatted examples; labels are -100 except on the answer and its end token."""

    from ..engines.base import user_message
    from ..engines.chat import ChatFormat

    tokenizer = getattr(processor, "tokenizer", processor)
    # the engines' rendering: a thinking template's answer follows its closed reasoning block
    chat = ChatFormat(processor, tokenizer, multimodal=tokenizer is not processor)
    prompts, fulls, images = [], [], []
    for ex in examples:
        if ex.image is not None:
            images.append([ex.image])  # one list per prompt, which every processor takes
        prompt = chat.prompt(user_message(ex.prompt, ex.image is not None))
        prompts.append(prompt)
        fulls.append(prompt + ex.answer + tokenizer.eos_token)
    # the chat template writes any BOS itself; the engines and TRL add no special tokens either
    kwargs = dict(text=fulls, padding=True, return_tensors="pt", add_special_tokens=False)
    if images:
        batch = processor(images=images, **kwargs)
        plen = [len(x) for x in processor(text=prompts, images=images, add_special_tokens=False)["input_ids"]]
    else:
        batch = tokenizer(fulls, padding=True, return_tensors="pt", padding_side="right", add_special_tokens=False)
        plen = [len(x) for x in tokenizer(prompts, add_special_tokens=False)["input_ids"]]
    labels = batch["input_ids"].clone()
    labels[batch["attention_mask"] == 0] = -100
    for row, n in enumerate(plen):
        labels[row, :n] = -100
    batch["labels"] = labels
    return batch


def per_example_loss(logits, labels):
    import torch

    shift_logits, shift_labels = logits[:, :-1], labels[:, 1:]
    mask = shift_labels != -100
    tok = torch.nn.functional.cross_entropy(
        shift_logits.flatten(0, 1).float(), shift_labels.clamp(min=0).flatten(), reduction="none"
    ).view_as(shift_labels)
    return ((tok * mask).sum(1) / mask.sum(1).clamp(min=1)).mean()


def train(
    model,
    processor,
    make_batch: Callable[[int], list[Example]],
    steps: int,
    lr: float,
    progress: Callable | None = None,
    evaluate: Callable | None = None,
    eval_every: int = 0,
):
    """AdamW with warmup + cosine; frozen parameters (requires_grad False) stay untouched."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps)))
    )
    model.train()
    history = []
    for step in range(steps):
        batch = encode_examples(make_batch(step), processor)
        labels = batch.pop("labels")
        loss = per_example_loss(model(**batch).logits, labels)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        extra = {}
        if evaluate and eval_every and ((step + 1) % eval_every == 0 or step + 1 == steps):
            model.eval()
            extra = evaluate(model)
            model.train()
            history.append({"step": step + 1, **extra})
        if progress:
            progress(step + 1, steps, loss=loss.item(), **extra)
    model.eval()
    return history
