"""POPE and AMBER's discriminative part: yes/no questions, POPE's answer rule, binary metrics.

pope        JSONL, one question per line: {question_id, image, text, label: yes|no}
amber_disc  AMBER's query file, a JSON list of {id, image, query} (or JSONL), and its annotations,
            a JSON list of {id, type: discriminative-<kind>[-...], truth: yes|no}, joined by id
            (a query that carries its own truth/type needs no annotations file)
"""

from __future__ import annotations


def question_fields(kind: str, item: dict, truth: dict, name: str) -> dict:
    """The Question fields of one file item; ValueError names what is wrong."""
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
    return dict(
        qid=str(item[fields["qid"]]), image=str(item["image"]), text=str(item[fields["text"]]), label=label, kind=qtype
    )


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
    return {
        "n": n,
        "accuracy": sum(lab == p for lab, p in zip(labels, predictions)) / n if n else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "yes_ratio": predictions.count("yes") / n if n else 0.0,
    }


def score(questions, answers: list[str]) -> tuple[dict, list[dict]]:
    """The metrics over all questions, and per kind when there are several (AMBER); per answer, the
    yes/no read from it."""
    predictions = [yes_or_no(a) for a in answers]
    labels = [q.label for q in questions]
    out = binary_metrics(labels, predictions)
    kinds = sorted({q.kind for q in questions})
    if len(kinds) > 1:
        out["by_kind"] = {
            k: binary_metrics(
                [lab for lab, q in zip(labels, questions) if q.kind == k],
                [p for p, q in zip(predictions, questions) if q.kind == k],
            )
            for k in kinds
        }
    return out, [{"read_as": p, "correct": p == lab} for p, lab in zip(predictions, labels)]
