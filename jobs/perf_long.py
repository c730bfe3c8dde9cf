"""A long feedback iteration on one machine: ShapesWorld prompts x N candidates through engine sim
(rlaifv_ray/engines/sim.py) with its latencies at zero, so that what is measured is the pipeline.
Prints JSON.

For each prompt count (a fresh Ray and driver process each):
- rows per stage and quarantined rows (nothing lost: candidates = prompts x N, and every answer is
  in labels or in quarantine);
- the driver's peak RSS over the whole iteration and in each step (prompts, stream, build_pairs,
  reference, metrics), sampled every 0.5 s;
- wall seconds per step.
`--interrupt K` also runs K prompts a second time, killed (SIGKILL, Ray and all) half-way through
STEP (`--at stream`: when half the labels batches are committed; `--at pairs`: when the pair step
writes its first part), then rerun on the same run directory: the rerun's log says what it
skipped, and its pairs are compared, row for row, with the undisturbed run's (a digest of every
pair part, in part order).

    python jobs/perf_long.py --prompts 10000,30000,100000 --n 10 --interrupt 10000 --json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobs.perf_scale import Probe

MODELS = {"policy": "sim:7b", "claim_llm": "sim:8b", "labeler": "sim:34b"}
LABEL_BATCH = 64
WATCH = {"stream": "_timings/labels", "pairs": "pairs"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", default="10000,30000,100000", help="prompt counts, comma-separated")
    ap.add_argument("--n", type=int, default=10, help="candidates per prompt (default 10)")
    ap.add_argument("--interrupt", type=int, help="also run this many prompts killed mid-way and rerun")
    ap.add_argument("--at", choices=sorted(WATCH), default="pairs", help="where the kill lands (default pairs)")
    ap.add_argument("--json", action="store_true", help="print only the JSON")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: one run, in this process
    ap.add_argument("--run-dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.n, args.run_dir)))
        return
    say = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))
    out: dict = {"n": args.n, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for p in [int(x) for x in args.prompts.split(",")]:
            say(f"{p} prompts x {args.n} ...")
            row = child(p, args.n, f"{tmp}/run-{p}")
            say(json.dumps({k: v for k, v in row.items() if k != "log_tail"}))
            out["runs"].append(row)
        if args.interrupt:
            out["interrupted"] = interrupted(args.interrupt, args.n, args.at, tmp, out["runs"], say)
    print(json.dumps(out, indent=2))


def child(prompts: int, n: int, run_dir: str) -> dict:
    cmd = [sys.executable, __file__, "--one", str(prompts), "--n", str(n), "--run-dir", run_dir]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{prompts} prompts failed:\n{done.stderr[-4000:]}")
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row["skipped"] = [line.split("] ")[-1] for line in done.stderr.splitlines() if "skipped" in line]
    return row


def interrupted(prompts: int, n: int, at: str, tmp: str, runs: list[dict], say) -> dict:
    """Kill a run of PROMPTS when its first parts of AT are written; rerun it; compare its pairs."""
    run_dir = f"{tmp}/interrupted-{prompts}"
    watch = Path(run_dir, "iter_000", WATCH[at])
    enough = prompts * n // LABEL_BATCH // 2 if at == "stream" else 1
    cmd = [sys.executable, __file__, "--one", str(prompts), "--n", str(n), "--run-dir", run_dir]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    t0 = time.time()
    while proc.poll() is None and not (watch.exists() and sum(1 for _ in watch.iterdir()) >= enough):
        time.sleep(0.5)
    killed_after = round(time.time() - t0, 1)
    if proc.poll() is not None:
        raise SystemExit(f"the run of {prompts} prompts ended before the kill: nothing to resume")
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray it started, at once
    proc.wait()
    say(f"killed {prompts} prompts at {at} after {killed_after} s; rerunning")
    rerun = child(prompts, n, run_dir)
    undisturbed = next((r for r in runs if r["prompts"] == prompts), None)
    return {
        "prompts": prompts,
        "killed_at": at,
        "killed_after_s": killed_after,
        "rerun": rerun,
        "pairs_equal_undisturbed": None
        if undisturbed is None
        else rerun["pairs_digest"] == undisturbed["pairs_digest"],
    }


def run_one(prompts: int, n: int, run_dir: str) -> dict:
    import logging

    import ray

    from rlaifv_ray.config import validate_config
    from rlaifv_ray.pipeline.feedback import run_feedback

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    sim = {"engine": "sim", "sim": {"time_scale": 0.0}}
    pool = {"concurrency": [1, 1], "num_gpus": 1, "num_cpus": 0.25}
    config = validate_config(
        {
            "run_dir": run_dir,
            "models": {r: {"path": m, **sim} for r, m in MODELS.items()},
            "sampling": {"n": n, "max_new_tokens": 512},
            "resources": {
                "sample": {**pool, "batch_size": 16},
                "claims": {**pool, "batch_size": 64},
                "label": {**pool, "batch_size": LABEL_BATCH},
                "reference": {**pool, "batch_size": 64},
            },
        }
    )
    ray.init(num_gpus=4, include_dashboard=False, log_to_driver=False)
    probe = Probe()
    probe.start()
    t0 = time.time()
    timeline = []
    probe.on_sample = lambda rss: timeline.append((time.time() - t0, rss))
    metrics = run_feedback(config, 0, "sim:7b", f"toy:{prompts}")
    probe.stop()
    ray.shutdown()
    walls = metrics["wall_seconds"]
    ends = [("prompts", walls.get("prompts", 0.0))]
    for step in ("stream", "build_pairs", "reference"):
        ends.append((step, ends[-1][1] + walls.get(step, 0.0)))
    ends.append(("metrics", float("inf")))  # and the pairs' manifest
    by_step, start = {}, 0.0
    for step, end in ends:  # the RSS peak in each step's window of the timeline
        by_step[step] = round(max((r for t, r in timeline if start <= t < end), default=0) / 2**20, 1)
        start = end
    return {
        "prompts": prompts,
        "rows": metrics["rows"],
        "quarantined": metrics["quarantined"],
        "answers_accounted": metrics["rows"]["labels"]
        + sum(metrics["quarantined"].get(s, 0) for s in ("claims", "labels")),
        "driver_rss_peak_mb": round(probe.rss_peak / 2**20, 1),
        "driver_rss_peak_mb_by_step": by_step,
        "wall_seconds": walls,
        "pairs_digest": pairs_digest(run_dir),
    }


def pairs_digest(run_dir: str) -> str:
    import pyarrow.parquet as pq

    h = hashlib.sha256()
    for part in sorted(Path(run_dir, "iter_000", "pairs").glob("part-*.parquet")):
        h.update(json.dumps(pq.read_table(part).to_pylist(), sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


if __name__ == "__main__":
    main()
