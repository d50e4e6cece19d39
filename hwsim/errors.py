"""Errors that hwsim raises at its boundaries.

Every error a user can cause by bad input is a :class:`SpecError` (or a subclass). Its message starts with
the file and the key path, then says what was expected and what was found, so that the command line can
print it on one line and exit with code 2 (``../shared/DESIGN.md``, "Contracts").
"""

from __future__ import annotations

__all__ = ["HwsimError", "SpecError", "InfeasibleError", "Found", "ShapeWarning", "SOURCE_ARG", "MissingDependency"]

#: The "file" a command-line option's error names.
SOURCE_ARG = "command line"


class ShapeWarning(UserWarning):
    """A layer shape that runs but is probably not what was meant (e.g. input rows no window covers)."""


class Found(str):
    """A description of what was found, printed as is (not with ``repr``)."""


class HwsimError(Exception):
    """Base class of every error hwsim raises on purpose."""


class MissingDependency(HwsimError, RuntimeError):
    """An optional package or data set is not installed (e.g. torch for quantization-aware training, a real
    network's weights). The message names what is missing and the command that installs it; the command line
    prints it on one line and exits with code 2; tests turn it into a skip."""


class SpecError(HwsimError, ValueError):
    """Bad user input: a file, a key in it, what was expected and what was found.

    Parameters
    ----------
    source : str
        The file (or ``"<arg>"`` for a command-line value, ``"<dict>"`` for an in-memory spec).
    key : str
        The dotted key path inside that file, e.g. ``"memory.ifmap_sram.size_kib"``; ``""`` for the file itself.
    expected : str
        What would have been accepted.
    found : object
        What was there (shown with ``repr``); ``None`` prints as "nothing".
    """

    def __init__(self, source: str, key: str, expected: str, found: object = None, *, detail: str = ""):
        self.source = str(source)
        self.key = key
        self.expected = expected
        self.found = found
        self.detail = detail
        where = f"{self.source}: {key}" if key else self.source
        found_s = "nothing" if found is None else (str(found) if isinstance(found, Found) else repr(found))
        msg = f"{where}: expected {expected}, found {found_s}"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)


class InfeasibleError(SpecError):
    """A design point that cannot run on the given hardware (e.g. 8-bit operands on a 4-bit PE).

    A sweep records it with its message and goes on; ``hwsim simulate`` exits with code 2.
    """
