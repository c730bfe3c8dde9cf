"""ExtractClaims: answer -> atomic facts -> yes/no questions (docs/method.md s.1.2-1.3).

Two calls to a claim LLM with the templates of prompts.py and its list parser. A count mismatch,
an empty or an unparseable output is recorded in `claim_error` (the answer then gets no score and
is excluded from pairs, with that reason), never silently truncated as the official code does.
`mode="rules"` is the explicit ShapesWorld extractor (object mentions), never a silent fallback.
`mode="holistic"` (scoring holistic, an ablation) extracts nothing: the answer is its one "claim",
and its question asks whether the whole description is accurate.
"""

from __future__ import annotations

from .. import schema as S
from ..engines import GenerateRequest, SamplingParams, load_engine
from ..engines.base import user_message
from ..prompts import HOLISTIC_QUESTION, PROMPT_SETS, bullets, parse_list
from ..seeds import derive_seed
from ._limits import TokenBound
from .base import Stage

MAX_ANSWER_WORDS = 300  # official: answers are truncated to 300 words before extraction


class ExtractClaims(Stage):
    reads = (S.ANSWER,)
    writes = (S.CLAIMS, S.QUESTIONS, S.CLAIM_ERROR, S.ERROR)  # error: quarantined (an answer too long for it)

    def __init__(
        self,
        mode: str = "llm",
        model: str | None = None,
        engine: str = "hf",
        engine_options: dict | None = None,
        prompts: str = "instruct",
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_new_tokens: int = 512,
        run_seed: int = 0,
        truth=None,
    ):
        if mode not in ("llm", "rules", "holistic"):
            raise ValueError(f"claims mode must be 'llm', 'rules' or 'holistic', got {mode!r}")
        if mode == "rules" and truth is None:
            raise ValueError("claims mode 'rules' names ShapesWorld's objects: it needs an input with truth (toy:N)")
        self.truth = truth  # the input's (inputs.py): what the rules mode finds objects with
        if mode == "llm" and not model:
            raise ValueError("claims mode 'llm' needs a claim LLM model")
        if prompts not in PROMPT_SETS:
            raise ValueError(f"claim prompts must be one of {', '.join(PROMPT_SETS)}, got {prompts!r}")
        self.mode, self.prompts, self.run_seed = mode, PROMPT_SETS[prompts], run_seed
        self.engine = load_engine(model, engine, **(engine_options or {})) if mode == "llm" else None
        # the facts prompt around the answer, and facts about as long as the answer, must fit its context
        # (max_new_tokens is a cap, often the whole context of a small model: not a length to reserve)
        self.bound = (
            TokenBound(model, 0, None, engine_options, self.prompts.facts.format(question="", answer=""), share=0.5)
            if mode == "llm"
            else None
        )
        # sampled calls are seeded per answer, so a rerun reproduces the same claims
        self.params = SamplingParams(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens)

    def process(self, rows: list[dict], images: dict[int, object]) -> list[dict]:
        for r in rows:
            r.update({S.CLAIMS: [], S.QUESTIONS: [], S.CLAIM_ERROR: None})
            if self.bound and not r.get(S.ERROR):  # quarantined before the claim LLM spends time on it
                r[S.ERROR] = self.bound.problem(_truncate(r[S.ANSWER]), "answer for the claim LLM")
        live = [r for r in rows if not r.get(S.ERROR)]
        if self.mode == "rules":
            for r in live:
                self._rules(r)
        elif self.mode == "holistic":
            for r in live:
                r[S.CLAIMS], r[S.QUESTIONS] = [r[S.ANSWER]], [HOLISTIC_QUESTION.format(answer=_truncate(r[S.ANSWER]))]
        else:
            self._llm(live)
        return rows

    def _rules(self, row: dict) -> None:
        kinds = self.truth.mentions(row[S.ANSWER])
        row[S.CLAIMS] = [f"There is a {k}." for k in kinds]
        row[S.QUESTIONS] = [f"Is there a {k} in the image?" for k in kinds]
        if not kinds:
            row[S.CLAIM_ERROR] = "no claims: the answer names no object"

    def _llm(self, rows: list[dict]) -> None:
        facts_out = self._ask(
            rows,
            "facts",
            [
                self.prompts.facts.format(question=r.get(S.INSTRUCTION) or "", answer=_truncate(r[S.ANSWER]))
                for r in rows
            ],
        )
        asked = []
        for r, text in zip(rows, facts_out):
            try:
                r[S.CLAIMS] = parse_list(text)
                asked.append(r)
            except ValueError as exc:
                r[S.CLAIM_ERROR] = f"facts output unparseable: {exc}"
        questions_out = self._ask(
            asked,
            "questions",
            [
                self.prompts.questions.format(question=r.get(S.INSTRUCTION) or "", facts=bullets(r[S.CLAIMS]))
                for r in asked
            ],
        )
        for r, text in zip(asked, questions_out):
            try:
                questions = parse_list(text, questions=True)
            except ValueError as exc:
                r[S.CLAIM_ERROR] = f"questions output unparseable: {exc}"
                continue
            if len(questions) != len(r[S.CLAIMS]):
                r[S.CLAIM_ERROR] = f"{len(r[S.CLAIMS])} facts but {len(questions)} questions"
                continue
            r[S.QUESTIONS] = questions

    def _ask(self, rows: list[dict], step: str, prompts: list[str]) -> list[str]:
        if not prompts:
            return []
        seeds = [derive_seed(self.run_seed, "claims", step, r.get(S.ANSWER_ID, i)) for i, r in enumerate(rows)]
        return self.engine.generate(
            [GenerateRequest(user_message(p, False), None, self.params, seed) for p, seed in zip(prompts, seeds)]
        )


def _truncate(answer: str) -> str:
    words = answer.split()
    return answer if len(words) <= MAX_ANSWER_WORDS else " ".join(words[:MAX_ANSWER_WORDS])
