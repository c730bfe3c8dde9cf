"""Per-stage actor resources: resources.*."""

from __future__ import annotations

from pydantic import Field, field_validator

from .fields import Strict


class StageResources(Strict):
    concurrency: tuple[int, int] = Field(
        (1, 1), description="Actor pool (min, max) size; max > min lets the pool grow."
    )
    batch_size: int = Field(16, ge=1, description="Rows per batch handed to one actor call.")
    engine_batch_size: int = Field(
        32,
        ge=1,
        description="hf engine: sequences per forward pass (lower it for big "
        "models; one row may hold many: candidates, questions).",
    )
    num_gpus: float = Field(0.0, ge=0, description="GPUs per actor (fractions share a GPU).")
    num_cpus: float = Field(0.5, gt=0, description="CPUs per actor; 0.5 keeps 2-core machines from starving.")
    threads: int | None = Field(
        None,
        ge=1,
        description="torch threads per actor (default: max(1, num_cpus)); "
        "more than the reserved CPUs lets a bottleneck stage use idle cores.",
    )

    @field_validator("concurrency")
    @classmethod
    def _min_le_max(cls, v: tuple[int, int]) -> tuple[int, int]:
        lo, hi = v
        if lo < 1 or hi < lo:
            raise ValueError(f"needs 1 <= min <= max, got ({lo}, {hi})")
        return v


class ResourcesConfig(Strict):
    gpu_memory_gb: float | None = Field(
        None,
        gt=0,
        description="Memory of one GPU where the stages run (e.g. 48 for an "
        "L40S); when set, each stage is checked to hold its "
        "model's weights (local folders).",
    )
    sample: StageResources = Field(default_factory=StageResources, description="Policy sampling actors.")
    claims: StageResources = Field(default_factory=StageResources, description="Claim-LLM actors.")
    label: StageResources = Field(
        default_factory=lambda: StageResources(concurrency=(1, 2)), description="Labeler actors (elastic)."
    )
    reference: StageResources = Field(default_factory=StageResources, description="Reference log-prob actors.")
