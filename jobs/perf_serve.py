"""Load benchmark of the ranker over HTTP: requests/s and p50/p99 latency of POST /v1/rank at
concurrency 1, 8 and 32, with dynamic batching on and off, in one run; prints JSON.

    python jobs/perf_serve.py [--requests 96] [--candidates 4] [--rounds 3]

First scores the same requests in-process, 1 and 32 at a time (the ceiling without HTTP). Then
starts a local Ray and deploys the app twice side by side on 127.0.0.1 (serve.max_batch_size 16 at
/batched, 1 at /unbatched), with the committed ShapesWorld policy as both policy and reference (the
cost does not depend on the weights). Each concurrency level is measured in rounds that alternate
the two, so drift in this machine's speed hits both alike; rps is the median over rounds. Each
replica gets all CPUs but one (the Serve proxy and this load generator need one): on a 2-core
machine a replica with 2 torch threads stalls whenever the proxy runs.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import json
import os
import statistics
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODES = {"batched": 16, "unbatched": 1}


def main() -> None:
    args = _parse_args()
    import ray
    from ray import serve

    from rlaifv_ray.serve.app import bind

    bodies, configs = _bodies(args.candidates), _configs(args)
    result = {
        "requests": args.requests,
        "candidates": args.candidates,
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
        "replica_cpus": args.replica_cpus,
        "replica_gpus": args.replica_gpus,
        "score_batch": configs["batched"].serve.score_batch,
        "engine_only": _engine_only(bodies, args.replica_cpus, configs["batched"].serve.score_batch, args.rounds),
        "runs": {},
    }
    print(f"engine only: {result['engine_only']}", file=sys.stderr, flush=True)

    ray.init(num_cpus=max(os.cpu_count() or 2, 2 * args.replica_cpus), include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": args.port})
    for mode, config in configs.items():
        serve.run(bind(config), name=mode, route_prefix=f"/{mode}")
    urls = {mode: f"http://127.0.0.1:{args.port}/{mode}/v1/rank" for mode in MODES}
    for url in urls.values():
        _fire(url, bodies, 4, 8)  # warm-up
    # the floor: a GET /healthz costs the proxy, HTTP and Serve's routing but no model
    health = [
        _fire(f"http://127.0.0.1:{args.port}/batched/healthz", None, 32, 4 * args.requests)[0]
        for _ in range(args.rounds)
    ]
    floor_ms = 1000 / statistics.median(health)
    result["runs"] = _load_levels(urls, bodies, args)
    result.update(_ratios(result["runs"], result["engine_only"], floor_ms))
    ray.shutdown()  # before printing: Serve's shutdown chatter must not follow the JSON on stdout
    print(json.dumps(result, indent=2), flush=True)


def _parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=96, help="requests per concurrency level and round (default 96)")
    ap.add_argument("--candidates", type=int, default=4, help="candidates per request (default 4)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per concurrency level (default 3)")
    ap.add_argument(
        "--replica-cpus",
        type=int,
        default=max(1, (os.cpu_count() or 2) - 1),
        help="CPUs (and torch threads) per replica (default: all but one)",
    )
    ap.add_argument(
        "--replica-gpus",
        type=float,
        default=0.0,
        help="GPUs per replica (default 0; 0.5 puts both replicas on one GPU)",
    )
    ap.add_argument("--port", type=int, default=8123)
    return ap.parse_args()


def _bodies(candidates: int) -> list[bytes]:
    from rlaifv_ray.toyworld.world import png_bytes, scene_and_image

    answers = [
        "There is a red circle. There is a blue square.",
        "A green triangle is visible.",
        "I can see a yellow square and a red triangle.",
        "There is a blue circle.",
    ]
    return [
        json.dumps(
            {
                "image": base64.b64encode(png_bytes(scene_and_image(3, i)[1])).decode(),
                "instruction": "Describe the image.",
                "candidates": [answers[(i + k) % 4] for k in range(candidates)],
            }
        ).encode()
        for i in range(16)
    ]


def _configs(args) -> dict:
    from rlaifv_ray.config import validate_config
    from rlaifv_ray.locations import TOY_MODELS

    return {
        mode: validate_config(
            {
                "run_dir": "/tmp/bench-serve",
                "models": {"policy": {"path": str(TOY_MODELS / "policy")}, "labeler_mode": "self", "claims": "rules"},
                "serve": {
                    "reference": str(TOY_MODELS / "policy"),
                    "max_batch_size": batch,
                    "num_cpus": args.replica_cpus,
                    "num_gpus": args.replica_gpus,
                },
            }
        )
        for mode, batch in MODES.items()
    }


def _load_levels(urls: dict, bodies: list[bytes], args) -> dict:
    """Each mode at 1, 8 and 32 concurrent clients, modes alternating round by round."""
    out = {}
    for conc in (1, 8, 32):
        rounds = {mode: [] for mode in MODES}
        for r in range(args.rounds):
            for mode, url in urls.items():
                rounds[mode].append(_fire(url, bodies, conc, args.requests))
                print(f"c{conc} round {r + 1} {mode}: {rounds[mode][-1][0]:.1f} rps", file=sys.stderr, flush=True)
        for mode, runs in rounds.items():
            lat = sorted(x for _, lats in runs for x in lats)
            out[f"{mode}_c{conc}"] = {
                "rps": round(statistics.median(rps for rps, _ in runs), 2),
                "rps_per_round": [round(rps, 2) for rps, _ in runs],
                "p50_ms": round(1000 * statistics.median(lat), 1),
                "p99_ms": round(1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], 1),
            }
    return out


def _ratios(r: dict, e: dict, floor_ms: float) -> dict:
    return {
        "http_floor_ms_per_request": round(floor_ms, 1),
        # if HTTP work and scoring never overlapped: (batch-1 cost + floor) / (batch-32 cost + floor)
        "ratio_bound_engine_plus_http_floor": round(
            (e["ms_per_request_batch1"] + floor_ms) / (e["ms_per_request_batch32"] + floor_ms), 2
        ),
        "throughput_ratio_batched_over_unbatched_c32": round(r["batched_c32"]["rps"] / r["unbatched_c32"]["rps"], 2),
        "ratio_per_round_c32": [
            round(b / u, 2) for b, u in zip(r["batched_c32"]["rps_per_round"], r["unbatched_c32"]["rps_per_round"])
        ],
    }


def _engine_only(bodies: list[bytes], threads: int, score_batch: int, rounds: int) -> dict:
    """The ceiling without HTTP: Ranker.score in this process on the same requests, 1 vs 32 at a
    time, with the replica's threads and score batch; alternating rounds, medians."""
    import io

    import torch
    from PIL import Image

    from rlaifv_ray.locations import TOY_MODELS
    from rlaifv_ray.reward import Ranker

    torch.set_num_threads(threads)
    ranker = Ranker.load(str(TOY_MODELS / "policy"), str(TOY_MODELS / "policy"), 0.1, batch_size=score_batch)
    items = []
    for i in range(32):
        body = json.loads(bodies[i % len(bodies)])
        items.append(
            (
                Image.open(io.BytesIO(base64.b64decode(body["image"]))).convert("RGB"),
                body["instruction"],
                body["candidates"],
            )
        )
    ranker.score(items[:2])  # warm-up
    ms = {1: [], 32: []}
    for _ in range(rounds):
        for size in ms:
            t0 = time.perf_counter()
            for start in range(0, 64, size):
                ranker.score([items[(start + k) % 32] for k in range(size)])
            ms[size].append(1000 * (time.perf_counter() - t0) / 64)
    out = {f"ms_per_request_batch{size}": round(statistics.median(v), 1) for size, v in ms.items()}
    out["ratio_batch32_over_batch1"] = round(out["ms_per_request_batch1"] / out["ms_per_request_batch32"], 2)
    return out


def _fire(url: str, bodies: list[bytes] | None, concurrency: int, total: int) -> tuple[float, list[float]]:
    """(requests/s, latencies) of `total` requests (POSTs of the bodies, else GETs) from `concurrency` threads."""

    def one(i: int) -> float:
        req = (
            urllib.request.Request(
                url, data=bodies[i % len(bodies)], method="POST", headers={"Content-Type": "application/json"}
            )
            if bodies
            else url
        )
        t0 = time.perf_counter()
        with urllib.request.urlopen(req, timeout=300) as r:
            r.read()
            assert r.status == 200
        return time.perf_counter() - t0

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        lat = list(pool.map(one, range(total)))
    return total / (time.perf_counter() - t0), lat


if __name__ == "__main__":
    main()
