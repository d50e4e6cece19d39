"""Integer (and exactly reproducible float32) kernels for the ONNX ops hwsim executes.

Each kernel takes the node, its input arrays (``None`` for an omitted optional input) and the
:class:`DatapathConfig`, and returns its output arrays plus a :class:`NodeStats` record. The GEMM-like ops
(QLinearConv, QLinearMatMul, QGemm, ConvInteger, MatMulInteger) run on :mod:`hwsim.datapath` with the
config's accumulator width/mode, multiplier width and requantization profile; with the defaults (32-bit wrap,
``ort_cpu``) every kernel reproduces onnxruntime's CPU kernel bit for bit. Sources per op are in the kernel
docstrings; ``shared/reference/bitexact.md`` has the measured ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numba import njit
from onnx import helper

from ..datapath import conv2d_acc, gemm_acc, maxpool2d, narrow_operand
from ..quant import fbgemm_bias_addend, requant_multiplier, requantize
from ._config import DatapathConfig
from ._ops_dynamic import DYNAMIC_KERNELS

__all__ = ["DatapathConfig", "NodeStats", "KERNELS", "FLOAT_GROUP_KERNELS", "SUPPORTED_OPS", "OpError"]


class OpError(ValueError):
    """A node the kernels cannot run (unsupported attribute, type or shape); the message says why."""


@dataclass
class NodeStats:
    """What one node did on the datapath: accumulator overflow events, wrapped multiplier operands, the
    reduction length ``k`` and operand bits of GEMM-like nodes."""

    acc_overflow: int = 0
    mult_overflow: int = 0
    k: int | None = None
    a_bits: int | None = None
    w_bits: int | None = None
    max_abs_acc: int | None = None
    notes: list[str] = field(default_factory=list)


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _scalar(v, name, default=0):
    if v is None:
        return default
    a = np.asarray(v)
    if a.size != 1:
        raise OpError(f"{name} must be a scalar (one element), found shape {a.shape}")
    return a.reshape(-1)[0]


def _zp(v, like: np.ndarray | None = None):
    if v is None:
        return 0
    return int(_scalar(v, "zero point"))


def _is_int4(dt) -> bool:
    """ONNX INT4/UINT4 (``ml_dtypes.int4``/``uint4``, as ``onnx.numpy_helper`` reads them)."""
    return np.dtype(dt).name in ("int4", "uint4")


def _qrange(dt) -> tuple[int, int]:
    if _is_int4(dt):
        return (-8, 7) if np.dtype(dt).name == "int4" else (0, 15)
    info = np.iinfo(dt)
    return int(info.min), int(info.max)


def _bits(dt) -> int:
    return np.dtype(dt).itemsize * 8


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
    ``MlasQuantizeLinear``; ``bitexact.md`` §0). Per-tensor or per-axis; 8- and 16-bit integer outputs."""
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
    """ONNX DequantizeLinear as ORT computes it: ``f32(f32(x - z) * s)`` (``bitexact.md`` §0)."""
    x, s, z = ins[0], ins[1], ins[2] if len(ins) > 2 else None
    if _attr(node, "block_size", 0):
        raise OpError("blocked quantization (block_size) is not supported")
    axis = int(_attr(node, "axis", 1))
    sf = _axis_shape(np.asarray(s, np.float32), x, axis)
    zf = _axis_shape(np.asarray(z if z is not None else 0, np.int64).reshape(-1), x, axis) if z is not None \
        else np.int64(0)
    d = (x.astype(np.int64) - zf).astype(np.float32)
    return [np.multiply(d, sf, dtype=np.float32)], NodeStats()


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
    strides = list(_attr(node, "strides", [1] * nd))
    dil = list(_attr(node, "dilations", [1] * nd))
    groups = int(_attr(node, "group", 1))
    auto_pad = _attr(node, "auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    pads = list(_attr(node, "pads", [0] * (2 * nd)))
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
            lo, hi = (0, (1 << bits) - 1) if v.dtype.kind == "u" else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
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
                   profile=prof, rounding=cfg.rounding, seed=cfg.seed if cfg.rounding == "stochastic" else None,
                   **kw)
    return y.astype(out_dt)


def _split_bias_fbgemm(bias, s_x, s_w, cfg):
    """torch_fbgemm: the int32 bias becomes PyTorch's float bias ``f32(b * act)``, added as ``f32(b' / act)``
    in float32 before the multiply (``bitexact.md`` §3); returns (int bias for the accumulator, float addend)."""
    if bias is None or cfg.profile != "torch_fbgemm":
        return bias, None
    act = np.multiply(np.float32(s_x), np.asarray(s_w, np.float32), dtype=np.float32)
    b_float = np.multiply(bias.astype(np.float32), act, dtype=np.float32)
    return None, fbgemm_bias_addend(b_float, act)


def qlinear_conv(node, ins, cfg):
    """ONNX QLinearConv: integer accumulator then requantization (ORT ``qlinearconv.cc``; ``bitexact.md``
    §0/§1): ``M = f32(f32(s_x * s_w[c]) / s_y)``, ``y = clamp(rne(f32(f32(acc) * M)) + z_y)``."""
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
    """ONNX ConvInteger: the exact ``sum (x - z_x)(w - z_w)`` in int32 (wraps; ``bitexact.md`` §1)."""
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
            stats.mult_overflow += _operand_overflow(ai, az, bi, bzv[None, :], cfg.mult_bits, cfg.zero_point_mode)
        if cfg.acc_mode == "wrap":
            exact, _ = gemm_acc(ai, bi, a_zp=int(az), b_zp=bzv, bias=bias, acc_bits=64, mult_bits=cfg.mult_bits,
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
    y = _requant(acc, _scalar(as_, "a_scale"), bsv if bsv.size > 1 else bsv[0], _scalar(ys, "y_scale"), _zp(yz),
                 yz.dtype if yz is not None else a.dtype, cfg, axis=acc.ndim - 1)
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


# -- elementwise ---------------------------------------------------------------------------------------------

def _fma_f32(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Correctly rounded float32 fused multiply-add ``f32(a*b + c)`` for float32 arrays.

    ``a*b`` is exact in float64 (24 + 24 bits); the float64 sum is made round-to-odd with the TwoSum error,
    after which rounding to float32 is correct (53 >= 24 + 2; Boldo and Melquiond, IEEE TC 2008).
    """
    p = a.astype(np.float64) * b.astype(np.float64)
    c64 = np.broadcast_to(c, p.shape).astype(np.float64)
    s = p + c64
    bb = s - p
    err = (p - (s - bb)) + (c64 - bb)
    bits = s.view(np.int64)
    even = (bits & 1) == 0
    fix = (err != 0) & even
    if np.any(fix):
        s = np.where(fix, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)
    return s.astype(np.float32)


def _f32(v) -> np.float32:
    return np.float32(v)


def qlinear_add(node, ins, cfg):
    """com.microsoft QLinearAdd as ORT's x86 AVX2 kernel computes it (``mlas/lib/intrinsics/avx2/qladd_avx2.cpp``).

    ``r_a = f32(s_a / s_c)``, ``r_b = f32(s_b / s_c)``, ``F = f32(z_c - f32(f32(r_a z_a) + f32(r_b z_b)))``;
    elementwise ``y = sat(rne(fma(a, r_a, fma(b, r_b, F))))`` on the raw codes (two fused multiply-adds).
    Where ORT's broadcasting makes one side a scalar over the inner span, that side is folded into ``F`` with
    a separate multiply and add (``F' = f32(F + f32(v r))``) and one fma remains. Checked exhaustively against
    onnxruntime over all 256 x 256 code pairs (``tests/test_onnxq_ops.py``).
    """
    a, sa, za, b, sb, zb, sc, zc = ins[:8]
    out_dt = a.dtype
    ra = np.divide(_f32(_scalar(sa, "A_scale")), _f32(_scalar(sc, "C_scale")), dtype=np.float32)
    rb = np.divide(_f32(_scalar(sb, "B_scale")), _f32(_scalar(sc, "C_scale")), dtype=np.float32)
    za_, zb_, zc_ = _zp(za), _zp(zb), _zp(zc)
    fixed = np.float32(np.float32(zc_) - np.float32(np.float32(ra * np.float32(za_))
                                                    + np.float32(rb * np.float32(zb_))))
    shape = np.broadcast_shapes(a.shape, b.shape)
    mode = _broadcast_mode(a.shape, b.shape, shape)
    af = np.broadcast_to(a, shape).astype(np.float32)
    bf = np.broadcast_to(b, shape).astype(np.float32)
    if mode == "scalar_b":
        f2 = np.add(fixed, np.multiply(bf, rb, dtype=np.float32), dtype=np.float32)
        v = _fma_f32(af, np.broadcast_to(ra, shape), f2)
    elif mode == "scalar_a":
        f2 = np.add(fixed, np.multiply(af, ra, dtype=np.float32), dtype=np.float32)
        v = _fma_f32(bf, np.broadcast_to(rb, shape), f2)
    else:
        t = _fma_f32(bf, np.broadcast_to(rb, shape), np.broadcast_to(fixed, shape))
        v = _fma_f32(af, np.broadcast_to(ra, shape), t)
    qmin, qmax = _qrange(out_dt)
    return [np.clip(np.rint(np.clip(v, -2.0**31, 2.0**31 - 128)), qmin, qmax).astype(out_dt)], NodeStats()


def _broadcast_mode(sa, sb, so) -> str:
    """Which side ORT's broadcaster passes as a scalar over the innermost span."""
    if int(np.prod(sb)) == 1 and int(np.prod(sa)) > 1:
        return "scalar_b"
    if int(np.prod(sa)) == 1 and int(np.prod(sb)) > 1:
        return "scalar_a"
    if tuple(sa) == tuple(sb):
        return "general"
    n = len(so)
    pa = (1,) * (n - len(sa)) + tuple(sa)
    pb = (1,) * (n - len(sb)) + tuple(sb)
    i = n - 1
    while i >= 0 and so[i] == 1:
        i -= 1
    if i < 0:
        return "general"
    if pb[i] == 1 and pa[i] > 1:
        return "scalar_b"
    if pa[i] == 1 and pb[i] > 1:
        return "scalar_a"
    return "general"


def qlinear_mul(node, ins, cfg):
    """com.microsoft QLinearMul as ORT's x86 kernel computes it (``mlas/lib/qlmul.cpp``, SSE2 path).

    ``r = f32(f32(s_a * s_b) / s_c)``; ``p = (a - z_a)(b - z_b)`` exact (int16 x int16 -> int32);
    ``y = sat(rne(f32(f32(f32(p) * r) + z_c)))``: the zero point is added in float *before* rounding. Checked
    exhaustively against onnxruntime over all 256 x 256 code pairs (``tests/test_onnxq_ops.py``).
    """
    a, sa, za, b, sb, zb, sc, zc = ins[:8]
    out_dt = a.dtype
    r = np.divide(np.multiply(_f32(_scalar(sa, "A_scale")), _f32(_scalar(sb, "B_scale")), dtype=np.float32),
                  _f32(_scalar(sc, "C_scale")), dtype=np.float32)
    p = (a.astype(np.int64) - _zp(za)) * (b.astype(np.int64) - _zp(zb))
    v = np.add(np.multiply(p.astype(np.float32), r, dtype=np.float32), np.float32(_zp(zc)), dtype=np.float32)
    qmin, qmax = _qrange(out_dt)
    return [np.clip(np.rint(v), qmin, qmax).astype(out_dt)], NodeStats()


def _lut(x, xs, xz, ys, yz, fn):
    """ORT ``QlinearBuildLookupTable``: ``table[v] = QuantizeLinear(fn(f32(s_x * f32(v - z_x))))`` over the
    256 codes, then ``y = table[x]``."""
    dt = x.dtype
    info = np.iinfo(dt)
    codes = np.arange(info.min, info.max + 1, dtype=np.int64)
    d = np.multiply(np.float32(_scalar(xs, "X_scale")), (codes - _zp(xz)).astype(np.float32), dtype=np.float32)
    t = fn(d).astype(np.float32)
    out_dt = yz.dtype if yz is not None else dt
    qmin, qmax = _qrange(out_dt)
    z = _zp(yz)
    v = np.divide(t, np.float32(_scalar(ys, "Y_scale")), dtype=np.float32)
    v = np.rint(np.clip(v, np.float32(qmin - z), np.float32(qmax - z)))
    table = (v.astype(np.int64) + z).astype(out_dt)
    return table[x.astype(np.int64) - info.min]


def qlinear_leaky_relu(node, ins, cfg):
    """com.microsoft QLinearLeakyRelu (ORT ``qlinear_activations.cc``): a 256-entry table of
    ``Q(v >= 0 ? v : f32(alpha * v))`` over the dequantized codes."""
    x, xs, xz, ys = ins[:4]
    yz = ins[4] if len(ins) > 4 else None
    alpha = np.float32(_attr(node, "alpha", 0.01))
    return [_lut(x, xs, xz, ys, yz, lambda v: np.where(v >= 0, v, np.multiply(alpha, v, dtype=np.float32)))], \
        NodeStats()


_LOGISTIC = [np.float32(c) for c in (4.37031012579801e-11, 1.15627324459942e-07, 6.08574864600143e-05,
                                     8.51377133304701e-03, 2.48287947061529e-01, 6.10247389755681e-13,
                                     5.76102136993427e-09, 6.29106785017040e-06, 1.70198817374094e-03,
                                     1.16817656904453e-01, 9.93151921023180e-01)]


def mlas_logistic(v: np.ndarray) -> np.ndarray:
    """``MlasComputeLogistic`` as its x86 FMA3 kernel computes it (``mlas/lib/logistic.cpp`` constants, Eigen's
    rational approximation): clamp to [-18, 18], ``p`` and ``q`` by fused multiply-adds in ``x^2``, ``p *= x``,
    ``clamp(p / q + 1/2, 0, 1)``; float32 throughout."""
    a9, a7, a5, a3, a1, b10, b8, b6, b4, b2, b0 = _LOGISTIC
    x = np.clip(v.astype(np.float32), np.float32(-18), np.float32(18))
    x2 = np.multiply(x, x, dtype=np.float32)

    def chain(c0, c1, rest):
        acc = _fma_f32(x2, np.full(x2.shape, c0, np.float32), np.full(x2.shape, c1, np.float32))
        for c in rest:
            acc = _fma_f32(acc, x2, np.full(x2.shape, c, np.float32))
        return acc

    p = np.multiply(chain(a9, a7, (a5, a3, a1)), x, dtype=np.float32)
    q = chain(b10, b8, (b6, b4, b2, b0))
    return np.clip(np.add(np.divide(p, q, dtype=np.float32), np.float32(0.5), dtype=np.float32),
                   np.float32(0), np.float32(1))


def qlinear_sigmoid(node, ins, cfg):
    """com.microsoft QLinearSigmoid (ORT ``qlinear_activations.cc``): a 256-entry table of
    ``Q(MlasComputeLogistic(DQ(v)))`` (:func:`mlas_logistic`)."""
    x, xs, xz, ys = ins[:4]
    yz = ins[4] if len(ins) > 4 else None
    return [_lut(x, xs, xz, ys, yz, mlas_logistic)], NodeStats()


def float_binary(node, ins, cfg):
    """Float32 Add/Sub/Mul with numpy broadcasting (one IEEE operation per element, as ORT's kernels)."""
    a, b = ins[0], ins[1]
    if a.dtype == b.dtype and a.dtype.kind in "iu":  # shape arithmetic (int64): wraps as ORT's Eigen kernels
        return [{"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[node.op_type](a, b)], NodeStats()
    if a.dtype != np.float32 or b.dtype != np.float32:
        raise OpError(f"{node.op_type} on {a.dtype} and {b.dtype} is not supported (float32 is)")
    f = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[node.op_type]
    return [f(a, b, dtype=np.float32)], NodeStats()


def relu(node, ins, cfg):
    """ONNX Relu: ``max(x, 0)`` elementwise (on integer codes for int8 Relu-14, as ORT)."""
    x = ins[0]
    return [np.maximum(x, np.zeros((), x.dtype))], NodeStats()


def clip(node, ins, cfg):
    """ONNX Clip with constant or omitted bounds: ``min(max(x, lo), hi)``."""
    x = ins[0]
    lo = ins[1] if len(ins) > 1 else None
    hi = ins[2] if len(ins) > 2 else None
    y = x
    if lo is not None:
        y = np.maximum(y, np.asarray(lo, x.dtype))
    if hi is not None:
        y = np.minimum(y, np.asarray(hi, x.dtype))
    return [y.astype(x.dtype)], NodeStats()


# -- pooling -------------------------------------------------------------------------------------------------

def _pool_geometry(node, spatial):
    ks = list(_attr(node, "kernel_shape"))
    nd = len(ks)
    if nd != 2 or len(spatial) != 2:
        raise OpError(f"only 2-D pooling is supported, found kernel {ks} on spatial dims {list(spatial)}")
    strides = list(_attr(node, "strides", [1] * nd))
    dil = list(_attr(node, "dilations", [1] * nd))
    ceil_mode = int(_attr(node, "ceil_mode", 0))
    auto_pad = _attr(node, "auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    pads = list(_attr(node, "pads", [0] * (2 * nd)))
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
    rounding). A kernel equal to the whole image with no padding falls back to QLinearGlobalAveragePool, as ORT
    does. NCHW only (``channels_last = 0``)."""
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
    ort_cpu requantization with ``M = f32(s_x / f32(s_y * f32(H*W)))`` (:func:`hwsim.datapath.global_avgpool`).
    NCHW only."""
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


def qlinear_concat(node, ins, cfg):
    """com.microsoft QLinearConcat (ORT ``qlinear_concat.cc``): each input is copied when its scale and zero
    point equal the output's, else mapped by the 256-entry table ``QuantizeLinear(DequantizeLinear(v))``."""
    ys, yz = ins[0], ins[1]
    axis = int(_attr(node, "axis"))
    parts = []
    out_dt = yz.dtype
    qmin, qmax = _qrange(out_dt)
    for i in range(2, len(ins), 3):
        x, xs, xz = ins[i], ins[i + 1], ins[i + 2]
        if float(_scalar(xs, "x_scale")) == float(_scalar(ys, "y_scale")) and _zp(xz) == _zp(yz):
            parts.append(x)
            continue
        d = np.multiply(np.float32(_scalar(xs, "x_scale")), (x.astype(np.int64) - _zp(xz)).astype(np.float32),
                        dtype=np.float32)
        v = np.divide(d, np.float32(_scalar(ys, "y_scale")), dtype=np.float32)
        v = np.rint(np.clip(v, np.float32(qmin - _zp(yz)), np.float32(qmax - _zp(yz))))
        parts.append((v.astype(np.int64) + _zp(yz)).astype(out_dt))
    return [np.concatenate(parts, axis=axis)], NodeStats()


# -- data movement -------------------------------------------------------------------------------------------

def reshape(node, ins, cfg):
    x, shape = ins[0], [int(v) for v in np.asarray(ins[1]).reshape(-1)]
    allowzero = int(_attr(node, "allowzero", 0))
    if not allowzero:
        shape = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
    return [x.reshape(shape)], NodeStats()


def flatten(node, ins, cfg):
    x = ins[0]
    axis = int(_attr(node, "axis", 1)) % (x.ndim + 1) if x.ndim else 0
    return [x.reshape(int(np.prod(x.shape[:axis])), -1)], NodeStats()


def transpose(node, ins, cfg):
    perm = _attr(node, "perm")
    return [np.ascontiguousarray(np.transpose(ins[0], perm))], NodeStats()


def _axes(node, ins):
    if len(ins) > 1 and ins[1] is not None:
        return [int(v) for v in np.asarray(ins[1]).reshape(-1)]
    a = _attr(node, "axes")
    return None if a is None else [int(v) for v in a]


def squeeze(node, ins, cfg):
    axes = _axes(node, ins)
    x = ins[0]
    return [np.squeeze(x, axis=tuple(axes)) if axes is not None else np.squeeze(x)], NodeStats()


def unsqueeze(node, ins, cfg):
    axes = _axes(node, ins)
    x = ins[0]
    n = x.ndim + len(axes)
    for a in sorted(v % n for v in axes):
        x = np.expand_dims(x, a)
    return [x], NodeStats()


def identity(node, ins, cfg):
    return [ins[0]], NodeStats()


def concat(node, ins, cfg):
    return [np.concatenate(ins, axis=int(_attr(node, "axis")))], NodeStats()


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


#: Float kernels for the QDQ groups that onnxruntime's default x86 session leaves in float (only those nodes).
FLOAT_GROUP_KERNELS = {("", "Conv"): float_conv, ("", "MatMul"): float_matmul, ("", "Gemm"): float_matmul}

#: (domain, op_type) -> kernel.
KERNELS = {
    ("", "QuantizeLinear"): quantize_linear,
    ("", "DequantizeLinear"): dequantize_linear,
    ("", "QLinearConv"): qlinear_conv,
    ("", "QLinearMatMul"): qlinear_matmul,
    ("", "ConvInteger"): conv_integer,
    ("", "MatMulInteger"): matmul_integer,
    ("com.microsoft", "QGemm"): qgemm,
    ("com.microsoft", "QLinearAdd"): qlinear_add,
    ("com.microsoft", "QLinearMul"): qlinear_mul,
    ("com.microsoft", "QLinearLeakyRelu"): qlinear_leaky_relu,
    ("com.microsoft", "QLinearSigmoid"): qlinear_sigmoid,
    ("com.microsoft", "QLinearAveragePool"): qlinear_average_pool,
    ("com.microsoft", "QLinearGlobalAveragePool"): qlinear_global_average_pool,
    ("com.microsoft", "QLinearConcat"): qlinear_concat,
    ("com.microsoft", "QuantizeLinear"): quantize_linear,
    ("com.microsoft", "DequantizeLinear"): dequantize_linear,
    **DYNAMIC_KERNELS,
    ("", "MaxPool"): maxpool,
    ("", "Relu"): relu,
    ("", "Clip"): clip,
    ("", "Reshape"): reshape,
    ("", "Flatten"): flatten,
    ("", "Transpose"): transpose,
    ("", "Squeeze"): squeeze,
    ("", "Unsqueeze"): unsqueeze,
    ("", "Identity"): identity,
    ("", "Concat"): concat,
    ("", "Add"): float_binary,
    ("", "Sub"): float_binary,
    ("", "Mul"): float_binary,
}

#: The ops hwsim runs, as "op" or "domain:op", sorted (QDQ groups of Conv/MatMul/Gemm/Add/AveragePool/
#: GlobalAveragePool/Concat lower to these).
SUPPORTED_OPS = sorted((f"{d}:{o}" if d else o) for d, o in KERNELS) + [
    "Conv, MatMul, Gemm, Add, Mul, AveragePool, GlobalAveragePool, LeakyRelu, Sigmoid, Concat (inside "
    "DequantizeLinear -> op -> QuantizeLinear)"]


def reduction_bound_bits(k: int, a_bits: int, w_bits: int) -> int:
    """The classic accumulator-size rule ``b_a + b_w + ceil(log2 K)`` (bits)."""
    return a_bits + w_bits + (math.ceil(math.log2(k)) if k > 1 else 0)
