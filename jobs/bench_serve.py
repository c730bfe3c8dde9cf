"""Load benchmark of the ranker over HTTP: requests/s and p50/p99 latency of POST /v1/rank at
concurrency 1, 8 and 32, with dynamic batching on and off, in one run; prints JSON.

    python jobs/bench_serve.py [--requests 96] [--candidates 4]

First scores the same requests in-process, 1 and 32 at a time (the ceiling without HTTP). Then
starts a local Ray, deploys the app twice (serve.max_batch_size 16, then 1) on 127.0.0.1 with
the committed ShapesWorld policy as both policy and reference (the cost does not depend on the
weights), and fires identical-size requests from a thread pool.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=96, help="requests per concurrency level (default 96)")
    ap.add_argument("--candidates", type=int, default=4, help="candidates per request (default 4)")
    ap.add_argument("--port", type=int, default=8123)
    args = ap.parse_args()

    import ray
    from ray import serve

    from rlaifv_ray.config import validate_config
    from rlaifv_ray.serve.app import bind
    from rlaifv_ray.toyworld.build import PRETRAINED
    from rlaifv_ray.toyworld.world import png_bytes, scene_and_image

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": args.port})
    url = f"http://127.0.0.1:{args.port}/v1/rank"
    answers = ["There is a red circle. There is a blue square.", "A green triangle is visible.",
               "I can see a yellow square and a red triangle.", "There is a blue circle."]
    bodies = [json.dumps({"image": base64.b64encode(png_bytes(scene_and_image(3, i)[1])).decode(),
                          "instruction": "Describe the image.",
                          "candidates": [answers[(i + k) % 4] for k in range(args.candidates)]}).encode()
              for i in range(16)]
    result = {"requests": args.requests, "candidates": args.candidates, "cpus": os.cpu_count(),
              "engine_only": _engine_only(bodies), "runs": {}}
    for mode, batch in (("batched", 16), ("unbatched", 1)):
        config = validate_config({"run_dir": "/tmp/bench-serve", "models": {"policy": {"path": str(PRETRAINED / "policy")},
                                  "labeler_mode": "self", "claims": "rules"},
                                  "serve": {"reference": str(PRETRAINED / "policy"), "max_batch_size": batch,
                                            "num_cpus": float(os.cpu_count())}})
        serve.run(bind(config), name="ranker", route_prefix="/")
        _fire(url, bodies, 4, 8)  # warm-up
        for conc in (1, 8, 32):
            result["runs"][f"{mode}_c{conc}"] = _fire(url, bodies, conc, args.requests)
        serve.delete("ranker")
    r = result["runs"]
    result["throughput_ratio_batched_over_unbatched_c32"] = r["batched_c32"]["rps"] / r["unbatched_c32"]["rps"]
    print(json.dumps(result, indent=2), flush=True)
    serve.shutdown()
    ray.shutdown()


def _engine_only(bodies: list[bytes]) -> dict:
    """The ceiling without HTTP: Ranker.score in this process on the same requests, 1 vs 32 at a time."""
    import io

    import torch
    from PIL import Image

    from rlaifv_ray.reward import Ranker
    from rlaifv_ray.toyworld.build import PRETRAINED

    torch.set_num_threads(os.cpu_count())
    ranker = Ranker.load(str(PRETRAINED / "policy"), str(PRETRAINED / "policy"), 0.1)
    items = []
    for i in range(32):
        body = json.loads(bodies[i % len(bodies)])
        items.append((Image.open(io.BytesIO(base64.b64decode(body["image"]))).convert("RGB"), body["instruction"],
                      body["candidates"]))
    ranker.score(items[:2])  # warm-up
    out = {}
    for size in (1, 32):
        t0 = time.perf_counter()
        for start in range(0, 64, size):
            ranker.score([items[(start + k) % 32] for k in range(size)])
        out[f"ms_per_request_batch{size}"] = round(1000 * (time.perf_counter() - t0) / 64, 1)
    out["ratio_batch32_over_batch1"] = round(out["ms_per_request_batch1"] / out["ms_per_request_batch32"], 2)
    return out


def _fire(url: str, bodies: list[bytes], concurrency: int, total: int) -> dict:
    def one(i: int) -> float:
        req = urllib.request.Request(url, data=bodies[i % len(bodies)], method="POST",
                                     headers={"Content-Type": "application/json"})
        t0 = time.perf_counter()
        with urllib.request.urlopen(req, timeout=300) as r:
            r.read()
            assert r.status == 200
        return time.perf_counter() - t0

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        lat = sorted(pool.map(one, range(total)))
    wall = time.perf_counter() - t0
    return {"rps": round(total / wall, 2), "p50_ms": round(1000 * statistics.median(lat), 1),
            "p99_ms": round(1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], 1)}


if __name__ == "__main__":
    main()
