"""Dynamic quantization (``quantize_dynamic``): ONNX DynamicQuantizeLinear on hwsim's quantizer.

``onnxruntime.quantization.quantize_dynamic`` writes ``DynamicQuantizeLinear -> MatMulInteger / ConvInteger ->
Cast -> Mul (scales) [-> Add (bias)]``. The integer GEMMs are :mod:`hwsim.onnxq._ops_gemm`' MatMulInteger and
ConvInteger kernels; the float tail is element-wise float32 (exact, :mod:`hwsim.onnxq._ops_float`);
DynamicQuantizeLinear is :func:`hwsim.quant.dynamic_quantize`, which reproduces onnxruntime's kernel
(``onnxruntime/core/providers/cpu/quantization/dynamicquantizelinear.cc``: ``GetQuantizationParameter`` over
``MlasFindMinMaxElement``, then ``MlasQuantizeLinear``) bit for bit.
"""

from __future__ import annotations

import numpy as np

from ..quant import dynamic_quantize

__all__ = ["dynamic_quantize_linear", "DYNAMIC_KERNELS"]


def dynamic_quantize_linear(node, ins, cfg):
    """ONNX DynamicQuantizeLinear: ``y`` uint8 (same shape as ``x``), ``y_scale`` float32 scalar,
    ``y_zero_point`` uint8 scalar; ``s = (max(0, max x) - min(0, min x)) / 255``, ``z = clamp(rne(-min(0, min
    x) / s), 0, 255)``, ``y = clamp(rne(x / s) + z)`` (:func:`hwsim.quant.dynamic_qparams`)."""
    from ._ops import NodeStats, OpError

    x = np.asarray(ins[0])
    if x.dtype != np.float32:
        raise OpError(f"DynamicQuantizeLinear input must be float32, found {x.dtype}")
    if x.size == 0:
        raise OpError("DynamicQuantizeLinear of an empty tensor")
    q, qp = dynamic_quantize(x, 8, signed=False)
    return [q.astype(np.uint8), np.asarray(qp.scale, np.float32).reshape(()),
            np.asarray(qp.zero_point).astype(np.uint8).reshape(())], NodeStats()


DYNAMIC_KERNELS = {("", "DynamicQuantizeLinear"): dynamic_quantize_linear}
