"""The base of every spec model: frozen, unknown keys forbidden, numbers that are numbers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler
from pydantic_core import CoreSchema

__all__ = ["SpecModel"]

#: Scalar core-schema types made strict: an ``int`` takes only an integer (not ``true``, ``32.0`` or
#: ``"32"``), a ``float`` an integer or a float (not a string or a boolean), a ``bool`` only ``true`` /
#: ``false`` (not ``1`` or ``"yes"``), a ``str`` only a string.
_STRICT_TYPES = frozenset({"int", "float", "bool", "str"})


def _make_strict(schema: Any) -> None:
    """Set ``strict`` on every scalar schema inside a pydantic-core schema (in place, however deep: tuple
    items, dict keys and values, union members, validator-wrapped schemas). Containers stay lax, so that a
    YAML list still validates into a tuple and a mapping into a nested model."""
    stack = [schema]
    while stack:
        s = stack.pop()
        if isinstance(s, dict):
            if isinstance(s.get("type"), str) and s["type"] in _STRICT_TYPES:
                s["strict"] = True
            stack.extend(v for v in s.values() if isinstance(v, dict | list))
        elif isinstance(s, list):
            stack.extend(v for v in s if isinstance(v, dict | list))


class SpecModel(BaseModel):
    """Frozen; unknown keys are errors; no infinities or NaN; scalars of the declared type only.

    Pydantic's lax mode would read YAML's ``rows: "32"``, ``rows: 32.0`` and ``rows: true`` as 32, 32 and 1,
    and ``double_buffered: 1`` as true; here every ``int``, ``float``, ``bool`` and ``str`` in a field's type
    is strict (pydantic's per-schema ``strict``; an integer is still a valid ``float``), while lists still
    become tuples and mappings nested models. Errors: ``int_type``, ``float_type``, ``bool_type``,
    ``string_type``, worded by :func:`hwsim.spec.validate`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: type[BaseModel],
                                     handler: GetCoreSchemaHandler) -> CoreSchema:
        schema = handler(source)
        _make_strict(schema)
        return schema
