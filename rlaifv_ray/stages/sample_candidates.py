"""SampleCandidates: N answers per prompt from the policy, one recorded seed each (docs/method.md s.1.1)."""

from __future__ import annotations

from .. import schema as S
from ..engines import GenerateRequest, SamplingParams, load_engine
from ..engines.base import user_message
from ..seeds import derive_seed
from ._limits import TokenBound
from .base import Stage


class SampleCandidates(Stage):
    reads = (S.PROMPT_ID, S.IMAGE, S.INSTRUCTION)
    writes = (S.ANSWER_ID, S.SAMPLE_INDEX, S.SEED, S.ANSWER, S.ERROR)

    def __init__(
        self,
        model: str,
        n: int,
        temperature: float,
        top_p: float,
        max_new_tokens: int,
        run_seed: int,
        engine: str = "hf",
        engine_options: dict | None = None,
        max_pixels: int = 1024 * 1024,
        max_instruction_tokens: int | None = None,
        deconfound: bool = True,
    ):
        self.engine = load_engine(model, engine, **(engine_options or {}))
        self.bound = TokenBound(model, max_new_tokens, max_instruction_tokens, engine_options)
        self.n, self.run_seed, self.max_pixels = n, run_seed, max_pixels
        self.params = decoding(n, SamplingParams(temperature, top_p, max_new_tokens), deconfound)

    def process(self, rows: list[dict], images: dict[int, object]) -> list[dict]:
        out, requests, slots = [], [], []
        for i, row in enumerate(rows):
            problem = (
                row.get(S.ERROR)
                or ("empty instruction" if not str(row.get(S.INSTRUCTION) or "").strip() else None)
                or self.bound.problem(str(row[S.INSTRUCTION]), "instruction")
            )
            if problem:
                out.append(
                    {
                        **row,
                        S.ERROR: problem,
                        S.ANSWER_ID: f"{row[S.PROMPT_ID]}/-",
                        S.SAMPLE_INDEX: -1,
                        S.SEED: 0,
                        S.ANSWER: "",
                    }
                )
                continue
            for k in range(self.n):
                seed = derive_seed(self.run_seed, row[S.PROMPT_ID], k)
                message = user_message(row[S.INSTRUCTION], True)
                requests.append(GenerateRequest(message, images[i], self.params[k], seed))
                out.append(
                    {**row, S.ANSWER_ID: f"{row[S.PROMPT_ID]}/{k}", S.SAMPLE_INDEX: k, S.SEED: seed, S.ERROR: None}
                )
                slots.append(len(out) - 1)
        for slot, text in zip(slots, _generate_isolating_failures(self.engine, requests)):
            if isinstance(text, Exception):
                out[slot].update({S.ANSWER: "", S.ERROR: f"engine error: {text}"})
            elif not text.strip():
                out[slot].update({S.ANSWER: "", S.ERROR: "empty answer"})
            else:
                out[slot][S.ANSWER] = text
        return out


def decoding(n: int, params: SamplingParams, deconfound: bool) -> list[SamplingParams]:
    """Candidate k's decoding. Deconfounded (the method): one setting for all N, so candidates differ
    only by their seeds and a pair's difference is the content. Confounded (the paper's baseline,
    whose candidates come from different models or decodings; here one policy stands in): candidate
    0 greedy, the others at temperatures spread from half to 1.5x the configured one, every other
    one also with top_p cut to 0.8x, so style varies with the candidate as well as content."""
    if deconfound:
        return [params] * n
    spread = [params.temperature * (0.5 + k / max(1, n - 2)) for k in range(n - 1)]
    return [SamplingParams(0.0, 1.0, params.max_new_tokens)] + [
        SamplingParams(t, params.top_p * (0.8 if k % 2 else 1.0), params.max_new_tokens) for k, t in enumerate(spread)
    ]


def _generate_isolating_failures(engine, requests):
    """One engine call for the batch; if it fails, retry per request so one bad row cannot sink
    the others (its exception is returned in its slot)."""
    if not requests:
        return []
    try:
        return engine.generate(requests)
    except Exception:  # noqa: BLE001 - the batch failed: each request alone, below
        out = []
        for r in requests:
            try:
                out.append(engine.generate([r])[0])
            except Exception as exc:  # noqa: BLE001 - returned in its slot, the row's error
                out.append(exc)
        return out
