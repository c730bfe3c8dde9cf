"""A sweep file: one base config, variants of it (dotted overrides) and seeds; each variant x seed
is an ordinary run in OUT/<variant>/seed_<s>/. Relative paths (the base config file, OUT) mean the
directory the command runs in, as a run config's do. Every run's config is validated before
anything starts, and one ConfigError lists every problem of every run."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from ..config import RunConfig, load_config
from ..config.fields import Strict
from ..errors import ConfigError
from ..locations import resolve_local_path
from ..pipeline.sweep_runs import SweepRun

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
DEFAULT_METRICS = ("chair_s", "recall", "pair_accuracy", "pairs")


class SweepSpec(Strict):
    base: str = Field(description="A shipped config name (e.g. toy) or a config file.")
    out: str = Field(description="The sweep's folder: a local path or s3://...")
    seeds: list[int] = Field([0], min_length=1, description="Each variant runs once per seed (the run's `seed`).")
    set: dict[str, Any] = Field({}, description="Dotted overrides applied to every run, as --set.")
    variants: dict[str, dict[str, Any]] = Field(min_length=1, description="Variant name -> its dotted overrides.")
    metrics: list[str] = Field(
        list(DEFAULT_METRICS),
        min_length=1,
        description="Summary columns in table.md and the plots: evaluation metrics (chair_s, recall, ...) at the "
        "last iteration, feedback metrics (pairs, pair_accuracy, ...) averaged over iterations.",
    )

    @field_validator("variants")
    @classmethod
    def _folder_names(cls, v: dict) -> dict:
        bad = [name for name in v if not _NAME.fullmatch(name)]
        if bad:
            raise ValueError(f"variant names become folder names (letters, digits, . _ -): {bad}")
        return v

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v) or min(v) < 0:
            raise ValueError(f"seeds must be distinct and >= 0, got {v}")
        return v


@dataclass(frozen=True)
class Sweep:
    spec: SweepSpec
    out: str  # absolute path or URI
    runs: list[SweepRun]  # variant-major: the first wave on a cluster is the first variant's seeds


def load_sweep(path: str | Path) -> Sweep:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sweep {path}: no such file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"sweep {path}: not valid YAML ({exc})") from None
    try:
        spec = SweepSpec.model_validate(raw if isinstance(raw, dict) else {})
    except ValidationError as exc:
        lines = [f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(f"sweep {path}:\n" + "\n".join(f"  - {line}" for line in lines)) from None
    out = resolve_local_path(spec.out, Path.cwd()).rstrip("/")
    runs, problems = [], []
    for variant, overrides in spec.variants.items():
        for seed in spec.seeds:
            sets = {**spec.set, **overrides, "seed": seed, "run_dir": f"{out}/{variant}/seed_{seed}"}
            try:
                config = load_config(spec.base, [f"{k}={json.dumps(v)}" for k, v in sets.items()])
            except ConfigError as exc:
                problems.append(f"variant {variant}, seed {seed}: {exc}")
                continue
            if config.tracking.enabled:  # one experiment (W&B group) per sweep, one tracker run per run
                tracking = config.tracking.for_sweep(out.rsplit("/", 1)[-1], variant, seed, overrides)
                config = config.model_copy(update={"tracking": tracking})
            runs.append(SweepRun(variant, seed, config))
    if runs:
        known = summary_columns(runs[0].config)
        problems += [
            f"metrics: {m!r} is not a summary column; known: {', '.join(known)}" for m in spec.metrics if m not in known
        ]
    if problems:
        raise ConfigError(f"sweep {path}:\n" + "\n".join(problems))
    return Sweep(spec, out, runs)


def summary_columns(config: RunConfig) -> list[str]:
    """The metrics of RUN/summary.json's rows for CONFIG (driver.py: _row)."""
    from ..metric_names import FEEDBACK, HELDOUT, benchmark_metrics

    return [*HELDOUT, *benchmark_metrics(config.eval.benchmarks), *FEEDBACK, "dpo_loss_last"]
