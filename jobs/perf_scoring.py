"""Scoring answers made elsewhere: `rlaifv-ray eval --bench chair --answers` over N generated answers.

Writes a COCO-format benchmark (300 images, 2-6 of the 80 categories each), N describe-the-image
questions over them and N answers of Object-HalBench length (60-120 words: filler text with object
names as synonyms, plurals and multi-word names, some absent from the image), then times the CLI end
to end (a fresh process: imports, parsing the files, scoring, JSON out) and the scoring alone in
process. Prints JSON.

    python jobs/perf_scoring.py [--answers 10000]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FILLER = (
    "the a an in on of with and is are near next to behind there some large small white black red old "
    "wooden bright sunny busy street room table-top scene image shows picture appears background "
    "standing sitting looking holding while two three several"
).split()


def write_files(folder: Path, n_answers: int, seed: int = 0) -> tuple[Path, Path, Path]:
    from rlaifv_ray.benchmarks.objects import coco_synonyms

    rng = random.Random(seed)
    synonyms = coco_synonyms()
    names = list(synonyms)
    truth = {i: rng.sample(names, rng.randint(2, 6)) for i in range(1, 301)}
    instances = {
        "images": [{"id": i, "file_name": f"COCO_val2014_{i:012d}.jpg"} for i in truth],
        "annotations": [
            {"id": n, "image_id": i, "category_id": names.index(o) + 1}
            for n, (i, o) in enumerate(((i, o) for i, objs in truth.items() for o in objs), 1)
        ],
        "categories": [{"id": k + 1, "name": name} for k, name in enumerate(names)],
    }
    (folder / "instances.json").write_text(json.dumps(instances))
    questions, answers = [], []
    for q in range(n_answers):
        image = rng.choice(list(truth))
        questions.append(
            {"question_id": q, "image": f"COCO_val2014_{image:012d}.jpg", "text": "Describe this image in detail."}
        )
        words = []
        while len(words) < rng.randint(60, 120):
            words += rng.sample(FILLER, 6)
            obj = rng.choice(truth[image]) if rng.random() < 0.8 else rng.choice(names)
            phrase = rng.choice(synonyms[obj])
            words.append(phrase + ("s" if rng.random() < 0.3 else "") + ("." if rng.random() < 0.3 else ""))
        answers.append({"question_id": q, "answer": " ".join(words).capitalize()})
    paths = folder / "questions.jsonl", folder / "answers.jsonl"
    for path, rows in zip(paths, (questions, answers)):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return paths[0], folder / "instances.json", paths[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        questions, instances, answers = write_files(Path(tmp), args.answers)
        words = sum(len(json.loads(line)["answer"].split()) for line in answers.read_text().splitlines())
        cmd = [sys.executable, "-m", "rlaifv_ray.cli", "eval", "--bench", "chair", "--file", str(questions)]
        cmd += ["--annotations", str(instances), "--answers", str(answers), "--json"]
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        cli_seconds = time.perf_counter() - t0
        metrics = json.loads(out.stdout)

        from rlaifv_ray.benchmarks import load_benchmark, parse_answers, score_answers

        t0 = time.perf_counter()
        bench = load_benchmark(
            "chair",
            {
                "questions": (str(questions), questions.read_text()),
                "annotations": (str(instances), instances.read_text()),
            },
        )
        parsed = parse_answers(answers.read_text(), str(answers))
        load_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        score_answers(bench, parsed, str(answers))
        cold = time.perf_counter() - t0  # the lemma cache fills as words are first seen
        t0 = time.perf_counter()
        again, _ = score_answers(bench, parsed, str(answers))
        warm = time.perf_counter() - t0
    assert again["chair_s"] == metrics["chair_s"]
    print(
        json.dumps(
            {
                "answers": args.answers,
                "words": words,
                "cli_seconds": round(cli_seconds, 2),
                "cli_answers_per_s": round(args.answers / cli_seconds),
                "in_process_load_seconds": round(load_seconds, 2),
                "in_process_score_seconds_cold": round(cold, 2),
                "in_process_score_seconds_warm": round(warm, 2),
                "metrics": {k: metrics[k] for k in ("n", "chair_s", "chair_i", "recall", "mean_words")},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
