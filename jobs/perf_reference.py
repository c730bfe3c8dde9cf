"""Reference log-probs for an existing preference dataset: ours (computed once on Ray Data before
training) vs TRL's own way (a live reference model in the trainer), on the same pairs; prints JSON.

    python jobs/perf_reference.py --pairs 5000 [--steps 200]

1. N ShapesWorld pairs written as TRL-format parquet shards (toyworld/datasets.py).
2. ours/reference: `import_pairs` streams them through ReferenceLogps actors (Ray Data, a local
   2-CPU Ray): wall time, rows/s, the peak resident memory of all Ray processes together.
3. DPO for --steps steps on those pairs, each in its own process under /usr/bin/time -v:
   ours/train: TRL's loss with the stored reference log-probs (no reference model in memory);
   trl/train: TRL's DPOTrainer holding a live reference model (its default for vision data).
   The live reference's cost per pair is the step-time difference; its memory, the peak-RSS one.
The steps are a slice of one epoch with the same batch size, seed, order and images in both.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=5000, help="generated pairs (default 5000)")
    ap.add_argument("--shards", type=int, default=8, help="parquet shards (default 8)")
    ap.add_argument("--steps", type=int, default=200, help="DPO steps timed per trainer (default 200)")
    ap.add_argument("--batch-size", type=int, default=8, help="DPO batch size (default 8)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        from rlaifv_ray.toyworld.datasets import write_pair_shards

        t0 = time.time()
        write_pair_shards(f"{tmp}/pairs", "trl", args.pairs, args.shards)
        result = {
            "pairs": args.pairs,
            "shards": args.shards,
            "cpus": os.cpu_count(),
            "generate_seconds": round(time.time() - t0, 1),
        }
        result["ours_reference"] = _reference(tmp, args)
        for mode in ("ours", "trl"):
            result[f"{mode}_train"] = _train(mode, tmp, args)
        o, t, r = result["ours_train"], result["trl_train"], result["ours_reference"]
        live_per_pair = (t["seconds_per_step"] - o["seconds_per_step"]) / args.batch_size
        result["comparison"] = {
            "reference_rows_per_s_ours": r["rows_per_s"],
            "reference_rows_per_busy_s_ours": r["rows_per_busy_s"],
            "reference_rows_per_s_trl_live": round(1 / live_per_pair, 1) if live_per_pair > 0 else None,
            "reference_speedup_ours_vs_trl": round(r["rows_per_s"] * live_per_pair, 3) if live_per_pair > 0 else None,
            "same_loss": o["loss"] == t["loss"],
            "train_step_seconds_ratio_trl_vs_ours": round(t["seconds_per_step"] / o["seconds_per_step"], 3),
            "train_peak_rss_mb_trl_minus_ours": round(t["max_rss_mb"] - o["max_rss_mb"], 1),
            "train_peak_rss_ratio_trl_vs_ours": round(t["max_rss_mb"] / o["max_rss_mb"], 3),
        }
        print(json.dumps(result, indent=2))


def _reference(tmp: str, args) -> dict:
    """import_pairs on a local Ray; peak RSS summed over every process of the Ray session."""
    import psutil
    import ray

    from rlaifv_ray.config import load_config
    from rlaifv_ray.pipeline.dataset_pairs import import_pairs

    config = load_config("toy", [f"run_dir={tmp}/run", "resources.reference.batch_size=32"])
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    peak, stop = [0], threading.Event()

    def sample():
        me = psutil.Process()
        while not stop.wait(0.2):
            procs = [me] + me.children(recursive=True)
            total = 0
            for p in procs:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            peak[0] = max(peak[0], total)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    t0 = time.time()
    metrics = import_pairs(config, 0, config.models.policy.path, f"{tmp}/pairs")
    seconds = time.time() - t0
    stop.set()
    ray.shutdown()
    busy = sum(json.loads(p.read_text())["seconds"] for p in Path(tmp, "run/iter_000/_timings/pairs").glob("*.json"))
    return {
        "seconds": round(seconds, 1),
        "rows": metrics["pairs"],
        "rows_per_s": round(metrics["pairs"] / seconds, 1),
        # actor time in the stage itself (fetch, decode, forward, write): without Ray and model start-up
        "busy_seconds": round(busy, 1),
        "rows_per_busy_s": round(metrics["pairs"] / busy, 1),
        "ray_processes_peak_rss_mb": round(peak[0] / 2**20, 1),
        "reference_actors": list(config.resources.reference.concurrency),
    }


_TRAIN = r"""
import json, sys, time
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads(2)
from rlaifv_ray import schema as S
from rlaifv_ray.config import TrainConfig, load_config
from rlaifv_ray.storage.images import fetch_images
from rlaifv_ray.storage.store import RunStore
from rlaifv_ray.train.dpo import build_trainer, dpo_args, load_policy, pair_examples

mode, run, steps, batch = {mode!r}, {run!r}, {steps}, {batch}
policy = load_config("toy").models.policy.path
store = RunStore(run)
pairs = store.read_table("iter_000/pairs", S.schema("pairs")).to_pydict()
examples = pair_examples(pairs, fetch_images(store, "iter_000", pairs[S.IMAGE_ID]))[: steps * batch]
args = dpo_args(TrainConfig(batch_size=batch, lr=3e-5), run + "/bench_" + mode, save_steps=10**9)
args.max_steps = steps
model, processor = load_policy(policy)
if mode == "ours":
    trainer = build_trainer(model, processor, examples, args)
else:
    import datasets
    from trl import DPOTrainer
    from rlaifv_ray.media import load_image
    from rlaifv_ray.train.dpo import freeze_vision_tower
    freeze_vision_tower(model)
    reference, _ = load_policy(policy)
    live = [dict((k, v) for k, v in e.items() if not k.startswith("ref_")) for e in examples]
    for e in live:
        e["images"] = [load_image(b) for b in e["images"]]
    trainer = DPOTrainer(model=model, ref_model=reference, args=args, processing_class=processor,
                         train_dataset=datasets.Dataset.from_list(live))
t0 = time.time()
out = trainer.train()
seconds = time.time() - t0
print("RESULT " + json.dumps(dict(seconds=seconds, steps=out.global_step, loss=out.training_loss)))
"""


def _train(mode: str, tmp: str, args) -> dict:
    code = _TRAIN.format(root=str(ROOT), mode=mode, run=f"{tmp}/run", steps=args.steps, batch=args.batch_size)
    done = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-c", code], capture_output=True, text=True)
    found = re.search(r"^RESULT (.*)$", done.stdout, re.M)
    if done.returncode != 0 or not found:
        sys.exit(f"{mode} training failed:\n{done.stderr[-3000:]}")
    out = json.loads(found.group(1))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    return {
        "steps": out["steps"],
        "seconds": round(out["seconds"], 1),
        "seconds_per_step": round(out["seconds"] / out["steps"], 4),
        "loss": round(out["loss"], 4),
        "max_rss_mb": round(rss / 1024, 1),
    }


if __name__ == "__main__":
    main()
