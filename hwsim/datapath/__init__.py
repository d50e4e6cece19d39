"""Bit-accurate integer datapath: conv2d and GEMM accumulators (wrap or saturate), quantized layers, pooling.

The kernels are small numba loops (``_kernels.py``); the typed, checked entry points live in ``_layers.py``.
Exact semantics and their sources: ``docs/verification.md``.
"""

from ._layers import (
    conv2d_acc,
    conv_output_size,
    gemm_acc,
    global_avgpool,
    maxpool2d,
    narrow_operand,
    qlinear_conv2d,
    qlinear_matmul,
)
from ._pairsat import pair_saturating_gemm
from ._systolic import FoldTrace, SystolicResult, systolic_gemm

__all__ = [
    # _layers: accumulators
    "conv2d_acc", "gemm_acc", "conv_output_size", "narrow_operand",
    # _layers: quantized layers
    "qlinear_conv2d", "qlinear_matmul",
    # _layers: pooling
    "maxpool2d", "global_avgpool",
    # _pairsat: vpmaddubsw semantics (int16-saturated pairs), fast
    "pair_saturating_gemm",
    # _systolic: cycle-stepped array
    "systolic_gemm", "SystolicResult", "FoldTrace",
]
