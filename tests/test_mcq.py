"""Multiple-choice benchmarks (kind mcq): the files users bring, judge-free answer extraction against
a hand-labelled fixture, metrics, scoring answers made elsewhere, and the ShapesWorld MCQ whose
truth the world fixes."""

import json
from pathlib import Path

import pytest

from rlaifv_ray.benchmarks import load_benchmark, mcq
from rlaifv_ray.cli import main
from rlaifv_ray.errors import ConfigError
from rlaifv_ray.toyworld.datasets import bench_scene, write_benchmark

FIXTURE = Path(__file__).parent / "fixtures" / "mcq" / "extraction.jsonl"


def _load(text: str):
    return load_benchmark("mcq", {"questions": ("q.jsonl", text)})


def test_extraction_matches_every_hand_label():
    cases = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    assert len(cases) >= 30
    wrong = [
        (c["answer"], c["read_as"], got)
        for c in cases
        if (got := mcq.extract(c["answer"], tuple(c["options"]))[0]) != c["read_as"]
    ]
    assert not wrong
    # every form the fixture must cover is in it, and so are answers that name no option or several
    forms = {mcq.extract(c["answer"], tuple(c["options"]))[1] for c in cases}
    assert forms == {"letter", "named", "text", "none", "several"}


def test_options_as_a_list_a_letter_map_or_flat_columns_give_the_same_prompt():
    lines = [
        {"question_id": 1, "image": "a.png", "question": "Colour?", "options": ["red", "blue"], "answer": "B"},
        {
            "question_id": 2,
            "image": "a.png",
            "question": "Colour?",
            "options": {"B": "blue", "A": "red"},
            "answer": "b",
        },
        {"question_id": 3, "image": "a.png", "question": "Colour?", "A": "red", "B": "blue", "C": "nan", "answer": "B"},
    ]
    bench = _load("\n".join(json.dumps(line) for line in lines))
    assert len({q.text for q in bench.questions}) == 1 and {q.label for q in bench.questions} == {"B"}
    assert bench.questions[0].text == "Colour?\nA. red\nB. blue\n" + mcq.PROMPT
    hinted = _load(json.dumps({**lines[0], "hint": "Look closely.", "category": "attribute"})).questions[0]
    assert hinted.text.startswith("Look closely.\nColour?") and hinted.kind == "attribute"


def test_a_malformed_file_names_every_bad_line():
    lines = [
        '{"question_id": 1, "image": "a.png", "question": "Q?", "options": ["x", "y"], "answer": "C"}',
        '{"question_id": 2, "image": "a.png", "question": "Q?", "options": ["x"], "answer": "A"}',
        '{"question_id": 3, "image": "a.png", "options": ["x", "y"], "answer": "A"}',
        "not json",
        '{"question_id": 5, "image": "a.png", "question": "Q?", "options": {"A": "x", "C": "y"}, "answer": "A"}',
    ]
    with pytest.raises(ConfigError) as err:
        _load("\n".join(lines))
    text = str(err.value)
    for n, why in (
        (1, "answer must be one of the option letters A, B"),
        (2, "needs at least 2 options"),
        (3, "missing question"),
    ):
        assert f"line {n}: {why}" in text
    assert "line 4: not valid JSON" in text and "line 5: options' keys must be the letters" in text


def test_metrics_count_an_answer_naming_no_option_or_several_as_wrong():
    bench = _load(
        "\n".join(
            json.dumps(
                {
                    "question_id": i,
                    "image": "a.png",
                    "question": "Q?",
                    "options": ["red", "blue"],
                    "answer": a,
                    "category": c,
                }
            )
            for i, (a, c) in enumerate([("A", "colour"), ("B", "colour"), ("A", "count"), ("B", "count")])
        )
    )
    metrics, details = bench.score(bench.questions, ["A", "red and blue", "I do not know", "(B)"])
    assert metrics["n"] == 4 and metrics["accuracy"] == 0.5 and metrics["no_option"] == 0.5
    assert metrics["by_category"] == {"colour": 0.5, "count": 0.5}
    assert [d["how"] for d in details] == ["letter", "several", "none", "letter"]


def test_shapesworld_mcq_truth_comes_from_the_scene(tmp_path, capsys):
    entry = write_benchmark(str(tmp_path), "mcq", 20)
    lines = [json.loads(line) for line in Path(entry["path"]).read_text().splitlines()]
    assert {q["category"] for q in lines} == {"counting", "colour", "shape", "position"}
    assert all(len(q["options"]) == 4 for q in lines)
    for q in lines:
        scene, right = bench_scene(q["image"]), q["options"]["ABCD".index(q["answer"])]
        if q["category"] == "counting":
            assert int(right) == len(scene.objects)
        elif q["category"] == "position":
            assert right == scene.kinds[0]  # objects are sorted left to right
        else:
            assert any(right in kind.split() for kind in scene.kinds)
    # scored from an answers file, as for every kind: the right letter for every other question
    answers = tmp_path / "a.jsonl"
    answers.write_text(
        "".join(
            json.dumps({"question_id": q["question_id"], "answer": q["answer"] if i % 2 == 0 else "I am not sure."})
            + "\n"
            for i, q in enumerate(lines)
        )
    )
    assert main(["eval", "--bench", "mcq", "--file", entry["path"], "--answers", str(answers), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["n"] == len(lines) and m["accuracy"] == pytest.approx(len(lines[::2]) / len(lines))
    assert m["no_option"] == pytest.approx(len(lines[1::2]) / len(lines))
