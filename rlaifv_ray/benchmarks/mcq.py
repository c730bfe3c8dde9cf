"""Multiple-choice benchmarks of general ability (MMStar, MMBench, SEED-Bench, ScienceQA-IMG, AI2D
style): a guard beside the hallucination benchmarks, so a checkpoint that hallucinates less because
it says less or reasons worse is seen.

mcq   JSONL (or a JSON list) of {question_id, image, question, options, answer, category?, hint?}:
      options a list (letters A, B, ... in order) or a letter -> text object; or the flat A, B, C, D
      columns of MMStar's and MMBench's files (empty ones skipped). answer: the right letter.

Answers are read without a judge: a letter in one of the usual forms, else the one option whose
text the answer names; an answer naming no option, or several, is wrong.
"""

from __future__ import annotations

import re
import string

PROMPT = "Answer with the option's letter from the given choices directly."
LETTERS = string.ascii_uppercase


def prompt(question: str, options: tuple[str, ...], hint: str = "") -> str:
    """The standard MCQ prompt (LLaVA's MMBench / SEED-Bench evaluation): hint, question, lettered
    options, the instruction."""
    lines = ([hint] if hint else []) + [question] + [f"{LETTERS[i]}. {o}" for i, o in enumerate(options)]
    return "\n".join(lines + [PROMPT])


def question_fields(item: dict) -> dict:
    """The Question fields of one file item; ValueError names what is wrong."""
    options = _options(item)
    missing = [k for k in ("question_id", "image", "question", "answer") if item.get(k) in (None, "")]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    if len(options) < 2:
        raise ValueError("needs at least 2 options (`options` as a list or a letter -> text object, or A, B, ... )")
    answer = str(item["answer"]).strip().strip("().").upper()
    if answer not in LETTERS[: len(options)]:
        raise ValueError(
            f"answer must be one of the option letters {', '.join(LETTERS[: len(options)])}, got {answer!r}"
        )
    hint = item.get("hint")
    hint = "" if hint is None or str(hint).lower() == "nan" else str(hint).strip()
    return dict(
        qid=str(item["question_id"]),
        image=str(item["image"]),
        text=prompt(str(item["question"]).strip(), options, hint),
        label=answer,
        kind=str(item.get("category") or ""),
        options=options,
    )


def _options(item: dict) -> tuple[str, ...]:
    options = item.get("options")
    if isinstance(options, list):
        return tuple(str(o).strip() for o in options)
    if isinstance(options, dict):
        letters = sorted(k.strip().upper() for k in options)
        if letters != list(LETTERS[: len(letters)]):
            raise ValueError(f"options' keys must be the letters A, B, ... in order, got {sorted(options)}")
        return tuple(str(v).strip() for _, v in sorted((k.strip().upper(), v) for k, v in options.items()))
    if options is not None:
        raise ValueError(f"options must be a list or a letter -> text object, got {type(options).__name__}")
    flat = []
    for letter in LETTERS:  # MMBench leaves the unused columns empty (nan in its TSV)
        value = item.get(letter)
        if value is None or str(value).strip() in ("", "nan"):
            break
        flat.append(str(value).strip())
    return tuple(flat)


# "Answer: B", "The answer is B", "The correct option is (B) because ...", "Option C"
_NAMED = re.compile(
    r"\b(?i:answer|option|choice)\b(?:\s+(?i:is|would be|should be))?\s*[:\-]?\s*\(?([A-Z])\)?(?![\w'])"
)
# "answer: d" (a lower-case letter only at the very end: "the answer is a red circle" names no option)
_NAMED_LOWER = re.compile(r"\b(?i:answer|option|choice)\b(?:\s+(?i:is))?\s*[:\-]?\s*\(?([a-z])\)?\.?$")
# "B or C", "A and D", "B/C": an answer hedging between letters chose none
_HEDGED = re.compile(r"(?<![\w'])\(?([A-Z])\)?\s*(?:or|and|/|,)\s*\(?([A-Z])\)?(?![\w'])")
# at the start: "B", "(B)", "B.", "B)", "B:", "B. text"; a bare letter followed by more words is
# not read ("A red circle" is an article, not option A)
_LEADING = re.compile(r"^\(?([A-Z])(?:\)|[.:)]|$)")


def extract(answer: str, options: tuple[str, ...]) -> tuple[str | None, str]:
    """(the letter the answer chose or None, how it was read: letter / named / text / none / several)."""
    valid = LETTERS[: len(options)]
    text = answer.replace("**", "").replace("*", "").strip()
    if any(a != b and {a, b} <= set(valid) for a, b in _HEDGED.findall(text)):
        return None, "several"
    lead = _LEADING.match(text)
    if lead and lead.group(1) in valid:
        return lead.group(1), "letter"
    named = {m.group(1) for m in _NAMED.finditer(text) if m.group(1) in valid}
    named |= {m.group(1).upper() for m in _NAMED_LOWER.finditer(text) if m.group(1).upper() in valid}
    if len(named) == 1:
        return named.pop(), "named"
    if len(named) > 1:
        return None, "several"
    hits = [i for i, o in enumerate(options) if o and re.search(rf"(?<!\w){re.escape(o)}(?!\w)", text, re.IGNORECASE)]
    # an option's text inside another named option's ("circle" in "red circle") is not named itself
    hits = [i for i in hits if not any(j != i and options[i].lower() in options[j].lower() for j in hits)]
    if len(hits) == 1:
        return valid[hits[0]], "text"
    return None, "several" if hits else "none"


def score(questions, answers: list[str]) -> tuple[dict, list[dict]]:
    """accuracy (an answer naming no option, or several, is wrong), n, the share naming no option,
    accuracy per category; per answer, the letter read and how."""
    details = []
    for q, a in zip(questions, answers):
        letter, how = extract(a, q.options)
        details.append({"read_as": letter, "how": how, "correct": letter == q.label})
    n = len(details)
    out = {
        "n": n,
        "accuracy": sum(d["correct"] for d in details) / n if n else 0.0,
        "no_option": sum(d["read_as"] is None for d in details) / n if n else 0.0,
    }
    categories = sorted({q.kind for q in questions if q.kind})
    if categories:
        out["by_category"] = {
            c: sum(d["correct"] for q, d in zip(questions, details) if q.kind == c)
            / sum(q.kind == c for q in questions)
            for c in categories
        }
    return out, details
