"""Pre-training the vision tower on its own with a direct signal (docs/shapesworld.md lesson 1).

A tiny ViT learns shape through a language loss far too slowly; trained first with a multi-label
loss (which colour-shape kinds are present) plus a per-patch loss (which kind covers each patch),
it sees shape in minutes. Its patch tokens then carry object identity both globally (their mean)
and locally, which is what the language model has to read.
"""

from __future__ import annotations

from .world import OBJECTS, patch_labels, presence_vector, scene_and_image


def images_to_pixels(images, image_processor):
    return image_processor(images=images, return_tensors="pt")["pixel_values"]


def pretrain_vision(vision_config, image_processor, steps: int, batch: int, lr: float, seed: int, progress=None):
    """Train a CLIPVisionModel from scratch; returns (model, heads) with heads discarded later."""
    import torch
    from transformers import CLIPVisionModel

    torch.manual_seed(seed)
    model = CLIPVisionModel(vision_config)
    hidden = vision_config.hidden_size
    patch = vision_config.patch_size
    global_head = torch.nn.Sequential(torch.nn.LayerNorm(hidden), torch.nn.Linear(hidden, len(OBJECTS)))
    patch_head = torch.nn.Linear(hidden, len(OBJECTS) + 1)
    params = list(model.parameters()) + list(global_head.parameters()) + list(patch_head.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    rng_index = seed * 10_000_000
    for step in range(steps):
        scenes, images = [], []
        for _ in range(batch):
            scene, image = scene_and_image(seed, rng_index)
            rng_index += 1
            scenes.append(scene)
            images.append(image)
        pixels = images_to_pixels(images, image_processor)
        tokens = model(pixel_values=pixels).last_hidden_state[:, 1:]  # drop CLS
        presence = torch.tensor([presence_vector(s) for s in scenes])
        labels = torch.tensor([patch_labels(s, patch) for s in scenes])
        loss = torch.nn.functional.binary_cross_entropy_with_logits(global_head(tokens.mean(1)), presence)
        loss = loss + torch.nn.functional.cross_entropy(patch_head(tokens).flatten(0, 1), labels.flatten())
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if progress:
            progress(step + 1, steps, loss=float(loss))
    model.eval()
    return model, global_head


def vision_accuracy(model, global_head, image_processor, num: int, seed: int) -> dict:
    """Per-object and exact-set accuracy of the pre-trained tower on fresh images."""
    import torch

    scenes, images = zip(*(scene_and_image(seed, i) for i in range(num)))
    with torch.no_grad():
        tokens = model(pixel_values=images_to_pixels(list(images), image_processor)).last_hidden_state[:, 1:]
        pred = global_head(tokens.mean(1)) > 0
    truth = torch.tensor([presence_vector(s) for s in scenes]) > 0.5
    return {
        "per_object": float((pred == truth).float().mean()),
        "exact_set": float((pred == truth).all(1).float().mean()),
    }
