"""The engine Protocol and its request/result types (plain data, no heavy imports)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .chat import ChatFormat


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.7
    top_p: float = 1.0
    max_new_tokens: int = 64


@dataclass
class GenerateRequest:
    """messages: chat messages (user text); image: a PIL image or None; seed: this sample's seed."""

    messages: list[dict]
    image: Any = None
    params: SamplingParams = field(default_factory=SamplingParams)
    seed: int = 0


@dataclass
class YesNoRequest:
    """A polar question about an image; the engine appends nothing: the text is asked as given."""

    question: str
    image: Any = None


@dataclass
class LogprobRequest:
    """Score a given answer to (messages, image)."""

    messages: list[dict]
    answer: str
    image: Any = None


@dataclass
class SequenceLogprobs:
    total: float
    tokens: list[float]


class Engine(Protocol):
    chat: ChatFormat  # the prompt and completion rendering every backend shares

    def generate(self, requests: list[GenerateRequest]) -> list[str]: ...

    def yes_no(self, requests: list[YesNoRequest]) -> list[tuple[float, float]]:
        """(p_yes, p_no): P(yes)+P(Yes) and P(no)+P(No) of the first answer token."""
        ...

    def sequence_logprobs(self, requests: list[LogprobRequest]) -> list[SequenceLogprobs]: ...


def user_message(text: str, with_image: bool) -> list[dict]:
    """One user turn in the structured-content form every HF multimodal chat template accepts."""
    content = [{"type": "text", "text": text}]
    if with_image:
        content.insert(0, {"type": "image"})
    return [{"role": "user", "content": content}]


def check_model_path(model: str) -> None:
    """Fail with a readable message for a local path that is not a saved model (hub ids pass)."""
    from ..errors import ModelLoadError

    looks_local = model.startswith((".", "/", "~")) or os.sep in model and os.path.exists(os.path.dirname(model))
    if looks_local and not os.path.isdir(os.path.expanduser(model)):
        raise ModelLoadError(f"model {model!r}: no such folder")
    if os.path.isdir(model) and not os.path.exists(os.path.join(model, "config.json")):
        raise ModelLoadError(f"model {model!r}: folder has no config.json (not a saved model)")
