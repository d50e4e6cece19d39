"""Non-uniform and extreme weight quantizers that an integer datapath can still execute.

* **Power-of-two (logarithmic) weights** (survey §III-F; Miyashita, Lee, Murmann, "Convolutional Neural Networks
  using Logarithmic Data Representation", arXiv 1603.01025, 2016, §3): every weight is ``0`` or
  ``+-s * 2^e``, ``e`` in ``0 .. E-1``. A multiply by such a weight is a left shift and an add or subtract, so a
  shift-add PE executes it (:func:`shift_gemm_acc`); the same codes expanded to integers ``+-2^e`` run unchanged
  on :func:`hwsim.datapath.gemm_acc` / :func:`hwsim.datapath.conv2d_acc` (tested equal).
* **Binary weights** (survey §IV-E; Rastegari et al., "XNOR-Net", ECCV 2016, §3.1 eq. 4-6): ``w ~ alpha *
  sign(w)``, ``alpha = mean|w|`` per output channel.
* **Ternary weights** (survey §IV-E; Li, Zhang, Liu, "Ternary Weight Networks", arXiv 1605.04711, 2016, eq.
  5-6): ``w ~ alpha * t``, ``t`` in ``{-1, 0, 1}``, threshold ``delta = 0.7 * mean|w|`` and ``alpha = mean of
  |w|`` over ``|w| > delta``, per output channel.

Binary and ternary codes come with an ordinary :class:`hwsim.quant.QParams` (2-bit signed, restricted range,
per-channel ``scale = alpha``), so every integer layer of :mod:`hwsim.datapath` runs them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from ..numerics import QParams, as_float32, check_bits

__all__ = ["Pow2Quant", "pow2_quantize", "pow2_dequantize", "pow2_to_int", "shift_gemm_acc", "binary_quantize",
           "ternary_quantize"]


def _channel_reduce(a: np.ndarray, axis: int | None, fn) -> np.ndarray:
    if axis is None:
        return np.asarray(fn(a), np.float64)
    ax = axis % a.ndim
    other = tuple(i for i in range(a.ndim) if i != ax)
    return np.asarray(fn(a, axis=other), np.float64)


def _bshape(ndim: int, axis: int | None, n: int) -> tuple:
    if axis is None:
        return ()
    s = [1] * ndim
    s[axis % ndim] = n
    return tuple(s)


@dataclass(frozen=True, eq=False)
class Pow2Quant:
    """Power-of-two weight codes: ``w = sign * scale * 2^exponent`` or 0.

    Attributes
    ----------
    sign : numpy.ndarray of int8, shape of the weights
        ``+1``, ``-1``, or ``0`` for a zero weight.
    exponent : numpy.ndarray of int8, shape of the weights
        ``0 .. n_exponents - 1`` (``0`` where ``sign == 0``).
    scale : numpy.ndarray of float32, shape () or (C,)
        The value of the smallest non-zero level (``2^0``), per tensor or per channel along ``axis``.
    bits : int
        Code width: 1 sign bit + ``bits - 1`` bits selecting zero or one of ``n_exponents = 2^(bits-1) - 1``
        exponents.
    axis : int or None
    """

    sign: np.ndarray
    exponent: np.ndarray
    scale: np.ndarray
    bits: int
    axis: int | None

    @property
    def n_exponents(self) -> int:
        return (1 << (self.bits - 1)) - 1


def pow2_quantize(w, bits: int, *, axis: int | None = 0) -> Pow2Quant:
    """Round weights to the nearest power-of-two level in the log domain (Miyashita et al. 2016, §3).

    With ``E = 2^(bits-1) - 1`` exponents and ``amax = max|w|`` (per channel along ``axis``)::

        scale = amax / 2^(E-1)                         # the top level 2^(E-1) * scale is amax
        e     = clamp(rne(log2(|w| / scale)), 0, E-1)
        w_q   = 0 if |w| / scale < 1/2 else sign(w) * scale * 2^e

    (``|w|/scale < 1/2`` is nearer to 0 than to the smallest level in the linear domain.) A 4-bit code has 7
    exponents: levels ``+-{1, 2, 4, ..., 64} * scale`` and 0.

    Parameters
    ----------
    w : array_like of float, ``ndim >= 1``
        Weights (e.g. ``(K, C, R, S)``; ``(N, K)`` for a linear layer's ``(out, in)``).
    bits : int
        2..5 (5 bits: 15 exponents, integers up to ``2^14``, which still fit int16 codes and an int32
        accumulator for 8-bit activations and reductions up to 2^9).
    axis : int or None, default 0
        Channel axis of the per-channel scale, or None for one scale.

    Returns
    -------
    Pow2Quant

    Raises
    ------
    ValueError
        Bad bits or axis, empty or non-finite ``w``.
    """
    bits = check_bits(bits, low=2, high=5)
    a = as_float32(w, "w").astype(np.float64)
    if a.size == 0 or a.ndim == 0:
        raise ValueError(f"w must be a non-empty array with ndim >= 1, not shape {a.shape}")
    if axis is not None:
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -a.ndim <= axis < a.ndim:
            raise ValueError(f"axis must be None or in [{-a.ndim}, {a.ndim - 1}], not {axis!r}")
        axis = int(axis) % a.ndim
    n_exp = (1 << (bits - 1)) - 1
    amax = _channel_reduce(np.abs(a), axis, np.max)
    scale = (amax / 2.0 ** (n_exp - 1)).astype(np.float32)
    scale = np.where(scale > 0, scale, np.float32(1.0)).astype(np.float32)
    s = scale.astype(np.float64).reshape(_bshape(a.ndim, axis, scale.size))
    r = np.abs(a) / s
    with np.errstate(divide="ignore"):
        e = np.clip(np.rint(np.log2(np.where(r > 0, r, 1.0))), 0, n_exp - 1)
    nonzero = r >= 0.5
    sign = np.where(nonzero, np.where(a < 0, -1, 1), 0).astype(np.int8)
    exponent = np.where(nonzero, e, 0).astype(np.int8)
    return Pow2Quant(sign=sign, exponent=exponent, scale=scale, bits=bits, axis=axis)


def pow2_to_int(pq: Pow2Quant) -> np.ndarray:
    """The integer weights ``sign * 2^exponent`` (int32, same shape) that an ordinary integer MAC would use."""
    return pq.sign.astype(np.int32) << pq.exponent.astype(np.int32)


def pow2_dequantize(pq: Pow2Quant) -> np.ndarray:
    """Real values ``f32(f32(sign * 2^e) * scale)``, float32, shape of the codes."""
    s = pq.scale.reshape(_bshape(pq.sign.ndim, pq.axis, pq.scale.size))
    return np.multiply(pow2_to_int(pq).astype(np.float32), s, dtype=np.float32)


@njit(cache=True)
def _shift_gemm(a, sign, expo, out):
    m_rows, k_red = a.shape
    n_cols = sign.shape[1]
    for i in range(m_rows):
        for k in range(k_red):
            av = np.int64(a[i, k])
            if av == 0:
                continue
            for j in range(n_cols):
                sg = sign[k, j]
                if sg > 0:
                    out[i, j] += av << expo[k, j]
                elif sg < 0:
                    out[i, j] -= av << expo[k, j]


def shift_gemm_acc(a_q: np.ndarray, a_zp: int, w: Pow2Quant) -> np.ndarray:
    """Shift-add GEMM accumulator for power-of-two weights: ``acc[i,j] = sum_k +-((a[i,k] - a_zp) << e[k,j])``.

    The PE of a log-quantized network (Miyashita et al. 2016, §4): no multiplier, one barrel shift and one
    add/subtract per weight; zero weights are skipped. Exact in int64; equals
    ``gemm_acc(a_q, pow2_to_int(w), a_zp=a_zp, b_zp=0)`` bit for bit (tested).

    Parameters
    ----------
    a_q : numpy.ndarray, shape (M, K), integer
        Activation codes.
    a_zp : int
        Activation zero point.
    w : Pow2Quant
        Codes of shape (K, N) (the GEMM's B operand; quantize ``weight.T`` with ``axis=1`` for per-column scales).

    Returns
    -------
    numpy.ndarray of int64, shape (M, N)
        Scale by ``s_a * w.scale`` to get real values.

    Raises
    ------
    ValueError
        Shapes that do not chain.
    """
    if a_q.ndim != 2 or w.sign.ndim != 2 or a_q.shape[1] != w.sign.shape[0]:
        raise ValueError(f"a_q (M, K) and w (K, N) must chain, not {a_q.shape} and {w.sign.shape}")
    a = np.ascontiguousarray(a_q.astype(np.int64) - int(a_zp))
    out = np.zeros((a.shape[0], w.sign.shape[1]), np.int64)
    _shift_gemm(a, np.ascontiguousarray(w.sign), np.ascontiguousarray(w.exponent.astype(np.int64)), out)
    return out


def _ternary_qparams(alpha: np.ndarray, axis: int | None) -> QParams:
    alpha = np.where(alpha > 0, alpha, 1.0).astype(np.float32)
    return QParams(scale=alpha, zero_point=np.zeros(alpha.shape, np.int32), bits=2, signed=True,
                   axis=axis if alpha.ndim else None, narrow_range=True)


def binary_quantize(w, *, axis: int | None = 0) -> tuple[np.ndarray, QParams]:
    """Binary weights ``alpha * sign(w)`` (XNOR-Net, Rastegari et al. 2016, §3.1 eq. 4-6).

    ``B = sign(w)`` with ``sign(0) = +1``; ``alpha = mean|w|`` per channel along ``axis`` (the L2-optimal scale
    for a fixed ``B``, eq. 6).

    Parameters
    ----------
    w : array_like of float, ``ndim >= 1``
    axis : int or None, default 0

    Returns
    -------
    codes : numpy.ndarray of int8, shape of ``w``, values in ``{-1, +1}``
    qp : QParams
        2-bit signed restricted range (codes ``-1..1``), ``scale = alpha``.
    """
    a = as_float32(w, "w")
    if axis is not None:
        axis = int(axis) % a.ndim
    alpha = _channel_reduce(np.abs(a).astype(np.float64), axis, np.mean)
    codes = np.where(a < 0, -1, 1).astype(np.int8)
    return codes, _ternary_qparams(alpha, axis)


def ternary_quantize(w, *, axis: int | None = 0, delta_factor: float = 0.7) -> tuple[np.ndarray, QParams]:
    """Ternary weights ``alpha * t``, ``t`` in ``{-1, 0, 1}`` (TWN, Li, Zhang, Liu 2016, eq. 5-6).

    Per channel along ``axis``: ``delta = delta_factor * mean|w|`` (0.7 is TWN's approximation of the optimal
    threshold for Gaussian/uniform weights), ``t = sign(w) * [|w| > delta]``, ``alpha = mean(|w| : |w| > delta)``.

    Parameters
    ----------
    w : array_like of float, ``ndim >= 1``
    axis : int or None, default 0
    delta_factor : float, default 0.7

    Returns
    -------
    codes : numpy.ndarray of int8, shape of ``w``, values in ``{-1, 0, 1}``
    qp : QParams
        2-bit signed restricted range, ``scale = alpha``.
    """
    a = as_float32(w, "w").astype(np.float64)
    if axis is not None:
        axis = int(axis) % a.ndim
    mean_abs = _channel_reduce(np.abs(a), axis, np.mean)
    delta = float(delta_factor) * mean_abs.reshape(_bshape(a.ndim, axis, mean_abs.size))
    keep = np.abs(a) > delta
    num = _channel_reduce(np.where(keep, np.abs(a), 0.0), axis, np.sum)
    den = _channel_reduce(keep.astype(np.float64), axis, np.sum)
    alpha = np.where(den > 0, num / np.maximum(den, 1), 0.0)
    codes = (np.sign(a) * keep).astype(np.int8)
    return codes, _ternary_qparams(alpha, axis)
