"""Model backends behind one Protocol (`Engine`): `hf` (transformers), `vllm`, and `sim` (a latency
model for measuring the pipeline, engines/sim.py).

`load_engine(spec)` imports the backend lazily so that `import rlaifv_ray` stays light.
"""

from .base import (
    Engine,
    GenerateRequest,
    LogprobRequest,
    SamplingParams,
    SequenceLogprobs,
    YesNoRequest,
)


def load_engine(model: str, engine: str = "hf", **options) -> Engine:
    """Build the named backend for a model folder or hub id."""
    if engine == "hf":
        from .hf import HFEngine

        return HFEngine(model, **options)
    if engine == "sim":
        from .sim import SimEngine

        return SimEngine(model, **options)
    if engine == "vllm":
        import importlib.util

        # checked here, where the stage runs, not when a config is validated on a head node or laptop
        if importlib.util.find_spec("vllm") is None:
            from ..errors import ConfigError

            raise ConfigError(
                "engine 'vllm' needs vLLM on the machines that run this stage: "
                "pip install 'rlaifv-ray[vllm]' there (or use engine: hf)"
            )
        from .vllm_engine import VLLMEngine

        return VLLMEngine(model, **options)
    raise ValueError(f"unknown engine {engine!r} (available: hf, vllm, sim)")


__all__ = [
    "Engine",
    "GenerateRequest",
    "LogprobRequest",
    "SamplingParams",
    "SequenceLogprobs",
    "YesNoRequest",
    "load_engine",
]
