"""Design-space exploration: sweep specs, the resumable runner, Pareto fronts, quality models."""

from ._pareto import pareto_mask
from ._quality import QUALITY_MODELS, QualityModel
from ._runner import evaluate_hardware, max_workers, point_columns, run_sweep
from ._spec import DesignPoint, ResolvedSweep, SweepSpec, load_sweep

__all__ = ["pareto_mask", "QUALITY_MODELS", "QualityModel", "evaluate_hardware", "point_columns", "run_sweep",
           "DesignPoint", "ResolvedSweep", "SweepSpec", "load_sweep", "max_workers"]
