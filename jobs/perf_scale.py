"""The feedback stream at cluster shape, on one machine: engine sim (rlaifv_ray/engines/sim.py) on a
Ray that declares GPUs it does not have. Prints JSON; writes a PNG of each pool's busy fraction.

For each cluster size G (a fresh Ray and driver process each):
- the GPUs are split over the stream's pools (sample 7B, claims 8B, label 34B) in proportion to
  each pool's simulated GPU seconds per answer (measured here, in-process, latencies at zero); the
  labeler pool is elastic, from a quarter of its share up to all of it;
- answers_per_s over the stream; ideal_answers_per_s: the bottleneck pool's simulated compute
  alone (its GPUs / its GPU seconds per answer, scaled); efficiency = their ratio;
- each pool's busy fraction (batch seconds / (its GPUs x stream wall)) and over time; the labeler
  pool's size over time (actors with a batch in each time bin);
- the driver's peak RSS, the object store's peak use and spilled bytes (sampled every 0.5 s).
cpu_ms_per_row per stage comes from one run with the latencies at zero: the pipeline's own CPU.
`--time-scale auto` picks the scale at which that CPU, at the ideal rate of the largest size, takes
at most a third of this machine's cores, so the machine is not the limit.

    python jobs/perf_scale.py --gpus 8,16,32,64 --prompts 2000 --n 10 --json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODELS = {"policy": "sim:7b", "claim_llm": "sim:8b", "labeler": "sim:34b"}
POOLS = ("candidates", "claims", "labels")
BIN_S = 2.0  # width of the busy-fraction time bins (seconds of the scaled run)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpus", default="8,16,32,64", help="cluster sizes, comma-separated (default 8,16,32,64)")
    ap.add_argument(
        "--prompts",
        type=int,
        default=2000,
        help="ShapesWorld prompts at the largest size; a smaller size gets as many per GPU (default 2000)",
    )
    ap.add_argument("--n", type=int, default=10, help="candidates per prompt (default 10)")
    ap.add_argument("--time-scale", default="auto", help="simulated seconds x this = seconds slept (default auto)")
    ap.add_argument("--png", default="perf_scale.png", help="busy fractions over time (default perf_scale.png)")
    ap.add_argument(
        "--fixed-labeler", action="store_true", help="the labeler pool at its whole share from the start (not elastic)"
    )
    ap.add_argument(
        "--sample-batch",
        type=int,
        default=16,
        help="prompts per sampling batch, and per stream block (default 16, the config's default)",
    )
    ap.add_argument("--json", action="store_true", help="print only the JSON")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: one size, in this process
    ap.add_argument("--plan", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        plan = json.loads(args.plan)
        print(json.dumps(run_size(args.one, args.prompts, args.n, plan, args.fixed_labeler, args.sample_batch)))
        return
    sizes = [int(g) for g in args.gpus.split(",")]
    say = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))
    gpu_s = gpu_seconds_per_answer(args.n)
    say(f"simulated GPU seconds per answer: {gpu_s}")
    cpu = child(8, min(args.prompts, 400), args.n, {"gpu_s": gpu_s, "time_scale": 0.0}, sample_batch=args.sample_batch)
    cpu_ms = {s: p["cpu_ms_per_row"] for s, p in cpu["pools"].items()}
    say(f"cpu ms per row (latencies at zero): {cpu_ms}")
    if args.time_scale == "auto":
        # answers/s at the largest size's ideal rate (scale 1) x CPU s per answer <= a third of the cores
        ideal = max(sizes) / sum(gpu_s.values())
        time_scale = round(max(0.02, 3 * ideal * sum(cpu_ms.values()) / 1000 / (os.cpu_count() or 1)), 3)
    else:
        time_scale = float(args.time_scale)
    rows = []
    for g in sizes:
        say(f"{g} simulated GPUs, time scale {time_scale} ...")
        prompts = max(1, round(args.prompts * g / max(sizes)))
        plan = {"gpu_s": gpu_s, "time_scale": time_scale}
        rows.append(child(g, prompts, args.n, plan, args.fixed_labeler, args.sample_batch))
        say(json.dumps({k: v for k, v in rows[-1].items() if k != "series"}))
    plot(rows, args.png)
    result = {
        "prompts": args.prompts,
        "n": args.n,
        "cpus": os.cpu_count(),
        "time_scale": time_scale,
        "sample_batch": args.sample_batch,
        "gpu_seconds_per_answer": gpu_s,
        "cpu_ms_per_row": cpu_ms,
        "png": args.png,
        "sizes": [{k: v for k, v in r.items() if k != "series"} for r in rows],
    }
    print(json.dumps(result, indent=2))


def gpu_seconds_per_answer(n: int, prompts: int = 16) -> dict[str, float]:
    """Each stream pool's simulated GPU seconds per answer: its stage run in this process on
    ShapesWorld prompts, the latencies at zero."""
    from rlaifv_ray import schema as S
    from rlaifv_ray.config import DataConfig
    from rlaifv_ray.inputs import PromptSource
    from rlaifv_ray.stages.extract_claims import ExtractClaims
    from rlaifv_ray.stages.label_claims import LabelClaims
    from rlaifv_ray.stages.sample_candidates import SampleCandidates

    opts = {"time_scale": 0.0}
    rows = PromptSource(f"toy:{prompts}").read(0, 0, DataConfig(input=f"toy:{prompts}"))
    batch = {k: [r[k] for r in rows] for k in (S.PROMPT_ID, S.IMAGE, S.INSTRUCTION)}
    stages = {
        "candidates": SampleCandidates("sim:7b", n, 0.7, 1.0, 512, 0, engine="sim", engine_options=opts),
        "claims": ExtractClaims("llm", "sim:8b", "sim", opts, "instruct", 0.0, 1.0, 512, 0),
        "labels": LabelClaims("sim:34b", "sim", opts),
    }
    out = {}
    for name, stage in stages.items():
        batch = stage(batch)
        out[name] = round(stage.engine.busy_seconds / len(batch[S.ANSWER]), 5)
    return out


def child(g: int, prompts: int, n: int, plan: dict, fixed_labeler: bool = False, sample_batch: int = 16) -> dict:
    """One size in a fresh process: its own Ray and a driver RSS of its own."""
    cmd = [sys.executable, __file__, "--one", str(g), "--prompts", str(prompts), "--n", str(n)]
    cmd += ["--sample-batch", str(sample_batch)]
    cmd += ["--fixed-labeler"] if fixed_labeler else []
    done = subprocess.run([*cmd, "--plan", json.dumps(plan)], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"size {g} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def split(g: int, gpu_s: dict[str, float]) -> dict[str, int]:
    """G GPUs over the pools in proportion to their GPU seconds per answer, at least one each."""
    total = sum(gpu_s.values())
    share = {s: max(1, round(g * v / total)) for s, v in gpu_s.items()}
    while sum(share.values()) > g:  # rounding up: take from the largest pool
        share[max(share, key=share.get)] -= 1
    return share


def run_size(g: int, prompts: int, n: int, plan: dict, fixed_labeler: bool, sample_batch: int) -> dict:
    import ray

    from rlaifv_ray.config import validate_config
    from rlaifv_ray.pipeline.feedback import run_feedback

    gpus = split(g, plan["gpu_s"])
    sim = {"engine": "sim", "sim": {"time_scale": plan["time_scale"]}}
    label_lo = gpus["labels"] if fixed_labeler else max(1, gpus["labels"] // 4)
    with tempfile.TemporaryDirectory() as tmp:
        config = validate_config(
            {
                "run_dir": f"{tmp}/run",
                "models": {r: {"path": m, **sim} for r, m in MODELS.items()},
                "sampling": {"n": n, "max_new_tokens": 512},
                "resources": {
                    "sample": _pool(gpus["candidates"], gpus["candidates"], sample_batch),
                    "claims": _pool(gpus["claims"], gpus["claims"], 64),
                    "label": _pool(label_lo, gpus["labels"], 64),
                    "reference": _pool(gpus["candidates"], gpus["candidates"], 64),
                },
            }
        )
        ray.init(num_gpus=g, num_cpus=max(4, g), include_dashboard=False, log_to_driver=False)
        probe = Probe()
        probe.start()
        metrics = run_feedback(config, 0, "sim:7b", f"toy:{prompts}")
        probe.stop()
        timings = _timings(config.run_dir)
        ray.shutdown()
    answers = metrics["rows"]["labels"]
    t0 = min(t["start"] for ts in timings.values() for t in ts)
    t1 = max(t["end"] for s in POOLS for t in timings[s])
    wall = t1 - t0
    ideal = min(gpus[s] / (plan["gpu_s"][s] * plan["time_scale"]) for s in POOLS) if plan["time_scale"] else None
    pools, series = {}, {}
    for s in POOLS:
        ts = timings[s]
        busy = sum(t["seconds"] for t in ts)
        pools[s] = {
            "gpus": gpus[s] if s != "labels" else [label_lo, gpus[s]],
            "busy_fraction": round(busy / (gpus[s] * wall), 3),
            # of a batch's time, the share in the stage's call (the model); the rest is the adapter's
            "stage_share": round(sum(t["stage_seconds"] for t in ts) / max(1e-9, busy), 3),
            # of each actor's time from its first batch to its last, the share with no batch running
            "actor_idle_fraction": _idle(ts),
            "cpu_ms_per_row": round(1000 * busy / max(1, sum(t["rows_out"] for t in ts)), 3),
        }
        series[s] = _series(ts, t0, t1, gpus[s])
        # the pipeline's start: when the pool's first batch started, and when its last actor's did
        # (the pool at its full size), after the stream's first batch
        firsts = {}
        for t in ts:
            firsts[t["actor"]] = min(t["start"], firsts.get(t["actor"], t["start"]))
        pools[s]["first_batch_s"] = round(min(firsts.values()) - t0, 1)
        pools[s]["full_pool_s"] = round(max(firsts.values()) - t0, 1)
    pools["labels"]["actors_over_time"] = series["labels"]["actors"]
    # steady state: every pool at its full size, until the sampler's end
    s0, s1 = max(p["full_pool_s"] for p in pools.values()) + t0, max(t["end"] for t in timings["candidates"])
    steady = _labelled(timings["labels"], s0, s1) / (s1 - s0) if s1 > s0 else None
    # ... and to the stream's end: all but the pools' start, drain included
    after_start = _labelled(timings["labels"], s0, t1) / (t1 - s0)
    return {
        "gpus": g,
        "prompts": prompts,
        "answers": answers,
        "stream_wall_s": round(wall, 1),
        "answers_per_s": round(answers / wall, 2),
        "ideal_answers_per_s": round(ideal, 2) if ideal else None,
        "efficiency": round(answers / wall / ideal, 3) if ideal else None,
        "steady_efficiency": round(steady / ideal, 3) if ideal and steady else None,
        "efficiency_after_start": round(after_start / ideal, 3) if ideal else None,
        "start_s": round(s0 - t0, 1),
        "drain_s": round(t1 - s1, 1),
        "pools": pools,
        "driver_rss_peak_mb": round(probe.rss_peak / 2**20, 1),
        "object_store_peak_mb": round(probe.store_peak / 2**20, 1),
        "spilled_mb": round(probe.spilled / 2**20, 1),
        "rows": metrics["rows"],
        "series": series,
    }


def _pool(lo: int, hi: int, batch: int) -> dict:
    return {"concurrency": [lo, hi], "batch_size": batch, "num_gpus": 1, "num_cpus": 0.25}


def _timings(run_dir: str) -> dict[str, list[dict]]:
    out = {}
    for stage in (*POOLS, "pairs"):
        folder = Path(run_dir, "iter_000", "_timings", stage)
        out[stage] = [json.loads(p.read_text()) for p in folder.glob("*.json")] if folder.exists() else []
    return out


def _labelled(ts: list[dict], lo: float, hi: float) -> int:
    """Rows of the batches begun and ended in [LO, HI]: the work in flight at the edges is not counted."""
    return sum(t["rows_out"] for t in ts if lo <= t["start"] and t["end"] <= hi)


def _idle(ts: list[dict]) -> float:
    by_actor: dict[str, list[dict]] = {}
    for t in ts:
        by_actor.setdefault(t["actor"], []).append(t)
    span = sum(max(t["end"] for t in a) - min(t["start"] for t in a) for a in by_actor.values())
    return round(1 - sum(t["seconds"] for t in ts) / max(1e-9, span), 3)


def _series(ts: list[dict], t0: float, t1: float, gpus: int) -> dict:
    """Busy fraction and distinct actors per BIN_S bin."""
    bins = max(1, int((t1 - t0) / BIN_S) + 1)
    busy, actors = [0.0] * bins, [set() for _ in range(bins)]
    for t in ts:
        for b in range(int((t["start"] - t0) / BIN_S), min(bins, int((t["end"] - t0) / BIN_S) + 1)):
            lo, hi = t0 + b * BIN_S, t0 + (b + 1) * BIN_S
            busy[b] += max(0.0, min(hi, t["end"]) - max(lo, t["start"]))
            actors[b].add(t["actor"])
    return {"busy": [round(x / (gpus * BIN_S), 3) for x in busy], "actors": [len(a) for a in actors]}


class Probe(threading.Thread):
    """The driver's RSS and the object store's use and spill, every 0.5 s (Ray's memory summary, a
    private API: the one that reports spilled bytes)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.rss_peak = self.store_peak = self.spilled = 0
        self.on_sample = None  # called with each RSS sample (jobs/perf_long.py keeps a timeline)
        self._done = threading.Event()

    def run(self) -> None:
        from ray._private.internal_api import get_memory_info_reply, get_state_from_address

        state = get_state_from_address(None)
        while not self._done.wait(0.5):
            rss = _rss()
            self.rss_peak = max(self.rss_peak, rss)
            if self.on_sample:
                self.on_sample(rss)
            try:
                stats = get_memory_info_reply(state).store_stats
            except Exception:  # noqa: BLE001 - a sample missed while Ray is busy; the next one counts
                continue
            self.store_peak = max(self.store_peak, stats.object_store_bytes_used)
            self.spilled = max(self.spilled, stats.spilled_bytes_total)

    def stop(self) -> None:
        self.rss_peak = max(self.rss_peak, _rss())
        self._done.set()
        self.join()


def _rss() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 1, figsize=(9, 2.4 * len(rows)), sharex=False, squeeze=False)
    for ax, r in zip(axes[:, 0], rows):
        for s, data in r["series"].items():
            times = [BIN_S * i for i in range(len(data["busy"]))]
            ax.plot(times, data["busy"], label=f"{s} ({r['pools'][s]['gpus']} GPUs)")
        ax.set_title(f"{r['gpus']} simulated GPUs: efficiency {r['efficiency']}", fontsize=10)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("busy fraction")
        ax.legend(fontsize=8, loc="lower right")
    axes[-1, 0].set_xlabel("seconds of the scaled run")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    main()
