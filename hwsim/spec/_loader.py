"""YAML loading with precise errors: file, key path, what was expected, what was found.

Pydantic validates; this module turns its errors into :class:`hwsim.errors.SpecError` so that every message
names the file and the dotted key path (the timeloopfe "path in the error" idea, without its machinery).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import Found, SpecError

__all__ = ["load_yaml", "validate", "key_path"]

M = TypeVar("M", bound=BaseModel)


def key_path(loc: tuple) -> str:
    """Render a pydantic ``loc`` tuple as ``a.b[2].c`` (list indices in brackets)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            # pydantic puts the tag of a discriminated union in loc (e.g. 'conv2d'); it is not a user key
            out += ("." if out else "") + str(part)
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML file whose top level is a mapping.

    Raises
    ------
    SpecError
        The file is missing, is not valid YAML (with line and column), or its top level is not a mapping.
    """
    p = Path(path)
    if not p.is_file():
        raise SpecError(str(p), "", "an existing YAML file", "no such file")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise SpecError(str(p), "", "valid YAML", f"a syntax error at {where}",
                        detail=str(getattr(e, "problem", e))) from None
    if not isinstance(data, dict):
        raise SpecError(str(p), "", "a mapping of keys at the top level", type(data).__name__)
    return data


def _skip_tags(loc: tuple, model: type[BaseModel]) -> tuple:
    # Discriminated unions add the tag value to loc ('layers', 3, 'conv2d', 'stride'): drop such entries.
    tags = getattr(model, "__union_tags__", ())
    return tuple(p for p in loc if not (isinstance(p, str) and p in tags))


def _known_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names accepted at ``loc[:-1]`` inside ``model`` (best effort; for the unknown-key message)."""
    import typing

    cur: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if isinstance(cur, type) and issubclass(cur, BaseModel):
            if part in cur.model_fields:
                cur = cur.model_fields[part].annotation
            else:  # a discriminated-union tag: find the member whose 'op' literal holds it
                cur = next((m for m in _members(cur) if part in typing.get_args(
                    m.model_fields.get("op").annotation if "op" in m.model_fields else ())), cur)
            continue
        members = _members(cur)
        match = [m for m in members if "op" in m.model_fields and part in typing.get_args(m.model_fields["op"].annotation)]
        if match:
            cur = match[0]
        elif members:
            cur = members[0]
            if part in cur.model_fields:
                cur = cur.model_fields[part].annotation
    members = [cur] if isinstance(cur, type) and issubclass(cur, BaseModel) else _members(cur)
    names: set[str] = set()
    for m in members:
        names.update(m.model_fields)
    return sorted(names)


def _members(tp: Any) -> list[type[BaseModel]]:
    import typing

    out: list[type[BaseModel]] = []
    for a in typing.get_args(tp) or ():
        if isinstance(a, type) and issubclass(a, BaseModel):
            out.append(a)
        else:
            out.extend(_members(a))
    return out


def validate(model: type[M], data: dict[str, Any], source: str, *, prefix: str = "") -> M:
    """Validate ``data`` against a pydantic ``model``; raise the first problem as a :class:`SpecError`.

    Unknown keys are errors (models forbid extras), so a misspelt key is never silently ignored.
    """
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        raw_loc = tuple(err["loc"])
        loc = _skip_tags(raw_loc, model)
        key = key_path(loc)
        if prefix:
            key = f"{prefix}.{key}" if key else prefix
        typ = err["type"]
        found = err.get("input")
        if typ == "extra_forbidden":
            raise SpecError(source, key, f"one of the known keys ({', '.join(_known_keys(model, raw_loc))})",
                            Found(f"unknown key {str(loc[-1])!r}")) from None
        if typ == "missing":
            raise SpecError(source, key, "this key to be given", None) from None
        if typ == "union_tag_invalid":
            ctx = err.get("ctx", {})
            raise SpecError(source, f"{key}.{ctx.get('discriminator', 'op').strip(chr(39))}",
                            f"one of {ctx.get('expected_tags', '')}", ctx.get("tag")) from None
        expected = err["msg"]
        if expected.startswith("Input should be "):
            expected = expected[len("Input should be "):]
            if expected.startswith(("greater", "less")):
                expected = "a value " + expected
        for head in ("Value error, ", "Assertion failed, "):
            if expected.startswith(head):
                expected = expected[len(head):]
        if "; found " in expected:  # model-level checks say both: "EXPECTED; found FOUND"
            expected, found_text = expected.split("; found ", 1)
            found = Found(found_text)
        elif isinstance(found, dict | list) and len(repr(found)) > 120:
            found = Found(f"a {type(found).__name__}")
        raise SpecError(source, key, expected[0].lower() + expected[1:] if expected else "a valid value",
                        found) from None
