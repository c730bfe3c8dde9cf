"""`rlaifv-ray toy build`: the ShapesWorld data and three tiny models, seeded, resumable.

Order: tokenizer -> vision tower (direct multi-label pre-training) -> labeler VLM -> policy VLM
-> claim LLM. Each model folder is written atomically and skipped when present, so an
interrupted build continues where it stopped.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..locations import TOY_ROLES
from . import examples, models, sft, vision

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildPlan:
    """Training budgets; the defaults meet the issue's bars in about 20 minutes on 2 cores."""

    seed: int = 0
    bias_rate: float = 0.65  # 0.5 left CHAIRs at 0.215, too close to the 0.20 bar
    vision_steps: int = 1600
    labeler_steps: int = 900
    policy_steps: int = 1500
    claim_steps: int = 1300
    batch: int = 48
    lr: float = 1e-3

    def scaled(self, fraction: float) -> BuildPlan:
        """The same build with every model's step budget times `fraction` (at least 20 steps each):
        a smoke build that runs every builder end to end in minutes; it does not meet the bars."""
        from dataclasses import replace

        steps = ("vision_steps", "labeler_steps", "policy_steps", "claim_steps")
        return replace(self, **{k: max(20, round(getattr(self, k) * fraction)) for k in steps})


def build(out: str | Path, plan: BuildPlan = BuildPlan()) -> dict:
    """Build whatever is missing under `out`; returns the build manifest.

    After the vision tower, two lanes train side by side, one core each (tiny models use a
    second thread poorly): labeler then policy, and the claim LLM.
    """
    import resource

    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "build.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest["plan"] = asdict(plan)
    if all(_is_model(out / r) for r in TOY_ROLES):
        log.info(f"toy build: all models present in {out}, nothing to do")
        return manifest
    t0 = time.time()
    processor = models.build_processor(models.train_tokenizer(examples.corpus(plan.seed)))
    _vision_tower(out, plan, processor, manifest)

    lanes = [[r for r in lane if not _is_model(out / r)] for lane in (("labeler", "policy"), ("claim_llm",))]
    lanes = [lane for lane in lanes if lane]
    threads = max(1, (os.cpu_count() or 1) // len(lanes))
    if len(lanes) == 1:
        results = [_train_lane(str(out), plan, lanes[0], threads, 0)]
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(len(lanes), mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_train_lane, str(out), plan, lane, threads, i) for i, lane in enumerate(lanes)]
            results = [f.result() for f in futures]
    for result in results:
        manifest.update(result)
    usage = [resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    manifest["peak_rss_mb"] = round(max(usage) / 1024, 1)  # the largest single process
    manifest["seconds"] = round(time.time() - t0, 1)
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return manifest


def _train_lane(out: str, plan: BuildPlan, roles: list[str], threads: int, position: int) -> dict:
    """Train the given roles in order (a separate process); returns their manifest entries."""
    import torch
    from transformers import CLIPVisionModel

    torch.set_num_threads(threads)
    out_path = Path(out)
    tokenizer = models.train_tokenizer(examples.corpus(plan.seed))  # deterministic: same tokenizer in every lane
    processor = models.build_processor(tokenizer)
    done = {}
    for role in roles:
        t0 = time.time()
        progress = _progress(role, position)
        if role == "claim_llm":
            model = models.build_claim_llm(tokenizer, seed=plan.seed)

            def claim_batch(step: int):
                start = step * (plan.batch // 2)
                return [e for i in range(start, start + plan.batch // 2) for e in examples.claim_examples(plan.seed, i)]

            sft.train(model, tokenizer, claim_batch, plan.claim_steps, plan.lr, progress)
            _save(out_path / role, model, tokenizer)
            steps = plan.claim_steps
        else:
            tower = CLIPVisionModel.from_pretrained(out_path / "vision_tower")
            model = models.build_vlm(tokenizer, tower, seed=plan.seed)
            for p in model.model.vision_tower.parameters():  # the eyes stay as pre-trained
                p.requires_grad_(False)
            qa_share, bias, steps = (
                (0.75, 0.0, plan.labeler_steps) if role == "labeler" else (0.5, plan.bias_rate, plan.policy_steps)
            )
            sft.train(model, processor, _vlm_batches(plan, qa_share, bias), steps, plan.lr, progress)
            _save(out_path / role, model, processor)
        done[role] = {"steps": steps, "seconds": round(time.time() - t0, 1), "threads": threads}
    return done


def _vision_tower(out: Path, plan: BuildPlan, processor, manifest: dict):
    from transformers import CLIPVisionModel

    path = out / "vision_tower"
    if _is_model(path):
        return CLIPVisionModel.from_pretrained(path)
    t0 = time.time()
    tower, head = vision.pretrain_vision(
        models.vision_config(),
        processor.image_processor,
        plan.vision_steps,
        128,
        plan.lr,
        plan.seed,
        _progress("vision", 0),
    )
    manifest["vision_tower"] = {
        "steps": plan.vision_steps,
        "seconds": round(time.time() - t0, 1),
        **vision.vision_accuracy(tower, head, processor.image_processor, 1000, plan.seed + 1),
    }
    _save(path, tower, processor.image_processor)
    return tower


def _vlm_batches(plan: BuildPlan, qa_share: float, bias_rate: float):
    def make_batch(step: int):
        rng = random.Random(f"batch-{plan.seed}-{step}-{qa_share}")
        batch = []
        for k in range(plan.batch):
            index = examples.TRAIN_OFFSET + step * plan.batch + k
            if rng.random() < qa_share:
                batch += examples.qa_examples(plan.seed, index, 1)
            else:
                batch.append(examples.caption_example(plan.seed, index, bias_rate))
        return batch

    return make_batch


def _progress(name: str, position: int):
    from tqdm import tqdm

    bar = None

    def update(step: int, total: int, **stats):
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=f"toy build: {name}", unit="step", mininterval=2.0, position=position)
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in stats.items() if isinstance(v, float)}, refresh=False)
        if step == total:
            bar.close()

    return update


def _is_model(path: Path) -> bool:
    return (path / "config.json").exists()


def _save(path: Path, model, processor) -> None:
    """Write to a temporary folder, then rename: a crash never leaves a half-written model."""
    tmp = path.with_name(path.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)
