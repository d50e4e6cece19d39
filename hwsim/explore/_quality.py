"""Quality models: real networks that a sweep runs bit-accurately on the integer datapath per precision policy.

A quality model maps ``bits: {layer: (weight_bits, act_bits)}`` and the PE's accumulator (``acc_bits``,
``acc_mode``) to a dict holding at least its ``metric`` (e.g. ``accuracy``, a fraction).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["QualityModel", "QUALITY_MODELS"]


@dataclass(frozen=True)
class QualityModel:
    """A real network with its layer names, its metric and where its ``evaluate`` function lives."""

    name: str
    layers: tuple[str, ...]
    metric: str
    module: str
    function: str
    description: str = ""

    def evaluate(self, bits: dict[str, tuple[int, int]], *, acc_bits: int = 32,
                 acc_mode: str = "wrap") -> dict[str, Any]:
        fn: Callable[..., dict[str, Any]] = getattr(importlib.import_module(self.module), self.function)
        return fn(bits, acc_bits=acc_bits, acc_mode=acc_mode)


QUALITY_MODELS: dict[str, QualityModel] = {
    "digits_cnn": QualityModel(
        name="digits_cnn", layers=("conv1", "conv2", "fc"), metric="accuracy", module="hwsim.models.digits",
        function="evaluate",
        description="CNN on scikit-learn's handwritten digits; top-1 on the 450-image held-out split"),
}
