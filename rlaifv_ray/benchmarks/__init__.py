"""Hallucination benchmarks that need no judge. Pure logic: reading the files users bring (every
problem named by line), scoring answers, the metrics.

pope, amber_disc   yes/no questions (yesno.py): accuracy, precision, recall, F1, yes-ratio
mcq                multiple-choice questions of general ability (mcq.py): accuracy, share naming no option
chair              descriptions against COCO-format object annotations (chair.py): CHAIRs, CHAIRi, recall
amber_gen          AMBER's generative queries (amber_gen.py): CHAIR, Cover, Hal, Cog

A Benchmark holds its questions and what scoring them needs; `score` takes one answer per question.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import amber_gen, chair, mcq, yesno
from .files import first, items, raise_problems

CAPTION_KINDS = ("chair", "amber_gen")


@dataclass(frozen=True)
class Question:
    qid: str
    image: str  # relative to the benchmark's image root
    text: str
    label: str = ""  # yes/no kinds: the right answer
    kind: str = ""  # AMBER: existence / attribute / relation; POPE: the file's name
    truth: tuple[str, ...] = ()  # caption kinds: the objects in the image
    hallu: tuple[str, ...] = ()  # amber_gen: hallucination candidates
    options: tuple[str, ...] = ()  # mcq: the options' texts, lettered A, B, ... (label: the right letter)


@dataclass
class Benchmark:
    kind: str
    name: str
    questions: list[Question]
    scorer: object = field(default=None, repr=False)  # chair: a Vocabulary; amber_gen: AmberWords
    file_qids: frozenset = frozenset()  # every question of the file, before a limit

    def score(self, questions: list[Question], answers: list[str]) -> tuple[dict, list[dict]]:
        """Metrics of ANSWERS (one per question) and, per answer, why it scored as it did."""
        if self.kind == "chair":
            return chair.score(self.scorer, questions, answers)
        if self.kind == "amber_gen":
            return amber_gen.score(self.scorer, questions, answers)
        if self.kind == "mcq":
            return mcq.score(questions, answers)
        return yesno.score(questions, answers)


def load_benchmark(kind: str, files: dict[str, tuple[str, str]], limit: int | None = None, name: str = "") -> Benchmark:
    """FILES: role -> (source, text) for questions, annotations, captions, association, safe_words.
    Raises one ConfigError naming every bad line (at most 20)."""
    problems: list[str] = []
    source = files["questions"][0]
    entries = items(files["questions"][1], source, problems)
    ann = files.get("annotations")
    scorer, truth, make = None, {}, None
    if kind == "chair":
        if ann is None:
            problems.append(f"{source}: chair needs COCO-format annotations (instances_*.json)")
        else:
            scorer, images = chair.load_truth(ann, files.get("captions"), problems)
            make = lambda item: chair.question_fields(item, images)  # noqa: E731
    elif kind == "mcq":
        make = mcq.question_fields
    else:
        annotations = [a for _, a in items(ann[1], ann[0], problems) if isinstance(a, dict)] if ann else []
        truth = {str(a.get("id")): a for a in annotations}
        if kind == "amber_gen":
            scorer = amber_gen.load_words(annotations, files.get("association"), files.get("safe_words"), problems)
            make = lambda item: amber_gen.question_fields(item, truth)  # noqa: E731
        else:
            make = lambda item: yesno.question_fields(kind, item, truth, name)  # noqa: E731
    questions = []
    for where, item in entries:
        try:
            if not isinstance(item, dict):
                raise ValueError(f"expected an object, got {type(item).__name__}")
            if make is not None:
                questions.append(Question(**make(item)))
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    if not entries and not problems:
        problems.append(f"{source}: no questions")
    raise_problems(f"benchmark {source} ({kind})", problems)
    return Benchmark(kind, name, questions[:limit] if limit else questions, scorer, frozenset(q.qid for q in questions))


def parse_answers(text: str, source: str) -> dict[str, str]:
    """JSONL (or a JSON list) of {question_id (or id), answer (or text, response)}: id -> answer."""
    problems: list[str] = []
    out: dict[str, str] = {}
    for where, item in items(text, source, problems):
        qid = first(item, "question_id", "id") if isinstance(item, dict) else None
        answer = item.get("answer", item.get("text", item.get("response"))) if isinstance(item, dict) else None
        if qid is None or not isinstance(answer, str):
            problems.append(f"{where}: needs question_id and answer (a string; `text` or `response` also read)")
        elif str(qid) in out:
            problems.append(f"{where}: a second answer to question {qid}")
        else:
            out[str(qid)] = answer
    if not out and not problems:
        problems.append(f"{source}: no answers")
    raise_problems(f"answers {source}", problems)
    return out


def score_answers(bench: Benchmark, answers: dict[str, str], source: str) -> tuple[dict, list[dict]]:
    """Scores answers made elsewhere: every question needs exactly one, and every answer a question."""
    problems = [
        f"answer to question {qid}, which the benchmark does not have" for qid in answers if qid not in bench.file_qids
    ]
    problems += [f"question {q.qid} ({q.image}) has no answer" for q in bench.questions if q.qid not in answers]
    raise_problems(f"answers {source} against benchmark {bench.name or bench.kind}", problems)
    return bench.score(bench.questions, [answers[q.qid] for q in bench.questions])
