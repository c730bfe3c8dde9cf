"""What every config section shares: strict models (a typo in a key fails) and path fields that
resolve against the directory the command runs in (locations.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo

from ..locations import resolve_local_path, resolve_model_path


def _resolved_against_base(resolve):
    """A validator applying `resolve(value, base)` when validate_config passed a base directory
    (assignments and workers re-validating a resolved config pass none: values stay as they are)."""

    def check(value: str, info: ValidationInfo) -> str:
        base = (info.context or {}).get("base")
        return value if base is None else resolve(value, base)

    return AfterValidator(check)


ModelLocation = Annotated[str, _resolved_against_base(resolve_model_path)]
LocalPath = Annotated[str, _resolved_against_base(resolve_local_path)]


class Strict(BaseModel):
    # A typo in a key must fail, not silently take the default.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)
