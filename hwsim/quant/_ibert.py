"""Integer-only kernels of the transformer nonlinearities (I-BERT: Kim, Gholami, Yao, Mahoney, Keutzer,
"I-BERT: Integer-only BERT Quantization", ICML 2021, §3.3-3.6, Algorithms 1-4).

A real tensor is ``x = S * q`` with integer codes ``q`` (int64 here) and a float scale ``S``. Each kernel maps
``(q, S)`` to ``(q_out, S_out)``; the *runtime* work is integer only (adds, multiplies, shifts, integer
division, comparisons) on ``q``; the float scale only produces integer constants such as ``floor(b / S)``,
which a deployment computes once, offline (the paper's point: the constants are folded at quantization time).

* :func:`i_poly` -- ``a (x + b)^2 + c`` as ``((q + floor(b/S))^2 + floor(c / (a S^2)), a S^2)`` (Algorithm 1).
* :func:`i_erf` -- ``erf(x) ~ sgn(x) [a (min(|x|, -b) + b)^2 + 1]``, ``a = -0.2888``, ``b = -1.769``
  (§3.4, eq. 7).
* :func:`i_gelu` -- ``x / 2 (1 + erf(x / sqrt 2))`` with :func:`i_erf` (Algorithm 2).
* :func:`i_exp` -- for ``x <= 0``: ``x = -z ln2 + p`` with ``p in (-ln2, 0]``, ``exp(x) = 2^-z exp(p)``,
  ``exp(p) ~ 0.3585 (p + 1.353)^2 + 0.344`` (§3.5, eq. 10-12; Algorithm 3); ``2^-z`` is a right shift.
* :func:`i_softmax` -- ``exp(x - max x) / sum``: :func:`i_exp`, an integer sum and one integer division per
  row (``floor(2^M / sum)``), output codes of scale ``2^-out_bits``.
* :func:`i_sqrt` -- ``floor(sqrt(n))`` by Newton's iteration on integers (Algorithm 4, Crandall & Pomerance
  2006).
* :func:`i_layernorm` -- mean, variance and ``1 / std`` in integers with :func:`i_sqrt` (§3.6); the affine
  ``gamma, beta`` become an integer bias and a per-channel output scale.

Every kernel is vectorized numpy on int64 codes; the intermediate magnitudes are checked against ``2^62``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["i_poly", "i_erf", "i_gelu", "i_exp", "i_softmax", "i_sqrt", "i_layernorm", "GELU_COEFFS",
           "EXP_COEFFS"]

#: ``(a, b, c)`` of the erf polynomial of i-GELU (I-BERT eq. 7: ``c = 1``).
GELU_COEFFS = (-0.2888, -1.769, 1.0)
#: ``(a, b, c)`` of the exp polynomial on ``(-ln 2, 0]`` (I-BERT eq. 12).
EXP_COEFFS = (0.3585, 1.353, 0.344)

_LIMIT = 1 << 62


def _codes(q) -> np.ndarray:
    a = np.asarray(q)
    if a.dtype.kind not in "iu":
        raise TypeError(f"q must hold integer codes, not dtype {a.dtype}")
    return a.astype(np.int64)


def _check(v: np.ndarray, what: str) -> np.ndarray:
    if v.size and int(np.abs(v).max()) >= _LIMIT:
        raise OverflowError(f"{what}: an intermediate reaches 2^62; use a larger input scale")
    return v


def _scale(S) -> float:
    s = float(S)
    if not (math.isfinite(s) and s != 0):
        raise ValueError(f"S must be a finite non-zero scale, not {S!r}")
    return s


def i_poly(q, S, a: float, b: float, c: float) -> tuple[np.ndarray, float]:
    """Integer second-order polynomial ``a (x + b)^2 + c`` of ``x = S q`` (I-BERT Algorithm 1).

    Returns ``(q_out, S_out)`` with ``q_out = (q + floor(b / S))^2 + floor(c / (a S^2))`` (int64) and
    ``S_out = a S^2`` (negative when ``a < 0``), so that ``S_out q_out ~ a (x + b)^2 + c``; the floors make
    the result differ from the real polynomial by less than ``|a| S (2|x + b| + S) + |a| S^2`` (one code of
    each constant).
    """
    S = _scale(S)
    qv = _codes(q)
    q_b = math.floor(b / S)
    q_c = math.floor(c / (a * S * S))
    t = _check(qv + q_b, "i_poly")
    return _check(t * t + q_c, "i_poly"), a * S * S


def i_erf(q, S) -> tuple[np.ndarray, float]:
    """Integer ``erf`` of ``x = S q``: ``sgn(q) * i_poly(min(|q|, floor(-b / S)))`` with :data:`GELU_COEFFS`
    (I-BERT eq. 7 and Algorithm 2; the clip at ``-b = 1.769`` where the polynomial reaches its maximum 1).
    Returns ``(q_out, S_out)``."""
    a, b, c = GELU_COEFFS
    S = _scale(S)
    qv = _codes(q)
    clip = -math.floor(b / S)   # = ceil(-b / S): the code at or just beyond 1.769
    q_abs = np.minimum(np.abs(qv), clip)
    q_l, s_l = i_poly(q_abs, S, a, b, c)
    return np.sign(qv) * q_l, s_l


def i_gelu(q, S) -> tuple[np.ndarray, float]:
    """Integer GELU of ``x = S q`` (I-BERT Algorithm 2): ``q_erf, S_erf = i_erf(q, S / sqrt 2)``,
    ``q_1 = floor(1 / S_erf)``, ``q_out = q (q_erf + q_1)``, ``S_out = S S_erf / 2``.

    Parameters
    ----------
    q : array_like of int
        Input codes (e.g. the int32 accumulator of the FFN's first GEMM, or its requantized int8 codes).
    S : float
        Input scale.

    Returns
    -------
    (numpy.ndarray of int64, float)
        Output codes and scale (``S_out`` is negative: ``S_erf`` is; the product ``S_out q_out`` is GELU).
    """
    S = _scale(S)
    qv = _codes(q)
    q_erf, s_erf = i_erf(qv, S / math.sqrt(2.0))
    q_1 = math.floor(1.0 / s_erf)
    return _check(qv * (q_erf + q_1), "i_gelu"), S * s_erf / 2.0


def i_exp(q, S, *, max_shift: int = 62) -> tuple[np.ndarray, float]:
    """Integer ``exp`` of ``x = S q <= 0`` (I-BERT Algorithm 3).

    ``q_ln2 = floor(ln 2 / S)``, ``z = floor(-q / q_ln2)``, ``q_p = q + z q_ln2`` (in ``(-q_ln2, 0]``),
    ``q_L, S_L = i_poly(q_p, S, *EXP_COEFFS)``, ``q_out = q_L >> z`` (floor; ``z`` capped at ``max_shift``,
    where the result is 0 anyway), ``S_out = S_L``.

    Raises
    ------
    ValueError
        A positive code, or a scale so coarse that ``ln 2 / S < 1``.
    """
    a, b, c = EXP_COEFFS
    S = _scale(S)
    qv = _codes(q)
    if qv.size and int(qv.max()) > 0:
        raise ValueError("i_exp takes x <= 0 (subtract the row maximum first, as softmax does)")
    q_ln2 = math.floor(math.log(2.0) / S)
    if q_ln2 < 1:
        raise ValueError(f"i_exp needs S < ln 2 (at least one code per ln 2), not S = {S}")
    z = (-qv) // q_ln2
    q_p = qv + z * q_ln2
    q_l, s_l = i_poly(q_p, S, a, b, c)
    return q_l >> np.minimum(z, max_shift), s_l


def i_softmax(q, S, *, axis: int = -1, out_bits: int = 8, m_bits: int = 40) -> tuple[np.ndarray, float]:
    """Integer softmax of ``x = S q`` along ``axis`` (I-BERT §3.5).

    ``q~ = q - max(q)``; ``e, _ = i_exp(q~, S)``; per row ``f = floor(2^m_bits / sum(e))`` and
    ``q_out = min(floor(e f / 2^(m_bits - out_bits)), 2^out_bits - 1)``: unsigned ``out_bits`` codes of scale
    ``2^-out_bits`` (a probability of 1 saturates at ``1 - 2^-out_bits``).

    Returns
    -------
    (numpy.ndarray of int64, float)
        Codes in ``[0, 2^out_bits - 1]`` and the scale ``2^-out_bits``.
    """
    qv = _codes(q)
    if not 1 <= out_bits <= 16 or not out_bits < m_bits <= 61:
        raise ValueError(f"need 1 <= out_bits <= 16 and out_bits < m_bits <= 61, not {out_bits}, {m_bits}")
    e, _ = i_exp(qv - qv.max(axis=axis, keepdims=True), S)
    tot = e.sum(axis=axis, keepdims=True)
    f = (np.int64(1) << m_bits) // np.maximum(tot, 1)
    out = _check(e * f, "i_softmax") >> (m_bits - out_bits)
    return np.minimum(out, (1 << out_bits) - 1), 2.0 ** -out_bits


def i_sqrt(n) -> np.ndarray:
    """``floor(sqrt(n))`` of non-negative integers by Newton's method in integers (I-BERT Algorithm 4):
    ``x_0 = 2^ceil(bits(n) / 2)``, ``x_{i+1} = floor((x_i + floor(n / x_i)) / 2)`` until it stops decreasing.

    Parameters
    ----------
    n : array_like of int, each in ``[0, 2^62)``

    Returns
    -------
    numpy.ndarray of int64, the shape of ``n``
    """
    nv = _codes(n)
    if nv.size and (int(nv.min()) < 0 or int(nv.max()) >= _LIMIT):
        raise ValueError("i_sqrt takes integers in [0, 2^62)")
    bits = np.zeros(nv.shape, np.int64)
    t = nv.copy()
    while np.any(t > 0):
        pos = t > 0
        bits += pos
        t >>= 1
    x = np.left_shift(np.int64(1), (bits + 1) // 2)
    x = np.where(nv == 0, 1, x)
    while True:
        y = (x + nv // x) // 2
        done = (y >= x) | (nv == 0)
        if np.all(done):
            break
        x = np.where(done, x, y)
    return np.where(nv == 0, 0, x)


def i_layernorm(q, S, gamma, beta, *, shift_bits: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Integer LayerNorm over the last axis of ``x = S q`` (I-BERT §3.6), with ``gamma, beta`` (shape
    ``(n,)``).

    Integer part: ``mu = round(sum q / n)`` (half up, integer division), ``y = q - mu``,
    ``sigma = i_sqrt(sum y^2)``, ``f = floor(2^(shift_bits + 1) / sigma)``, ``y' = floor(y f / 2)``: the
    normalized value ``y / sqrt(mean y^2) = y' sqrt(n) / 2^shift_bits``. Affine part: ``q_out = y' +
    floor(beta / (gamma S_n))`` with ``S_n = sqrt(n) / 2^shift_bits``, output scale ``S_n * gamma`` per
    channel (the paper's folding). The input scale ``S`` cancels (LayerNorm is scale invariant); the variance
    has no epsilon (``eps`` of MiniLM is 1e-12, far below one code).

    Returns
    -------
    (numpy.ndarray of int64, numpy.ndarray of float64 shape (n,))
        Codes and per-channel output scales.
    """
    _scale(S)
    qv = _codes(q)
    n = qv.shape[-1]
    g = np.asarray(gamma, np.float64)
    b = np.asarray(beta, np.float64)
    if g.shape != (n,) or b.shape != (n,):
        raise ValueError(f"gamma and beta must have shape ({n},), not {g.shape} and {b.shape}")
    if np.any(g == 0):
        raise ValueError("gamma must be non-zero (its sign and size become the output scale)")
    tot = qv.sum(axis=-1, keepdims=True)
    mu = (2 * tot + n) // (2 * n)
    y = qv - mu
    var = _check((y * y).sum(axis=-1, keepdims=True), "i_layernorm")
    sigma = np.maximum(i_sqrt(var), 1)
    f = (np.int64(1) << (shift_bits + 1)) // sigma
    yn = _check(y * f, "i_layernorm") // 2
    s_n = math.sqrt(n) / 2.0 ** shift_bits
    bias_q = np.floor(b / (g * s_n)).astype(np.int64)
    return yn + bias_q, s_n * g
