"""Reading a sweep file against its schema alone (a module of its own: it imports the schema, and so
pydantic, only once the file has been read as YAML, so that a missing or broken file fails fast)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SpecError
from ..spec import load_yaml, validate

if TYPE_CHECKING:
    from ._sweep_schema import SweepSpec

__all__ = ["read_sweep_spec"]


def read_sweep_spec(path: str | Path) -> SweepSpec:
    """Read a sweep YAML and validate it against the sweep schema alone (:class:`SweepSpec`: known keys,
    types, ranges) and check that its ``arch`` and ``workload`` files exist; nothing else is loaded. Cheap
    (PyYAML and pydantic): the command line calls it before it imports the runner, and :func:`run_sweep`
    before it starts its worker processes, so that a bad sweep file fails fast.

    Raises
    ------
    SpecError
        A missing, empty or non-YAML file, an unknown key, a value of the wrong type or range, an ``arch`` or
        ``workload`` path (relative to the sweep file) that names no file.
    """
    p = Path(path)
    src = str(p)
    data = load_yaml(p)  # PyYAML alone: a missing, empty or non-YAML file fails before pydantic is imported
    from ._sweep_schema import SweepSpec

    spec = validate(SweepSpec, data, src)
    if not (p.parent / spec.arch).is_file():
        raise SpecError(src, "arch", "a path (relative to the sweep file) to an arch YAML", spec.arch)
    if not (p.parent / spec.workload).is_file():
        raise SpecError(src, "workload", "a path (relative to the sweep file) to a workload", spec.workload)
    return spec
