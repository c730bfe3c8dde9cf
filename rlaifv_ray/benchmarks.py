"""Hallucination benchmarks that need no judge: POPE and AMBER's discriminative part. Pure logic:
reading the files users bring (every problem named by line), the yes/no answer rule, the metrics.

pope        JSONL, one question per line: {question_id, image, text, label: yes|no}
amber_disc  AMBER's query file, a JSON list of {id, image, query} (or JSONL), and its annotations,
            a JSON list of {id, type: discriminative-<kind>[-...], truth: yes|no}, joined by id
            (a query that carries its own truth/type needs no annotations file)
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .errors import ConfigError

KINDS = ("pope", "amber_disc")


@dataclass(frozen=True)
class Question:
    qid: str
    image: str  # relative to the benchmark's image root
    text: str
    label: str  # yes | no
    kind: str  # AMBER: existence / attribute / relation; POPE: the file's name


def load_questions(kind: str, text: str, source: str, annotations: str | None = None,
                   limit: int | None = None, name: str = "") -> list[Question]:
    """Parse a benchmark file's TEXT; raises one ConfigError naming every bad line (at most 20)."""
    problems: list[str] = []
    items = _items(text, source, problems)
    truth: dict[str, dict] = {}
    if kind == "amber_disc" and annotations is not None:
        ann = _items(annotations, f"{source} annotations", problems)
        truth = {str(a.get("id")): a for _, a in ann if isinstance(a, dict)}
    out = []
    for where, item in items:
        try:
            out.append(_question(kind, item, truth, name))
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    if not out and not problems:
        problems.append(f"{source}: no questions")
    if problems:
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise ConfigError(f"benchmark {source} ({kind}):\n" + "\n".join(f"  - {p}" for p in problems[:20]) + more)
    return out[:limit] if limit else out


def _items(text: str, source: str, problems: list[str]) -> list[tuple[str, object]]:
    """(where, item) of a JSON list (where = "item N") or of JSONL (where = "line N"); what cannot
    be parsed is added to PROBLEMS."""
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            return [(f"{source} item {i}", x) for i, x in enumerate(json.loads(text), 1)]
        except json.JSONDecodeError as exc:
            problems.append(f"{source} line {exc.lineno}: not valid JSON ({exc.msg})")
            return []
    items = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            items.append((f"{source} line {n}", json.loads(line)))
        except json.JSONDecodeError as exc:
            problems.append(f"{source} line {n}: not valid JSON ({exc.msg})")
    return items


def _question(kind: str, item, truth: dict, name: str) -> Question:
    if not isinstance(item, dict):
        raise ValueError(f"expected an object, got {type(item).__name__}")
    if kind == "pope":
        need = ("question_id", "image", "text", "label")
        fields = dict(qid="question_id", text="text", label="label")
        qtype = name
    else:
        item = {**truth.get(str(item.get("id")), {}), **item}
        need = ("id", "image", "query", "truth", "type")
        fields = dict(qid="id", text="query", label="truth")
        qtype = str(item.get("type", "")).removeprefix("discriminative-").split("-")[0]
    missing = [k for k in need if item.get(k) in (None, "")]
    if missing:
        hint = " (no annotation with this id)" if kind == "amber_disc" and "truth" in missing else ""
        raise ValueError(f"missing {', '.join(missing)}{hint}")
    label = str(item[fields["label"]]).strip().lower()
    if label not in ("yes", "no"):
        raise ValueError(f"{fields['label']} must be yes or no, got {item[fields['label']]!r}")
    return Question(str(item[fields["qid"]]), str(item["image"]), str(item[fields["text"]]), label, qtype)


def yes_or_no(answer: str) -> str:
    """POPE's answer rule: the first sentence, commas dropped; 'no' if it holds the word No, no or
    not, else 'yes' (github.com/AoiDragon/POPE evaluate.py); used for AMBER's questions too."""
    text = answer.split(".")[0] if "." in answer else answer
    words = text.replace(",", "").split()
    return "no" if any(w in ("No", "no", "not") for w in words) else "yes"


def binary_metrics(labels: list[str], predictions: list[str]) -> dict:
    tp = sum(lab == "yes" and p == "yes" for lab, p in zip(labels, predictions))
    fp = sum(lab == "no" and p == "yes" for lab, p in zip(labels, predictions))
    fn = sum(lab == "yes" and p == "no" for lab, p in zip(labels, predictions))
    n = len(labels)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {"n": n, "accuracy": sum(lab == p for lab, p in zip(labels, predictions)) / n if n else 0.0,
            "precision": precision, "recall": recall,
            "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
            "yes_ratio": predictions.count("yes") / n if n else 0.0}


def score(questions: list[Question], answers: list[str]) -> dict:
    """The benchmark's metrics over all questions, and per kind when there are several (AMBER)."""
    predictions = [yes_or_no(a) for a in answers]
    labels = [q.label for q in questions]
    out = binary_metrics(labels, predictions)
    kinds = sorted({q.kind for q in questions})
    if len(kinds) > 1:
        out["by_kind"] = {k: binary_metrics([lab for lab, q in zip(labels, questions) if q.kind == k],
                                            [p for p, q in zip(predictions, questions) if q.kind == k]) for k in kinds}
    return out
