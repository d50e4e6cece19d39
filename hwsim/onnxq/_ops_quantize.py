"""ONNX QuantizeLinear / DequantizeLinear kernels (per tensor and per axis; float32 as onnxruntime computes).

Each kernel takes the node, its input arrays (``None`` for an omitted optional input) and the
:class:`~hwsim.onnxq.DatapathConfig`, and returns its output arrays plus a :class:`NodeStats` record.
"""

from __future__ import annotations

import numpy as np
from onnx import helper

from ._ops_common import NodeStats, OpError, _attr, _is_int4, _qrange

__all__ = ["quantize_linear", "dequantize_linear"]


# -- QuantizeLinear / DequantizeLinear -----------------------------------------------------------------------

def _axis_shape(scale: np.ndarray, x: np.ndarray, axis: int) -> np.ndarray:
    if scale.size == 1:
        return scale.reshape(())
    ax = axis % x.ndim
    if scale.ndim != 1 or x.shape[ax] != scale.shape[0]:
        raise OpError(f"per-axis scale of shape {scale.shape} does not match axis {axis} of shape {x.shape}")
    shape = [1] * x.ndim
    shape[ax] = scale.shape[0]
    return scale.reshape(shape)


def quantize_linear(node, ins, cfg):
    """ONNX QuantizeLinear as ORT computes it: ``clamp(rne(f32(x / s)) + z)`` (a true float32 division,
    ``MlasQuantizeLinear``; ``docs/verification.md`` §0). Per-tensor or per-axis; 8- and 16-bit integer
    outputs."""
    x, s, z = ins[0], ins[1], ins[2] if len(ins) > 2 else None
    if _attr(node, "block_size", 0):
        raise OpError("blocked quantization (block_size) is not supported")
    out_dt = z.dtype if z is not None else np.dtype(np.uint8)
    odt = _attr(node, "output_dtype", 0)
    if odt:
        out_dt = np.dtype(helper.tensor_dtype_to_np_dtype(odt))
    if not _is_int4(out_dt) and (out_dt.kind not in "iu" or out_dt.itemsize > 2):
        raise OpError(f"output type {out_dt} is not supported (4-, 8- and 16-bit integers are)")
    axis = int(_attr(node, "axis", 1))
    sf = _axis_shape(np.asarray(s, np.float32), x, axis)
    zf = _axis_shape(np.asarray(z if z is not None else np.zeros(1, out_dt), np.int64), x, axis)
    qmin, qmax = _qrange(out_dt)
    v = np.divide(x.astype(np.float32), sf, dtype=np.float32)
    v = np.rint(np.clip(v, (qmin - zf).astype(np.float32), (qmax - zf).astype(np.float32)))
    return [(v.astype(np.int64) + zf).astype(out_dt)], NodeStats()


def dequantize_linear(node, ins, cfg):
    """ONNX DequantizeLinear as ORT computes it: ``f32(f32(x - z) * s)`` (``docs/verification.md`` §0)."""
    x, s, z = ins[0], ins[1], ins[2] if len(ins) > 2 else None
    if _attr(node, "block_size", 0):
        raise OpError("blocked quantization (block_size) is not supported")
    axis = int(_attr(node, "axis", 1))
    sf = _axis_shape(np.asarray(s, np.float32), x, axis)
    zf = _axis_shape(np.asarray(z if z is not None else 0, np.int64).reshape(-1), x, axis) if z is not None \
        else np.int64(0)
    d = (x.astype(np.int64) - zf).astype(np.float32)
    return [np.multiply(d, sf, dtype=np.float32)], NodeStats()
