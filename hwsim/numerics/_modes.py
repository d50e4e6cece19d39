"""The names of the requantization profiles and rounding modes (a module of their own, without numpy or
numba: ``hwsim verify`` checks its ``--profile`` and ``--rounding`` before it imports the datapath)."""

from __future__ import annotations

__all__ = ["PROFILES", "ROUNDING_MODES"]

#: The requantization profiles that :func:`hwsim.numerics.requantize` knows.
PROFILES = ("ort_cpu", "torch_onednn", "tflite_double", "tflite_single", "hawq_dyadic", "torch_fbgemm")

#: Rounding modes of :func:`hwsim.numerics.round_values` and of ``requantize(..., rounding=...)``.
ROUNDING_MODES = ("half_even", "half_away", "half_up", "floor", "stochastic")
