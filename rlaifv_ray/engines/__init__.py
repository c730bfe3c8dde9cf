"""Model backends behind one Protocol (`Engine`): `hf` (transformers) and, later, `vllm`.

`load_engine(spec)` imports the backend lazily so that `import rlaifv_ray` stays light.
"""

from .base import (
    Engine,
    GenerateRequest,
    LogprobRequest,
    SamplingParams,
    SequenceLogprobs,
    YesNoRequest,
    derive_seed,
)


def load_engine(model: str, engine: str = "hf", **options) -> Engine:
    """Build the named backend for a model folder or hub id."""
    if engine == "hf":
        from .hf import HFEngine

        return HFEngine(model, **options)
    raise ValueError(f"unknown engine {engine!r} (available: hf)")


__all__ = [
    "Engine",
    "GenerateRequest",
    "LogprobRequest",
    "SamplingParams",
    "SequenceLogprobs",
    "YesNoRequest",
    "derive_seed",
    "load_engine",
]
