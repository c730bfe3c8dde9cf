"""Where things are: model locations (folders, s3://, hub ids, `toy:ROLE`), local paths, prompt specs
(`toy:N`) and the shipped configs. The one module outside toyworld/ that knows the `toy:` prefix.

Relative paths mean the directory the command runs in (for `ray job submit --working-dir .`, the
uploaded directory). They are made absolute once, at validation, so a Ray worker running elsewhere
reads the same folder.
"""

from __future__ import annotations

import re
from pathlib import Path

TOY = "toy:"
SIM = "sim:"  # engine sim's latency model (engines/sim.py): sim:<billions of parameters>b

# Hugging Face hub ids: "name" or "namespace/name" (huggingface_hub's validate_repo_id, simplified).
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?")


def resolve_model_path(value: str, base: str | Path) -> str:
    """A model location as every process will read it: URIs (s3://) and absolute paths as given
    (an absolute path may name a mount that only the GPU nodes have), a relative folder that exists
    under `base` as its absolute path, `toy:ROLE` for a committed ShapesWorld model, `sim:SIZE` for
    engine sim, else a hub id.
    Raises ValueError for anything else."""
    if "://" in value:
        return value
    if value.startswith(TOY):
        return _toy_model(value[len(TOY) :])
    if value.startswith(SIM):
        sim_size(value)
        return value
    path = Path(value).expanduser()
    if path.is_absolute():
        return str(path)
    if (Path(base) / path).is_dir():
        return str((Path(base) / path).resolve())
    if _HUB_ID.fullmatch(value) and ".." not in value:
        return value
    raise ValueError(
        f"{value!r} is neither a model folder ({Path(base) / path} does not exist) nor a hub id "
        "(name or namespace/name)"
    )


def sim_size(model: str) -> float:
    """`sim:7b` -> 7.0; a readable error for anything else."""
    m = re.fullmatch(re.escape(SIM) + r"(\d+(?:\.\d+)?)b", model.strip().lower())
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"{model!r}: a simulated model is named sim:<billions of parameters>b (sim:7b)")
    return float(m.group(1))


# the committed ShapesWorld models (package data: a wheel has them), in the order `toy build` makes them
TOY_ROLES = ("labeler", "policy", "claim_llm")
TOY_MODELS = Path(__file__).resolve().parent / "toyworld" / "pretrained"


def _toy_model(role: str) -> str:
    """The committed ShapesWorld model of ROLE (package data: found from a clone or a wheel alike)."""
    if role not in TOY_ROLES:
        raise ValueError(f"toy:{role}: the ShapesWorld models are toy:{', toy:'.join(TOY_ROLES)}")
    if not (TOY_MODELS / role / "config.json").is_file():
        raise ValueError(
            f"toy:{role}: {TOY_MODELS / role} is missing; `rlaifv-ray toy build --out {TOY_MODELS}` rebuilds it"
        )
    return str(TOY_MODELS / role)


def resolve_local_path(value: str, base: str | Path) -> str:
    """A local path made absolute against `base`; URIs (s3://...) and toy:N specs pass unchanged."""
    if "://" in value or value.startswith(TOY):
        return value
    return str((Path(base) / Path(value).expanduser()).resolve())


def toy_prompt_count(spec: str) -> str | None:
    """N of a `toy:N` prompt spec (the text after the prefix, unparsed); None for any other input."""
    return spec[len(TOY) :] if spec.startswith(TOY) else None


def toy_prompt_spec(n: int) -> str:
    return f"{TOY}{n}"


SHIPPED_CONFIGS = ("toy", "cluster_7b", "cluster_72b", "qwen2_5_vl_7b")


def shipped_config(path: str | Path) -> Path:
    """A config file, or the name of one shipped in the package (`toy`, ...): found from a clone or
    a wheel install alike."""
    if str(path) in SHIPPED_CONFIGS and not Path(path).is_file():
        return Path(__file__).resolve().parent / "configs" / f"{path}.yaml"
    return Path(path)
