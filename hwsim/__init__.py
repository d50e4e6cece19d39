"""hwsim: co-design of quantized neural networks and the systolic-array accelerators that run them.

The public API (``docs/api.md``)::

    import hwsim
    arch = hwsim.load_arch("arch/edge_32x32.yaml")
    sim = hwsim.simulate(arch, hwsim.load_workload("workloads/resnet18.yaml"), weight_bits=4, act_bits=8)
    sim.layers          # pandas DataFrame, one row per layer, units in the column names
    sim.to_dir("results/r18")

The integer side is under :mod:`hwsim.quant` (quantizers, calibration, PTQ) and :mod:`hwsim.datapath`
(bit-accurate kernels); the specs under :mod:`hwsim.spec`.

Importing the package is light: the names of ``__all__`` and the subpackages (``hwsim.spec``,
``hwsim.explore``, ...) are imported when first used (PEP 562 module ``__getattr__``), so that ``hwsim
--help`` or a bad input file answers without importing numpy, numba, pandas, pydantic or plotly first
(``docs/cli_startup.md``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # what the lazy names are, for type checkers (mypy reads this file: pyproject [tool.mypy])
    from ._api import (
        Simulation,
        SweepOutcome,
        Verification,
        load_arch,
        load_workload,
        simulate,
        sweep,
        verify,
    )

__all__ = ["__version__", "load_arch", "load_workload", "simulate", "Simulation", "sweep", "SweepOutcome",
           "verify", "Verification"]

#: The names of ``__all__`` that live in :mod:`hwsim._api`, imported on first use.
_API_NAMES = frozenset(__all__) - {"__version__"}

#: The subpackages and modules ``hwsim.NAME`` imports on first use (as the package once imported them all).
_SUBMODULES = frozenset({"cli", "datapath", "energy", "errors", "explore", "frontends", "mapping", "models",
                         "numerics", "onnxq", "quant", "report", "rtl", "schedule", "sim", "spec", "tech"})


def __getattr__(name: str) -> Any:
    """``hwsim.NAME`` for a name of ``__all__`` (from :mod:`hwsim._api`) or a subpackage, imported now and
    cached in the package's namespace; anything else is an ``AttributeError``."""
    if name in _API_NAMES:
        value = getattr(importlib.import_module("._api", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | _SUBMODULES)
