"""Typed wrappers of the integer kernels: argument checks, zero-point shifting, padding, accumulator width.

Integer semantics (``docs/verification.md`` §0, §1):

* The accumulator of one output is the exact integer ``acc = sum (x - z_x)(w - z_w) + bias`` (ONNX
  ConvInteger / MatMulInteger plus QLinearConv's int32 bias), computed exactly in int64 and then reduced to an
  ``acc_bits``-bit two's-complement register (``acc_mode="wrap"``), or accumulated step by step into a
  saturating register (``acc_mode="saturate"``). At ``acc_bits=32`` with ``"wrap"`` this is ORT's int32
  accumulator (the ONNX spec allows int32 wrap-around and nothing narrower).
* Padding is the real value 0, i.e. the quantized value ``z_x`` (so its shifted value ``x - z_x`` is 0).
* Requantization follows :func:`hwsim.quant.requantize` (profile ``"ort_cpu"`` by default).
"""

from __future__ import annotations

import numpy as np

from ..numerics import QParams, check_profile, requant_multiplier, requantize
from . import _exact_gemm, _kernels, _pairs

__all__ = ["conv2d_acc", "gemm_acc", "qlinear_conv2d", "qlinear_matmul", "maxpool2d", "global_avgpool",
           "conv_output_size", "narrow_operand"]

_ACC_MODES = ("wrap", "saturate")
_EXACT_LIMIT = 1 << 62  # int64 partial sums below this bound are exact


# -- argument checks -----------------------------------------------------------------------------------------

def _int_array(a, name: str, ndim: int, dims: str) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, not {type(a).__name__}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions {dims}, not {a.ndim}")
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must have an integer dtype, not {a.dtype}")
    return a


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _int_scalar(v, name: str) -> int:
    if isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "iu":
        v = v[()]
    if not _is_int(v):
        raise TypeError(f"{name} must be an int, not {v!r}")
    return int(v)


def _int_tuple(v, name: str, n: int, *, minimum: int) -> tuple[int, ...]:
    if not isinstance(v, (tuple, list)) or len(v) != n or not all(_is_int(e) for e in v):
        raise ValueError(f"{name} must be a tuple of {n} ints, not {v!r}")
    if any(int(e) < minimum for e in v):
        raise ValueError(f"{name} must be a tuple of {n} ints >= {minimum}, not {tuple(int(e) for e in v)!r}")
    return tuple(int(e) for e in v)


def _zero_point_vector(zp, name: str, length: int, what: str) -> np.ndarray:
    """A scalar or per-channel zero point as an int64 vector of ``length``."""
    a = np.asarray(zp)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an int or an integer array, not {zp!r}")
    if a.ndim == 0:
        return np.full(length, int(a), np.int64)
    if a.shape != (length,):
        raise ValueError(f"{name} must be a scalar or have shape ({length},) (one per {what}), not {a.shape}")
    return a.astype(np.int64)


def _bias_vector(bias, length: int, what: str) -> np.ndarray | None:
    if bias is None:
        return None
    if not isinstance(bias, np.ndarray):
        raise TypeError(f"bias must be a numpy.ndarray or None, not {type(bias).__name__}")
    if bias.dtype.kind not in "iu":
        raise TypeError(f"bias must have an integer dtype, not {bias.dtype}")
    if bias.shape != (length,):
        raise ValueError(f"bias must have shape ({length},) (one per {what}), not {bias.shape}")
    return bias.astype(np.int64)


def _acc_args(acc_bits, acc_mode) -> tuple[int, int, int]:
    if not _is_int(acc_bits):
        raise TypeError(f"acc_bits must be an int, not {acc_bits!r}")
    if not 2 <= int(acc_bits) <= 64:
        raise ValueError(f"acc_bits must be in [2, 64], not {int(acc_bits)}")
    if acc_mode not in _ACC_MODES:
        raise ValueError(f"acc_mode must be 'wrap' or 'saturate', not {acc_mode!r}")
    bits = int(acc_bits)
    return bits, -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def _shifted(a: np.ndarray, zp, name: str) -> np.ndarray:
    """``a - zp`` as int32 (zero-shifted operand); refuses values that do not fit 31 bits."""
    s = a.astype(np.int64) - zp
    if s.size and (s.min() < -(1 << 31) or s.max() > (1 << 31) - 1):
        raise ValueError(f"{name} minus its zero point must fit int32, found range [{s.min()}, {s.max()}]")
    return s.astype(np.int32)


def narrow_operand(v: np.ndarray, bits: int) -> tuple[np.ndarray, int]:
    """Two's-complement truncation of integer operands to a ``bits``-bit signed multiplier input.

    A PE whose multiplier takes ``bits``-bit signed operands keeps the low ``bits`` bits of each zero-shifted
    operand ``x - z``: values outside ``[-2^(bits-1), 2^(bits-1) - 1]`` wrap. 8-bit codes with a zero point
    need 9 bits (``x - z`` spans ``[-255, 255]``), so an 8-bit multiplier is exact only for zero points that
    keep ``x - z`` within int8 (e.g. symmetric int8 weights).

    Parameters
    ----------
    v : numpy.ndarray of int
        Zero-shifted operands.
    bits : int in [2, 32]

    Returns
    -------
    (wrapped, count) : (numpy.ndarray of int32, int)
        The operands as the multiplier sees them, and how many were out of range.
    """
    if not _is_int(bits) or not 2 <= int(bits) <= 32:
        raise ValueError(f"mult_bits must be an int in [2, 32], not {bits!r}")
    bits = int(bits)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    w = v.astype(np.int64)
    bad = (w < lo) | (w > hi)
    count = int(np.count_nonzero(bad))
    if count:
        w = ((w - lo) & ((1 << bits) - 1)) + lo
    return w.astype(np.int32), count


def _byte_offset(a: np.ndarray, unsigned: bool, name: str) -> int:
    """Offset that maps the codes of ``a`` into [0, 255] (``unsigned``) or [-128, 127], preferring the dtype's
    natural one (int8 -> uint8 is +128, uint8 -> int8 is -128)."""
    if a.dtype == (np.uint8 if unsigned else np.int8):
        return 0
    if a.dtype == (np.int8 if unsigned else np.uint8):
        return 128 if unsigned else -128
    lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
    for off in ((0, 128) if unsigned else (0, -128)):
        if (lo + off >= 0 and hi + off <= 255) if unsigned else (lo + off >= -128 and hi + off <= 127):
            return off
    raise ValueError(f"int16_pairs needs 8-bit codes: {name} spans [{lo}, {hi}]")


def _int16_pairs_gemm(u: np.ndarray, s: np.ndarray, uz: int, sz: np.ndarray) -> np.ndarray:
    """``sum_p sat16(pair of raw products) - sz sum u - uz sum s + K uz sz`` (exact int64 corrections); ``u``
    (M, K) unsigned and ``s`` (K, N) signed byte codes, ``sz`` (N,)."""
    out = _pairs.pair_sums16(u, s)
    out -= uz * s.sum(axis=0, dtype=np.int64)[None, :]
    out -= sz[None, :] * u.sum(axis=1, dtype=np.int64)[:, None]
    out += u.shape[1] * uz * sz[None, :]
    return out


def _check_exact(xs: np.ndarray, ws: np.ndarray, red: int, bias: np.ndarray | None) -> None:
    """Refuse operands whose exact sum could leave the int64 range (the int64 sum would not be exact)."""
    mx = int(np.abs(xs.astype(np.int64)).max()) if xs.size else 0
    mw = int(np.abs(ws.astype(np.int64)).max()) if ws.size else 0
    mb = int(np.abs(bias).max()) if bias is not None and bias.size else 0
    if mx * mw * red + mb >= _EXACT_LIMIT:
        raise ValueError(f"operands too wide for an exact int64 accumulation: max|x - z_x| * max|w - z_w| * "
                         f"reduction length + max|bias| = {mx * mw * red + mb} must be below 2^62")


def _finish(out: np.ndarray, bias: np.ndarray | None, bias_shape: tuple, bits: int, lo: int, hi: int,
            mode: str, bound: int | None = None) -> int:
    """Add the bias; reduce ``out`` (exact int64 sums or saturated partial sums) to the register, in place.

    ``bound``: a known bound on ``|out|`` (wrap mode, before the bias); when it and the bias fit the register,
    nothing can overflow and the two passes of the count are skipped."""
    if mode == "wrap" and bound is not None:
        mb = int(np.abs(bias).max()) if bias is not None and bias.size else 0
        if bound + mb <= hi and -(bound + mb) >= lo:
            if bias is not None:
                out += bias.reshape(bias_shape)
            return 0
    if mode == "saturate":
        events = 0
        if bias is not None:
            flat = out.reshape(-1)
            addend = np.ascontiguousarray(np.broadcast_to(bias.reshape(bias_shape), out.shape)).reshape(-1)
            events = _kernels.add_saturate(flat, addend, lo, hi)
        return int(events)
    if bias is not None:
        out += bias.reshape(bias_shape)
    overflow = int(np.count_nonzero((out < lo) | (out > hi)))
    if overflow and bits < 64:
        out -= lo
        out &= np.int64((1 << bits) - 1)
        out += lo
    return overflow


def _code_bound(a: np.ndarray, z: np.ndarray | int) -> int:
    """``max |a - z|`` over all codes the dtype of ``a`` (at most 8 bits) can hold, for every ``z``."""
    info = np.iinfo(a.dtype)
    zz = np.asarray(z, np.int64)
    return int(max(np.abs(info.min - zz).max(), np.abs(info.max - zz).max()))


def conv_output_size(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int,
                     dilation: int = 1) -> int:
    """ONNX/PyTorch output length (floor mode).

    ``(size + pad_begin + pad_end - dilation * (kernel - 1) - 1) // stride + 1``; may be <= 0 (callers check).
    """
    return (size + pad_begin + pad_end - dilation * (kernel - 1) - 1) // stride + 1


# -- accumulators --------------------------------------------------------------------------------------------

def _conv_int16_pairs(x_q, w_q, xz, wz, stride, pads, dilation, groups, ho, wo) -> np.ndarray:
    """conv2d_acc's ``int16_pairs`` model: NHWC im2col of the raw codes (padding = the code ``xz``),
    reduction in ``(r, s, c)`` order, pairs saturated to int16; int64 (N, K, Ho, Wo)."""
    n_b, ch, h, w = x_q.shape
    k_out, cg, kr, ks = w_q.shape
    ox = _byte_offset(x_q, True, "x_q")
    ow = _byte_offset(w_q, False, "w_q")
    fast = _exact_gemm.pairs_conv(x_q, w_q, ox, ow, xz, wz, pads, stride, dilation, groups, ho, wo)
    if fast is not None:  # the same pairs on the implicit-GEMM vpmaddubsw kernel (tested equal)
        return fast
    pt, pb, pl, pr = pads
    xp = np.full((n_b, ch, h + pt + pb, w + pl + pr), xz + ox, np.int16)
    xp[:, :, pt:pt + h, pl:pl + w] = x_q.astype(np.int16) + ox
    ws = (w_q.astype(np.int16) + ow).transpose(0, 2, 3, 1).reshape(k_out, -1)  # (K, R*S*Cg), (r, s, c) order
    wzs = wz + ow
    kg = k_out // groups
    out = np.empty((n_b, k_out, ho, wo), np.int64)
    for g in range(groups):
        cols = _pairs.im2col_rsc(xp[:, g * cg:(g + 1) * cg], kr, ks, stride, dilation, ho, wo)
        acc = _int16_pairs_gemm(cols, ws[g * kg:(g + 1) * kg].T, xz + ox, wzs[g * kg:(g + 1) * kg])
        out[:, g * kg:(g + 1) * kg] = acc.reshape(n_b, ho, wo, kg).transpose(0, 3, 1, 2)
    return out


def _narrow_codes(v: np.ndarray, bits: int, dtype) -> np.ndarray:
    """Raw codes as a ``bits``-bit multiplier port of their own signedness sees them (wrapping)."""
    if np.dtype(dtype).kind == "u":
        return v & ((1 << bits) - 1)
    return narrow_operand(v, bits)[0].astype(np.int64)


def _cross_term_finish(raw, events, corr, bias, bias_shape, bits, lo, hi, mode) -> tuple[np.ndarray, int]:
    """Add the cross-term correction (one register addition) and the bias to raw-product sums."""
    if mode == "saturate":
        out = raw.copy()
        flat = out.reshape(-1)
        events += _kernels.add_saturate(flat, np.ascontiguousarray(np.broadcast_to(corr,
                                                                                   out.shape)).reshape(-1),
                                        lo, hi)
        events += _finish(out, bias, bias_shape, bits, lo, hi, mode)
        return out, int(events)
    raw_over = (raw < lo) | (raw > hi)
    out = raw + corr
    final = out + (bias.reshape(bias_shape) if bias is not None else 0)
    over = int(np.count_nonzero(raw_over | (final < lo) | (final > hi)))
    _finish(out, bias, bias_shape, bits, lo, hi, mode)
    return out, over


def conv2d_acc(x_q: np.ndarray, w_q: np.ndarray, *, x_zp, w_zp, bias: np.ndarray | None = None,
               stride: tuple[int, int] = (1, 1), pads: tuple[int, int, int, int] = (0, 0, 0, 0),
               dilation: tuple[int, int] = (1, 1), groups: int = 1, acc_bits: int = 32,
               acc_mode: str = "wrap", mult_bits: int | None = None, int16_pairs: bool = False,
               fast: bool = True, zero_point_mode: str = "shift") -> tuple[np.ndarray, int]:
    """Integer conv2d accumulator ``acc = sum (x - x_zp)(w - w_zp) + bias`` in an ``acc_bits``-bit register.

    Semantics: ONNX ConvInteger plus QLinearConv's int32 bias (``docs/verification.md`` §1; ORT
    ``qlinearconv.cc``).
    NCHW layout, cross-correlation (no kernel flip), floor-mode output size
    ``Ho = (H + top + bottom - dh*(R-1) - 1) // sh + 1`` (likewise ``Wo``). Group ``g`` uses input channels
    ``[g*C/groups, (g+1)*C/groups)`` and output channels ``[g*K/groups, (g+1)*K/groups)``; depthwise is
    ``groups = C`` with ``w_q`` of shape ``(K, 1, R, S)``.

    Accumulator modes:

    ``"wrap"``
        The exact sum (products and bias, in int64) reduced modulo ``2^acc_bits`` into ``[-2^(acc_bits-1),
        2^(acc_bits-1) - 1]`` (two's complement; order independent). ``overflow`` = the number of outputs
        whose exact sum does not fit ``acc_bits``.
    ``"saturate"``
        A register that clamps to the same range after **every** addition, in a fixed PE order: it starts at
        0, receives the products ``(x - x_zp)(w - w_zp)`` in ``(c, r, s)`` row-major order of the weight
        layout ``(C/groups, R, S)``, and the **bias last** (as ORT adds it in the output stage,
        ``MlasRequantizeOutput``). ``overflow`` = the number of saturation events (clamping additions) over
        all outputs.

    Parameters
    ----------
    x_q : numpy.ndarray, shape (N, C, H, W), any integer dtype (int8/uint8 typically)
        Input codes.
    w_q : numpy.ndarray, shape (K, C/groups, R, S), any integer dtype
        Weight codes.
    x_zp : int
        Input zero point (per tensor). Padded positions hold this value (real 0), so they add nothing.
    w_zp : int or array_like of int, shape (K,)
        Weight zero point, per tensor or per output channel (ORT requires per-channel values to be equal; this
        model does not).
    bias : numpy.ndarray of int, shape (K,), optional
        Added to the accumulator (int32 in ONNX; any integer dtype accepted).
    stride, dilation : tuple of 2 ints >= 1, default (1, 1)
        ``(sh, sw)`` and ``(dh, dw)``.
    pads : tuple of 4 ints >= 0, default (0, 0, 0, 0)
        ``(top, bottom, left, right)``. Note: ONNX orders them ``[top, left, bottom, right]``.
    groups : int >= 1, default 1
        Must divide ``C`` and ``K``.
    acc_bits : int in [2, 64], default 32
        Register width.
    acc_mode : {"wrap", "saturate"}, default "wrap"
    mult_bits : int in [2, 32], optional
        Signed width of each multiplier operand: the zero-shifted operands are truncated to it
        (:func:`narrow_operand`), as a PE with a narrow multiplier would. ``None``: wide enough.
    int16_pairs : bool, default False
        A PE that sums products in pairs with int16 saturation, as x86 ``vpmaddubsw`` does (the u8 x s8
        kernels of onnxruntime's MLAS on AVX2 and AVX-512 without VNNI, and PyTorch fbgemm's depthwise conv;
        ``docs/verification.md``, "Targets"): the codes are mapped to unsigned ``x' = x + o_x`` and signed
        ``w' = w + o_w`` bytes (``o`` = 0 for uint8 x / int8 w, +128 for int8 x, -128 for uint8 w; zero points
        move with them), the reduction index runs in NHWC im2col order ``q = (r * S + s) * C/groups + c``
        (channels innermost), and ``acc = sum_p sat16(x'[2p] w'[2p] + x'[2p+1] w'[2p+1]) - z_w' sum_q x'[q] -
        z_x' sum_q w'[q] + Q z_x' z_w'`` over the *raw* codes (padding holds the code ``z_x'``; an odd last
        term alone), then the bias. For a depthwise conv (``C/groups = 1``) the pairs are kernel taps in
        ``(r, s)`` order. Wrap mode only.
    fast : bool, default True
        Use the exact fast path (:mod:`._exact_gemm`: VNNI, AVX2 or float BLAS) where it applies (wrap mode,
        no ``int16_pairs``); ``False`` forces the reference numba loops (same results, for tests).
    zero_point_mode : {"shift", "cross_term"}, default "shift"
        How the PE handles zero points. ``shift``: it multiplies ``(x - x_zp)(w - w_zp)`` (9-bit operands for
        8-bit codes with zero points). ``cross_term``: it multiplies the raw codes (8-bit multipliers) and the
        register receives, after the products, the correction ``- w_zp sum_q x[q] - x_zp sum_q w[q] + Q x_zp
        w_zp`` (one addition; padding holds the code ``x_zp``), then the bias. The result is the same modulo
        ``2^acc_bits``, but the raw partial sums are larger: in wrap mode ``overflow`` also counts outputs
        whose raw sum left the register, in saturate mode the clamps differ. ``mult_bits`` then bounds the raw
        codes (unsigned codes as unsigned).

    Returns
    -------
    acc : numpy.ndarray of int64, shape (N, K, Ho, Wo)
        The register contents, in ``[-2^(acc_bits-1), 2^(acc_bits-1) - 1]``.
    overflow : int
        See the modes above.

    Raises
    ------
    TypeError
        A non-array operand, a non-integer dtype or scalar.
    ValueError
        A wrong number of dimensions, inconsistent channels/groups, a non-positive output size, bad tuples,
        ``acc_bits``/``acc_mode`` out of range, or operands so wide that the int64 sum could overflow.
    """
    _int_array(x_q, "x_q", 4, "(N, C, H, W)")
    _int_array(w_q, "w_q", 4, "(K, C/groups, R, S)")
    if not _is_int(groups) or int(groups) < 1:
        raise ValueError(f"groups must be an int >= 1, not {groups!r}")
    groups = int(groups)
    n_b, ch, h, w = x_q.shape
    k_out, cg, kr, ks = w_q.shape
    if ch % groups:
        raise ValueError(f"x_q channels C={ch} must be divisible by groups={groups}")
    if k_out % groups:
        raise ValueError(f"w_q output channels K={k_out} must be divisible by groups={groups}")
    if cg != ch // groups:
        raise ValueError(f"w_q must have C/groups = {ch // groups} input channels (dimension 1), not {cg}")
    if kr < 1 or ks < 1:
        raise ValueError(f"w_q kernel size must be at least 1x1, not {kr}x{ks}")
    sh, sw = _int_tuple(stride, "stride", 2, minimum=1)
    dh, dw = _int_tuple(dilation, "dilation", 2, minimum=1)
    pt, pb, pl, pr = _int_tuple(pads, "pads", 4, minimum=0)
    bits, lo, hi = _acc_args(acc_bits, acc_mode)
    ho = conv_output_size(h, kr, sh, pt, pb, dh)
    wo = conv_output_size(w, ks, sw, pl, pr, dw)
    if ho < 1 or wo < 1:
        raise ValueError(f"output size must be positive, not {ho}x{wo}: the dilated kernel "
                         f"{dh * (kr - 1) + 1}x{dw * (ks - 1) + 1} does not fit the padded input "
                         f"{h + pt + pb}x{w + pl + pr}")
    xz = _int_scalar(x_zp, "x_zp")
    wz = _zero_point_vector(w_zp, "w_zp", k_out, "output channel")
    b = _bias_vector(bias, k_out, "output channel")
    if zero_point_mode == "cross_term":
        if int16_pairs:
            raise ValueError("zero_point_mode 'cross_term' and int16_pairs exclude each other")
        xp = np.full((n_b, ch, h + pt + pb, w + pl + pr), xz, np.int64)  # padding: the code of real 0
        xp[:, :, pt:pt + h, pl:pl + w] = x_q
        xr, wr = xp, w_q.astype(np.int64)
        if mult_bits is not None:
            xr = _narrow_codes(xr, mult_bits, x_q.dtype)
            wr = _narrow_codes(wr, mult_bits, w_q.dtype)
        geo = dict(stride=(sh, sw), dilation=(dh, dw), groups=groups)
        ones = np.ones((groups, cg, kr, ks), np.int8)
        win, _ = conv2d_acc(xr, ones, x_zp=0, w_zp=0, acc_bits=64, **geo)  # sum_q x per output and group
        kg = k_out // groups
        corr = -wz.reshape(1, -1, 1, 1) * np.repeat(win, kg, axis=1)
        corr -= xz * wr.reshape(k_out, -1).sum(axis=1).reshape(1, -1, 1, 1)
        corr += cg * kr * ks * xz * wz.reshape(1, -1, 1, 1)
        raw, ev = conv2d_acc(xr, wr, x_zp=0, w_zp=0, acc_bits=acc_bits if acc_mode == "saturate" else 64,
                             acc_mode=acc_mode, fast=fast, **geo)
        return _cross_term_finish(raw, ev, corr, b, (1, k_out, 1, 1), bits, lo, hi, acc_mode)
    if zero_point_mode != "shift":
        raise ValueError(f"zero_point_mode must be 'shift' or 'cross_term', not {zero_point_mode!r}")

    if int16_pairs:
        if acc_mode != "wrap":
            raise ValueError(f"int16_pairs needs acc_mode 'wrap', not {acc_mode!r}")
        out = _conv_int16_pairs(x_q, w_q, xz, wz, (sh, sw), (pt, pb, pl, pr), (dh, dw), groups, ho, wo)
        events = _finish(out, b, (1, k_out, 1, 1), bits, lo, hi, acc_mode)
        return out, int(events)
    out = None
    small_bias = b is None or not b.size or int(np.abs(b).max()) < (1 << 60)
    if fast and acc_mode == "wrap" and mult_bits is None and small_bias:
        # 8-bit codes only: |sum| <= 255 * 255 * K, far inside int64, so no _check_exact is needed
        out = _exact_gemm.exact_conv(x_q, w_q, xz, wz, (sh, sw), (pt, pb, pl, pr), (dh, dw), groups, ho, wo)
    events = 0
    bound = None
    if out is not None and x_q.dtype.itemsize == 1 and w_q.dtype.itemsize == 1:
        bound = cg * kr * ks * _code_bound(x_q, xz) * _code_bound(w_q, wz)
    if out is None:
        xs = _shifted(x_q, xz, "x_q")
        ws = _shifted(w_q, wz.reshape(-1, 1, 1, 1), "w_q")
        if mult_bits is not None:
            xs, _ = narrow_operand(xs, mult_bits)
            ws, _ = narrow_operand(ws, mult_bits)
        _check_exact(xs, ws, cg * kr * ks, b)
        if pt or pb or pl or pr:
            xs = np.pad(xs, ((0, 0), (0, 0), (pt, pb), (pl, pr)))  # shifted padding 0 = code x_zp = real 0
        xs = np.ascontiguousarray(xs)
        ws = np.ascontiguousarray(ws)
        out = np.zeros((n_b, k_out, ho, wo), np.int64)
        if acc_mode == "wrap":
            _kernels.conv2d_exact(xs, ws, out, sh, sw, dh, dw, groups)
        else:
            events = _kernels.conv2d_saturate(xs, ws, out, sh, sw, dh, dw, groups, lo, hi)
    events += _finish(out, b, (1, k_out, 1, 1), bits, lo, hi, acc_mode, bound)
    return out, int(events)


def gemm_acc(a_q: np.ndarray, b_q: np.ndarray, *, a_zp, b_zp, bias: np.ndarray | None = None,
             acc_bits: int = 32, acc_mode: str = "wrap", mult_bits: int | None = None,
             int16_pairs: bool = False, fast: bool = True,
             zero_point_mode: str = "shift") -> tuple[np.ndarray, int]:
    """Integer GEMM accumulator ``acc[i, j] = sum_k (a[i,k] - a_zp)(b[k,j] - b_zp[j]) + bias[j]``.

    Semantics: ONNX MatMulInteger (per-column ``b_zp`` allowed, as ORT does) plus an optional int32 bias per
    output column (as ORT's com.microsoft QGemm); ``docs/verification.md`` §1. The accumulator modes are those
    of :func:`conv2d_acc`; in ``"saturate"`` mode the products of one output arrive in ``k = 0 .. K-1`` order
    and the bias last.

    Parameters
    ----------
    a_q : numpy.ndarray, shape (M, K), any integer dtype
        Left operand codes (activations).
    b_q : numpy.ndarray, shape (K, N), any integer dtype
        Right operand codes (weights).
    a_zp : int
        Zero point of ``a_q`` (per tensor).
    b_zp : int or array_like of int, shape (N,)
        Zero point of ``b_q``, per tensor or per column.
    bias : numpy.ndarray of int, shape (N,), optional
    acc_bits : int in [2, 64], default 32
    acc_mode : {"wrap", "saturate"}, default "wrap"
    mult_bits, int16_pairs, fast, zero_point_mode
        As :func:`conv2d_acc` (``int16_pairs``: pairs run over ``k = (0, 1), (2, 3), ...``; the cross-term
        correction is
        ``- b_zp[j] sum_k a[i,k] - a_zp sum_k b[k,j] + K a_zp b_zp[j]``).

    Returns
    -------
    acc : numpy.ndarray of int64, shape (M, N)
    overflow : int
        Outputs that overflowed (``"wrap"``) or saturation events (``"saturate"``).

    Raises
    ------
    TypeError, ValueError
        As :func:`conv2d_acc`; ``"b_q must have K = ... rows ..."`` when the inner dimensions differ.
    """
    _int_array(a_q, "a_q", 2, "(M, K)")
    _int_array(b_q, "b_q", 2, "(K, N)")
    m_rows, k_red = a_q.shape
    if b_q.shape[0] != k_red:
        raise ValueError(f"b_q must have K = {k_red} rows (the columns of a_q), not {b_q.shape[0]}")
    n_cols = b_q.shape[1]
    bits, lo, hi = _acc_args(acc_bits, acc_mode)
    az = _int_scalar(a_zp, "a_zp")
    bz = _zero_point_vector(b_zp, "b_zp", n_cols, "column")
    b = _bias_vector(bias, n_cols, "column")
    if zero_point_mode == "cross_term":
        if int16_pairs:
            raise ValueError("zero_point_mode 'cross_term' and int16_pairs exclude each other")
        ar, br = a_q.astype(np.int64), b_q.astype(np.int64)
        if mult_bits is not None:
            ar = _narrow_codes(ar, mult_bits, a_q.dtype)
            br = _narrow_codes(br, mult_bits, b_q.dtype)
        corr = -ar.sum(axis=1)[:, None] * bz[None, :] - az * br.sum(axis=0)[None, :] + k_red * az * bz[None,
                                                                                                       :]
        raw, ev = gemm_acc(ar, br, a_zp=0, b_zp=0, acc_bits=acc_bits if acc_mode == "saturate" else 64,
                           acc_mode=acc_mode, fast=fast)
        return _cross_term_finish(raw, ev, corr, b, (1, n_cols), bits, lo, hi, acc_mode)
    if zero_point_mode != "shift":
        raise ValueError(f"zero_point_mode must be 'shift' or 'cross_term', not {zero_point_mode!r}")
    if int16_pairs:
        if acc_mode != "wrap":
            raise ValueError(f"int16_pairs needs acc_mode 'wrap', not {acc_mode!r}")
        oa = _byte_offset(a_q, True, "a_q")
        ob = _byte_offset(b_q, False, "b_q")
        out = _int16_pairs_gemm(a_q.astype(np.int16) + oa, b_q.astype(np.int16) + ob, az + oa, bz + ob)
        events = _finish(out, b, (1, n_cols), bits, lo, hi, acc_mode)
        return out, int(events)
    out = None
    small_bias = b is None or not b.size or int(np.abs(b).max()) < (1 << 60)
    if fast and acc_mode == "wrap" and mult_bits is None and small_bias and a_q.dtype.itemsize == 1 \
            and b_q.dtype.itemsize == 1:
        out = _exact_gemm.exact_gemm(a_q, b_q, az, bz, path="simd")  # 8-bit codes: exact in int64, any K
    events = 0
    bound = None
    if out is not None:
        bound = k_red * _code_bound(a_q, az) * _code_bound(b_q, bz)
    if out is None:
        a_s = np.ascontiguousarray(_shifted(a_q, az, "a_q"))
        b_s = np.ascontiguousarray(_shifted(b_q, bz.reshape(1, -1), "b_q"))
        if mult_bits is not None:
            a_s, _ = narrow_operand(a_s, mult_bits)
            b_s, _ = narrow_operand(b_s, mult_bits)
        _check_exact(a_s, b_s, k_red, b)
        if fast and acc_mode == "wrap":
            out = _exact_gemm.exact_gemm(a_s, b_s, 0, np.zeros(n_cols, np.int64), path="auto")
    if out is None:
        out = np.zeros((m_rows, n_cols), np.int64)
        if acc_mode == "wrap":
            _kernels.gemm_exact(a_s, b_s, out)
        else:
            events = _kernels.gemm_saturate(a_s, b_s, out, lo, hi)
    events += _finish(out, b, (1, n_cols), bits, lo, hi, acc_mode, bound)
    return out, int(events)


# -- quantized layers ----------------------------------------------------------------------------------------

def _qparams(qp, name: str) -> QParams:
    if not isinstance(qp, QParams):
        raise TypeError(f"{name} must be a QParams, not {type(qp).__name__}")
    return qp


def _per_tensor(qp: QParams, name: str) -> None:
    if qp.per_channel:
        raise ValueError(f"{name} must be per tensor (axis None), not per channel along axis {qp.axis}")


def _check_codes(a: np.ndarray, qp: QParams, name: str, qp_name: str) -> None:
    if a.size and (int(a.min()) < qp.qmin or int(a.max()) > qp.qmax):
        raise ValueError(f"{name} values must lie in [{qp.qmin}, {qp.qmax}] ({qp_name}: {qp.bits}-bit "
                         f"{'signed' if qp.signed else 'unsigned'}), found [{int(a.min())}, {int(a.max())}]")


def _requant_out(acc, x_qp, w_qp, y_qp, relu, profile, rounding=None, seed=None):
    m = requant_multiplier(x_qp.scale, w_qp.scale, y_qp.scale, profile=profile)
    z = int(y_qp.zero_point)
    qmin = max(y_qp.qmin, z) if relu else y_qp.qmin
    y = requantize(acc, m, zero_point=z, qmin=qmin, qmax=y_qp.qmax, channel_axis=1 if m.ndim else None,
                   profile=profile, rounding=rounding, seed=seed)
    return y.astype(y_qp.storage_dtype)


def qlinear_conv2d(x_q: np.ndarray, w_q: np.ndarray, *, x_qp: QParams, w_qp: QParams, y_qp: QParams,
                   bias: np.ndarray | None = None, stride: tuple[int, int] = (1, 1),
                   pads: tuple[int, int, int, int] = (0, 0, 0, 0), dilation: tuple[int, int] = (1, 1),
                   groups: int = 1, relu: bool = False, acc_bits: int = 32, acc_mode: str = "wrap",
                   profile: str = "ort_cpu", return_overflow: bool = False, rounding: str | None = None,
                   seed: int | None = None, mult_bits: int | None = None, int16_pairs: bool = False):
    """Quantized conv2d: integer accumulator, then requantization (ONNX QLinearConv, optional fused ReLU).

    ``y = clamp(requant(acc, M) + z_y, qmin', qmax)`` with ``acc`` from :func:`conv2d_acc`, ``M =
    requant_multiplier(s_x, s_w, s_y, profile=profile)`` (per output channel when ``w_qp`` is) and the
    rounding of :func:`hwsim.quant.requantize`. ``[qmin, qmax]`` is the full range of ``y_qp`` (no narrow
    range, ``docs/verification.md`` §0 point 5); with ``relu=True`` the low end is ``max(qmin, z_y)`` (fused
    ReLU clamps at the output zero point, as fbgemm and TFLite do). At 8 bits, ``acc_bits=32``, ``"wrap"``,
    ``"ort_cpu"`` and ``relu=False`` the result equals onnxruntime's QLinearConv bit for bit (tested); other
    widths 2..16 use the same formula with their own range.

    Parameters
    ----------
    x_q : numpy.ndarray, shape (N, C, H, W), integer
        Input codes, within ``[x_qp.qmin, x_qp.qmax]``.
    w_q : numpy.ndarray, shape (K, C/groups, R, S), integer
        Weight codes, within ``[w_qp.qmin, w_qp.qmax]``.
    x_qp : QParams
        Input quantizer, per tensor.
    w_qp : QParams
        Weight quantizer, per tensor or per output channel (``axis=0``, ``K`` scales).
    y_qp : QParams
        Output quantizer, per tensor; its ``bits``/``signed`` set the output range and dtype.
    bias : numpy.ndarray of int, shape (K,), optional
        int32 bias in units of ``s_x * s_w`` (zero point 0), as ONNX QLinearConv's ``B``.
    stride, pads, dilation, groups, acc_bits, acc_mode
        As :func:`conv2d_acc` (``pads`` is ``(top, bottom, left, right)``).
    relu : bool, default False
        Fuse a ReLU (clamp the low end at ``z_y``).
    profile : str, default "ort_cpu"
        Requantization profile, see :data:`hwsim.quant.PROFILES`.
    return_overflow : bool, default False
        Also return the accumulator overflow count of :func:`conv2d_acc`.
    rounding, seed : optional
        Replace the profile's rounding (:data:`hwsim.quant.ROUNDING_MODES`; ``seed`` for ``stochastic``).
    mult_bits, int16_pairs : optional
        PE options of :func:`conv2d_acc`.

    Returns
    -------
    y : numpy.ndarray, shape (N, K, Ho, Wo), dtype ``y_qp.storage_dtype`` (int8/uint8 up to 8 bits)
    overflow : int
        Only with ``return_overflow=True``.

    Raises
    ------
    TypeError, ValueError
        As :func:`conv2d_acc`; also for non-QParams quantizers, a per-channel ``x_qp``/``y_qp``, a ``w_qp``
        that is per channel along another axis or with a length other than ``K``, and codes outside their
        quantizer's range.
    """
    _qparams(x_qp, "x_qp")
    _qparams(w_qp, "w_qp")
    _qparams(y_qp, "y_qp")
    check_profile(profile)
    _per_tensor(x_qp, "x_qp")
    _per_tensor(y_qp, "y_qp")
    _int_array(x_q, "x_q", 4, "(N, C, H, W)")
    _int_array(w_q, "w_q", 4, "(K, C/groups, R, S)")
    if w_qp.per_channel:
        if w_qp.axis % 4 != 0:
            raise ValueError(f"w_qp must be per tensor or per output channel (axis 0), not axis {w_qp.axis}")
        if w_qp.scale.shape[0] != w_q.shape[0]:
            raise ValueError(f"w_qp must have one scale per output channel ({w_q.shape[0]}), "
                             f"not {w_qp.scale.shape[0]}")
    _check_codes(x_q, x_qp, "x_q", "x_qp")
    _check_codes(w_q, w_qp, "w_q", "w_qp")
    acc, overflow = conv2d_acc(x_q, w_q, x_zp=int(x_qp.zero_point), w_zp=w_qp.zero_point, bias=bias,
                               stride=stride, pads=pads, dilation=dilation, groups=groups, acc_bits=acc_bits,
                               acc_mode=acc_mode, mult_bits=mult_bits, int16_pairs=int16_pairs)
    y = _requant_out(acc, x_qp, w_qp, y_qp, relu, profile, rounding, seed)
    return (y, overflow) if return_overflow else y


def qlinear_matmul(a_q: np.ndarray, b_q: np.ndarray, *, a_qp: QParams, b_qp: QParams, y_qp: QParams,
                   bias: np.ndarray | None = None, relu: bool = False, acc_bits: int = 32,
                   acc_mode: str = "wrap", profile: str = "ort_cpu", return_overflow: bool = False,
                   rounding: str | None = None, seed: int | None = None, mult_bits: int | None = None,
                   int16_pairs: bool = False):
    """Quantized matrix product ``(M, K) x (K, N)``: accumulator, then requantization (ONNX QLinearMatMul).

    As :func:`qlinear_conv2d`, with :func:`gemm_acc` as the accumulator. ``b_qp`` may be per column
    (``axis=1``, ``N`` scales; ORT wants such scales as shape ``[1, N]`` in the graph). ONNX QLinearMatMul has
    no bias; the optional ``bias`` (int32, shape ``(N,)``, units ``s_a * s_b``) makes this a fully connected
    layer, as ORT's com.microsoft QGemm. At 8 bits with ``acc_bits=32``, ``"wrap"``, ``"ort_cpu"``, no bias
    and no ReLU the result equals onnxruntime's QLinearMatMul bit for bit (tested; ORT itself rejects uint8
    inputs with an int8 output).

    Parameters
    ----------
    a_q : numpy.ndarray, shape (M, K), integer
        Activation codes, within ``[a_qp.qmin, a_qp.qmax]``.
    b_q : numpy.ndarray, shape (K, N), integer
        Weight codes, within ``[b_qp.qmin, b_qp.qmax]``.
    a_qp, b_qp, y_qp : QParams
        Quantizers: ``a_qp`` and ``y_qp`` per tensor; ``b_qp`` per tensor or per column (axis 1).
    bias, relu, acc_bits, acc_mode, profile, return_overflow, rounding, seed, mult_bits, int16_pairs
        As :func:`qlinear_conv2d`.

    Returns
    -------
    y : numpy.ndarray, shape (M, N), dtype ``y_qp.storage_dtype``
    overflow : int
        Only with ``return_overflow=True``.

    Raises
    ------
    TypeError, ValueError
        As :func:`gemm_acc` and :func:`qlinear_conv2d`.
    """
    _qparams(a_qp, "a_qp")
    _qparams(b_qp, "b_qp")
    _qparams(y_qp, "y_qp")
    check_profile(profile)
    _per_tensor(a_qp, "a_qp")
    _per_tensor(y_qp, "y_qp")
    _int_array(a_q, "a_q", 2, "(M, K)")
    _int_array(b_q, "b_q", 2, "(K, N)")
    if b_qp.per_channel:
        if b_qp.axis % 2 != 1:
            raise ValueError(f"b_qp must be per tensor or per column (axis 1), not axis {b_qp.axis}")
        if b_qp.scale.shape[0] != b_q.shape[1]:
            raise ValueError(f"b_qp must have one scale per column ({b_q.shape[1]}), "
                             f"not {b_qp.scale.shape[0]}")
    _check_codes(a_q, a_qp, "a_q", "a_qp")
    _check_codes(b_q, b_qp, "b_q", "b_qp")
    acc, overflow = gemm_acc(a_q, b_q, a_zp=int(a_qp.zero_point), b_zp=b_qp.zero_point, bias=bias,
                             acc_bits=acc_bits, acc_mode=acc_mode, mult_bits=mult_bits,
                             int16_pairs=int16_pairs)
    y = _requant_out(acc, a_qp, b_qp, y_qp, relu, profile, rounding, seed)
    return (y, overflow) if return_overflow else y


# -- pooling -------------------------------------------------------------------------------------------------

def maxpool2d(x_q: np.ndarray, kernel, stride=None,
              pads: tuple[int, int, int, int] = (0, 0, 0, 0), *, dilation=1,
              ceil_mode: bool = False) -> np.ndarray:
    """Max pooling on integer codes or floats (ONNX MaxPool, NCHW; the one max pool of hwsim: the ONNX
    executor :mod:`hwsim.onnxq` and the models call it).

    Max commutes with the monotone affine map ``r = s (q - z)`` (``s > 0``), so pooling the codes is exact and
    the output keeps the input's quantizer. Padded positions never win (they act as ``-inf``, as in ONNX); on
    floats a NaN in a window propagates (as ``numpy.maximum``).

    Parameters
    ----------
    x_q : numpy.ndarray, shape (N, C, H, W), integer dtype of at most 16 bits, or a float dtype
    kernel : int or tuple of 2 ints >= 1
        ``(kh, kw)``.
    stride : int or tuple of 2 ints >= 1, optional
        Defaults to ``kernel`` (non-overlapping windows).
    pads : tuple of 4 ints >= 0, default (0, 0, 0, 0)
        ``(top, bottom, left, right)``; each must be smaller than the dilated kernel extent
        ``(k - 1) * d + 1`` along its axis (with ``dilation`` 1: smaller than the kernel, as ORT requires).
    dilation : int or tuple of 2 ints >= 1, default 1
        ``(dh, dw)``: window taps ``d`` apart.
    ceil_mode : bool, default False
        Round the output size up; a last window that would start in the end padding is dropped (ORT
        ``core/providers/cpu/nn/pool_attributes.h``, ``ComputeOutputSize``).

    Returns
    -------
    numpy.ndarray, shape (N, C, Ho, Wo), dtype of ``x_q``
        ``Ho = floor_or_ceil((H + top + bottom - ((kh - 1) * dh + 1)) / sh) + 1`` (likewise ``Wo``).

    Raises
    ------
    TypeError, ValueError
        Bad dimensions or dtype, bad tuples, a pad not smaller than the kernel, a non-positive output size, or
        (integer codes) a window that holds only padding.
    """
    if not (isinstance(x_q, np.ndarray) and x_q.dtype.kind == "f"):
        _int_array(x_q, "x_q", 4, "(N, C, H, W)")
        if x_q.dtype.itemsize > 2:
            raise TypeError(f"x_q must have an integer dtype of at most 16 bits, not {x_q.dtype}")
    elif x_q.ndim != 4:
        raise ValueError(f"x_q must have 4 dimensions (N, C, H, W), not {x_q.ndim}")
    kh, kw = _int_tuple((kernel, kernel) if _is_int(kernel) else kernel, "kernel", 2, minimum=1)
    if stride is None:
        stride = (kh, kw)
    sh, sw = _int_tuple((stride, stride) if _is_int(stride) else stride, "stride", 2, minimum=1)
    dh, dw = _int_tuple((dilation, dilation) if _is_int(dilation) else dilation, "dilation", 2, minimum=1)
    pt, pb, pl, pr = _int_tuple(pads, "pads", 4, minimum=0)
    eh, ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    if max(pt, pb) >= eh or max(pl, pr) >= ew:
        what = f"the kernel {(kh, kw)}" if (dh, dw) == (1, 1) else f"the dilated kernel {(eh, ew)}"
        raise ValueError(f"pads must be smaller than {what}, not {(pt, pb, pl, pr)}")
    n_b, ch, h, w = x_q.shape

    def size(n, e, st, p0, p1):
        span = n + p0 + p1 - e
        if not ceil_mode:
            return span // st + 1
        o = -(-span // st) + 1
        return o - 1 if (o - 1) * st >= n + p0 else o

    ho, wo = size(h, eh, sh, pt, pb), size(w, ew, sw, pl, pr)
    if ho < 1 or wo < 1:
        raise ValueError(f"output size must be positive, not {ho}x{wo}: the kernel {kh}x{kw} does not fit "
                         f"the padded input {h + pt + pb}x{w + pl + pr}")
    if x_q.dtype.kind == "f":
        out = np.empty((n_b, ch, ho, wo), x_q.dtype)
        _kernels.maxpool2d(np.ascontiguousarray(x_q), out, kh, kw, sh, sw, dh, dw, pt, pl,
                           x_q.dtype.type(-np.inf))
        return out
    out = np.empty((n_b, ch, ho, wo), np.int32)
    empty = _kernels.maxpool2d(np.ascontiguousarray(x_q, np.int32), out, kh, kw, sh, sw, dh, dw, pt, pl,
                               np.int32(np.iinfo(np.int32).min))
    if empty:
        raise ValueError(f"{empty} pooling windows hold only padding (kernel {(kh, kw)}, dilation "
                         f"{(dh, dw)}, pads {(pt, pb, pl, pr)}, input {h}x{w})")
    return out.astype(x_q.dtype)


def global_avgpool(x_q: np.ndarray, *, x_qp: QParams, y_qp: QParams) -> np.ndarray:
    """Quantized global average pooling, as onnxruntime's com.microsoft QLinearGlobalAveragePool (NCHW).

    Formula (ORT ``core/mlas/lib/qlgavgpool.cpp``, x86 path ``MlasQLinearGlobalAveragePool``, which reuses
    ``MlasRequantizeOutputVector``)::

        acc = sum_{h,w} x[n, c, h, w] - z_x * H * W                     (exact integer)
        M   = f32( s_x / f32( s_y * f32(H * W) ) )                      (float32, this order)
        y   = clamp( rne( f32( f32(acc) * M ) ) + z_y, qmin, qmax )

    i.e. the ``ort_cpu`` requantization of :func:`hwsim.quant.requantize` with a multiplier that folds in the
    division by ``H * W``. (ORT rejects ``M`` outside ``[2^-32, 256)`` and ``H * W >= 2^24``; this model does
    not.)

    Parameters
    ----------
    x_q : numpy.ndarray, shape (N, C, H, W), integer
        Input codes, within ``[x_qp.qmin, x_qp.qmax]``.
    x_qp, y_qp : QParams
        Per-tensor input and output quantizers; ``y_qp`` sets the output range and dtype.

    Returns
    -------
    numpy.ndarray, shape (N, C, 1, 1), dtype ``y_qp.storage_dtype``

    Raises
    ------
    TypeError, ValueError
        Bad dimensions or dtype, non-QParams or per-channel quantizers, codes outside ``x_qp``'s range.
    """
    _qparams(x_qp, "x_qp")
    _qparams(y_qp, "y_qp")
    _per_tensor(x_qp, "x_qp")
    _per_tensor(y_qp, "y_qp")
    _int_array(x_q, "x_q", 4, "(N, C, H, W)")
    _check_codes(x_q, x_qp, "x_q", "x_qp")
    hw = x_q.shape[2] * x_q.shape[3]
    if hw == 0:
        raise ValueError(f"x_q must have a non-empty image, not H x W = {x_q.shape[2]} x {x_q.shape[3]}")
    acc = x_q.astype(np.int64).sum(axis=(2, 3), keepdims=True) - int(x_qp.zero_point) * hw
    m = np.divide(x_qp.scale, np.multiply(y_qp.scale, np.float32(hw), dtype=np.float32), dtype=np.float32)
    z = int(y_qp.zero_point)
    y = requantize(acc, m, zero_point=z, qmin=y_qp.qmin, qmax=y_qp.qmax, profile="ort_cpu")
    return y.astype(y_qp.storage_dtype)
