"""Caption benchmarks (CHAIR / Object HalBench, AMBER generative) and scoring answers made elsewhere:
hand-computed fixtures through the CLI, file errors by line, the ShapesWorld cross-check against the
held-out evaluator, and the best policy by a metric. No model, no Ray."""

import json
import random
from pathlib import Path

import pytest

from rlaifv_ray.benchmarks import load_benchmark
from rlaifv_ray.cli import main
from rlaifv_ray.toyworld.datasets import BENCH_OFFSET, bench_scene, write_benchmark
from rlaifv_ray.toyworld.hallucination import hallucination_metrics
from rlaifv_ray.toyworld.text import caption, mentioned_kinds
from rlaifv_ray.toyworld.world import scene_and_image

FIXTURES = Path(__file__).parent / "fixtures"


def _jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _coco_files(tmp_path: Path, fx: dict) -> tuple[str, str]:
    """The fixture's truth as COCO instances (image 6 without a file name) and captions files."""
    from rlaifv_ray.benchmarks.objects import coco_synonyms

    cats = {name: i for i, name in enumerate(coco_synonyms(), 1)}
    images = [
        {"id": int(i), **({"file_name": f"COCO_val2014_{int(i):012d}.jpg"} if i != "6" else {})} for i in fx["images"]
    ]
    anns = [
        {"id": n, "image_id": int(i), "category_id": cats[o]}
        for n, (i, o) in enumerate(((i, o) for i, objs in fx["images"].items() for o in objs), 1)
    ]
    instances = tmp_path / "instances_val2014.json"
    instances.write_text(
        json.dumps(
            {"images": images, "annotations": anns, "categories": [{"id": v, "name": k} for k, v in cats.items()]}
        )
    )
    captions = tmp_path / "captions_val2014.json"
    captions.write_text(
        json.dumps(
            {
                "annotations": [
                    {"image_id": int(i), "caption": c} for i, cs in fx["reference_captions"].items() for c in cs
                ]
            }
        )
    )
    return str(instances), str(captions)


def test_chair_fixture_scored_from_an_answers_file_matches_the_hand_count(tmp_path, capsys):
    fx = json.loads((FIXTURES / "chair_captions.json").read_text())
    instances, captions = _coco_files(tmp_path, fx)
    questions = [
        {"question_id": n, "image": f"val2014/COCO_val2014_{int(i):012d}.jpg", "text": "Describe the image."}
        for n, (i, *_) in enumerate(fx["captions"])
    ]
    questions[5]["image_id"] = 3  # an explicit id wins over the name
    qfile = _jsonl(tmp_path / "objhal.jsonl", questions)
    # answers in another order, `text` for the answer (as some tools write them)
    answers = _jsonl(
        tmp_path / "answers.jsonl",
        [{"question_id": n, "text": c[1]} for n, c in reversed(list(enumerate(fx["captions"])))],
    )
    assert (
        main(
            [
                "eval",
                "--bench",
                "chair",
                "--file",
                qfile,
                "--annotations",
                instances,
                "--captions",
                captions,
                "--answers",
                answers,
                "--json",
                "--out",
                str(tmp_path / "scored.jsonl"),
            ]
        )
        == 0
    )
    m = json.loads(capsys.readouterr().out)
    e = fx["expected"]
    assert (
        m["n"] == e["n"] and m["mentions"] == e["mentions"] and m["hallucinated_mentions"] == e["hallucinated_mentions"]
    )
    assert m["chair_s"] == e["hallucinated_answers"] / e["n"]
    assert m["chair_i"] == e["hallucinated_mentions"] / e["mentions"]
    assert m["recall"] == e["truth_named"] / e["truth_objects"]
    assert m["mean_words"] == sum(len(c[1].split()) for c in fx["captions"]) / e["n"]
    scored = [json.loads(line) for line in (tmp_path / "scored.jsonl").read_text().splitlines()]
    for row, (_, text, named, hallucinated, missed) in zip(scored, fx["captions"]):
        assert row["answer"] == text
        assert ([obj for _, obj in row["mentions"]], row["hallucinated"], row["missed"]) == (
            named,
            hallucinated,
            missed,
        ), text


def test_amber_gen_fixture_matches_the_hand_count(tmp_path, capsys):
    fx = json.loads((FIXTURES / "amber_gen.json").read_text())
    for name in ("association", "annotations"):
        (tmp_path / f"{name}.json").write_text(json.dumps(fx[name]))
    (tmp_path / "safe_words.txt").write_text("\n".join(fx["safe_words"]) + "\n")
    queries = tmp_path / "query_generative.json"
    queries.write_text(
        json.dumps([{"id": a[0], "image": f"AMBER_{a[0]}.jpg", "query": "Describe this image."} for a in fx["answers"]])
    )
    answers = tmp_path / "answers.json"  # AMBER's own output shape: a JSON list of {id, response}
    answers.write_text(json.dumps([{"id": a[0], "response": a[1]} for a in fx["answers"]]))
    argv = [
        "eval",
        "--bench",
        "amber_gen",
        "--file",
        str(queries),
        "--annotations",
        str(tmp_path / "annotations.json"),
        "--association",
        str(tmp_path / "association.json"),
        "--safe-words",
        str(tmp_path / "safe_words.txt"),
        "--answers",
        str(answers),
        "--out",
        str(tmp_path / "scored.jsonl"),
    ]
    # progress lines go to stderr, -q silences them, --json leaves one object on stdout
    assert main(argv) == 0 and "scored 6 answers" in capsys.readouterr().err
    assert main([*argv, "-q"]) == 0 and capsys.readouterr().err == ""
    assert main([*argv, "--json"]) == 0
    m, e = json.loads(capsys.readouterr().out), fx["expected"]
    assert m["n"] == e["n"] and m["mentions"] == e["mentions"]
    assert (m["chair"], m["hal"]) == (e["hallucinated_mentions"] / e["mentions"], e["hal_answers"] / e["n"])
    assert (m["cover"], m["cog"]) == (e["covered"] / e["truth"], e["named"] / e["candidates"])
    scored = [json.loads(line) for line in (tmp_path / "scored.jsonl").read_text().splitlines()]
    for row, (_, _, said, hallucinated, missed, named) in zip(scored, fx["answers"]):
        assert (row["mentions"], row["hallucinated"], row["missed"], row["candidates_named"]) == (
            said,
            hallucinated,
            missed,
            named,
        ), row["answer"]


def test_bad_files_and_mismatched_answers_are_named_before_any_work(tmp_path, capsys):
    fx = json.loads((FIXTURES / "chair_captions.json").read_text())
    instances, _ = _coco_files(tmp_path, fx)
    qfile = _jsonl(
        tmp_path / "q.jsonl",
        [
            {"question_id": 1, "image": "COCO_val2014_000000000001.jpg", "text": "Describe."},
            {"question_id": 2, "image": "COCO_val2014_000000000099.jpg", "text": "Describe."},
            {"question_id": 3, "image": "COCO_val2014_000000000002.jpg"},
        ],
    )
    assert main(["eval", "--bench", "chair", "--file", qfile, "--annotations", instances, "--answers", qfile]) == 2
    err = capsys.readouterr().err
    assert "q.jsonl line 2: image 'COCO_val2014_000000000099.jpg' is not in the annotations" in err
    assert "q.jsonl line 3: missing text" in err
    assert main(["eval", "--bench", "chair", "--file", qfile, "--answers", qfile]) == 2
    assert "kind chair needs `annotations`" in capsys.readouterr().err
    good = _jsonl(
        tmp_path / "good.jsonl",
        [{"question_id": i, "image": f"COCO_val2014_{i:012d}.jpg", "text": "Describe."} for i in (1, 2, 3)],
    )
    answers = _jsonl(
        tmp_path / "a.jsonl",
        [
            {"question_id": 1, "answer": "A dog."},
            {"question_id": 7, "answer": "A cat."},
            {"question_id": 1, "answer": "again"},
            {"answer": "no id"},
        ],
    )
    assert main(["eval", "--bench", "chair", "--file", good, "--annotations", instances, "--answers", answers]) == 2
    err = capsys.readouterr().err
    assert (
        "a.jsonl line 3: a second answer to question 1" in err and "a.jsonl line 4: needs question_id and answer" in err
    )
    answers = _jsonl(
        tmp_path / "a.jsonl", [{"question_id": 1, "answer": "A dog."}, {"question_id": 7, "answer": "A cat."}]
    )
    assert main(["eval", "--bench", "chair", "--file", good, "--annotations", instances, "--answers", answers]) == 2
    err = capsys.readouterr().err
    assert "answer to question 7, which the benchmark does not have" in err
    assert "question 2 (COCO_val2014_000000000002.jpg) has no answer" in err and "question 3 (" in err


def _shapes_answers(n: int, seed: int = 0) -> list[str]:
    """ShapesWorld-like descriptions with the planted bias, written in the ways a policy varies them:
    plurals, capitals, a repeated object, nothing at all."""
    out = []
    for i in range(n):
        scene = scene_and_image(seed, BENCH_OFFSET + i)[0]
        rng = random.Random(i)
        text = caption(mentioned_kinds(scene, rng, bias_rate=0.6), rng)
        variant = i % 5
        if variant == 1:
            text = text.replace(scene.kinds[0], scene.kinds[0] + "s", 1).upper()
        elif variant == 2:
            text += f" The {scene.kinds[-1]} is large."
        elif variant == 3:
            text = "I cannot tell."
        out.append(text)
    return out


def test_shapesworld_chair_benchmark_agrees_with_the_heldout_evaluator(tmp_path):
    """Two independent implementations on the same answers: CHAIRs and recall equal exactly; CHAIRi
    differs only where an answer names an object twice (CHAIR counts each mention, the ShapesWorld
    evaluator each object once)."""
    entry = write_benchmark(str(tmp_path), "chair", 60)
    files = {
        "questions": (entry["path"], Path(entry["path"]).read_text()),
        "annotations": (entry["annotations"], Path(entry["annotations"]).read_text()),
    }
    bench = load_benchmark("chair", files)
    answers = _shapes_answers(60)
    truths = [bench_scene(q.image).kinds for q in bench.questions]
    ours, _ = bench.score(bench.questions, answers)
    theirs = hallucination_metrics(answers, truths)
    assert 0.1 < ours["chair_s"] < 0.9 and ours["chair_s"] == theirs["chair_s"]
    assert ours["recall"] == theirs["recall"] and ours["mean_words"] == theirs["mean_words"]
    assert ours["chair_i"] != theirs["chair_i"]  # repeats (variant 2) count twice in CHAIR
    once = [a for i, a in enumerate(answers) if i % 5 != 2]
    ours, _ = bench.score([q for i, q in enumerate(bench.questions) if i % 5 != 2], once)
    assert ours["chair_i"] == hallucination_metrics(once, [t for i, t in enumerate(truths) if i % 5 != 2])["chair_i"]


@pytest.mark.parametrize(
    "metric,mode,values,picked",
    [
        ("objhal_chair_s", None, [0.4, 0.2, 0.2, 0.3], 1),  # min by default; a tie goes to the earlier
        ("pope_f1", None, [0.8, 0.9, None, 0.85], 1),  # max by default; a row without the metric is skipped
        ("objhal_mean_words", "max", [10.0, 12.0, 14.0, 13.0], 2),
    ],
)
def test_best_policy_by_a_summary_metric(tmp_path, metric, mode, values, picked):
    from rlaifv_ray.config import validate_config
    from rlaifv_ray.driver import _write_best
    from rlaifv_ray.storage.store import RunStore

    benches = [
        {"kind": "chair", "name": "objhal", "path": "q.jsonl", "annotations": "i.json", "image_root": "."},
        {"kind": "pope", "name": "pope", "path": "p.jsonl", "image_root": "."},
    ]
    config = validate_config(
        {
            "run_dir": str(tmp_path),
            "models": {r: {"path": "org/m"} for r in ("policy", "labeler", "claim_llm")},
            "eval": {"benchmarks": benches, "select": {"metric": metric, "mode": mode}},
        }
    )
    summary = [
        {"iteration": k, "policy": f"p{k}", metric: v, "objhal_recall": 0.5 + k / 10} for k, v in enumerate(values)
    ]
    best = _write_best(config, RunStore(str(tmp_path)), summary)
    assert best == json.loads((tmp_path / "best.json").read_text())
    assert (best["iteration"], best["checkpoint"], best["value"]) == (picked, f"p{picked}", values[picked])
    assert best["metrics"]["objhal_recall"] == 0.5 + picked / 10 and best["mode"] == (mode or best["mode"])


def test_select_names_a_metric_the_summary_has(tmp_path):
    from rlaifv_ray.config import validate_config
    from rlaifv_ray.errors import ConfigError

    base = {"run_dir": str(tmp_path), "models": {r: {"path": "org/m"} for r in ("policy", "labeler", "claim_llm")}}
    with pytest.raises(ConfigError, match="select.metric 'objhal_f1' is not a summary metric; known: chair_s"):
        validate_config({**base, "eval": {"select": {"metric": "objhal_f1"}}})
    with pytest.raises(ConfigError, match="'mean_words': which way is better is not known; set mode"):
        validate_config({**base, "eval": {"select": {"metric": "mean_words"}}})
    assert validate_config({**base, "eval": {"select": {"metric": "recall"}}}).eval.select.mode == "max"


def test_serve_defaults_to_the_best_policy_when_a_metric_picks_one(tmp_path):
    from rlaifv_ray.config import validate_config
    from rlaifv_ray.serve.app import resolve_models

    base = {"run_dir": str(tmp_path), "models": {r: {"path": "org/start"} for r in ("policy", "labeler", "claim_llm")}}
    assert resolve_models(validate_config(base))[0] == "org/start"  # nothing trained yet
    (tmp_path / "summary.json").write_text(
        json.dumps(
            [
                {"iteration": 0, "policy": "org/start"},
                {"iteration": 1, "policy": "/run/iter_000/checkpoint"},
                {"iteration": 2, "policy": "/run/iter_001/checkpoint"},
            ]
        )
    )
    (tmp_path / "best.json").write_text(json.dumps({"iteration": 1, "checkpoint": "/run/iter_000/checkpoint"}))
    assert resolve_models(validate_config(base))[0] == "/run/iter_001/checkpoint"  # no eval.select: the last
    selecting = {**base, "eval": {"select": {"metric": "recall"}}}
    assert resolve_models(validate_config(selecting)) == ("/run/iter_000/checkpoint", "org/start")
    pinned = {**selecting, "serve": {"policy": "org/pinned"}}
    assert resolve_models(validate_config(pinned))[0] == "org/pinned"


def test_answers_made_elsewhere_score_yes_no_kinds_too(tmp_path, capsys):
    pope = write_benchmark(str(tmp_path), "pope", 10, split="popular")
    lines = [json.loads(line) for line in Path(pope["path"]).read_text().splitlines()]
    wrong = {q["question_id"] for q in lines[::4]}  # every 4th answered the wrong way round
    answers = _jsonl(
        tmp_path / "a.jsonl",
        [
            {
                "question_id": q["question_id"],
                "answer": (
                    {"yes": "No, there is not.", "no": "Yes."}
                    if q["question_id"] in wrong
                    else {"yes": "Yes.", "no": "No."}
                )[q["label"]],
            }
            for q in lines
        ],
    )
    assert main(["eval", "--bench", "pope", "--file", pope["path"], "--answers", answers, "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["n"] == len(lines) and m["accuracy"] == (len(lines) - len(wrong)) / len(lines)
    assert m["yes_ratio"] == sum((q["label"] == "yes") != (q["question_id"] in wrong) for q in lines) / len(lines)


def test_one_pass_answers_each_question_within_its_own_benchmarks_length_cap(toy_models, torch_threads):
    """An evaluation answers every benchmark in one pass (pipeline/benchmark_answers.py): yes/no
    questions and captions share batches, each row capped by its benchmark. Greedy answers, so a
    capped caption is the start of the uncapped one."""
    from rlaifv_ray import schema as S
    from rlaifv_ray.stages.answer_questions import AnswerQuestions
    from rlaifv_ray.toyworld.world import png_bytes

    image = png_bytes(scene_and_image(3, 7)[1])
    stage = AnswerQuestions(str(toy_models / "policy"), max_new_tokens=40)
    rows = {S.IMAGE: [image] * 3, S.INSTRUCTION: ["Describe the image."] * 3, S.MAX_NEW_TOKENS: [2, None, 40]}
    capped, default, long = stage(rows)[S.ANSWER]
    assert default == long and len(long.split()) > 3, (default, long)  # no cap on a row: the stage's own
    assert long.startswith(capped) and 0 < len(capped) < len(long) / 2, (capped, long)
