"""AMBER's generative part: descriptions scored against per-image truth and hallucination candidates.

Files: the queries (query_generative.json, [{id, image, query}]); annotations.json ([{id, type:
generative, truth: [objects], hallu: [objects]}], joined by id); optionally AMBER's relation.json
(object -> associated words: the vocabulary, and what else counts as naming an object) and
safe_words.txt (words never counted as hallucinated). Without relation.json the vocabulary is every
annotated truth and hallucination word.

Words are matched as CHAIR matches them (objects.py); AMBER itself tags nouns with NLTK and also
accepts words whose spaCy vectors are similar (>= 0.8), which needs models this code does not load.

CHAIR: hallucinated mentions / vocabulary mentions. Cover: truth objects named / truth objects.
Hal: share of answers with a hallucinated mention. Cog: hallucination candidates named / candidates.
"""

from __future__ import annotations

from .files import document, first
from .objects import Tally, Vocabulary, normalize


def _norm(word: str) -> str:
    return " ".join(normalize(word))


class AmberWords:
    def __init__(self, association: dict[str, list[str]], safe_words: list[str], annotated: set[str]):
        self.association = {_norm(k): {_norm(v) for v in vs} | {_norm(k)} for k, vs in association.items()}
        words = (
            {w for k, vs in self.association.items() for w in vs | {k}}
            if association
            else {_norm(w) for w in annotated}
        )
        self.vocabulary = Vocabulary({w: [w] for w in words if w})
        self.safe = {_norm(w) for w in safe_words if w.strip()}

    def names(self, obj: str) -> set[str]:
        """The words that name OBJ: itself and its associated words."""
        return self.association.get(_norm(obj), {_norm(obj)})


def load_words(
    annotations: list[dict],
    association: tuple[str, str] | None,
    safe_words: tuple[str, str] | None,
    problems: list[str],
) -> AmberWords:
    assoc = document(association[1], association[0], problems) if association else {}
    safe = safe_words[1].splitlines() if safe_words else []
    annotated = {
        str(w)
        for a in annotations
        for k in ("truth", "hallu")
        if a.get("type") == "generative" and isinstance(a.get(k), list)
        for w in a[k]
    }
    return AmberWords(
        {str(k): [str(v) for v in vs] for k, vs in assoc.items() if isinstance(vs, list)}, safe, annotated
    )


def question_fields(item: dict, truth: dict) -> dict:
    ann = truth.get(str(item.get("id")), {})
    image, text = first(item, "image"), first(item, "query", "text")
    missing = [k for k, v in (("id", item.get("id")), ("image", image), ("query", text)) if v in (None, "")]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    if ann.get("type") != "generative" or not isinstance(ann.get("truth"), list):
        raise ValueError(f"no generative annotation with truth objects for id {item['id']!r}")
    return dict(
        qid=str(item["id"]),
        image=str(image),
        text=str(text),
        truth=tuple(map(str, ann["truth"])),
        hallu=tuple(map(str, ann.get("hallu") or [])),
    )


def score(words: AmberWords, questions, answers: list[str]) -> tuple[dict, list[dict]]:
    tally, cognized, hallu_total, details = Tally(), 0, 0, []
    for q, answer in zip(questions, answers):
        said = [obj for _, obj in words.vocabulary.mentions(answer)]
        safe = set().union(*(words.names(t) for t in q.truth)) if q.truth else set()
        judged = [w for w in said if w not in words.safe]
        wrong = [w for w in judged if w not in safe]
        missed = [t for t in q.truth if not words.names(t) & set(judged)]
        named_candidates = [h for h in q.hallu if words.names(h) & set(wrong)]
        tally.add(answer, len(said), len(wrong), len(q.truth) - len(missed), len(q.truth))
        cognized += len(named_candidates)
        hallu_total += len(q.hallu)
        details.append(
            {
                "mentions": said,
                "hallucinated": sorted(set(wrong)),
                "missed": missed,
                "candidates_named": named_candidates,
            }
        )
    t = tally.metrics()
    metrics = {
        "n": t["n"],
        "chair": t["mentions_hallucinated"],
        "cover": t["objects_covered"],
        "hal": t["answers_hallucinating"],
        "cog": cognized / hallu_total if hallu_total else 0.0,
        "mentions": t["mentions"],
        "mean_words": t["mean_words"],
    }
    return metrics, details
