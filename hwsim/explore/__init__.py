"""Design-space exploration: sweep specs, the resumable runner, Pareto fronts, quality models.

Each name is imported from its module when first used (PEP 562 module ``__getattr__``): the sweep file's
schema (:func:`read_sweep_spec`) without the runner's pandas, numba and event model
(``docs/cli_startup.md``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:  # the lazy names, for type checkers
    from ._dask_settings import DASK_SWEEP_CONFIG
    from ._pareto import pareto_mask
    from ._quality import QUALITY_MODELS, QualityModel
    from ._runner import evaluate_hardware, point_columns, run_sweep
    from ._spec import DesignPoint, ResolvedSweep, load_sweep
    from ._sweep_file import read_sweep_spec
    from ._sweep_schema import SweepSpec
    from ._workers import max_workers

__all__ = ["pareto_mask", "QUALITY_MODELS", "QualityModel", "evaluate_hardware", "point_columns", "run_sweep",
           "DesignPoint", "ResolvedSweep", "SweepSpec", "load_sweep", "read_sweep_spec", "max_workers",
           "DASK_SWEEP_CONFIG"]

#: name -> the module that defines it (the names of ``__all__``; tests/test_lazy_imports.py)
_WHERE = {"pareto_mask": "_pareto", "QUALITY_MODELS": "_quality", "QualityModel": "_quality",
          "evaluate_hardware": "_runner", "max_workers": "_workers", "point_columns": "_runner",
          "run_sweep": "_runner", "DesignPoint": "_spec", "ResolvedSweep": "_spec",
          "SweepSpec": "_sweep_schema",
          "load_sweep": "_spec", "read_sweep_spec": "_sweep_file", "DASK_SWEEP_CONFIG": "_dask_settings"}


__getattr__, __dir__ = lazy_names(__name__, _WHERE, __all__)
