"""PEP 562 lazy names for hwsim's packages: a package's ``__all__`` names imported from their modules on first
use (``docs/cli_startup.md``: ``hwsim --help`` and a bad input answer without numpy, pandas or numba)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(package: str, where: Mapping[str, str], names: Iterable[str], *,
               renamed: Mapping[str, str] | None = None
               ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of package ``package`` (its ``__name__``).

    ``where`` maps each lazy name to the submodule that defines it (``"_onnx"``), ``renamed`` a name to the
    one it has there; ``names`` are the package's ``__all__``. ``package.NAME`` imports the submodule, caches
    the value in the package's namespace (the next access does not come here) and returns it; a name not in
    ``where`` raises ``AttributeError`` as a plain module does. ``dir(package)`` lists the lazy names too.
    """
    listed = frozenset(names)
    renamed = dict(renamed or {})

    def __getattr__(name: str) -> Any:
        mod = where.get(name)
        if mod is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{mod}", package), renamed.get(name, name))
        vars(sys.modules[package])[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | listed)

    return __getattr__, __dir__
