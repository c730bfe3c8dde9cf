"""Bytes written per stage and the driver's peak memory for one feedback iteration; prints JSON.

Runs `rlaifv-ray feedback` on the shipped toy config under /usr/bin/time -v (the driver's maximum
resident set size) and sums the files each stage left in the run directory. ShapesWorld images are
tiny PNGs (~260 bytes); `--photo-side 512` gives each prompt a photo-sized JPEG instead (the scene
upscaled, with noise: ~100-200 KB, as the paper's images), which is where image bytes matter.

    python jobs/perf_dataplane.py --prompts 256 --n 8 [--photo-side 512]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=256, help="ShapesWorld prompts (default 256)")
    ap.add_argument("--n", type=int, default=8, help="candidates per prompt (default 8)")
    ap.add_argument(
        "--photo-side", type=int, default=0, help="photo-sized JPEG prompts of this side (default: toy PNGs)"
    )
    ap.add_argument("--keep", default=None, help="write the run here and keep it (default: a temp dir)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        run = Path(args.keep or f"{tmp}/run")
        source = (
            ["--input", _photos(Path(tmp), args.prompts, args.photo_side)]
            if args.photo_side
            else ["--toy", str(args.prompts)]
        )
        cmd = [
            "/usr/bin/time",
            "-v",
            sys.executable,
            "-m",
            "rlaifv_ray.cli",
            "feedback",
            str(ROOT / "rlaifv_ray" / "configs" / "toy.yaml"),
            *source,
            "--set",
            f"run_dir={run}",
            "--set",
            f"sampling.n={args.n}",
        ]
        t0 = time.time()
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        seconds = time.time() - t0
        if done.returncode != 0:
            sys.exit(done.stderr[-3000:])
        rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
        stages = {}
        iteration = run / "iter_000"
        for d in sorted(p for p in iteration.iterdir() if p.is_dir()):
            stages[d.name] = sum(f.stat().st_size for f in d.rglob("*") if f.is_file())
        print(
            json.dumps(
                {
                    "prompts": args.prompts,
                    "n": args.n,
                    "photo_side": args.photo_side,
                    "cpus": os.cpu_count(),
                    "seconds": round(seconds, 1),
                    "driver_max_rss_mb": round(int(rss.group(1)) / 1024, 1) if rss else None,
                    "bytes_by_stage": stages,
                    "bytes_total": sum(stages.values()),
                },
                indent=2,
            )
        )


def _photos(tmp: Path, n: int, side: int) -> str:
    """N ShapesWorld scenes as SIDE x SIDE noisy JPEGs and a JSONL of prompts over them."""
    import numpy as np
    from PIL import Image

    sys.path.insert(0, str(ROOT))
    from rlaifv_ray.toyworld.world import scene_and_image

    rng = np.random.default_rng(0)
    (tmp / "photos").mkdir()
    lines = []
    for i in range(n):
        img = np.asarray(scene_and_image(0, i)[1].resize((side, side)), dtype=np.int16)
        noisy = np.clip(img + rng.integers(-12, 13, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(tmp / "photos" / f"{i}.jpg", quality=90)
        lines.append(json.dumps({"id": f"photo-{i}", "image": f"photos/{i}.jpg", "instruction": "Describe the image."}))
    (tmp / "prompts.jsonl").write_text("\n".join(lines) + "\n")
    return str(tmp / "prompts.jsonl")


if __name__ == "__main__":
    main()
