"""Typed run configuration: loaded from YAML, `--set a.b=c` overrides, validated once.

Every field has a description (`rlaifv-ray config --fields` lists them). A bad config raises ONE
ConfigError listing every problem, before any work starts. The schema is in schema.py and the
section modules beside it; where paths and models are found, in locations.py.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ValidationError

from ..errors import ConfigError
from ..locations import SHIPPED_CONFIGS, resolve_local_path, resolve_model_path, shipped_config
from .engine_options import SimOptions, VLLMOptions
from .evaluation import BenchmarkConfig, CollapseConfig, EvalConfig, GuardConfig, SelectConfig, StopConfig
from .resources import ResourcesConfig, StageResources
from .run import (
    ClaimExtractionConfig,
    DataConfig,
    ModelsConfig,
    ModelSpec,
    PairsConfig,
    RunConfig,
    SamplingConfig,
)
from .serving import ServeConfig
from .tracking import MlflowConfig, TrackingConfig, WandbConfig
from .training import LoraConfig, TrainConfig

__all__ = [
    "SHIPPED_CONFIGS",
    "BenchmarkConfig",
    "ClaimExtractionConfig",
    "CollapseConfig",
    "DataConfig",
    "EvalConfig",
    "GuardConfig",
    "LoraConfig",
    "MlflowConfig",
    "ModelSpec",
    "ModelsConfig",
    "PairsConfig",
    "ResourcesConfig",
    "RunConfig",
    "SamplingConfig",
    "SelectConfig",
    "ServeConfig",
    "StageResources",
    "StopConfig",
    "TrackingConfig",
    "TrainConfig",
    "SimOptions",
    "VLLMOptions",
    "WandbConfig",
    "apply_override",
    "describe_fields",
    "load_config",
    "resolve_local_path",
    "resolve_model_path",
    "shipped_config",
    "validate_config",
    "validate_section",
]


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read YAML, apply `a.b=c` overrides (values parsed as YAML), validate; ConfigError lists all problems."""
    import yaml

    path = shipped_config(path)
    if not path.is_file():
        raise ConfigError(f"config {path}: no such file (shipped configs: {', '.join(SHIPPED_CONFIGS)})")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path}: expected a mapping at the top level")
    problems = []
    for item in overrides:
        try:
            apply_override(raw, item)
        except ValueError as exc:
            problems.append(str(exc))
    return validate_config(raw, source=str(path), problems=problems)


def validate_config(
    raw: dict, source: str = "config", problems: list[str] | None = None, base: str | Path | None = None
) -> RunConfig:
    """Validate a raw config; relative paths resolve against `base` (default: the current directory)."""
    return validate_section(RunConfig, raw, source, problems, base)


def validate_section(
    model: type[BaseModel], raw: dict, source: str, problems: list[str] | None = None, base: str | Path | None = None
):
    """MODEL (RunConfig or one section) from RAW, or one ConfigError listing PROBLEMS and every field's."""
    problems = list(problems or [])
    validated = None
    try:
        validated = model.model_validate(raw, context={"base": Path(base or Path.cwd())})
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            shown = err["type"] != "missing" and not isinstance(err["input"], dict)
            problems.append(f"{where}: {err['msg']}" + (f" (got {err['input']!r})" if shown else ""))
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"{source}: {len(problems)} problem(s):\n{listing}")
    return validated


def apply_override(raw: dict, item: str) -> None:
    import yaml

    if "=" not in item:
        raise ValueError(f"--set {item!r}: expected key.path=value")
    key, value = item.split("=", 1)
    parts = key.strip().split(".")
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"--set {item!r}: {part} is not a section")
    node[parts[-1]] = yaml.safe_load(value) if value.strip() else value


def describe_fields(model: type[BaseModel] = RunConfig, prefix: str = "") -> list[str]:
    """One line per config field with its description, for CLI help."""
    lines = []
    for name, info in model.model_fields.items():
        ann = info.annotation
        nested = next(
            (a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)), None
        )
        lines.append(f"{prefix}{name}: {info.description or ''}")
        if nested is not None:
            lines += describe_fields(nested, prefix + name + ".")
    return lines
