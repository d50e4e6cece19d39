"""The GEMM-like ONNX kernels: QLinearConv, ConvInteger, QLinearMatMul, MatMulInteger, com.microsoft QGemm on
:mod:`hwsim.datapath` (the config's accumulator width/mode, multiplier width and requantization profile), and
the float Conv/MatMul/Gemm of the QDQ groups onnxruntime leaves in float.

Each kernel takes the node, its input arrays (``None`` for an omitted optional input) and the
:class:`~hwsim.onnxq.DatapathConfig`, and returns its output arrays plus a :class:`NodeStats` record.
"""

from __future__ import annotations

import math

import numpy as np

from ..datapath import conv2d_acc, gemm_acc, narrow_operand
from ..quant import fbgemm_bias_addend, requant_multiplier, requantize
from ._ops_common import NodeStats, OpError, _attr, _bits, _qrange, _scalar, _window_attrs, _zp

__all__ = ["qlinear_conv", "conv_integer", "qlinear_matmul", "matmul_integer", "qgemm", "float_conv",
           "float_matmul", "reduction_bound_bits"]


# -- convolution ---------------------------------------------------------------------------------------------

def _conv_geometry(node, x_shape, w_shape):
    """(stride, pads (t, b, l, r), dilation, groups, 1-D?) of an ONNX Conv-like node on NCHW or NCL input."""
    nd = len(x_shape) - 2
    if nd not in (1, 2):
        raise OpError(f"only 1-D and 2-D convolutions are supported, found a {nd}-D input {x_shape}")
    ks = tuple(w_shape[2:])
    kshape = _attr(node, "kernel_shape")
    if kshape is not None and tuple(kshape) != ks:
        raise OpError(f"kernel_shape {list(kshape)} differs from the weight shape {list(ks)}")
    strides, dil, auto_pad, pads = _window_attrs(node, nd)
    groups = int(_attr(node, "group", 1))
    spatial = list(x_shape[2:])
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0] * (2 * nd)
        for i in range(nd):
            out = -(-spatial[i] // strides[i])
            total = max(0, (out - 1) * strides[i] + (ks[i] - 1) * dil[i] + 1 - spatial[i])
            small, big = total // 2, total - total // 2
            pads[i], pads[i + nd] = (small, big) if auto_pad == "SAME_UPPER" else (big, small)
    elif auto_pad == "VALID":
        pads = [0] * (2 * nd)
    elif auto_pad != "NOTSET":
        raise OpError(f"auto_pad {auto_pad!r} is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
    if nd == 1:
        return (1, strides[0]), (0, 0, pads[0], pads[1]), (1, dil[0]), groups, True
    return tuple(strides), (pads[0], pads[2], pads[1], pads[3]), tuple(dil), groups, False


def _conv_acc(node, x, w, xz, wz, bias, cfg, stats):
    stride, pads, dil, groups, one_d = _conv_geometry(node, x.shape, w.shape)
    depthwise = groups > 1 and w.shape[1] == 1 and w.shape[0] == groups
    pairs = cfg.pairs_for(node.op_type, x.dtype, w.dtype, depthwise=depthwise)
    if one_d:
        x = x[:, :, None, :]
        w = w[:, :, None, :]
    k_out = w.shape[0]
    wzv = np.asarray(wz, np.int64).reshape(-1)
    wzv = np.full(k_out, int(wzv[0]), np.int64) if wzv.size == 1 else wzv
    stats.k = int(np.prod(w.shape[1:]))
    stats.a_bits, stats.w_bits = _bits(x.dtype), _bits(w.dtype)
    if cfg.mult_bits is not None:
        stats.mult_overflow = _operand_overflow(x, xz, w, wzv.reshape(-1, 1, 1, 1), cfg.mult_bits,
                                                cfg.zero_point_mode)
    kw = dict(x_zp=int(xz), w_zp=wzv, bias=bias, stride=stride, pads=pads, dilation=dil, groups=groups,
              zero_point_mode=cfg.zero_point_mode)
    exact = None
    if cfg.is_reference or cfg.acc_mode == "wrap":
        exact, _ = conv2d_acc(x, w, acc_bits=64, mult_bits=cfg.mult_bits, int16_pairs=pairs, **kw)
        stats.max_abs_acc = int(np.abs(exact).max()) if exact.size else 0
    if exact is not None and cfg.acc_mode == "wrap" and cfg.zero_point_mode == "shift":
        acc, ov = _wrap_exact(exact, cfg.acc_bits)  # the same register as a second conv2d_acc, at no cost
    else:
        acc, ov = conv2d_acc(x, w, acc_bits=cfg.acc_bits, acc_mode=cfg.acc_mode, mult_bits=cfg.mult_bits,
                             int16_pairs=pairs, **kw)
    stats.acc_overflow = ov
    if one_d:
        acc = acc[:, :, 0, :]
    return acc


def _wrap_exact(exact: np.ndarray, bits: int) -> tuple[np.ndarray, int]:
    """The ``bits``-wide wrapping register of an exact int64 sum and the count of outputs that overflowed:
    what ``conv2d_acc`` / ``gemm_acc`` return with ``acc_bits=bits`` in wrap mode with shifted zero points
    (they add the bias to the exact sum, count values outside the range, then wrap), without a second run."""
    if bits >= 64:
        return exact, 0
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if not exact.size or (int(exact.min()) >= lo and int(exact.max()) <= hi):
        return exact.copy(), 0
    ov = int(np.count_nonzero((exact < lo) | (exact > hi)))
    return ((exact - lo) & np.int64((1 << bits) - 1)) + lo, ov


def _operand_overflow(x, xz, w, wz, bits, mode="shift") -> int:
    """Multiplier operands that do not fit ``bits``: zero-shifted ones (``shift``) or raw codes of their own
    signedness (``cross_term``)."""
    if mode == "cross_term":
        n = 0
        for v in (x, w):
            lo, hi = (0, (1 << bits) - 1) if v.dtype.kind == "u" else (-(1 << (bits - 1)),
                                                                       (1 << (bits - 1)) - 1)
            n += int(np.count_nonzero((v < lo) | (v > hi)))
        return n
    _, nx = narrow_operand(x.astype(np.int64) - int(xz), bits)
    _, nw = narrow_operand(w.astype(np.int64) - wz, bits)
    return nx + nw


def _requant(acc, s_in, s_w, s_out, z_out, out_dt, cfg, *, axis, fbias=None, act=None):
    prof = cfg.profile
    m = requant_multiplier(np.float32(s_in), np.asarray(s_w, np.float32).reshape(-1) if np.size(s_w) > 1
                           else np.float32(_scalar(s_w, "scale")), np.float32(s_out), profile=prof)
    qmin, qmax = _qrange(out_dt)
    kw = {}
    if fbias is not None and prof == "torch_fbgemm":
        kw["float_bias"] = fbias
    y = requantize(acc, m, zero_point=int(z_out), qmin=qmin, qmax=qmax,
                   channel_axis=axis if (m.ndim or "float_bias" in kw and np.ndim(fbias)) else None,
                   profile=prof, rounding=cfg.rounding,
                   seed=cfg.seed if cfg.rounding == "stochastic" else None, **kw)
    return y.astype(out_dt)


def _split_bias_fbgemm(bias, s_x, s_w, cfg):
    """torch_fbgemm: the int32 bias becomes PyTorch's float bias ``f32(b * act)``, added as ``f32(b' / act)``
    in float32 before the multiply (``docs/verification.md`` §3); returns (int bias for the accumulator,
    float addend)."""
    if bias is None or cfg.profile != "torch_fbgemm":
        return bias, None
    act = np.multiply(np.float32(s_x), np.asarray(s_w, np.float32), dtype=np.float32)
    b_float = np.multiply(bias.astype(np.float32), act, dtype=np.float32)
    return None, fbgemm_bias_addend(b_float, act)


def qlinear_conv(node, ins, cfg):
    """ONNX QLinearConv: integer accumulator then requantization (ORT ``qlinearconv.cc``;
    ``docs/verification.md`` §0/§1): ``M = f32(f32(s_x * s_w[c]) / s_y)``,
    ``y = clamp(rne(f32(f32(acc) * M)) + z_y)``."""
    x, xs, xz, w, ws, wz, ys, yz = ins[:8]
    bias = ins[8] if len(ins) > 8 else None
    stats = NodeStats()
    b_int, fbias = _split_bias_fbgemm(bias, _scalar(xs, "x_scale"), ws, cfg)
    acc = _conv_acc(node, x, w, _zp(xz), wz if wz is not None else 0, b_int, cfg, stats)
    out_dt = yz.dtype if yz is not None else x.dtype
    y = _requant(acc, _scalar(xs, "x_scale"), ws, _scalar(ys, "y_scale"), _zp(yz), out_dt, cfg, axis=1,
                 fbias=fbias)
    return [y], stats


def conv_integer(node, ins, cfg):
    """ONNX ConvInteger: the exact ``sum (x - z_x)(w - z_w)`` in int32 (wraps; ``docs/verification.md``
    §1)."""
    x, w = ins[0], ins[1]
    xz = ins[2] if len(ins) > 2 else None
    wz = ins[3] if len(ins) > 3 else None
    stats = NodeStats()
    acc = _conv_acc(node, x, w, _zp(xz), wz if wz is not None else 0, None, cfg, stats)
    return [_to_int32(acc, cfg)], stats  # ConvInteger: exact on every target (ort_int16_pairs)


def _to_int32(acc, cfg):
    if cfg.acc_bits > 32:  # a wider register still writes an int32 tensor: keep the low 32 bits
        acc = ((acc + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
    return acc.astype(np.int32)


# -- matrix products -----------------------------------------------------------------------------------------

def _batched_gemm(a, b, az, bz, bias, cfg, stats, op="MatMulInteger"):
    """numpy.matmul semantics over leading batch dims, each (M, K) x (K, N) on gemm_acc."""
    if a.ndim < 2 or b.ndim < 2:
        raise OpError(f"1-D MatMul operands are not supported, found shapes {a.shape} and {b.shape}")
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    ab = np.broadcast_to(a, batch + a.shape[-2:])
    bb = np.broadcast_to(b, batch + b.shape[-2:])
    n = b.shape[-1]
    bzv = np.asarray(bz, np.int64).reshape(-1)
    bzv = np.full(n, int(bzv[0]), np.int64) if bzv.size == 1 else bzv
    if bzv.size != n:
        raise OpError(f"b zero point must be a scalar or have {n} entries (one per column), found {bzv.size}")
    out = np.empty(batch + (a.shape[-2], n), np.int64)
    stats.k = int(a.shape[-1])
    stats.a_bits, stats.w_bits = _bits(a.dtype), _bits(b.dtype)
    mx = 0
    pairs = cfg.pairs_for(op, a.dtype, b.dtype)
    for idx in np.ndindex(*batch) if batch else [()]:
        ai = np.ascontiguousarray(ab[idx])
        bi = np.ascontiguousarray(bb[idx])
        if cfg.mult_bits is not None:
            stats.mult_overflow += _operand_overflow(ai, az, bi, bzv[None, :], cfg.mult_bits,
                                                     cfg.zero_point_mode)
        if cfg.acc_mode == "wrap":
            exact, _ = gemm_acc(ai, bi, a_zp=int(az), b_zp=bzv, bias=bias, acc_bits=64,
                                mult_bits=cfg.mult_bits,
                                int16_pairs=pairs, zero_point_mode=cfg.zero_point_mode)
            mx = max(mx, int(np.abs(exact).max()) if exact.size else 0)
        if cfg.acc_mode == "wrap" and cfg.zero_point_mode == "shift":
            acc, ov = _wrap_exact(exact, cfg.acc_bits)
        else:
            acc, ov = gemm_acc(ai, bi, a_zp=int(az), b_zp=bzv, bias=bias, acc_bits=cfg.acc_bits,
                               acc_mode=cfg.acc_mode, mult_bits=cfg.mult_bits,
                               int16_pairs=pairs, zero_point_mode=cfg.zero_point_mode)
        stats.acc_overflow += ov
        out[idx] = acc
    stats.max_abs_acc = mx if cfg.acc_mode == "wrap" else None
    return out


def qlinear_matmul(node, ins, cfg):
    """ONNX QLinearMatMul (ORT ``quantize_linear_matmul.cc``): per-tensor ``a``, per-tensor or per-column
    ``b`` (scale/zero point of shape ``[.., 1, N]``), requantized as QLinearConv."""
    a, as_, az, b, bs, bz, ys, yz = ins[:8]
    if np.size(as_) != 1:
        raise OpError("per-row a_scale is not supported (onnxruntime does not support it either)")
    stats = NodeStats()
    acc = _batched_gemm(a, b, _zp(az), bz if bz is not None else 0, None, cfg, stats)
    bsv = np.asarray(bs, np.float32).reshape(-1)
    y = _requant(acc, _scalar(as_, "a_scale"), bsv if bsv.size > 1 else bsv[0], _scalar(ys, "y_scale"),
                 _zp(yz), yz.dtype if yz is not None else a.dtype, cfg, axis=acc.ndim - 1)
    return [y], stats


def matmul_integer(node, ins, cfg):
    """ONNX MatMulInteger: exact int32 ``sum (a - z_a)(b - z_b)`` (per-column ``z_b`` allowed)."""
    a, b = ins[0], ins[1]
    az = ins[2] if len(ins) > 2 else None
    bz = ins[3] if len(ins) > 3 else None
    if az is not None and np.size(az) != 1:
        vals = np.unique(np.asarray(az))
        if vals.size != 1:
            raise OpError("a per-row a_zero_point with different values is not supported")
        az = vals[:1]
    stats = NodeStats()
    acc = _batched_gemm(a, b, _zp(az), bz if bz is not None else 0, None, cfg, stats)
    return [_to_int32(acc, cfg)], stats


def qgemm(node, ins, cfg):
    """com.microsoft QGemm (ORT ``contrib_ops/cpu/quantization/quant_gemm.cc``): ``A' B'`` with the int32 bias
    ``C`` accumulated, scale ``f32(f32(alpha * s_a) * s_b[j])`` (then ``/ s_y``). With ``y_scale`` the output
    is requantized as QLinearConv; without it ``y = f32(f32(acc) * scale)`` in float32."""
    a, as_, az, b, bs, bz = ins[:6]
    c = ins[6] if len(ins) > 6 else None
    ys = ins[7] if len(ins) > 7 else None
    yz = ins[8] if len(ins) > 8 else None
    if _attr(node, "transA", 0):
        a = a.T
    if _attr(node, "transB", 0):
        b = b.T
    alpha = np.float32(_attr(node, "alpha", 1.0))
    n = b.shape[1]
    bias = None
    if c is not None:
        cc = np.asarray(c)
        if cc.size == 1:
            bias = np.full(n, int(cc.reshape(-1)[0]), np.int64)
        elif cc.size == n and (cc.ndim == 1 or cc.shape[0] == 1):
            bias = cc.reshape(-1).astype(np.int64)
        else:
            raise OpError(f"QGemm bias C of shape {cc.shape} is not supported (scalar, (N,) or (1, N) are)")
    stats = NodeStats()
    bsv = np.asarray(bs, np.float32).reshape(-1)
    s_a = np.multiply(alpha, np.float32(_scalar(as_, "a_scale")), dtype=np.float32)
    b_int, fbias = _split_bias_fbgemm(bias, s_a, bsv if bsv.size > 1 else bsv[0], cfg)
    acc = _batched_gemm(a, b, _zp(az), bz if bz is not None else 0, b_int, cfg, stats)
    if ys is None:
        scale = np.multiply(s_a, bsv, dtype=np.float32)
        return [np.multiply(acc.astype(np.float32), scale, dtype=np.float32)], stats
    y = _requant(acc, s_a, bsv if bsv.size > 1 else bsv[0], _scalar(ys, "y_scale"), _zp(yz),
                 yz.dtype if yz is not None else a.dtype, cfg, axis=1, fbias=fbias)
    return [y], stats


def float_conv(node, ins, cfg):
    """Float32 ONNX Conv of a QDQ group that onnxruntime's default x86 session leaves in float.

    The products of the float32 operands are summed in float64 (im2col, ``einsum``) and rounded once to
    float32, then the bias is added in float32. onnxruntime's MLAS rounds after every fused multiply-add, so
    the float32 results can differ in their last bit; a following QuantizeLinear changes a code only where
    the value lies within that bit of a rounding boundary."""
    x, w = ins[0].astype(np.float64), ins[1].astype(np.float64)
    b = ins[2] if len(ins) > 2 else None
    stride, pads, dil, groups, one_d = _conv_geometry(node, x.shape, w.shape)
    if one_d:
        x, w = x[:, :, None, :], w[:, :, None, :]
    n_b, ch, h, wd = x.shape
    k_out, cg, kr, ks = w.shape
    pt, pb, pl, pr = pads
    xp = np.zeros((n_b, ch, h + pt + pb, wd + pl + pr))
    xp[:, :, pt:pt + h, pl:pl + wd] = x
    ho = (h + pt + pb - dil[0] * (kr - 1) - 1) // stride[0] + 1
    wo = (wd + pl + pr - dil[1] * (ks - 1) - 1) // stride[1] + 1
    kg = k_out // groups
    y = np.empty((n_b, k_out, ho, wo))
    for g in range(groups):
        cols = np.empty((n_b, cg, kr, ks, ho, wo))
        for r in range(kr):
            for s_ in range(ks):
                r0, s0 = r * dil[0], s_ * dil[1]
                cols[:, :, r, s_] = xp[:, g * cg:(g + 1) * cg, r0:r0 + stride[0] * (ho - 1) + 1:stride[0],
                                       s0:s0 + stride[1] * (wo - 1) + 1:stride[1]]
        y[:, g * kg:(g + 1) * kg] = np.einsum("kq,nqp->nkp", w[g * kg:(g + 1) * kg].reshape(kg, -1),
                                               cols.reshape(n_b, -1, ho * wo)).reshape(n_b, kg, ho, wo)
    y = y.astype(np.float32)
    if b is not None:
        y = np.add(y, b.astype(np.float32).reshape(1, -1, 1, 1), dtype=np.float32)
    return [y[:, :, 0, :] if one_d else y], NodeStats()


def float_matmul(node, ins, cfg):
    """Float32 MatMul/Gemm of a float QDQ group (as :func:`float_conv`: float64 sum rounded once, then
    ``alpha``, ``beta * C``)."""
    a, b = ins[0].astype(np.float64), ins[1].astype(np.float64)
    if node.op_type == "Gemm":
        if _attr(node, "transA", 0):
            a = a.T
        if _attr(node, "transB", 0):
            b = b.T
    y = np.matmul(a, b).astype(np.float32)
    if node.op_type == "Gemm":
        y = np.multiply(y, np.float32(_attr(node, "alpha", 1.0)), dtype=np.float32)
        if len(ins) > 2 and ins[2] is not None:
            c = np.multiply(ins[2].astype(np.float32), np.float32(_attr(node, "beta", 1.0)), dtype=np.float32)
            y = np.add(y, c, dtype=np.float32)
    return [y], NodeStats()



def reduction_bound_bits(k: int, a_bits: int, w_bits: int) -> int:
    """The classic accumulator-size rule ``b_a + b_w + ceil(log2 K)`` (bits)."""
    return a_bits + w_bits + (math.ceil(math.log2(k)) if k > 1 else 0)
