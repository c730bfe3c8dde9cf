"""ShapesWorld files in the shapes users bring: preference datasets (rlaifv / trl parquet shards)
and hallucination benchmarks (POPE, AMBER discriminative, CHAIR in COCO format) whose answers the
truth fixes.

Used by the tests, jobs/perf_reference.py and the demo's benchmark config; seeded and disjoint
from every training and held-out index range.
"""

from __future__ import annotations

import json
import os
import random

from .. import schema as S
from ..prompts import LABEL_PROMPT
from .text import BIAS_PAIRS, INSTRUCTIONS, caption, negative_kind, question_for
from .world import COLOURS, IMAGE_SIZE, OBJECTS, SHAPES, png_bytes, scene_and_image

PAIRS_OFFSET = 70_000_000
BENCH_OFFSET = 80_000_000


def synthetic_pairs(n: int, seed: int = 0) -> tuple[dict[str, list], list[bytes]]:
    """N pairs (our columns) and their images: chosen names what is there, rejected adds an object
    that is not (the planted partner when there is one)."""
    cols = {k: [] for k in S.PAIR_FILE}
    images = []
    for i in range(n):
        index = PAIRS_OFFSET + i
        scene, image = scene_and_image(seed, index)
        rng = random.Random(f"pairs-{seed}-{index}")
        absent = [o for o in OBJECTS if o not in scene.kinds]
        extra = next((BIAS_PAIRS[k] for k in scene.kinds if BIAS_PAIRS.get(k) in absent), rng.choice(absent))
        wrong = list(scene.kinds)
        wrong.insert(rng.randint(0, len(wrong)), extra)
        row = {
            S.PROMPT_ID: f"shapes-{index}",
            S.IMAGE_ID: f"shapes-{index}",
            S.INSTRUCTION: rng.choice(INSTRUCTIONS),
            S.CHOSEN: caption(scene.kinds, rng),
            S.REJECTED: caption(wrong, rng),
            S.CHOSEN_ID: f"shapes-{index}/chosen",
            S.CHOSEN_SCORE: 0,
            S.REJECTED_SCORE: -1,
            S.REF_CHOSEN_LOGP: None,
            S.REF_REJECTED_LOGP: None,
        }
        for k, v in row.items():
            cols[k].append(v)
        images.append(png_bytes(image))
    return cols, images


def write_pair_shards(out: str, fmt: str, n: int, shards: int, seed: int = 0) -> list[str]:
    """N ShapesWorld pairs as SHARDS parquet files in FMT under OUT (a local folder)."""
    import pyarrow.parquet as pq

    from ..preference_data import from_pairs

    os.makedirs(out, exist_ok=True)
    cols, images = synthetic_pairs(n, seed)
    paths, per = [], -(-n // shards)
    for s in range(shards):
        part = slice(s * per, (s + 1) * per)
        table = from_pairs({k: v[part] for k, v in cols.items()}, images[part], fmt, origin="shapesworld")
        paths.append(os.path.join(out, f"train-{s:05d}-of-{shards:05d}.parquet"))
        pq.write_table(table, paths[-1], row_group_size=64)  # several row groups per shard, as real shards have
    return paths


def write_benchmark(folder: str, kind: str, n_images: int, seed: int = 0, split: str = "random") -> dict:
    """A ShapesWorld benchmark in KIND's own file format under FOLDER, images in FOLDER/images.

    pope: JSONL of {question_id, image, text, label}, 3 yes and 3 no questions per image; the no's
    drawn by POPE's SPLIT rule: random (any absent object), popular (the most frequent objects of
    the set), adversarial (objects that co-occur with present ones: ShapesWorld's planted partners,
    then same colour or shape). amber_disc: AMBER's query list [{id, image, query}] and its
    annotations [{id, type, truth}] with existence, attribute (colour) and relation (left of) kinds.
    Questions carry ShapesWorld's answer cue (the models were trained on it). chair: describe-the-image
    prompts and COCO-format instances (Object HalBench's shape). mcq: MMStar-style multiple choice
    (counting, colour, shape, position; 4 options, truth from the scene). Returns the config entry.
    """
    os.makedirs(os.path.join(folder, "images"), exist_ok=True)
    scenes = []
    for i in range(n_images):
        scene, image = scene_and_image(seed, BENCH_OFFSET + i)
        name = f"shapes_{i:05d}.png"  # bench_scene reads the index back
        with open(os.path.join(folder, "images", name), "wb") as f:
            f.write(png_bytes(image))
        scenes.append((name, scene))
    rng = random.Random(f"bench-{kind}-{split}-{seed}")
    if kind == "chair":
        return _chair_files(folder, scenes)
    if kind == "mcq":
        return _mcq_file(folder, scenes, rng)
    if kind == "pope":
        lines = []
        counts = {o: sum(o in s.kinds for _, s in scenes) for o in OBJECTS}
        for name, scene in scenes:
            absent = [o for o in OBJECTS if o not in scene.kinds]
            negatives = _negatives(split, absent, scene, counts, rng)
            for obj, label in [(o, "yes") for o in _take(scene.kinds, 3, rng)] + [(o, "no") for o in negatives]:
                lines.append(
                    {
                        "question_id": len(lines) + 1,
                        "image": name,
                        "text": LABEL_PROMPT.format(question=question_for(obj)),
                        "label": label,
                    }
                )
        path = os.path.join(folder, f"pope_{split}.jsonl")
        with open(path, "w") as f:
            f.write("".join(json.dumps(line) + "\n" for line in lines))
        return {"kind": "pope", "name": f"pope_{split}", "path": path, "image_root": os.path.join(folder, "images")}
    queries, truth = [], []
    for name, scene in scenes:
        for qtype, query, answer in _amber_questions(scene, rng):
            qid = len(queries) + 1
            queries.append({"id": qid, "image": name, "query": LABEL_PROMPT.format(question=query)})
            truth.append({"id": qid, "type": f"discriminative-{qtype}", "truth": answer})
    path, annotations = os.path.join(folder, "query_discriminative.json"), os.path.join(folder, "annotations.json")
    for p, obj in ((path, queries), (annotations, truth)):
        with open(p, "w") as f:
            json.dump(obj, f)
    return {
        "kind": "amber_disc",
        "name": "amber_disc",
        "path": path,
        "annotations": annotations,
        "image_root": os.path.join(folder, "images"),
    }


def bench_scene(image: str, seed: int = 0):
    """The scene of a benchmark image file (shapes_NNNNN.png), regenerated from the world, not read
    from any annotation file."""
    return scene_and_image(seed, BENCH_OFFSET + int(image.rsplit("_", 1)[-1].split(".")[0]))[0]


def _chair_files(folder: str, scenes: list) -> dict:
    """Object HalBench's shape: describe-the-image prompts (JSONL) and COCO-format instances whose
    categories are ShapesWorld's 12 objects, each carrying its own synonyms (the plain name only: the
    held-out evaluator's regex knows no other, and the two must agree)."""
    categories = [
        {"id": i + 1, "name": o, "supercategory": o.split()[1], "synonyms": [o]} for i, o in enumerate(OBJECTS)
    ]
    instances = {
        "images": [
            {"id": i, "file_name": name, "width": IMAGE_SIZE, "height": IMAGE_SIZE}
            for i, (name, _) in enumerate(scenes)
        ],
        "annotations": [
            {"image_id": i, "category_id": OBJECTS.index(o.kind) + 1, "bbox": [o.x, o.y, o.side, o.side]}
            for i, (_, scene) in enumerate(scenes)
            for o in scene.objects
        ],
        "categories": categories,
    }
    for n, ann in enumerate(instances["annotations"], 1):
        ann["id"] = n
    questions = [
        {"question_id": i, "image": name, "text": INSTRUCTIONS[i % len(INSTRUCTIONS)]}
        for i, (name, _) in enumerate(scenes)
    ]
    path, annotations = os.path.join(folder, "questions.jsonl"), os.path.join(folder, "instances.json")
    with open(path, "w") as f:
        f.write("".join(json.dumps(q) + "\n" for q in questions))
    with open(annotations, "w") as f:
        json.dump(instances, f)
    # ShapesWorld answers are one or two sentences: the paper's 512 tokens would only add padding here
    return {
        "kind": "chair",
        "name": "objhal",
        "path": path,
        "annotations": annotations,
        "image_root": os.path.join(folder, "images"),
        "max_new_tokens": 48,
    }


def _mcq_file(folder: str, scenes: list, rng: random.Random) -> dict:
    """MMStar's shape, one JSONL line per question, 4 options each: how many objects; the colour of
    a shape there once; the shape of a colour there once; which object is furthest left. The
    ShapesWorld policy was trained to describe, never to pick a letter: its answers are read by the
    option text they name (benchmarks/mcq.py), and this measures what DPO leaves of that."""
    lines = []
    for name, scene in scenes:
        kinds = scene.kinds
        shapes, colours = [k.split()[1] for k in kinds], [k.split()[0] for k in kinds]
        asked = [("counting", "How many objects are in the image?", ["1", "2", "3", "4"], str(len(kinds)))]
        once = [k for k in kinds if shapes.count(k.split()[1]) == 1]
        if once:
            colour, shape = rng.choice(once).split()
            asked.append(("colour", f"What colour is the {shape}?", list(COLOURS), colour))
        once = [k for k in kinds if colours.count(k.split()[0]) == 1]
        if once:
            colour, shape = rng.choice(once).split()
            asked.append(("shape", f"What shape is the {colour} object?", [*SHAPES, "star"], shape))
        if len(kinds) >= 2:
            others = rng.sample([o for o in OBJECTS if o not in kinds], 4 - min(4, len(kinds)))
            asked.append(("position", "Which object is furthest to the left?", kinds[:4] + others, kinds[0]))
        for category, question, options, right in asked:
            if category != "counting":
                options = rng.sample(options, len(options))
            lines.append(
                {
                    "question_id": len(lines) + 1,
                    "image": name,
                    "question": question,
                    "options": options,
                    "answer": "ABCD"[options.index(right)],
                    "category": category,
                }
            )
    path = os.path.join(folder, "mcq.jsonl")
    with open(path, "w") as f:
        f.write("".join(json.dumps(line) + "\n" for line in lines))
    return {
        "kind": "mcq",
        "name": "shapes_mcq",
        "path": path,
        "image_root": os.path.join(folder, "images"),
        "max_new_tokens": 48,
    }


def _take(items: list, k: int, rng: random.Random) -> list:
    return rng.sample(items, min(k, len(items)))


def _negatives(split, absent, scene, counts, rng) -> list[str]:
    if split == "random":
        return _take(absent, 3, rng)
    if split == "popular":
        return sorted(absent, key=lambda o: (-counts[o], o))[:3]
    ranked = sorted(
        absent, key=lambda o: ("partner", "same_colour", "same_shape", "other").index(negative_kind(o, scene))
    )
    return ranked[:3]


def _amber_questions(scene, rng) -> list[tuple[str, str, str]]:
    """(kind, question, yes/no): existence of a present and an absent object; the colour of a
    present shape; whether one object is left of another."""
    present = scene.kinds
    absent = [o for o in OBJECTS if o not in present]
    out = [
        ("existence", question_for(rng.choice(present)), "yes"),
        ("existence", question_for(rng.choice(absent)), "no"),
    ]
    colour, shape = rng.choice(present).split()
    asked = colour if rng.random() < 0.5 else rng.choice([c for c in COLOURS if c != colour])
    same = f"{asked} {shape}" in present
    out.append(("attribute", f"Is the {shape} in the image {asked}?", "yes" if same else "no"))
    if len(present) >= 2:
        a, b = rng.sample(range(len(present)), 2)  # objects are sorted left to right
        out.append(("relation", f"Is the {present[a]} to the left of the {present[b]}?", "yes" if a < b else "no"))
    return out
