"""The base of every spec model: frozen, unknown keys forbidden, numbers that are numbers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["SpecModel"]


class SpecModel(BaseModel):
    """Frozen; unknown keys are errors; no infinities or NaN; no booleans where a number is expected (YAML's
    ``rows: true`` would otherwise be read as 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_numbers(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for k, v in data.items():
                f = cls.model_fields.get(k) if isinstance(k, str) else None
                if isinstance(v, bool) and f is not None and "bool" not in str(f.annotation):
                    raise ValueError(f"{k} to be a number, not a boolean; found {k}: {v!r}")
        return data
