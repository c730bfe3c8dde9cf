"""Training and held-out examples for the ShapesWorld models, all seeded and reproducible."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..prompts import LABEL_PROMPT, SHAPESWORLD, bullets
from .text import (
    INSTRUCTIONS,
    caption,
    fact_for,
    mentioned_kinds,
    question_for,
    yes_no_questions,
)
from .world import OBJECTS, scene_and_image

# Disjoint index ranges of the seeded scene stream, so held-out images never appear in training.
TRAIN_OFFSET = 0
HELDOUT_OFFSET = 50_000_000


@dataclass
class Example:
    """One supervised turn: image (or None for text-only), user text, assistant answer."""

    image: object
    prompt: str
    answer: str
    truth: tuple[str, ...] = ()
    kind: str = ""  # yes/no questions: positive / same_colour / same_shape / partner / other


def caption_example(seed: int, index: int, bias_rate: float) -> Example:
    scene, image = scene_and_image(seed, index)
    rng = random.Random(f"cap-{seed}-{index}")
    text = caption(mentioned_kinds(scene, rng, bias_rate), rng)
    return Example(image, rng.choice(INSTRUCTIONS), text, tuple(scene.kinds))


def qa_examples(seed: int, index: int, count: int, paraphrase: bool = True) -> list[Example]:
    scene, image = scene_and_image(seed, index)
    rng = random.Random(f"qa-{seed}-{index}")
    return [
        Example(
            image, LABEL_PROMPT.format(question=qa.question), "yes" if qa.answer else "no", tuple(scene.kinds), qa.kind
        )
        for qa in yes_no_questions(scene, rng, count, paraphrase)
    ]


def claim_examples(seed: int, index: int) -> list[Example]:
    """The two claim-LLM calls for one (possibly biased, possibly noisy) answer."""
    rng = random.Random(f"claim-{seed}-{index}")
    scene, _ = scene_and_image(seed, index)
    kinds = mentioned_kinds(scene, rng, bias_rate=0.5)
    if rng.random() < 0.2:  # answers also mention wrong objects: the LLM must copy, not judge
        kinds.insert(rng.randint(0, len(kinds)), rng.choice(OBJECTS))
        kinds = list(dict.fromkeys(kinds))
    answer = caption(kinds, rng)
    facts = bullets([fact_for(k) for k in kinds])
    questions = bullets([question_for(k) for k in kinds])
    return [
        Example(None, SHAPESWORLD.facts.format(answer=answer), facts, tuple(kinds)),
        Example(None, SHAPESWORLD.questions.format(facts=facts), questions, tuple(kinds)),
    ]


def corpus(seed: int, n: int = 400) -> list[str]:
    """Text for tokenizer training: every kind of string the models read or write."""
    lines = ["yes", "no", "Yes", "No"] * 5 + list(INSTRUCTIONS) + list(OBJECTS)
    for i in range(n):
        lines += [caption_example(seed, i, 0.5).answer]
        lines += [e.prompt + "\n" + e.answer for e in claim_examples(seed, i)]
        lines += [e.prompt for e in qa_examples(seed, i, 2)]
    return lines
