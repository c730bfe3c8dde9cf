"""Claim-level edits (stages/claim_edit.py): claims attributed to their sentences, rejected sentences
removed or replaced by a checked sentence about the same object, and the cases that fall back."""

from rlaifv_ray.stages.claim_edit import Candidate, attribute, edit, sentence_spans
from rlaifv_ray.toyworld.text import fact_for


def test_sentences_and_attribution_with_the_toy_claim_llms_facts_and_instruct_style_facts():
    answer = "There is a red circle and a blue square. I can see a green triangle."
    assert [answer[s:e] for s, e in sentence_spans(answer)] == [
        "There is a red circle and a blue square.",
        "I can see a green triangle.",
    ]
    facts = [fact_for(k) for k in ("red circle", "blue square", "green triangle")]
    assert attribute(answer, facts) == [0, 0, 1]
    instruct = "A brown dog sits on the grass. Behind it, a red frisbee lies near a tree."
    claims = ["There is a dog.", "The dog is brown.", "There is a frisbee.", "The frisbee is red.", "There is a cat."]
    assert attribute(instruct, claims) == [0, 0, 1, 1, None]  # the cat is in no sentence
    # adjacent words break a tie of shared words; a claim listed as often as it is said goes in order
    mixed = "There is a red circle and a blue square. I can see a red square."
    assert attribute(mixed, [fact_for("red square")]) == [1]
    twice = "There is a red circle. There is a red circle."
    assert attribute(twice, [fact_for("red circle")] * 2) == [0, 1]
    assert attribute(twice, [fact_for("red circle")]) == [None]  # said twice, listed once: either sentence


def test_a_rejected_sentence_is_replaced_by_a_checked_one_about_the_same_object_or_removed():
    answer = Candidate(
        "There is a red circle and a blue square. I can see a green triangle.",
        [fact_for(k) for k in ("red circle", "blue square", "green triangle")],
        [True, False, True],
    )
    donor = Candidate("A red circle is visible. There is a green triangle.", [fact_for("red circle")], [True])
    out = edit(answer, [donor])
    assert out.chosen == "A red circle is visible. I can see a green triangle."  # the red circle kept, the square gone
    assert out.edited == [(0, 40)] and (out.removed, out.replaced) == (0, 1)
    # "There is a green triangle." carries no claim of the donor: it is never used
    alone = edit(answer, [donor], replace=False)
    assert alone.chosen == "I can see a green triangle." and (alone.removed, alone.replaced) == (1, 0)
    # a donor with a rejected claim gives nothing
    bad_donor = Candidate(donor.answer, [fact_for("red circle"), fact_for("green triangle")], [True, False])
    assert edit(answer, [bad_donor]).chosen == "I can see a green triangle."


def test_nothing_to_edit_or_nothing_attributable_falls_back():
    facts = [fact_for("red circle")]
    assert edit(Candidate("There is a red circle.", facts, [True]), []) is None  # all accepted
    assert edit(Candidate("There is a red circle.", facts, [False]), []) is None  # nothing left
    twice = Candidate("There is a red circle. There is a blue square.", [*facts, "There is a cat."], [True, False])
    assert edit(twice, []) is None  # the rejected claim is in no sentence


def test_the_default_builder_leaves_the_pairs_resume_key_as_it_was():
    from rlaifv_ray.config import PairsConfig

    default = PairsConfig()
    assert set(default.model_dump()) - default.unused() == {"min_gap", "min_p_gap", "max_per_prompt", "length_balance"}
    assert "builder" in set(PairsConfig(builder="claim_edit").model_dump()) - PairsConfig(builder="claim_edit").unused()


def test_claim_edit_pairs_through_the_feedback_pipeline(clean_run, tmp_path):
    """The session's finished iteration with pairs.builder claim_edit (and train.image_preference):
    labels are kept, pairs and their reference log-probs rebuilt, every edit pair is its rejected
    answer minus what was false, with the reference's sums over its edited tokens and every chosen
    answer's sum on a corrupted image."""
    import shutil

    from rlaifv_ray import schema as S
    from rlaifv_ray.config import validate_config
    from rlaifv_ray.pipeline.feedback import run_feedback
    from rlaifv_ray.storage.store import RunStore

    config, base = clean_run
    shutil.copytree(config.run_dir, tmp_path / "run")
    raw = config.model_dump(mode="json")
    # length balancing off, as toy.yaml has it: it would cut edit pairs first (removing a sentence
    # makes the chosen side shorter by construction)
    edits_only = {"builder": "claim_edit", "edit": "remove", "length_balance": False}
    raw |= {"run_dir": str(tmp_path / "run"), "pairs": {**raw["pairs"], **edits_only}}
    raw["train"] |= {"image_preference": {"corruption": "blank"}}  # the reference scores a third side
    edited = run_feedback(validate_config(raw), 0, config.models.policy.path, "toy:16")
    built = edited["pair_builder"]
    assert built["name"] == "claim_edit" and built["answers_edited"] > 0
    pairs = RunStore(str(tmp_path / "run")).read_table("iter_000/pairs", S.schema("pairs")).to_pylist()
    edits = [p for p in pairs if p[S.CHOSEN_ID] == p[S.REJECTED_ID] + S.EDIT_SUFFIX]
    assert edits and all(p[S.REF_CHOSEN_LOGP] is not None for p in pairs)
    # the edited tokens' reference sums exactly on edit pairs: every rejected side lost a sentence
    assert all((p[S.REF_REJECTED_EDITED_LOGP] is not None) == (p in edits) for p in pairs)
    assert all(p[S.REF_REJECTED_EDITED_LOGP] < 0 and p[S.REF_CHOSEN_EDITED_LOGP] <= 0 for p in edits)
    # the chosen answer is less likely on a blank image than on its own (the toy policy reads images)
    lower = [p[S.REF_CHOSEN_CORRUPT_LOGP] < p[S.REF_CHOSEN_LOGP] for p in pairs]
    assert sum(lower) > 0.8 * len(pairs), (sum(lower), len(pairs))
    for p in edits:  # with `remove`, the chosen text is the rejected one with whole sentences taken out
        assert len(p[S.CHOSEN]) < len(p[S.REJECTED]) and p[S.CHOSEN_SCORE] == 0 > p[S.REJECTED_SCORE]
        assert all(sentence in p[S.REJECTED] for sentence in p[S.CHOSEN].split(". "))
    assert edited["audit"]["pair_accuracy"] >= base["audit"]["pair_accuracy"] - 0.05
