"""ShapesWorld language: instructions, captions (with the planted bias), yes/no QA, claim examples.

The co-occurrence bias is what the RLAIF-V loop must align away: when a *trigger* object is in
the image and its *partner* is not, a biased caption mentions the absent partner right after the
trigger, so a policy trained on such captions hallucinates from a language prior.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .world import COLOURS, OBJECTS, SHAPES, Scene

INSTRUCTIONS = (
    "Describe the image.",
    "What is in this picture?",
    "Describe what you see.",
    "What objects are in the image?",
    "Give a short description of the image.",
    "List the shapes in the image.",
)

# trigger -> partner (the partner is what a biased caption invents)
BIAS_PAIRS = {
    "red circle": "blue square",
    "green triangle": "yellow circle",
    "yellow square": "red triangle",
    "blue circle": "green square",
}

_SINGLE = ("There is a {a}.", "I can see a {a}.", "A {a} is visible.")
_DOUBLE = ("There is a {a} and a {b}.", "I can see a {a} and a {b}.")
QUESTION_TEMPLATE = "Is there a {obj} in the image?"
_QUESTION_PARAPHRASES = (QUESTION_TEMPLATE, "Does the image contain a {obj}?", "Can you see a {obj}?")


def mentioned_kinds(scene: Scene, rng: random.Random, bias_rate: float) -> list[str]:
    """The object kinds a caption mentions, left to right, with partners planted at bias_rate."""
    present = set(scene.kinds)
    out: list[str] = []
    for kind in scene.kinds:
        out.append(kind)
        partner = BIAS_PAIRS.get(kind)
        if partner and partner not in present and partner not in out and rng.random() < bias_rate:
            out.append(partner)
    return out


def caption(kinds: list[str], rng: random.Random) -> str:
    """Sentences over the kinds, in order; each sentence names one object or joins two."""
    sentences, i = [], 0
    while i < len(kinds):
        if i + 1 < len(kinds) and rng.random() < 0.3:
            sentences.append(rng.choice(_DOUBLE).format(a=kinds[i], b=kinds[i + 1]))
            i += 2
        else:
            sentences.append(rng.choice(_SINGLE).format(a=kinds[i]))
            i += 1
    return " ".join(sentences)


@dataclass(frozen=True)
class QA:
    question: str
    answer: bool
    kind: str  # "positive", "same_colour", "same_shape", "partner", "other"


def negative_kind(obj: str, scene: Scene) -> str:
    """How hard a negative (absent) object is, given what is present."""
    colour, shape = obj.split()
    present = scene.kinds
    if any(BIAS_PAIRS.get(p) == obj for p in present):
        return "partner"
    if any(p.split()[0] == colour for p in present):
        return "same_colour"
    if any(p.split()[1] == shape for p in present):
        return "same_shape"
    return "other"


def yes_no_questions(scene: Scene, rng: random.Random, count: int, paraphrase: bool = True) -> list[QA]:
    """Balanced yes/no questions; negatives favour hard ones (same colour, same shape, partner)."""
    present = scene.kinds
    absent = [o for o in OBJECTS if o not in present]
    hard = [o for o in absent if negative_kind(o, scene) != "other"]
    out = []
    for _ in range(count):
        if rng.random() < 0.5:
            obj, ans = rng.choice(present), True
        else:
            pool = hard if hard and rng.random() < 0.8 else absent
            obj, ans = rng.choice(pool), False
        template = rng.choice(_QUESTION_PARAPHRASES) if paraphrase else QUESTION_TEMPLATE
        out.append(QA(template.format(obj=obj), ans, "positive" if ans else negative_kind(obj, scene)))
    return out


def label_prompt(question: str) -> str:
    """The labeler sees only the image and this text (docs/method.md s.1.4)."""
    return f"{question} Please answer yes or no."


def fact_for(kind: str) -> str:
    return f"There is a {kind}."


def question_for(kind: str) -> str:
    return QUESTION_TEMPLATE.format(obj=kind)


def all_words() -> list[str]:
    """Every content word of the world, for tokenizer training."""
    return list(COLOURS) + list(SHAPES)
