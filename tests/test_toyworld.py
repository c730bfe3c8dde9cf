import random

from rlaifv_ray.prompts import parse_list
from rlaifv_ray.toyworld import examples, text
from rlaifv_ray.toyworld.hallucination import claim_truth, hallucination_metrics, mentions, planted_share
from rlaifv_ray.toyworld.world import IMAGE_SIZE, OBJECTS, patch_labels, png_bytes, scene_and_image


def test_scenes_are_seeded_distinct_and_non_overlapping():
    a_scene, a_img = scene_and_image(3, 17)
    b_scene, b_img = scene_and_image(3, 17)
    assert a_scene == b_scene and png_bytes(a_img) == png_bytes(b_img)
    assert scene_and_image(3, 18)[0] != a_scene or png_bytes(scene_and_image(3, 18)[1]) != png_bytes(a_img)
    counts = set()
    for i in range(300):
        scene, img = scene_and_image(0, i)
        assert img.size == (IMAGE_SIZE, IMAGE_SIZE) and img.mode == "RGB"
        kinds = scene.kinds
        assert 1 <= len(kinds) <= 4 and len(set(kinds)) == len(kinds)
        assert all(k in OBJECTS for k in kinds)
        xs = [o.x for o in scene.objects]
        assert xs == sorted(xs)  # left to right, as captions read
        counts.add(len(kinds))
    assert counts == {1, 2, 3, 4}


def test_bias_plants_absent_partner_only_at_its_rate():
    rng = random.Random(0)
    planted = triggered = 0
    for i in range(2000):
        scene, _ = scene_and_image(1, i)
        present = set(scene.kinds)
        eligible = [t for t in present if t in text.BIAS_PAIRS and text.BIAS_PAIRS[t] not in present]
        kinds = text.mentioned_kinds(scene, rng, bias_rate=0.5)
        extra = [k for k in kinds if k not in present]
        assert all(k in {text.BIAS_PAIRS[t] for t in eligible} for k in extra)
        triggered += len(eligible)
        planted += len(extra)
        assert text.mentioned_kinds(scene, rng, bias_rate=0.0) == scene.kinds
    assert 0.4 < planted / triggered < 0.6


def test_yes_no_questions_are_balanced_with_hard_negatives():
    qas = [qa for i in range(500) for qa in text.yes_no_questions(scene_and_image(2, i)[0], random.Random(i), 4)]
    yes = sum(qa.answer for qa in qas) / len(qas)
    assert 0.45 < yes < 0.55
    negatives = [qa for qa in qas if not qa.answer]
    hard = [qa for qa in negatives if qa.kind in ("same_colour", "same_shape", "partner")]
    assert len(hard) / len(negatives) > 0.7
    # every answer agrees with the ground truth
    for i in range(50):
        scene, _ = scene_and_image(2, i)
        for qa in text.yes_no_questions(scene, random.Random(i), 4):
            assert qa.answer == (mentions(qa.question)[0] in scene.kinds)


def test_metrics_on_known_answers():
    answers = ["There is a red circle and a blue square.", "I can see a green triangle.", "Nothing here."]
    truths = [["red circle"], ["green triangle", "yellow square"], ["blue circle"]]
    m = hallucination_metrics(answers, truths)
    assert m["n"] == 3
    assert m["chair_s"] == 1 / 3  # only the first answer mentions an absent object
    assert m["chair_i"] == 1 / 3  # 1 wrong of 3 mentions
    assert m["recall"] == 2 / 4
    assert m["mean_words"] == (9 + 6 + 2) / 3
    assert planted_share(answers, truths, text.BIAS_PAIRS) == 1.0  # blue square is red circle's partner
    assert claim_truth("There is a red circle.", ["red circle"]) is True
    assert claim_truth("There is a blue square.", ["red circle"]) is False
    assert claim_truth("It is sunny.", ["red circle"]) is None


def test_claim_examples_follow_the_two_call_format():
    facts, questions = examples.claim_examples(0, 5)
    assert facts.prompt.startswith("Split the answer") and "### Answer:" in facts.prompt
    kinds = list(facts.truth)
    assert parse_list(facts.answer) == [f"There is a {k}." for k in kinds]
    assert parse_list(questions.answer) == [f"Is there a {k} in the image?" for k in kinds]
    assert facts.answer in questions.prompt


def test_patch_labels_mark_object_patches():
    scene, _ = scene_and_image(0, 1)
    labels = patch_labels(scene, 14)
    assert len(labels) == 16
    assert {OBJECTS[c - 1] for c in labels if c} <= set(scene.kinds)
    assert any(labels)
