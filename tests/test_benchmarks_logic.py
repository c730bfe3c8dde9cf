"""POPE / AMBER-discriminative files: parsing with line-named errors, POPE's answer rule, metrics,
and the ShapesWorld fixtures in each format whose answers the truth fixes."""

import json

import pytest

from rlaifv_ray.benchmarks import load_benchmark, yesno
from rlaifv_ray.benchmarks.yesno import binary_metrics, yes_or_no
from rlaifv_ray.errors import ConfigError
from rlaifv_ray.toyworld.datasets import write_benchmark
from rlaifv_ray.toyworld.text import negative_kind
from rlaifv_ray.toyworld.world import scene_and_image


@pytest.mark.parametrize(
    "answer,parsed",
    [
        ("Yes, there is a red circle.", "yes"),
        ("No.", "no"),
        ("no", "no"),
        ("There is not a red circle.", "no"),
        ("yes. No other objects.", "yes"),  # only the first sentence counts
        ("No, there isn't.", "no"),
        ("Nope", "yes"),
        ("", "yes"),  # POPE's rule, literally
    ],
)
def test_pope_answer_rule(answer, parsed):
    assert yes_or_no(answer) == parsed


def test_metrics_of_known_predictions():
    m = binary_metrics(["yes", "yes", "no", "no", "no"], ["yes", "no", "yes", "no", "no"])
    assert m == pytest.approx({"n": 5, "accuracy": 0.6, "precision": 0.5, "recall": 0.5, "f1": 0.5, "yes_ratio": 0.4})


def load_questions(kind, text, source, annotations=None, limit=None, name=""):
    files = {"questions": (source, text), **({"annotations": ("annotations.json", annotations)} if annotations else {})}
    return load_benchmark(kind, files, limit, name).questions


def score(questions, answers):
    return yesno.score(questions, answers)[0]


def _read(entry):
    with open(entry["path"]) as f:
        text = f.read()
    annotations = open(entry["annotations"]).read() if entry.get("annotations") else None
    return load_questions(entry["kind"], text, entry["path"], annotations, name=entry["name"])


@pytest.mark.parametrize("split", ["random", "popular", "adversarial"])
def test_pope_fixtures_follow_their_split_and_truth_scores_perfectly(tmp_path, split):
    entry = write_benchmark(str(tmp_path), "pope", 12, split=split)
    questions = _read(entry)
    assert len(questions) > 12 * 3 and {q.label for q in questions} == {"yes", "no"}
    assert score(questions, [q.label.capitalize() + "." for q in questions])["f1"] == 1.0
    always_yes = score(questions, ["Yes"] * len(questions))
    assert always_yes["yes_ratio"] == 1.0 and always_yes["accuracy"] == pytest.approx(
        sum(q.label == "yes" for q in questions) / len(questions)
    )
    for q in questions:  # each answer is the scene's truth
        scene = scene_and_image(0, 80_000_000 + int(q.image[7:12]))[0]
        obj = q.text.split("Is there a ")[1].split(" in the image")[0]
        assert (obj in scene.kinds) == (q.label == "yes")


def _hard_share(tmp_path, split):
    """Share of the no-questions that ask for an object like a present one (partner, colour, shape)."""
    negatives = [q for q in _read(write_benchmark(str(tmp_path / split), "pope", 40, split=split)) if q.label == "no"]
    hard = 0
    for q in negatives:
        scene = scene_and_image(0, 80_000_000 + int(q.image[7:12]))[0]
        hard += negative_kind(q.text.split("Is there a ")[1].split(" in the image")[0], scene) != "other"
    return hard / len(negatives)


def test_adversarial_negatives_are_harder_than_random_ones(tmp_path):
    assert _hard_share(tmp_path, "adversarial") == 1.0
    assert _hard_share(tmp_path, "random") < 0.9


def test_amber_fixture_has_every_kind_and_metrics_per_kind(tmp_path):
    entry = write_benchmark(str(tmp_path), "amber_disc", 12)
    questions = _read(entry)
    assert {q.kind for q in questions} == {"existence", "attribute", "relation"}
    answers = [q.label if q.kind != "relation" else "no" for q in questions]  # wrong on every relation "yes"
    m = score(questions, answers)
    assert m["by_kind"]["existence"]["accuracy"] == 1.0 and m["by_kind"]["attribute"]["accuracy"] == 1.0
    assert m["by_kind"]["relation"]["yes_ratio"] == 0.0 and m["accuracy"] < 1.0


def test_malformed_files_fail_naming_every_bad_line(tmp_path):
    lines = [
        json.dumps({"question_id": 1, "image": "a.png", "text": "Is there a cat?", "label": "yes"}),
        "{not json",
        json.dumps({"question_id": 3, "image": "a.png", "text": "Is there a dog?"}),
        json.dumps({"question_id": 4, "image": "a.png", "text": "Is there a dog?", "label": "maybe"}),
    ]
    with pytest.raises(ConfigError) as err:
        load_questions("pope", "\n".join(lines), "pope.jsonl")
    msg = str(err.value)
    assert "pope.jsonl line 2: not valid JSON" in msg
    assert "pope.jsonl line 3: missing label" in msg
    assert "pope.jsonl line 4: label must be yes or no, got 'maybe'" in msg
    queries = json.dumps(
        [{"id": 1, "image": "a.png", "query": "Is it red?"}, {"id": 2, "image": "b.png", "query": "?"}]
    )
    annotations = json.dumps([{"id": 1, "type": "discriminative-attribute-state", "truth": "no"}])
    with pytest.raises(ConfigError, match=r"q.json item 2: missing truth, type \(no annotation with this id\)"):
        load_questions("amber_disc", queries, "q.json", annotations)
    full = json.dumps(
        [
            {"id": 1, "type": "discriminative-attribute-state", "truth": "no"},
            {"id": 2, "type": "discriminative-relation", "truth": "yes"},
        ]
    )
    assert [q.kind for q in load_questions("amber_disc", queries, "q.json", full, limit=1)] == ["attribute"]
