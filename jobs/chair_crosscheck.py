"""Cross-check of two independent CHAIR implementations on a run's ShapesWorld caption benchmark.

For every policy a run evaluated on a `kind: chair` ShapesWorld benchmark (the demo's `objhal`),
its stored answers are scored twice: by the benchmark code (COCO-format annotations, lemmas,
vocabulary phrases: rlaifv_ray/benchmarks/) and by the held-out ShapesWorld evaluator
(toyworld/hallucination.py: a regex over colour + shape, truth regenerated from the world by image index).
CHAIRs and recall must be equal; CHAIRi differs only where an answer names one object twice (CHAIR
counts every mention, the ShapesWorld evaluator every object once). Prints JSON.

    python jobs/chair_crosscheck.py RUN [--bench objhal] [--seed 0]
"""

from __future__ import annotations

import argparse
import json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run")
    parser.add_argument("--bench", default="objhal", help="the benchmark's name in the run (default objhal)")
    parser.add_argument("--seed", type=int, default=0, help="the seed the benchmark was written with (default 0)")
    args = parser.parse_args()

    import yaml

    from rlaifv_ray import schema as S
    from rlaifv_ray.config import BenchmarkConfig
    from rlaifv_ray.pipeline.benchmark_answers import BENCH_DIR, read_benchmark
    from rlaifv_ray.storage.store import RunStore
    from rlaifv_ray.toyworld.datasets import bench_scene
    from rlaifv_ray.toyworld.hallucination import hallucination_metrics, mentions

    store = RunStore(args.run)
    config = yaml.safe_load(store.read_bytes("config.yaml"))
    entry = next(b for b in config["eval"]["benchmarks"] if (b.get("name") or "") == args.bench)
    bench = read_benchmark(BenchmarkConfig.model_validate(entry))
    out = {}
    for k in range(len(store.read_json("summary.json") or [])):
        rel = f"{BENCH_DIR}/{args.bench}/policy_{k:03d}"
        table = store.read_table(rel, S.schema("answers"), columns=[S.PROMPT_ID, S.ANSWER]).to_pydict()
        answers = dict(zip(table[S.PROMPT_ID], table[S.ANSWER]))
        questions = [q for q in bench.questions if q.qid in answers]
        texts = [answers[q.qid] for q in questions]
        ours, _ = bench.score(questions, texts)
        theirs = hallucination_metrics(texts, [bench_scene(q.image, args.seed).kinds for q in questions])
        repeats = sum(len(bench.scorer.mentions(t)) != len(mentions(t)) for t in texts)
        out[f"policy_{k:03d}"] = {
            "benchmark": {m: ours[m] for m in ("n", "chair_s", "recall", "chair_i")},
            "shapesworld_evaluator": {m: theirs[m] for m in ("n", "chair_s", "recall", "chair_i")},
            "chair_s_and_recall_equal": (ours["chair_s"], ours["recall"]) == (theirs["chair_s"], theirs["recall"]),
            "answers_naming_an_object_twice": repeats,
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
