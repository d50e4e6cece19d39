"""Fake (simulated) quantization that agrees bit for bit with the integer datapath, and float reference layers.

The survey (Gholami et al. 2021, §IV-A, Fig. 7) contrasts *simulated* quantization (integer values, float
arithmetic) with *integer-only* inference. Here the simulated path computes the integer accumulator
``sum (x - z_x)(w - z_w) + bias`` with float64 BLAS on the zero-shifted codes. Every product and partial sum is
an integer below ``2^53`` in magnitude (checked: ``max|x - z_x| * max|w - z_w| * reduction + max|bias| <
2^53``), so float64 represents each exactly and the sum is the exact integer whatever the summation order
(``shared/DESIGN.md``, "Exact integers, fast"). The requantization is then :func:`hwsim.quant.requantize`
itself. Hence :func:`fake_quant_conv2d` / :func:`fake_quant_linear` equal ``dequantize(qlinear_*(...))`` of
:mod:`hwsim.datapath` bit for bit (tested) whenever the datapath's accumulator does not overflow (with
``acc_bits=32`` and ``"wrap"``); an overflowing narrow accumulator is a datapath-only effect.

The textbook "QDQ" fake quantization (float conv of dequantized tensors, then QuantizeLinear of the result)
rounds the float32 products and sums; :func:`qdq_conv2d` implements it so that the difference can be measured.
"""

from __future__ import annotations

import numpy as np

from ..numerics import QParams, dequantize, quantize, requant_multiplier, requantize

__all__ = ["fake_quantize", "float_conv2d", "exact_conv2d_acc", "exact_gemm_acc", "fake_quant_conv2d",
           "fake_quant_linear", "qdq_conv2d", "quantize_bias"]

_F64_EXACT = 1 << 53


def fake_quantize(x, qp: QParams) -> np.ndarray:
    """``dequantize(quantize(x, qp), qp)``: the ONNX QuantizeLinear -> DequantizeLinear pair (float32)."""
    return dequantize(quantize(x, qp), qp)


def conv_windows(x: np.ndarray, kr: int, ks: int, stride, pads) -> np.ndarray:
    """(N, C, Ho, Wo, R, S) view of the padded input's windows (``pads`` = top, bottom, left, right)."""
    pt, pb, pl, pr = pads
    if pt or pb or pl or pr:
        x = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    win = np.lib.stride_tricks.sliding_window_view(x, (kr, ks), axis=(2, 3))
    return win[:, :, ::stride[0], ::stride[1]]


def float_conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *, stride=(1, 1),
                 pads=(0, 0, 0, 0), groups: int = 1) -> np.ndarray:
    """Float 2-D convolution (cross-correlation, ONNX Conv semantics, NCHW) in the dtype of the inputs.

    1x1 convolutions are one matrix product per group; depthwise convolutions (``groups == C``, one input
    channel per group) sum the ``R*S`` shifted, scaled input planes; other convolutions use im2col and one
    matrix product per group.

    Parameters
    ----------
    x : numpy.ndarray, shape (N, C, H, W), float32 or float64
    w : numpy.ndarray, shape (K, C/groups, R, S)
    b : numpy.ndarray, shape (K,), optional
    stride : (int, int)
    pads : (top, bottom, left, right)
    groups : int

    Returns
    -------
    numpy.ndarray, shape (N, K, Ho, Wo), dtype ``result_type(x, w)``
    """
    n, c, _, _ = x.shape
    k, cg, kr, ks = w.shape
    dt = np.result_type(x, w)
    x = x.astype(dt, copy=False)
    w = w.astype(dt, copy=False)
    kg = k // groups
    if kr == 1 and ks == 1 and not any(pads):
        xs = x[:, :, ::stride[0], ::stride[1]]
        ho, wo = xs.shape[2], xs.shape[3]
        if groups == 1:
            y = np.ascontiguousarray(np.tensordot(w.reshape(k, cg), xs, axes=([1], [1])).transpose(1, 0, 2, 3))
        else:
            xg = xs.reshape(n, groups, cg, ho * wo)
            y = np.matmul(w.reshape(groups, kg, cg)[None], xg).reshape(n, k, ho, wo)  # (N, g, Kg, HW)
    elif cg == 1 and kg == 1:
        win = conv_windows(x, kr, ks, stride, pads)                          # (N, C, Ho, Wo, R, S)
        ho, wo = win.shape[2], win.shape[3]
        y = np.zeros((n, k, ho, wo), dt)
        for r in range(kr):
            for s in range(ks):
                y += win[:, :, :, :, r, s] * w[:, 0, r, s].reshape(1, k, 1, 1)
    else:
        win = conv_windows(x, kr, ks, stride, pads)
        ho, wo = win.shape[2], win.shape[3]
        cols = win.reshape(n, groups, cg, ho, wo, kr, ks).transpose(1, 0, 3, 4, 2, 5, 6)
        cols = cols.reshape(groups, n * ho * wo, cg * kr * ks)
        y = np.matmul(cols, w.reshape(groups, kg, cg * kr * ks).transpose(0, 2, 1))  # (g, N*HW, Kg)
        y = y.reshape(groups, n, ho, wo, kg).transpose(1, 0, 4, 2, 3).reshape(n, k, ho, wo)
    if b is not None:
        y = y + b.astype(dt).reshape(1, k, 1, 1)
    return y


def _check_f64_exact(xs: np.ndarray, ws: np.ndarray, red: int, bias) -> None:
    mx = int(np.abs(xs).max()) if xs.size else 0
    mw = int(np.abs(ws).max()) if ws.size else 0
    mb = int(np.abs(np.asarray(bias, np.int64)).max()) if bias is not None and np.size(bias) else 0
    if mx * mw * red + mb >= _F64_EXACT:
        raise ValueError(f"operands too wide for an exact float64 accumulation: max|x - z_x| * max|w - z_w| * "
                         f"reduction length + max|bias| = {mx * mw * red + mb} must be below 2^53")


def exact_conv2d_acc(x_q: np.ndarray, w_q: np.ndarray, *, x_zp: int, w_zp=0, bias=None, stride=(1, 1),
                     pads=(0, 0, 0, 0), groups: int = 1) -> np.ndarray:
    """The exact conv accumulator ``sum (x - x_zp)(w - w_zp) + bias`` via float64 BLAS (no register width).

    Equal to :func:`hwsim.datapath.conv2d_acc` with ``acc_bits=64`` (tested). Padding is the real 0 (code
    ``x_zp``).

    Parameters
    ----------
    x_q : numpy.ndarray, shape (N, C, H, W), integer
    w_q : numpy.ndarray, shape (K, C/groups, R, S), integer
    x_zp : int
    w_zp : int or array_like of int, shape (K,)
    bias : array_like of int, shape (K,), optional
    stride, pads, groups
        As :func:`float_conv2d`.

    Returns
    -------
    numpy.ndarray of int64, shape (N, K, Ho, Wo)

    Raises
    ------
    ValueError
        Operands so wide that a float64 sum might round (see the module docstring).
    """
    xs = x_q.astype(np.int64) - int(x_zp)
    ws = w_q.astype(np.int64) - np.asarray(w_zp, np.int64).reshape(-1, 1, 1, 1)
    _check_f64_exact(xs, ws, int(np.prod(w_q.shape[1:])), bias)
    y = float_conv2d(xs.astype(np.float64), ws.astype(np.float64), None, stride=stride, pads=pads,
                     groups=groups)
    acc = np.rint(y).astype(np.int64)
    if bias is not None:
        acc += np.asarray(bias, np.int64).reshape(1, -1, 1, 1)
    return acc


def exact_gemm_acc(a_q: np.ndarray, b_q: np.ndarray, *, a_zp: int, b_zp=0, bias=None) -> np.ndarray:
    """The exact GEMM accumulator ``sum_k (a[i,k] - a_zp)(b[k,j] - b_zp[j]) + bias[j]`` via float64 BLAS.

    Equal to :func:`hwsim.datapath.gemm_acc` with ``acc_bits=64`` (tested).

    Parameters
    ----------
    a_q : numpy.ndarray, shape (M, K), integer
    b_q : numpy.ndarray, shape (K, N), integer
    a_zp : int
    b_zp : int or array_like of int, shape (N,)
    bias : array_like of int, shape (N,), optional

    Returns
    -------
    numpy.ndarray of int64, shape (M, N)
    """
    a_s = a_q.astype(np.int64) - int(a_zp)
    b_s = b_q.astype(np.int64) - np.asarray(b_zp, np.int64).reshape(1, -1)
    _check_f64_exact(a_s, b_s, a_q.shape[1], bias)
    acc = np.rint(a_s.astype(np.float64) @ b_s.astype(np.float64)).astype(np.int64)
    if bias is not None:
        acc += np.asarray(bias, np.int64).reshape(1, -1)
    return acc


def _clamp_bounds(y_qp: QParams, clip_lo, clip_hi) -> tuple[int, int]:
    lo, hi = y_qp.qmin, y_qp.qmax
    if clip_lo is not None:
        lo = max(lo, int(clip_lo))
    if clip_hi is not None:
        hi = min(hi, int(clip_hi))
    return lo, hi


def fake_quant_conv2d(x, w, b, *, x_qp: QParams, w_qp: QParams, y_qp: QParams, stride=(1, 1),
                      pads=(0, 0, 0, 0), groups: int = 1, relu: bool = False,
                      profile: str = "ort_cpu") -> np.ndarray:
    """Simulated quantized conv: float in, float out, bit-exact with the integer datapath.

    ``x`` and ``w`` are quantized (ONNX QuantizeLinear), the bias as ONNX QLinearConv's int32 ``B``
    (``rne(f32(b / f32(s_x * s_w)))``); the exact accumulator comes from :func:`exact_conv2d_acc`; the output
    is ``dequantize(requantize(acc))`` with the same multiplier and rounding as
    :func:`hwsim.datapath.qlinear_conv2d` (``relu`` clamps at the output zero point). Hence the result equals
    ``dequantize(qlinear_conv2d(quantize(x), quantize(w), bias=b_q, ...))`` bit for bit (tested).

    Parameters
    ----------
    x : array_like of float, shape (N, C, H, W)
    w : array_like of float, shape (K, C/groups, R, S)
    b : array_like of float, shape (K,), or None
    x_qp, w_qp, y_qp : QParams
        ``x_qp``, ``y_qp`` per tensor; ``w_qp`` per tensor or per output channel (axis 0).
    stride, pads, groups, relu, profile
        As :func:`hwsim.datapath.qlinear_conv2d`.

    Returns
    -------
    numpy.ndarray of float32, shape (N, K, Ho, Wo)
        Dequantized output codes.
    """
    x_q = quantize(x, x_qp)
    w_q = quantize(w, w_qp)
    b_q = None if b is None else quantize_bias(b, x_qp, w_qp)
    acc = exact_conv2d_acc(x_q, w_q, x_zp=int(x_qp.zero_point), w_zp=w_qp.zero_point, bias=b_q, stride=stride,
                           pads=pads, groups=groups)
    m = requant_multiplier(x_qp.scale, w_qp.scale, y_qp.scale, profile=profile)
    z = int(y_qp.zero_point)
    lo, hi = _clamp_bounds(y_qp, z if relu else None, None)
    y = requantize(acc, m, zero_point=z, qmin=lo, qmax=hi, channel_axis=1 if m.ndim else None, profile=profile)
    return dequantize(y, y_qp)


def fake_quant_linear(x, w, b, *, x_qp: QParams, w_qp: QParams, y_qp: QParams, relu: bool = False,
                      profile: str = "ort_cpu") -> np.ndarray:
    """Simulated quantized fully connected layer ``x @ w.T + b``, bit-exact with
    :func:`hwsim.datapath.qlinear_matmul` (``w`` of shape ``(N, K)`` is the B operand ``w.T``; ``w_qp`` per
    tensor or per output along axis 1 of ``w.T``).

    Returns
    -------
    numpy.ndarray of float32, shape (M, N)
    """
    x_q = quantize(x, x_qp)
    w_q = quantize(np.asarray(w).T, w_qp)
    b_q = None if b is None else quantize_bias(b, x_qp, w_qp)
    acc = exact_gemm_acc(x_q, w_q, a_zp=int(x_qp.zero_point), b_zp=w_qp.zero_point, bias=b_q)
    m = requant_multiplier(x_qp.scale, w_qp.scale, y_qp.scale, profile=profile)
    z = int(y_qp.zero_point)
    lo, hi = _clamp_bounds(y_qp, z if relu else None, None)
    y = requantize(acc, m, zero_point=z, qmin=lo, qmax=hi, channel_axis=1 if m.ndim else None, profile=profile)
    return dequantize(y, y_qp)


def quantize_bias(b, x_qp: QParams, w_qp: QParams) -> np.ndarray:
    """int32 bias of scale ``f32(s_x * s_w)`` and zero point 0 (ONNX QLinearConv ``B``; ORT's quantizer):
    ``clamp(rne(f32(b / f32(s_x * s_w))), int32)``; shape (K,)."""
    s_b = np.multiply(x_qp.scale, w_qp.scale, dtype=np.float32)
    q = np.rint(np.divide(np.asarray(b, np.float32), s_b, dtype=np.float32)).astype(np.float64)
    return np.clip(q, -(2**31), 2**31 - 1).astype(np.int32)


def qdq_conv2d(x, w, b, *, x_qp: QParams, w_qp: QParams, y_qp: QParams, stride=(1, 1), pads=(0, 0, 0, 0),
               groups: int = 1, relu: bool = False) -> np.ndarray:
    """Textbook QDQ fake quantization in float32: ``QDQ_y(conv(QDQ_x(x), QDQ_w(w)) + b)``.

    This is what a float framework inserts for quantization-aware training (survey §III-G1). Its float32
    products, sums and the division in QuantizeLinear round differently from the integer requantization, so
    it can differ from the datapath by one code on outputs near a rounding boundary (measured in the tests).

    Returns
    -------
    numpy.ndarray of float32, shape (N, K, Ho, Wo)
    """
    xd = fake_quantize(x, x_qp)
    wd = fake_quantize(w, w_qp)
    y = float_conv2d(xd, wd, None if b is None else np.asarray(b, np.float32), stride=stride, pads=pads,
                     groups=groups).astype(np.float32)
    if relu:
        y = np.maximum(y, np.float32(0))
    return fake_quantize(y, y_qp)
