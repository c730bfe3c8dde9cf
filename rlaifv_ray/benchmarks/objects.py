"""Which objects a text mentions, as the CHAIR metric (Rohrbach et al. 2018) finds them: lower-cased
word tokens, each reduced to its noun lemma ("dogs" -> "dog", "mice" -> "mouse", "people" stays),
then the longest vocabulary phrase at each position ("teddy bears" -> teddy bear, "hot dog" before
"dog"). Every mention counts, repeats included; a phrase may map to no object ("train track" is not
a train).

Lemmas come from lemminflect: its tables ship inside the wheel (nothing is downloaded), and asking
for noun lemmas only keeps verbs as they are ("skiing" is not "ski", "bowling" is not "bowl"), as
CHAIR's singularize does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

_TOKEN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")  # "dog's" -> dog, s; "t-shirt" stays one word

# CHAIR's COCO rules: qualifiers that would otherwise fire `person` ("baby bird" is a bird, "passenger
# jet" a plane), phrases that name no COCO object, and a seat that belongs to a toilet.
_ANIMALS = ("bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "animal", "cub")
COCO_PHRASES: dict[str, str | None] = {
    **{f"{q} {a}": a for q in ("baby", "adult") for a in _ANIMALS},
    "passenger jet": "jet",
    "passenger train": "train",
    "toilet seat": "toilet",
    "bow tie": "tie",
    "home plate": None,
    "train track": None,
}
COCO_DROP_WHEN = {"seat": "toilet"}  # "the seat of the toilet" is no chair


@lru_cache(maxsize=1 << 17)
def lemma(word: str) -> str:
    from lemminflect import getLemma

    found = getLemma(word, upos="NOUN")
    return found[0].lower() if found else word


def word_tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def normalize(phrase: str) -> tuple[str, ...]:
    return tuple(lemma(w) for w in word_tokens(phrase))


@lru_cache(maxsize=1)
def coco_synonyms() -> dict[str, list[str]]:
    """COCO's 80 categories -> CHAIR's synonym lists (the category name first)."""
    text = (Path(__file__).parent / "coco_synonyms.txt").read_text()
    lines = [[w.strip() for w in line.split(",") if w.strip()] for line in text.splitlines() if line.strip()]
    return {line[0]: line for line in lines}


class Vocabulary:
    """Phrases -> object names. SYNONYMS: object -> the phrases that name it (the name is one);
    PHRASES: extra phrase -> a synonym it stands for, or None for a phrase naming no object;
    DROP_WHEN: a phrase not counted when the text also mentions the given object."""

    def __init__(
        self,
        synonyms: dict[str, list[str]],
        phrases: dict[str, str | None] | None = None,
        drop_when: dict[str, str] | None = None,
    ):
        self.lookup: dict[tuple[str, ...], str | None] = {}
        for name, names in synonyms.items():
            for phrase in [name, *names]:
                if normalize(phrase):
                    self.lookup.setdefault(normalize(phrase), name)
        for phrase, target in (phrases or {}).items():  # a target that names no object blocks the phrase
            self.lookup[normalize(phrase)] = self.lookup.get(normalize(target)) if target else None
        self.drop_when = {normalize(k): v for k, v in (drop_when or {}).items()}
        self.longest = max((len(k) for k in self.lookup), default=1)
        self.objects = frozenset(synonyms)

    @classmethod
    def for_categories(cls, categories: dict[str, list[str]]) -> Vocabulary:
        """An annotation file's categories (name -> its own synonyms, possibly none): COCO names get
        CHAIR's synonym lists and rules."""
        coco = coco_synonyms()
        if any(name in coco for name in categories):
            merged = {name: [*coco.get(name, []), *own] for name, own in categories.items()}
            return cls(merged, COCO_PHRASES, COCO_DROP_WHEN)
        return cls(categories)

    def mentions(self, text: str) -> list[tuple[str, str]]:
        """(words as written, object) for every mention, in order."""
        toks = word_tokens(text)
        lems = [lemma(t) for t in toks]
        found: list[tuple[tuple[str, ...], str, str]] = []
        i = 0
        while i < len(lems):
            for n in range(min(self.longest, len(lems) - i), 0, -1):
                key = tuple(lems[i : i + n])
                if key in self.lookup:
                    if self.lookup[key] is not None:
                        found.append((key, " ".join(toks[i : i + n]), self.lookup[key]))
                    i += n
                    break
            else:
                i += 1
        named = {obj for _, _, obj in found}
        return [(said, obj) for key, said, obj in found if self.drop_when.get(key) not in named]


@dataclass
class Tally:
    """What CHAIR and AMBER's generative metrics both count over a benchmark's answers."""

    answers: int = 0
    mentions: int = 0  # object mentions judged, repeats included
    wrong: int = 0  # ... of objects not in the image
    answers_wrong: int = 0  # answers with at least one
    covered: int = 0  # the image's objects an answer names
    truth: int = 0  # the image's objects
    words: int = 0

    def add(self, answer: str, mentions: int, wrong: int, covered: int, truth: int) -> None:
        self.answers += 1
        self.mentions += mentions
        self.wrong += wrong
        self.answers_wrong += wrong > 0
        self.covered += covered
        self.truth += truth
        self.words += len(answer.split())

    def metrics(self) -> dict:
        """Hallucinated answers (CHAIRs, AMBER's Hal) and mentions (CHAIRi, AMBER's CHAIR), the
        image's objects named (recall, Cover), mean words; each 0.0 over nothing."""

        def share(a: int, b: int) -> float:
            return a / b if b else 0.0

        return {
            "n": self.answers,
            "answers_hallucinating": share(self.answers_wrong, self.answers),
            "mentions_hallucinated": share(self.wrong, self.mentions),
            "objects_covered": share(self.covered, self.truth),
            "mean_words": share(self.words, self.answers),
            "mentions": self.mentions,
            "hallucinated_mentions": self.wrong,
        }
