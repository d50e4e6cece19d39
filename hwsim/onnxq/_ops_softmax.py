"""com.microsoft QLinearSoftmax, exact to onnxruntime's CPU kernel.

Source: onnxruntime ``onnxruntime/contrib_ops/cpu/quantization/qlinear_softmax.cc`` (the repository's text),
checked against the machine code of the onnxruntime 1.32 wheel (``QlinearSoftmaxCPU<T>(N, D, x, y, const
float* table, double y_scale, T y_zp, pool)``) and against its outputs (``tests/test_onnxq_softmax.py``). The
kernel is scalar C++ (no MLAS), so one description holds on every x86 and ARM host:

* a float32 table of 256 entries per node, from ``x_scale`` and the reduction length ``D``:
  ``shift = max(0, logf(FLT_MAX / D) - 5) / x_scale`` (``FLT_MAX / D`` and the logarithm in float32, the rest
  in double) and ``T[i] = f32(exp((i - 255 + shift) * x_scale))`` in double, ``i = 0..255``, stored at code
  ``i`` for uint8 and at byte ``i - 128`` for int8. The input zero point is not used (softmax is shift
  invariant): each row is shifted so that its maximum reads ``T[255]``;
* per row of ``D`` codes: uint8 reads ``T[255 - max + x]``, int8 ``T[u8(127 - max + x)]``; ``sum`` adds the
  row's entries in float32 in element order; ``y = nearbyint(T * Y / sum) + y_zp`` in double with
  ``Y = floor(1 / y_scale)`` (double), clamped to the output type's range;
* ``opset`` attribute < 13: a row is everything from ``axis`` on; >= 13: the ``axis`` dimension alone; the
  ``axis`` default is -1 in both (the contrib schema's default fills it in);
* onnxruntime leaves a row unwritten when its sum is 0, which cannot happen (the maximum reads ``T[255] =
  exp(shift * x_scale) >= 1``).

``exp`` and ``logf`` are the C library's (onnxruntime calls them through the PLT): ``math.exp`` is the same
function; ``logf`` is called through ctypes where the C library is found (else the float32 rounding of the
double logarithm, which equals it except where logf is not correctly rounded).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
from functools import lru_cache

import numpy as np

from ._ops_common import NodeStats, OpError, _attr, _qrange, _scalar, _zp

__all__ = ["qlinear_softmax", "qlinear_softmax_table"]

_FLT_MAX = np.float32(np.finfo(np.float32).max)


@lru_cache(maxsize=1)
def _c_logf():
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("m") or None)
        f = lib.logf
        f.restype, f.argtypes = ctypes.c_float, [ctypes.c_float]
        return f
    except (OSError, AttributeError):  # pragma: no cover - no C math library by that name
        return None


def _logf(v: np.float32) -> float:
    f = _c_logf()
    return float(f(float(v))) if f is not None else float(np.float32(math.log(float(v))))


def qlinear_softmax_table(x_scale: float, reduce_len: int, signed: bool) -> np.ndarray:
    """The (256,) float32 table indexed by the code's byte (uint8: the code; int8: ``code & 0xFF``); module
    docstring."""
    xs = float(np.float32(x_scale))
    ratio = np.divide(_FLT_MAX, np.float32(reduce_len), dtype=np.float32)
    shift = max(0.0, _logf(ratio) - 5.0) / xs
    vals = np.array([math.exp((float(i) - 255.0 + shift) * xs) for i in range(256)]).astype(np.float32)
    table = np.empty(256, np.float32)
    table[((np.arange(256) - 128) & 0xFF) if signed else np.arange(256)] = vals
    return table


def qlinear_softmax(node, ins, cfg):
    """com.microsoft QLinearSoftmax (module docstring): inputs X, X_scale, X_zero_point, Y_scale,
    Y_zero_point; uint8 or int8; attributes ``opset`` (required) and ``axis``."""
    x, xs = ins[0], ins[1]
    ys = ins[3] if len(ins) > 3 else None
    yz = ins[4] if len(ins) > 4 else None
    if x.dtype not in (np.uint8, np.int8):
        raise OpError(f"QLinearSoftmax input must be uint8 or int8, found {x.dtype}")
    if ys is None:
        raise OpError("QLinearSoftmax needs Y_scale (input 3)")
    x_scale = float(_scalar(xs, "X_scale"))
    if not x_scale > 0:
        raise OpError(f"QLinearSoftmax x_scale must be positive, found {x_scale}")
    opset = _attr(node, "opset")
    if opset is None:
        raise OpError("QLinearSoftmax needs its 'opset' attribute (onnxruntime refuses the node without it)")
    nd = x.ndim
    axis = _attr(node, "axis", -1)
    if nd == 0 or not -nd <= axis < nd:
        raise OpError(f"QLinearSoftmax axis {axis} out of range for a rank-{nd} input")
    axis %= nd
    if opset < 13:  # rows: everything from axis on
        perm = None
        rows = x.reshape(int(np.prod(x.shape[:axis], dtype=np.int64)), -1)
    else:  # the axis dimension alone (onnxruntime transposes it last)
        perm = list(range(nd))
        perm[axis], perm[-1] = nd - 1, axis
        xt = np.transpose(x, perm)
        rows = xt.reshape(-1, x.shape[axis])
    signed = x.dtype == np.int8
    table = qlinear_softmax_table(x_scale, rows.shape[1], signed)
    y_scale = math.floor(1.0 / float(np.float32(_scalar(ys, "Y_scale"))))
    codes = rows.astype(np.int64)
    mx = codes.max(axis=1, keepdims=True)
    t = table[(127 - mx + codes) & 0xFF if signed else 255 - mx + codes]
    s = np.cumsum(t, axis=1, dtype=np.float32)[:, -1:]  # float32, element order (cumsum is sequential)
    q = np.rint(t.astype(np.float64) * y_scale / s.astype(np.float64)) + _zp(yz)
    lo, hi = _qrange(x.dtype)
    out = np.clip(q, lo, hi).astype(x.dtype)
    if perm is None:
        return [out.reshape(x.shape)], NodeStats()
    return [np.ascontiguousarray(np.transpose(out.reshape(xt.shape), perm))], NodeStats()
