"""Pure logic of the stages: scoring, pairs, length balancing, claim parsing (no Ray, no models)."""

import pytest

from rlaifv_ray import schema as S
from rlaifv_ray.prompts import parse_list
from rlaifv_ray.stages.build_pairs import BuildPairs, Scored, length_balance, pairs_for_prompt
from rlaifv_ray.stages.extract_claims import ExtractClaims
from rlaifv_ray.stages.label_claims import GroundTruthLabels
from rlaifv_ray.stages.scores import answer_score
from rlaifv_ray.toyworld.truth import ShapesWorldTruth


def test_score_counts_rejected_claims_and_excludes_claimless_answers():
    assert answer_score([True, False, False]) == -2
    assert answer_score([True]) == 0
    assert answer_score([]) is None


def test_pairs_need_a_gap_drop_ties_and_identical_texts():
    answers = [Scored("p/0", "a", 0), Scored("p/1", "b", -1), Scored("p/2", "c", -1), Scored("p/3", "a", -2)]
    pairs = pairs_for_prompt("p", answers, min_gap=1, max_pairs=10, run_seed=0)
    got = {(c.answer_id, r.answer_id) for c, r in pairs}
    # p/0 vs p/3 have identical text; p/1 vs p/2 tie
    assert got == {("p/0", "p/1"), ("p/0", "p/2"), ("p/1", "p/3"), ("p/2", "p/3")}
    assert all(c.score > r.score for c, r in pairs)
    # gap 2: only p/0 vs p/3 qualifies, and their texts are identical
    assert pairs_for_prompt("p", answers, min_gap=2, max_pairs=10, run_seed=0) == []


def test_at_most_two_pairs_per_prompt_drawn_with_a_seed():
    answers = [Scored(f"p/{i}", f"text {i}", -i) for i in range(6)]
    a = pairs_for_prompt("p", answers, 1, 2, run_seed=7)
    assert len(a) == 2
    assert pairs_for_prompt("p", list(reversed(answers)), 1, 2, run_seed=7) == a  # order-independent
    draws = {tuple(x.answer_id for pair in pairs_for_prompt("p", answers, 1, 2, s) for x in pair) for s in range(20)}
    assert len(draws) > 1  # the seed matters


def test_length_balance_drops_pairs_whose_rejected_is_much_longer():
    pairs = [("one two three four", "one two three four five six seven eight nine ten")] * 3 + [
        ("a b c d e f", "a b c d e")
    ] * 3
    keep, cut = length_balance(pairs)
    assert cut is not None and keep == [False] * 3 + [True] * 3
    balanced = [("a b c", "d e f")] * 4
    assert length_balance(balanced) == ([True] * 4, 0.98)
    assert length_balance([]) == ([], None)


def test_build_pairs_group_keeps_image_and_instruction():
    group = {
        S.PROMPT_ID: ["p"] * 3,
        S.ANSWER_ID: ["p/0", "p/1", "p/2"],
        S.ANSWER: ["x", "y", "z"],
        S.SCORE: [0, -1, None],
        S.IMAGE_ID: ["img"] * 3,
        S.INSTRUCTION: ["Describe."] * 3,
        S.TRUTH: [["a"]] * 3,
    }
    out = BuildPairs(1, 2, 0)(group)
    assert out[S.CHOSEN_ID] == ["p/0"] and out[S.REJECTED_ID] == ["p/1"] and out[S.IMAGE_ID] == ["img"]
    with pytest.raises(KeyError, match="BuildPairs.*score"):
        BuildPairs(1, 2, 0)({k: v for k, v in group.items() if k != S.SCORE})


def test_parse_list_refuses_what_is_not_a_clean_list():
    assert parse_list("- a\n\n- b \n") == ["a", "b"]
    for bad in ("", "   ", "- a\nstray text\n- b", "- a\n- ", "Sure!", "### Facts:\nnone"):
        with pytest.raises(ValueError):
            parse_list(bad)
    with pytest.raises(ValueError, match="not a question"):
        parse_list("- Is there a cat?\n- There is a dog.", questions=True)


def test_parse_list_reads_instruct_model_outputs_and_never_accepts_a_wrong_list():
    """The fixture holds the shapes instruct LLMs produce (numbering, bullets, preambles, echoed
    headers, trailing notes, code fences, blank lines) and outputs that must be refused."""
    import json
    from pathlib import Path

    cases = json.loads((Path(__file__).parent / "fixtures" / "claim_outputs.json").read_text())
    assert len(cases) >= 30
    right = wrong = 0
    for case in cases:
        try:
            got = parse_list(case["text"], questions=case["kind"] == "questions")
        except ValueError:
            got = None
        right += got == case["expected"]
        wrong += got is not None and got != case["expected"]
    assert wrong == 0
    assert right / len(cases) >= 0.95


class _ScriptedEngine:
    """Stands in for the claim LLM: replays fixed outputs (pure-logic test of the parser paths)."""

    def __init__(self, outputs):
        self.outputs = list(outputs)

    def generate(self, requests):
        out, self.outputs = self.outputs[: len(requests)], self.outputs[len(requests) :]
        return out


def test_extract_claims_records_mismatch_empty_and_unparseable_output():
    stage = ExtractClaims(mode="rules", truth=ShapesWorldTruth())  # construct without a model, then script the LLM path
    stage.mode = "llm"
    stage.engine = _ScriptedEngine(
        [
            "- There is a cat.\n- There is a dog.",
            "",
            "no bullets here",
            "- There is a cup.",  # facts
            "- Is there a cat?",
            "- Is there a cup?",  # questions for rows 0 and 3
        ]
    )
    batch = {S.ANSWER: ["a cat and a dog", "…", "junk", "a cup"], S.ERROR: [None] * 4}
    out = ExtractClaims.__call__(stage, batch)
    assert out[S.CLAIM_ERROR][0] == "2 facts but 1 questions"
    assert "facts output unparseable: empty output" == out[S.CLAIM_ERROR][1]
    assert out[S.CLAIM_ERROR][2].startswith("facts output unparseable")
    assert out[S.CLAIM_ERROR][3] is None and out[S.QUESTIONS][3] == ["Is there a cup?"]
    assert out[S.QUESTIONS][0] == []  # never silently truncated to the shorter list
    from rlaifv_ray.pipeline.metrics import claim_reason

    assert [claim_reason(e) for e in out[S.CLAIM_ERROR][:3]] == [  # metrics.json counts them per reason
        "N facts but N questions",
        "facts output unparseable: empty output",
        "facts output unparseable: no list items",
    ]


def test_parse_list_drops_labels_own_answers_and_commentary_the_labeler_must_not_see():
    assert parse_list("1. **Color:** The cat is orange.\n2. **Place** - It sits on a sofa.") == [
        "The cat is orange.",
        "It sits on a sofa.",
    ]
    assert parse_list(
        "- Is the cat orange? (Yes)\n- Is it on a sofa? No.\nQ3: Is it asleep? A: yes", questions=True
    ) == ["Is the cat orange?", "Is it on a sofa?", "Is it asleep?"]
    assert parse_list("1. The cat is orange.\n   (clearly visible)\n\t- so I think\n2. The sofa is red.") == [
        "The cat is orange.",
        "The sofa is red.",
    ]
    # a nested list's items are facts; text talking to the reader under an item is not
    assert parse_list("- There is a cat.\n  - The cat is orange.\n    * It is asleep.\n  - so I think\n- A sofa.") == [
        "There is a cat.",
        "The cat is orange.",
        "It is asleep.",
        "A sofa.",
    ]
    for bad in ("1. **Color:**\n2. The sofa is red.", "- The cat is orange.\nnot indented, not an item\n- b."):
        with pytest.raises(ValueError):
            parse_list(bad)


def test_rule_extractor_is_explicit_and_flags_answers_without_objects():
    out = ExtractClaims(mode="rules", truth=ShapesWorldTruth())(
        {S.ANSWER: ["There is a red circle and a blue square.", "Nice picture."]}
    )
    assert out[S.CLAIMS][0] == ["There is a red circle.", "There is a blue square."]
    with pytest.raises(ValueError, match="needs an input with truth"):
        ExtractClaims(mode="rules")  # ShapesWorld's objects come with the input's truth, nowhere else
    assert out[S.QUESTIONS][0] == ["Is there a red circle in the image?", "Is there a blue square in the image?"]
    assert out[S.CLAIM_ERROR][1].startswith("no claims")
    with pytest.raises(ValueError, match="claim LLM"):
        ExtractClaims(mode="llm")


def test_ground_truth_labels_and_seeded_flips():
    batch = {
        S.TRUTH: [["red circle"]],
        S.CLAIMS: [["There is a red circle.", "There is a blue square."]],
        S.ANSWER_ID: ["p/0"],
        S.CLAIM_ERROR: [None],
    }
    out = GroundTruthLabels(truth=ShapesWorldTruth())(dict(batch))
    assert out[S.ACCEPTED] == [[True, False]] and out[S.SCORE] == [-1]
    flipped = GroundTruthLabels(flip_rate=1.0, truth=ShapesWorldTruth())(dict(batch))
    assert flipped[S.ACCEPTED] == [[False, True]]
    many = {k: v * 200 for k, v in batch.items()}
    many[S.ANSWER_ID] = [f"p/{i}" for i in range(200)]
    acc = GroundTruthLabels(flip_rate=0.2, run_seed=3, truth=ShapesWorldTruth())(many)[S.ACCEPTED]
    rate = sum(a != [True, False] for a in acc) / 200
    assert 0.2 < rate < 0.5  # P(at least one of two flipped) = 0.36
    assert GroundTruthLabels(flip_rate=0.2, run_seed=3, truth=ShapesWorldTruth())(many)[S.ACCEPTED] == acc
