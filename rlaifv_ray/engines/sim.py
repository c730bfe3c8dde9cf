"""`engine: sim`: an engine for measuring the pipeline at cluster shape, not for aligning a model.

It loads no model and imports no torch. Its outputs have the shapes a real run's have (answers of
a drawn length, one fact per sentence, one question per fact, yes/no probabilities, log-probs),
seeded per request so a run is reproducible, and each call takes the time a latency model gives
for its tokens on one GPU, times `time_scale`. The model is `sim:<billions of parameters>b`
(`sim:7b`, `sim:34b`).

The latency model (docs/scale.md) is per GPU at saturation:
- decode: output tokens/s = 12,500 x (8 / P)^1.52 for P billion parameters. The two published
  vLLM points it passes through, on one H100 80GB: Llama 3.1 8B BF16 ~12,500 tok/s and Llama 3.1
  70B FP8 460 tok/s at batch 64 (https://www.morphllm.com/vllm-benchmarks, "Throughput
  Benchmarks", April 2026, collecting third-party vLLM runs).
- prefill (prompt and image tokens, all of yes/no and log-prob scoring): compute-bound, 2P FLOPs
  a token at 40% of an H100's 989 dense BF16 TFLOP/s.
"""

from __future__ import annotations

import math
import random
import re
import time
import zlib

from ..locations import sim_size
from ..seeds import derive_seed
from .base import GenerateRequest, LogprobRequest, SequenceLogprobs, YesNoRequest

DECODE_8B_TOKENS_PER_S = 12_500.0  # Llama 3.1 8B BF16, 1x H100 (module docstring)
DECODE_EXPONENT = math.log(12_500 / 460) / math.log(70 / 8)  # through Llama 3.1 70B FP8, 460 tok/s
PREFILL_FLOPS = 0.4 * 989e12  # H100 SXM dense BF16 at 40% utilisation
WORDS = (
    "a red circle blue square green triangle small large left right top bottom near next to above "
    "below the image shows there is and with on in of background white dark bright corner centre"
).split()


def tokens(text: str) -> int:
    """The token count the latency model charges: about 4 tokens per 3 words, as BPE tokenizers give
    on English."""
    return math.ceil(len(text.split()) * 4 / 3)


class Latency:
    """Seconds one GPU spends on a call of a P-billion-parameter model."""

    def __init__(self, params_b: float, image_tokens: int):
        self.decode_per_s = DECODE_8B_TOKENS_PER_S * (8 / params_b) ** DECODE_EXPONENT
        self.prefill_per_s = PREFILL_FLOPS / (2 * params_b * 1e9)
        self.image_tokens = image_tokens

    def seconds(self, prompt_tokens: int, images: int, output_tokens: int) -> float:
        prefill = prompt_tokens + images * self.image_tokens
        return prefill / self.prefill_per_s + output_tokens / self.decode_per_s


class SimChat:
    """What the stages read of a chat format: the completion's text and its token ids (a word each)."""

    def completion(self, messages: list[dict], answer: str) -> str:
        return answer

    def token_ids(self, text: str) -> list[int]:
        return [zlib.crc32(w.encode()) % 50_000 for w in text.split()]


class SimEngine:
    def __init__(
        self,
        model: str,
        time_scale: float = 1.0,
        image_tokens: int = 576,
        answer_words: int = 100,
        batch_size: int | None = None,
        **_ignored,  # dtype and the like: options of the real engines the config passes to every engine
    ):
        self.model, self.time_scale, self.answer_words = model, time_scale, answer_words
        self.latency = Latency(sim_size(model), image_tokens)
        self.chat = SimChat()
        self.busy_seconds = 0.0  # simulated GPU time, before the time scale

    def _spend(self, seconds: float) -> None:
        self.busy_seconds += seconds
        if self.time_scale > 0:
            time.sleep(seconds * self.time_scale)

    def generate(self, requests: list[GenerateRequest]) -> list[str]:
        out = [self._text(r) for r in requests]
        prompt = sum(tokens(_text_of(r.messages)) for r in requests)
        self._spend(self.latency.seconds(prompt, _images(requests), sum(tokens(t) for t in out)))
        return out

    def yes_no(self, requests: list[YesNoRequest]) -> list[tuple[float, float]]:
        out = []
        for r in requests:
            rng = random.Random(derive_seed(self.model, "yes_no", r.question))
            p = rng.betavariate(0.6, 0.4)  # mostly confident, leaning yes, as labelers are
            out.append((p, 1 - p))
        self._spend(self.latency.seconds(sum(tokens(r.question) for r in requests), _images(requests), len(requests)))
        return out

    def sequence_logprobs(self, requests: list[LogprobRequest]) -> list[SequenceLogprobs]:
        out = []
        for r in requests:
            rng = random.Random(derive_seed(self.model, "logprobs", _text_of(r.messages), r.answer))
            per_token = [-rng.expovariate(1.0) for _ in range(max(1, tokens(r.answer)))]
            out.append(SequenceLogprobs(sum(per_token), per_token))
        prompt = sum(tokens(_text_of(r.messages)) + tokens(r.answer) for r in requests)
        self._spend(self.latency.seconds(prompt, _images(requests), 0))
        return out

    def _text(self, r: GenerateRequest) -> str:
        """Facts for a facts prompt (one per sentence of its answer), a question per fact for a
        questions prompt, else an answer of about `answer_words` words (drawn per seed)."""
        text = _text_of(r.messages).rstrip()
        if r.image is None and text.endswith("Questions:"):
            facts = [line[2:] for line in text.rsplit("Facts:", 1)[-1].splitlines() if line.startswith("- ")]
            return "\n".join(f"- Is it true that {f.rstrip('.').lower()}?" for f in facts)
        if r.image is None and text.endswith("Facts:"):
            answer = text.rsplit("Answer:", 1)[-1].rsplit("Facts:", 1)[0]
            sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", answer) if s.strip()]
            return "\n".join(f"- {s}" for s in sentences)
        rng = random.Random(r.seed)
        n = max(3, round(rng.lognormvariate(math.log(self.answer_words), 0.35)))
        sentences, words = [], 0
        while words < n:
            k = rng.randint(6, 16)
            sentences.append(" ".join(rng.choice(WORDS) for _ in range(k)).capitalize() + ".")
            words += k
        return " ".join(sentences)


def _images(requests) -> int:
    """Distinct images of a call: the stages hand one decoded object per distinct image, and vLLM's
    prefix caching encodes an image shared by a row's candidates or questions once."""
    return len({id(r.image) for r in requests if r.image is not None})


def _text_of(messages: list[dict]) -> str:
    parts = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            parts.append(content)
        else:
            parts += [c.get("text", "") for c in content or [] if c.get("type") == "text"]
    return "\n".join(parts)
