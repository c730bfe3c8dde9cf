"""The best-of-N ranker on Ray Serve: serve.*."""

from __future__ import annotations

from pydantic import Field, field_validator

from .fields import ModelLocation, Strict


class ServeConfig(Strict):
    policy: ModelLocation | None = Field(
        None,
        description="Aligned policy to serve (default: RUN/best.json's when "
        "eval.select is set, else the last trained checkpoint in run_dir, "
        "else models.policy.path).",
    )
    reference: ModelLocation | None = Field(
        None, description="Reference of the reward (default: models.policy.path, the policy before alignment)."
    )
    beta: float | None = Field(None, gt=0, description="Reward beta (default: train.beta).")
    host: str = Field("127.0.0.1", description="HTTP bind address; 0.0.0.0 exposes the ranker to the network.")
    port: int = Field(8000, ge=1, le=65535, description="HTTP port.")
    token_env: str = Field(
        "RLAIFV_SERVE_TOKEN",
        description="Environment variable holding the bearer token; "
        "when it is set, every route but /healthz requires it.",
    )
    max_batch_size: int = Field(16, ge=1, description="Dynamic batching: requests scored together (1 = off).")
    batch_wait_timeout_s: float = Field(0.01, ge=0, description="How long a batch waits to fill.")
    score_batch: int = Field(
        128,
        ge=1,
        description="hf engine: candidates scored in one forward pass; a dynamic "
        "batch's candidates share passes of up to this many (each holds "
        "its own KV cache: lower it for big models on small GPUs).",
    )
    max_ongoing_requests: int = Field(
        64,
        ge=1,
        description="Requests a replica accepts at once (more wait at the "
        "proxy); keep it above max_batch_size so batches fill.",
    )
    replicas: tuple[int, int] = Field((1, 1), description="Autoscaling (min, max) replicas.")
    target_ongoing_requests: float = Field(8, gt=0, description="Autoscaling target of in-flight requests per replica.")
    num_cpus: float = Field(1.0, gt=0, description="CPUs per replica (also its torch threads).")
    num_gpus: float = Field(0.0, ge=0, description="GPUs per replica.")
    max_request_bytes: int = Field(8 << 20, ge=1024, description="Larger request bodies get 413.")
    max_candidates: int = Field(32, ge=1, description="Most candidates per /v1/rank request.")
    max_n: int = Field(16, ge=1, description="Most samples per /v1/generate request.")
    max_answer_chars: int = Field(4000, ge=1, description="Longest candidate answer accepted.")

    @field_validator("replicas")
    @classmethod
    def _min_le_max(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] < 1 or v[1] < v[0]:
            raise ValueError(f"needs 1 <= min <= max, got {v}")
        return v
