"""Experiment trackers for the whole loop: tracking.* (rlaifv_ray/tracking/)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from .fields import Strict


class MlflowConfig(Strict):
    uri: str = Field(
        min_length=1,
        description="MLflow tracking URI: http(s)://host:port of a tracking server, or a local store "
        "(sqlite:///mlflow.db, a folder).",
    )
    experiment: str = Field("rlaifv-ray", min_length=1, description="Experiment the run's tracker run goes to.")

    @field_validator("uri")
    @classmethod
    def _no_credentials(cls, v: str) -> str:
        if re.match(r"^[a-z+]+://[^/@]*:[^/@]*@", v):
            raise ValueError(
                "holds credentials: the config is written to the run directory; set MLFLOW_TRACKING_USERNAME "
                "and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) instead"
            )
        return v


class WandbConfig(Strict):
    project: str = Field(min_length=1, description="W&B project.")
    entity: str | None = Field(None, description="W&B entity (user or team); default: the API key's.")
    mode: Literal["online", "offline"] | None = Field(
        None,
        description="online, or offline (run files under RUN/wandb/, `wandb sync` uploads them); "
        "default: online when WANDB_API_KEY is set, else offline.",
    )
    group: str | None = Field(None, description="W&B group (a sweep sets it to the sweep's name).")


class TrackingConfig(Strict):
    mlflow: MlflowConfig | None = Field(None, description="Log the run to MLflow.")
    wandb: WandbConfig | None = Field(None, description="Log the run to Weights & Biases.")
    run_name: str | None = Field(None, description="Tracker run name (default: the run directory's name).")
    tags: dict[str, str] = Field(default_factory=dict, description="Extra tags (a sweep adds sweep, variant, seed).")
    params: dict[str, str] = Field(
        default_factory=dict, description="Extra params beside the flattened config (a sweep adds its overrides)."
    )

    @property
    def enabled(self) -> bool:
        return bool(self.mlflow or self.wandb)

    def for_sweep(self, sweep: str, variant: str, seed: int, overrides: dict) -> TrackingConfig:
        """One MLflow experiment (a W&B group) per sweep, one tracker run per variant x seed."""
        return self.model_copy(
            update={
                "mlflow": self.mlflow and self.mlflow.model_copy(update={"experiment": sweep}),
                "wandb": self.wandb and self.wandb.model_copy(update={"group": sweep}),
                "run_name": self.run_name or f"{variant}/seed_{seed}",
                "tags": {**self.tags, "sweep": sweep, "variant": variant, "seed": str(seed)},
                "params": {**self.params, **{f"override.{k}": str(v) for k, v in overrides.items()}},
            }
        )
