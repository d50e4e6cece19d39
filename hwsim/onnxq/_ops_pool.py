"""Pooling ONNX kernels: MaxPool (on :func:`hwsim.datapath.maxpool2d`), com.microsoft QLinearAveragePool and
QLinearGlobalAveragePool.

Each kernel takes the node, its input arrays (``None`` for an omitted optional input) and the
:class:`~hwsim.onnxq.DatapathConfig`, and returns its output arrays plus a :class:`NodeStats` record.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..datapath import maxpool2d
from ..quant import requantize
from ._ops_common import NodeStats, OpError, _attr, _qrange, _scalar, _window_attrs, _zp

__all__ = ["maxpool", "qlinear_average_pool", "qlinear_global_average_pool"]


# -- pooling -------------------------------------------------------------------------------------------------

def _pool_geometry(node, spatial):
    ks = list(_attr(node, "kernel_shape"))
    nd = len(ks)
    if nd != 2 or len(spatial) != 2:
        raise OpError(f"only 2-D pooling is supported, found kernel {ks} on spatial dims {list(spatial)}")
    strides, dil, auto_pad, pads = _window_attrs(node, nd)
    ceil_mode = int(_attr(node, "ceil_mode", 0))
    out = []
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        for i in range(nd):
            o = -(-spatial[i] // strides[i])
            total = max(0, (o - 1) * strides[i] + (ks[i] - 1) * dil[i] + 1 - spatial[i])
            small, big = total // 2, total - total // 2
            pads[i], pads[i + nd] = (small, big) if auto_pad == "SAME_UPPER" else (big, small)
            out.append(o)
    else:
        if auto_pad == "VALID":
            pads = [0] * (2 * nd)
        for i in range(nd):
            span = spatial[i] + pads[i] + pads[i + nd] - ((ks[i] - 1) * dil[i] + 1)
            o = (-(-span // strides[i]) if ceil_mode else span // strides[i]) + 1
            if ceil_mode and (o - 1) * strides[i] >= spatial[i] + pads[i]:
                o -= 1
            out.append(o)
    return ks, strides, dil, pads, out


def maxpool(node, ins, cfg):
    """ONNX MaxPool on integer codes (or floats): :func:`hwsim.datapath.maxpool2d` (window maxima; padded
    positions never win; floor or ceil mode, dilations), with auto_pad resolved here (ORT
    ``pool_attributes.h`` output size). Only the first output (no indices); storage_order=1 is refused."""
    x = ins[0]
    if len(node.output) > 1 and node.output[1]:
        raise OpError("MaxPool's Indices output is not supported")
    if int(_attr(node, "storage_order", 0)):
        raise OpError("MaxPool storage_order=1 is not supported")
    ks, st, dil, pads, out = _pool_geometry(node, x.shape[2:])
    try:
        y = maxpool2d(x, tuple(ks), tuple(st), (pads[0], pads[2], pads[1], pads[3]), dilation=tuple(dil),
                      ceil_mode=bool(int(_attr(node, "ceil_mode", 0))))
    except (TypeError, ValueError) as e:
        raise OpError(f"MaxPool: {e}") from None
    if list(y.shape[2:]) != list(out):
        raise OpError(f"MaxPool: output size {list(y.shape[2:])} differs from the ONNX size {list(out)}")
    return [y.astype(np.float32) if x.dtype.kind == "f" else y], NodeStats()


@njit(cache=True)
def _avgpool_f32(xf, out, kh, kw, sh, sw, pt, pl, include_pad, ys, yzf, qmin, qmax):
    """ORT QLinearPool2DTask<AveragePool>: float32 window sum in (h, w) order, ``/ count``, then
    ``nearbyintf(y / y_scale + z_y)`` clamped."""
    n_b, ch, h, w = xf.shape
    ho, wo = out.shape[2], out.shape[3]
    for n in range(n_b):
        for c in range(ch):
            for ph in range(ho):
                hs = ph * sh - pt
                he = min(hs + kh, h)
                hs = max(hs, 0)
                for pw in range(wo):
                    ws = pw * sw - pl
                    we = min(ws + kw, w)
                    ws = max(ws, 0)
                    acc = np.float32(0.0)
                    for ih in range(hs, he):
                        for iw in range(ws, we):
                            acc = np.float32(acc + xf[n, c, ih, iw])
                    cnt = kh * kw if include_pad else (he - hs) * (we - ws)
                    acc = np.float32(acc / np.float32(cnt))
                    v = np.float32(np.float32(acc / ys) + yzf)
                    r = np.rint(v)
                    if r < qmin:
                        r = qmin
                    if r > qmax:
                        r = qmax
                    out[n, c, ph, pw] = np.int64(r)


def qlinear_average_pool(node, ins, cfg):
    """com.microsoft QLinearAveragePool (ORT ``contrib_ops/cpu/quantization/qlinear_pool.cc``): dequantize
    ``f32(s_x * f32(x - z_x))``, average in float32, ``rne(f32(f32(y / s_y) + z_y))`` (zero point *before*
    rounding). A kernel equal to the whole image with no padding falls back to QLinearGlobalAveragePool, as
    ORT does. NCHW only (``channels_last = 0``)."""
    x, xs, xz, ys, yz = ins[:5]
    if int(_attr(node, "channels_last", 0)):
        raise OpError("channels_last=1 is not supported")
    ks, st, dil, pads, out = _pool_geometry(node, x.shape[2:])
    if dil != [1, 1]:
        raise OpError(f"dilations {dil} are not supported by QLinearAveragePool")
    if list(x.shape[2:]) == ks and not any(pads):
        return qlinear_global_average_pool(node, ins, cfg)
    xf = np.multiply(np.float32(_scalar(xs, "x_scale")), (x.astype(np.int64) - _zp(xz)).astype(np.float32),
                     dtype=np.float32)
    qmin, qmax = _qrange(x.dtype)
    o = np.empty(x.shape[:2] + tuple(out), np.int64)
    _avgpool_f32(np.ascontiguousarray(xf), o, ks[0], ks[1], st[0], st[1], pads[0], pads[1],
                 bool(int(_attr(node, "count_include_pad", 0))), np.float32(_scalar(ys, "y_scale")),
                 np.float32(_zp(yz)), qmin, qmax)
    return [o.astype(yz.dtype if yz is not None else x.dtype)], NodeStats()


def qlinear_global_average_pool(node, ins, cfg):
    """com.microsoft QLinearGlobalAveragePool (ORT ``mlas/lib/qlgavgpool.cpp``): exact integer sum, then the
    ort_cpu requantization with ``M = f32(s_x / f32(s_y * f32(H*W)))``
    (:func:`hwsim.datapath.global_avgpool`). NCHW only."""
    x, xs, xz, ys, yz = ins[:5]
    if int(_attr(node, "channels_last", 0)):
        raise OpError("channels_last=1 is not supported")
    hw = int(np.prod(x.shape[2:]))
    acc = x.astype(np.int64).reshape(x.shape[0], x.shape[1], -1).sum(axis=2) - _zp(xz) * hw
    m = np.divide(np.float32(_scalar(xs, "x_scale")),
                  np.multiply(np.float32(_scalar(ys, "y_scale")), np.float32(hw), dtype=np.float32),
                  dtype=np.float32)
    qmin, qmax = _qrange(x.dtype)
    y = requantize(acc, m, zero_point=_zp(yz), qmin=qmin, qmax=qmax, profile="ort_cpu")
    return [y.reshape(x.shape[:2] + (1,) * (x.ndim - 2)).astype(x.dtype)], NodeStats()
