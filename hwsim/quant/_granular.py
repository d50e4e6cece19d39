"""Uniform quantizers from a range: symmetric (full or restricted range) and asymmetric, signed or unsigned, per
tensor, per channel or per group; static (calibrated) and dynamic (per-input) activation ranges.

Conventions (Gholami et al. 2021, "A Survey of Quantization Methods for Efficient Neural Network Inference",
§III-B/C/D/E): a real value ``r`` and its code ``q`` satisfy ``r = s * (q - z)``; scales are float32 as in ONNX.

================  ============================================================================================
scheme            scale and zero point from a range
================  ============================================================================================
symmetric,        ``s = f32(amax / (2^(b-1) - 1))``, ``z = 0``, codes ``[-(2^(b-1)-1), 2^(b-1)-1]`` (restricted
restricted        range, survey §III-C; TFLite/ORT symmetric weights)
symmetric, full   ``s = f32(amax / (2^(b-1) - 0.5))`` = ``2 amax / (2^b - 1)``, codes ``[-2^(b-1), 2^(b-1)-1]``
                  (survey §III-C "full range")
symmetric,        ``s = f32(amax / (2^b - 1))``, ``z = 0``, codes ``[0, 2^b - 1]`` (a non-negative tensor, e.g.
unsigned          after ReLU)
asymmetric        ``s = f32(f32(hi' - lo') / (qmax - qmin))``, ``z = clamp(rne(qmin - lo'/s))`` with ``lo' =
                  min(lo, 0)``, ``hi' = max(hi, 0)`` (ORT ``quant_utils.compute_scale_zp``), signed or unsigned
================  ============================================================================================

Granularity: ``axis=None`` per tensor; an int ``axis`` gives one scale per index along it (per channel, survey
§III-E); :func:`quantize_per_group` gives one scale per group of ``group_size`` consecutive elements along the
reduction axis (group-wise, Shen et al., "Q-BERT", AAAI 2020, §3.2; the blocked layout of ONNX QuantizeLinear
``block_size``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..numerics import QParams, as_float32, check_bits, qrange, quantize

__all__ = ["symmetric_qparams", "asymmetric_qparams", "tensor_range", "dynamic_qparams", "dynamic_quantize",
           "GroupQuant", "quantize_per_group", "dequantize_per_group", "group_gemm"]

_F32_TINY = float(np.finfo(np.float32).tiny)


def _norm_axis(axis, ndim: int, name: str = "axis") -> int | None:
    if axis is None:
        return None
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{name} must be an int or None, not {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name} must be in [{-ndim}, {ndim - 1}], not {axis}")
    return int(axis) % ndim


def tensor_range(x, axis: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Minimum and maximum of ``x`` per tensor (``axis=None``) or per index along ``axis``.

    Parameters
    ----------
    x : array_like of float, ``ndim >= 1`` when ``axis`` is given
    axis : int or None

    Returns
    -------
    (lo, hi) : pair of numpy.ndarray of float32, shape () or (x.shape[axis],)

    Raises
    ------
    ValueError
        ``x`` empty or non-finite, ``axis`` out of range.
    """
    a = as_float32(x, "x")
    if a.size == 0:
        raise ValueError(f"x must not be empty, found shape {a.shape}")
    ax = _norm_axis(axis, a.ndim)
    if ax is None:
        return np.asarray(a.min(), np.float32), np.asarray(a.max(), np.float32)
    other = tuple(i for i in range(a.ndim) if i != ax)
    return a.min(axis=other).astype(np.float32), a.max(axis=other).astype(np.float32)


def symmetric_qparams(amax, bits: int, *, signed: bool = True, narrow_range: bool = True,
                      axis: int | None = None) -> QParams:
    """Symmetric quantizer (zero point 0) for the range ``[-amax, amax]`` (signed) or ``[0, amax]`` (unsigned).

    Formulas (survey §III-C; all divisions in float32)::

        signed, narrow_range=True  (restricted):  s = amax / (2^(b-1) - 1),    codes [-(2^(b-1)-1), 2^(b-1)-1]
        signed, narrow_range=False (full range):  s = amax / (2^(b-1) - 0.5),  codes [-2^(b-1), 2^(b-1)-1]
        unsigned:                                 s = amax / (2^b - 1),        codes [0, 2^b - 1]

    An ``amax`` whose scale would be below the smallest normal float32 (e.g. 0) gets ``s = 1.0`` (ORT's rule for
    an empty range). :func:`hwsim.quant.symmetric_per_channel` is this function with ``amax = max|w|`` per
    channel.

    Parameters
    ----------
    amax : float or array_like of float, shape () or (C,)
        The clipping threshold(s), ``>= 0`` (e.g. ``max|x|`` or a calibrated value).
    bits : int
        Code width: 2..16 signed, 1..16 unsigned.
    signed : bool, default True
    narrow_range : bool, default True
        Signed only: restricted range. Ignored (must stay True or be False) for unsigned codes.
    axis : int or None
        The tensor axis the per-channel ``amax`` runs along; required iff ``amax`` has shape ``(C,)``.

    Returns
    -------
    QParams

    Raises
    ------
    ValueError
        ``amax`` negative, non-finite or not 0-/1-d, ``bits`` out of range, ``axis`` inconsistent.
    """
    a = as_float32(amax, "amax")
    if a.ndim > 1:
        raise ValueError(f"amax must have shape () or (C,), not {a.shape}")
    if np.any(a < 0):
        raise ValueError(f"amax must be >= 0, not {a.tolist()!r}")
    if signed:
        bits = check_bits(bits, low=2)
        qmax = (1 << (bits - 1)) - 1
        divisor = np.float32(qmax) if narrow_range else np.float32(qmax + 0.5)
    else:
        bits = check_bits(bits)
        divisor = np.float32((1 << bits) - 1)
    s = np.asarray(np.divide(a, divisor, dtype=np.float32))
    s = np.where(s < _F32_TINY, np.float32(1.0), s).astype(np.float32)
    if s.ndim == 1 and axis is None:
        raise ValueError(f"axis must be given for a per-channel amax of shape {s.shape}, not None")
    return QParams(scale=s, zero_point=np.zeros(s.shape, np.int32), bits=bits, signed=bool(signed),
                   axis=axis if s.ndim == 1 else None, narrow_range=bool(signed and narrow_range))


def asymmetric_qparams(lo, hi, bits: int, *, signed: bool = False, axis: int | None = None) -> QParams:
    """Asymmetric quantizer for ``[lo, hi]``, per tensor or per channel (vectorised ORT ``compute_scale_zp``).

    Per entry, exactly as :func:`hwsim.quant.asymmetric_per_tensor` (tested equal)::

        lo' = min(lo, 0),  hi' = max(hi, 0)
        s = f32(f32(hi' - lo') / (qmax - qmin));   z = clamp(rne(qmin - lo' / s), qmin, qmax)   (float64)

    with ``s = 1, z = 0`` where ``s`` would be below the smallest normal float32.

    Parameters
    ----------
    lo, hi : float or array_like of float, same shape () or (C,)
        The range, ``lo <= hi``.
    bits : int
        1..16.
    signed : bool, default False
        Codes ``[-2^(b-1), 2^(b-1)-1]`` or ``[0, 2^b-1]``.
    axis : int or None
        Required iff the range is per channel.

    Returns
    -------
    QParams

    Raises
    ------
    ValueError
        ``lo > hi`` somewhere, mismatched shapes, non-finite values.
    """
    bits = check_bits(bits)
    lo = as_float32(lo, "lo")
    hi = as_float32(hi, "hi")
    if lo.shape != hi.shape or lo.ndim > 1:
        raise ValueError(f"lo and hi must have the same shape () or (C,), not {lo.shape} and {hi.shape}")
    if np.any(lo > hi):
        raise ValueError(f"lo must be <= hi, not lo={lo.tolist()!r}, hi={hi.tolist()!r}")
    lo = np.minimum(lo, np.float32(0))
    hi = np.maximum(hi, np.float32(0))
    qmin, qmax = qrange(bits, bool(signed))
    s = np.asarray(np.divide(np.subtract(hi, lo, dtype=np.float32), np.float32(qmax - qmin), dtype=np.float32))
    empty = ~(s >= _F32_TINY)
    s_safe = np.where(empty, np.float32(1.0), s).astype(np.float32)
    z = np.clip(np.rint(np.float64(qmin) - lo.astype(np.float64) / s_safe.astype(np.float64)), qmin, qmax)
    z = np.where(empty, 0, z).astype(np.int32)
    if s.ndim == 1 and axis is None:
        raise ValueError(f"axis must be given for a per-channel range of shape {s.shape}, not None")
    return QParams(scale=s_safe, zero_point=z, bits=bits, signed=bool(signed), axis=axis if s.ndim else None)


def dynamic_qparams(x, bits: int = 8, *, signed: bool = False) -> QParams:
    """Per-tensor asymmetric parameters computed from the input itself (dynamic quantization, survey §III-D).

    ONNX DynamicQuantizeLinear (``onnx/defs/quantization/defs.cc``; uint8, computed here for any width)::

        s = (max(0, max(x)) - min(0, min(x))) / (qmax - qmin)           (float32)
        z = clamp(rne(qmin - min(0, min(x)) / s), qmin, qmax)

    i.e. :func:`asymmetric_qparams` of the tensor's own min/max. At 8 bits unsigned,
    ``quantize(x, dynamic_qparams(x))`` equals onnxruntime's DynamicQuantizeLinear bit for bit (tested). In
    hardware the run-time min/max reduction is an extra pass over the tensor (a cost the survey notes).

    Parameters
    ----------
    x : array_like of float, any non-empty shape
    bits : int, default 8
    signed : bool, default False

    Returns
    -------
    QParams
        Per tensor.
    """
    lo, hi = tensor_range(x)
    return asymmetric_qparams(lo, hi, bits, signed=signed)


def dynamic_quantize(x, bits: int = 8, *, signed: bool = False) -> tuple[np.ndarray, QParams]:
    """``(quantize(x, qp), qp)`` with ``qp = dynamic_qparams(x, bits, signed=signed)`` (DynamicQuantizeLinear)."""
    qp = dynamic_qparams(x, bits, signed=signed)
    return quantize(x, qp), qp


# ------------------------------------------------------------------------------------------------ group-wise

@dataclass(frozen=True, eq=False)
class GroupQuant:
    """Group-wise quantized weights: one scale (and zero point) per output row and group of inputs.

    Attributes
    ----------
    codes : numpy.ndarray, shape (N, K), int8/uint8 (<= 8 bits) or int16/uint16
        The codes of a weight matrix laid out ``(out, in)``.
    scale : numpy.ndarray of float32, shape (N, G)
        ``G = ceil(K / group_size)``; group ``g`` covers inputs ``[g*group_size, min((g+1)*group_size, K))``.
    zero_point : numpy.ndarray of int32, shape (N, G)
    bits : int
    signed : bool
    group_size : int
    narrow_range : bool
    """

    codes: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray
    bits: int
    signed: bool
    group_size: int
    narrow_range: bool = False

    @property
    def n_groups(self) -> int:
        return int(self.scale.shape[1])

    def group_qparams(self, g: int) -> QParams:
        """The per-row (axis 0) quantizer of group ``g``, for the ``(N, len_g)`` slice of :attr:`codes`."""
        return QParams(scale=self.scale[:, g], zero_point=self.zero_point[:, g], bits=self.bits,
                       signed=self.signed, axis=0, narrow_range=self.narrow_range)


def quantize_per_group(w, bits: int, group_size: int, *, symmetric: bool = True,
                       narrow_range: bool = True) -> GroupQuant:
    """Quantize a weight matrix ``(out, in)`` with one quantizer per row and group of ``group_size`` inputs.

    Per group (survey §III-E "group-wise"; Q-BERT §3.2): symmetric signed (:func:`symmetric_qparams` of the
    group's ``max|w|``) or asymmetric unsigned (:func:`asymmetric_qparams` of its min/max); codes by ONNX
    QuantizeLinear (:func:`hwsim.quant.quantize`).

    Parameters
    ----------
    w : array_like of float, shape (N, K)
        Weights, one row per output (PyTorch ``Linear.weight`` layout).
    bits : int
        2..16 (symmetric) or 1..16 (asymmetric).
    group_size : int
        ``>= 1``; the last group may be shorter.
    symmetric : bool, default True
    narrow_range : bool, default True
        Symmetric only: restricted range.

    Returns
    -------
    GroupQuant

    Raises
    ------
    ValueError
        ``w`` not 2-d, ``group_size < 1``, bad bits.
    """
    a = as_float32(w, "w")
    if a.ndim != 2:
        raise ValueError(f"w must have shape (N, K), not {a.shape}")
    if isinstance(group_size, bool) or not isinstance(group_size, (int, np.integer)) or group_size < 1:
        raise ValueError(f"group_size must be an int >= 1, not {group_size!r}")
    n, k = a.shape
    g_count = -(-k // int(group_size))
    codes = None
    scales = np.empty((n, g_count), np.float32)
    zps = np.empty((n, g_count), np.int32)
    for g in range(g_count):
        sl = a[:, g * group_size:(g + 1) * group_size]
        if symmetric:
            qp = symmetric_qparams(np.abs(sl).max(axis=1), bits, narrow_range=narrow_range, axis=0)
        else:
            lo, hi = tensor_range(sl, axis=0)
            qp = asymmetric_qparams(lo, hi, bits, signed=False, axis=0)
        c = quantize(sl, qp)
        if codes is None:
            codes = np.empty((n, k), c.dtype)
        codes[:, g * group_size:(g + 1) * group_size] = c
        scales[:, g] = qp.scale
        zps[:, g] = qp.zero_point
    return GroupQuant(codes=codes, scale=scales, zero_point=zps, bits=qp.bits, signed=qp.signed,
                      group_size=int(group_size), narrow_range=qp.narrow_range)


def dequantize_per_group(gq: GroupQuant) -> np.ndarray:
    """Real values ``f32(f32(q - z) * s)`` of a :class:`GroupQuant`, shape (N, K) float32."""
    n, k = gq.codes.shape
    idx = np.arange(k) // gq.group_size
    d = (gq.codes.astype(np.int64) - gq.zero_point[:, idx]).astype(np.float32)
    return np.multiply(d, gq.scale[:, idx], dtype=np.float32)


def group_gemm(a_q: np.ndarray, a_qp: QParams, gq: GroupQuant, *, acc_bits: int = 32,
               acc_mode: str = "wrap") -> np.ndarray:
    """``a @ w.T`` with group-wise weights: one integer accumulator per group, scaled and summed in float32.

    For each group ``g`` the datapath computes ``acc_g = sum_{k in g} (a[i,k] - z_a)(w[j,k] - z_w[j,g])``
    (:func:`hwsim.datapath.gemm_acc`), then ``y[i,j] = sum_g f32(f32(acc_g) * f32(s_a * s_w[j,g]))`` in group
    order, in float32 (the structure of blocked weight-only kernels such as ORT's MatMulNBits: integer partial
    sums per block, float scaling per block).

    Parameters
    ----------
    a_q : numpy.ndarray, shape (M, K), integer
        Activation codes of the per-tensor quantizer ``a_qp``.
    a_qp : QParams
    gq : GroupQuant
        Weights ``(N, K)``.
    acc_bits, acc_mode
        As :func:`hwsim.datapath.gemm_acc` (one register per group).

    Returns
    -------
    numpy.ndarray of float32, shape (M, N)
    """
    from ..datapath import gemm_acc

    if a_q.ndim != 2 or a_q.shape[1] != gq.codes.shape[1]:
        raise ValueError(f"a_q must have shape (M, {gq.codes.shape[1]}), not {a_q.shape}")
    if a_qp.per_channel:
        raise ValueError("a_qp must be per tensor")
    out = np.zeros((a_q.shape[0], gq.codes.shape[0]), np.float32)
    gs = gq.group_size
    for g in range(gq.n_groups):
        sl = slice(g * gs, (g + 1) * gs)
        acc, _ = gemm_acc(np.ascontiguousarray(a_q[:, sl]), np.ascontiguousarray(gq.codes[:, sl].T),
                          a_zp=int(a_qp.zero_point), b_zp=gq.zero_point[:, g], acc_bits=acc_bits,
                          acc_mode=acc_mode)
        s = np.multiply(a_qp.scale, gq.scale[:, g], dtype=np.float32)
        out = np.add(out, np.multiply(acc.astype(np.float32), s, dtype=np.float32), dtype=np.float32)
    return out
