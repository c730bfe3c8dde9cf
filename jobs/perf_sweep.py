"""What a sweep saves: 2 variants of the toy config that differ only in train.beta, as one
`rlaifv-ray sweep` against 2 separate `rlaifv-ray run`s, back to back on this machine; prints JSON.

    python jobs/perf_sweep.py [--input toy:64] [--iterations 1] [--betas 0.1 0.3]

Each is a fresh command with its own local Ray, as a user would run it. The sweep computes
iteration 0's feedback and the starting policy's evaluation once and copies them into the second
run (shared stages); everything downstream of a trained policy is computed per run either way, so
the saving shrinks as iterations grow. Also checked: both ways give the same pairs and the same
trained metrics per variant (the sweep changes where work happens, not what it computes).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "rlaifv_ray.cli"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", default="toy:64", help="prompts per iteration (default toy:64; the toy recipe: toy:256)")
    ap.add_argument("--iterations", type=int, default=1, help="iterations per run (default 1)")
    ap.add_argument("--betas", type=float, nargs=2, default=[0.1, 0.3], help="the two variants' train.beta")
    args = ap.parse_args()
    common = {"iterations": args.iterations, "data.input": args.input}
    variants = {f"beta-{b}": {"train.beta": b} for b in args.betas}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        separate = {}
        t0 = time.time()
        for name, over in variants.items():
            sets = {**common, **over, "run_dir": str(tmp / "separate" / name)}
            _command([*CLI, "run", "toy", "-q", *(a for k, v in sets.items() for a in ("--set", f"{k}={v}"))])
            separate[name] = tmp / "separate" / name
        separate_s = time.time() - t0

        sweep = {"base": "toy", "out": str(tmp / "sweep"), "seeds": [0], "set": common, "variants": variants}
        (tmp / "sweep.yaml").write_text(yaml.safe_dump(sweep, sort_keys=False))
        t0 = time.time()
        _command([*CLI, "sweep", "-q", str(tmp / "sweep.yaml")])
        sweep_s = time.time() - t0

        second = tmp / "sweep" / list(variants)[1] / "seed_0"
        shared = sorted(
            str(p.parent.relative_to(second)) for p in second.rglob("_SUCCESS") if "shared_from" in p.read_text()
        )
        same = {name: _last_row(separate[name]) == _last_row(tmp / "sweep" / name / "seed_0") for name in variants}
    print(
        json.dumps(
            {
                "input": args.input,
                "iterations": args.iterations,
                "variants": variants,
                "separate_runs_s": round(separate_s, 1),
                "sweep_s": round(sweep_s, 1),
                "sweep_over_separate": round(sweep_s / separate_s, 3),
                "stages_shared_by_the_second_run": shared,
                "same_metrics_both_ways": same,
            },
            indent=2,
        )
    )


def _command(cmd: list[str]) -> None:
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")


def _last_row(run: Path) -> dict:
    row = json.loads((run / "summary.json").read_text())[-1]
    return {k: row[k] for k in ("chair_s", "recall", "pairs", "dpo_loss_last")}


if __name__ == "__main__":
    main()
