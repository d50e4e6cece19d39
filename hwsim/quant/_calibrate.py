"""Range calibration: min/max, percentile, MSE-optimal, entropy (KL divergence) and ACIQ analytical clipping.

Each calibrator maps calibration tensors (float activations or weights) to a clipping range ``(lo, hi)``;
:func:`calibrate` turns the range into a :class:`hwsim.quant.QParams`. Sources (survey: Gholami et al. 2021,
§III-C/D, "range calibration"):

==============  ==============================================================================================
method          range
==============  ==============================================================================================
``minmax``      the observed minimum and maximum
``percentile``  the ``p``-th and ``(100-p)``-th percentiles (McKinstry et al. 2018; NVIDIA pytorch-quantization)
``mse``         the clip ``c * (lo, hi)``, ``c`` on a grid in ``(0, 1]``, minimising the mean squared error of
                quantize-dequantize (the "MSE" calibrator of NVIDIA pytorch-quantization / Choukroun et al.,
                ICCVW 2019 "Low-bit quantization of neural networks for efficient inference")
``entropy``     the threshold minimising ``KL(P || Q)`` between the clipped histogram and its quantized version
                (Migacz, "8-bit Inference with TensorRT", GTC 2017), see :func:`entropy_threshold`
``aciq``        the analytical MSE-optimal clip for a Laplace or Gaussian fit (Banner, Nahshan, Soudry,
                "Post training 4-bit quantization of convolutional networks for rapid-deployment", NeurIPS 2019,
                §3 eq. 5 and the Gaussian analogue), see :func:`aciq_alpha`
==============  ==============================================================================================
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ..numerics import QParams, check_bits, dequantize, quantize
from ._granular import asymmetric_qparams, symmetric_qparams

__all__ = ["CALIBRATION_METHODS", "collect", "minmax_range", "percentile_range", "mse_range", "entropy_threshold",
           "entropy_range", "aciq_alpha", "aciq_range", "calibrate_range", "calibrate"]

#: The calibration methods :func:`calibrate_range` knows.
CALIBRATION_METHODS = ("minmax", "percentile", "mse", "entropy", "aciq")


def collect(tensors) -> np.ndarray:
    """All calibration values as one flat float32 array.

    Parameters
    ----------
    tensors : array_like, or iterable of array_like
        One array or several (any shapes).

    Returns
    -------
    numpy.ndarray of float32, shape (n,)

    Raises
    ------
    ValueError
        No values, or NaN/inf among them.
    """
    if isinstance(tensors, np.ndarray) or np.isscalar(tensors):
        parts = [np.asarray(tensors)]
    elif isinstance(tensors, Iterable):
        parts = [np.asarray(t) for t in tensors]
    else:
        raise TypeError(f"tensors must be an array or an iterable of arrays, not {type(tensors).__name__}")
    flat = [p.astype(np.float32, copy=False).reshape(-1) for p in parts if p.size]
    if not flat:
        raise ValueError("tensors must contain at least one value, found none")
    x = np.concatenate(flat) if len(flat) > 1 else flat[0]
    if not np.all(np.isfinite(x)):
        raise ValueError("tensors must be finite (no NaN or inf)")
    return x


def minmax_range(tensors) -> tuple[float, float]:
    """``(min, max)`` of all values (float32 values as Python floats)."""
    x = collect(tensors)
    return float(x.min()), float(x.max())


def percentile_range(tensors, percentile: float = 99.99, *, symmetric: bool = False) -> tuple[float, float]:
    """Clip to percentiles of the values.

    Asymmetric: ``(P_{100-p}(x), P_p(x))``; symmetric: ``(-P_p(|x|), P_p(|x|))``. ``P`` is numpy's linear
    interpolation percentile (``np.percentile``, method "linear"), computed in float64.

    Parameters
    ----------
    tensors : array_like or iterable of array_like
    percentile : float in (50, 100], default 99.99
    symmetric : bool, default False

    Returns
    -------
    (lo, hi) : tuple of float

    Raises
    ------
    ValueError
        ``percentile`` outside ``(50, 100]``.
    """
    if not 50.0 < float(percentile) <= 100.0:
        raise ValueError(f"percentile must be in (50, 100], not {percentile!r}")
    x = collect(tensors).astype(np.float64)
    if symmetric:
        t = float(np.percentile(np.abs(x), percentile))
        return -t, t
    return float(np.percentile(x, 100.0 - percentile)), float(np.percentile(x, percentile))


def _qparams_for(lo: float, hi: float, bits: int, signed: bool, symmetric: bool) -> QParams:
    if symmetric:
        return symmetric_qparams(max(abs(lo), abs(hi)), bits, signed=signed, narrow_range=signed)
    return asymmetric_qparams(lo, hi, bits, signed=signed)


def _subsample(x: np.ndarray, limit: int) -> np.ndarray:
    if x.size <= limit:
        return x
    step = -(-x.size // limit)
    return x[::step]


def mse_range(tensors, bits: int, *, signed: bool = False, symmetric: bool = False, grid: int = 100,
              max_values: int = 1 << 20) -> tuple[float, float]:
    """The clip ``c * (lo, hi)`` of the min/max range that minimises the quantization MSE.

    For ``c`` in ``{1/grid, 2/grid, ..., 1}``: build the quantizer of the range ``(c*lo, c*hi)`` (as
    :func:`calibrate` would), compute ``mean((dequantize(quantize(x)) - x)^2)`` over the values (ONNX
    QuantizeLinear semantics, so saturation is the clipping), keep the best ``c`` (the first on ties).

    Parameters
    ----------
    tensors : array_like or iterable of array_like
    bits : int
    signed, symmetric : bool
        The quantizer family (as :func:`calibrate`).
    grid : int, default 100
        Number of candidate clip ratios.
    max_values : int, default 2^20
        Values beyond this are subsampled with a fixed stride (deterministic).

    Returns
    -------
    (lo, hi) : tuple of float
    """
    bits = check_bits(bits)
    x = _subsample(collect(tensors), int(max_values))
    lo, hi = float(x.min()), float(x.max())
    best, best_err = (lo, hi), math.inf
    for k in range(1, int(grid) + 1):
        c = k / grid
        cand = (lo * c, hi * c)
        qp = _qparams_for(*cand, bits, signed, symmetric)
        err = float(np.mean((dequantize(quantize(x, qp), qp).astype(np.float64) - x) ** 2))
        if err < best_err:
            best, best_err = cand, err
    return float(best[0]), float(best[1])


# ---------------------------------------------------------------------------------------------- entropy (KL)

def _smooth(p: np.ndarray, eps: float = 1e-4) -> np.ndarray | None:
    """ORT ``calibrate.smooth_distribution``: move ``eps`` mass onto zero bins (float32)."""
    zeros = (p == 0).astype(np.float32)
    nonzeros = (p != 0).astype(np.float32)
    n_zeros = zeros.sum()
    n_nonzeros = p.size - n_zeros
    if not n_nonzeros:
        return None
    eps1 = eps * float(n_zeros) / float(n_nonzeros)
    return p.astype(np.float32) + eps * zeros + (-eps1) * nonzeros


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    """``sum p log(p / q)`` of the normalised distributions (scipy.stats.entropy(p, q))."""
    p = p.astype(np.float64) / p.sum()
    q = q.astype(np.float64) / q.sum()
    m = p > 0
    return float(np.sum(p[m] * np.log(p[m] / q[m])))


def _scipy_entropy(p, q):
    from scipy.stats import entropy

    return entropy(p, q)


def _expand(sliced: np.ndarray, nonzero: np.ndarray, nq: int, *, integer: bool) -> np.ndarray:
    """Merge ``sliced`` into ``nq`` bins (the remainder joins the last), then spread each merged count evenly
    over the non-empty source bins it came from (TensorRT's candidate distribution Q)."""
    n = sliced.size
    merged_w = n // nq
    q = np.zeros(n, np.int64 if integer else np.float64)
    for j in range(nq):
        start = j * merged_w
        end = n if j == nq - 1 else start + merged_w
        total = sliced[start:end].sum()
        # ORT expands only the first nq * merged_w bins (the remainder bins stay 0 in q)
        e_end = start + merged_w if integer else end
        norm = nonzero[start:e_end].sum()
        if norm:
            q[start:e_end] = total / norm
    return q


def entropy_threshold(hist, edges, num_quantized_bins: int = 128, *, flavor: str = "tensorrt",
                      start_bin: int | None = None):
    """The clipping threshold that minimises the KL divergence between a histogram and its quantized version.

    ``flavor="tensorrt"`` (Migacz, GTC 2017, slides "calibration"): ``hist`` is a histogram of ``|x|`` over
    ``[0, amax]`` (``edges[0] == 0``). For every ``i`` from ``start_bin`` (default ``num_quantized_bins``) to
    ``len(hist)``: the
    reference ``P = hist[:i]`` with the outliers ``sum(hist[i:])`` added to ``P[i-1]``; the candidate ``Q``
    merges ``hist[:i]`` into ``num_quantized_bins`` bins and spreads each merged count evenly over its non-empty
    source bins (empty bins stay empty); both are smoothed (``eps = 1e-4`` moved onto empty bins) and
    ``KL(P || Q)`` is computed. The threshold is ``edges[i]`` of the minimum (the first on ties). Returns a float.

    ``flavor="onnxruntime"``: a faithful port of onnxruntime's
    ``quantization/calibrate.py`` ``HistogramCollector.get_entropy_threshold`` (ORT 1.32): ``hist`` is a
    symmetric histogram of ``x`` over ``[-T, T]``; windows grow symmetrically around the centre bin; ``Q`` is
    held in int64 (ORT truncates the spread counts) and the remainder bins of a window are not spread. Returns
    ``(lo, hi)`` as ORT does, **without** ORT's final clamp to the observed min/max (the caller has it). Equal
    to ORT's thresholds (tested).

    Parameters
    ----------
    hist : array_like of int, shape (B,)
        Bin counts.
    edges : array_like of float, shape (B + 1,)
        Bin edges (``numpy.histogram``'s second output).
    num_quantized_bins : int, default 128
        Levels of the target quantizer on one side (TensorRT int8: 128).
    flavor : {"tensorrt", "onnxruntime"}
    start_bin : int, optional
        ``tensorrt`` only: the smallest candidate ``i`` (at least ``num_quantized_bins``).

    Returns
    -------
    float (tensorrt) or (float, float) (onnxruntime)

    Raises
    ------
    ValueError
        Shapes that disagree, fewer bins than ``num_quantized_bins``, an unknown flavor.
    """
    h = np.asarray(hist)
    e = np.asarray(edges)
    if h.ndim != 1 or e.shape != (h.size + 1,):
        raise ValueError(f"hist (B,) and edges (B + 1,) must match, not {h.shape} and {e.shape}")
    nq = int(num_quantized_bins)
    if flavor == "tensorrt":
        if h.size < nq:
            raise ValueError(f"hist must have at least num_quantized_bins={nq} bins, not {h.size}")
        h = h.astype(np.int64)
        best_i, best_kl = h.size, math.inf
        first = nq if start_bin is None else max(nq, int(start_bin))
        for i in range(first, h.size + 1):
            sliced = h[:i]
            p = sliced.astype(np.float64)
            p[-1] += h[i:].sum()
            nz = p != 0
            m = i // nq
            starts = np.arange(nq) * m                      # the last merged bin takes the remainder
            lengths = np.diff(np.append(starts, i))
            merged = np.add.reduceat(sliced, starts).astype(np.float64)
            norm = np.add.reduceat(nz.astype(np.int64), starts)
            q = np.repeat(np.where(norm > 0, merged / np.maximum(norm, 1), 0.0), lengths)
            q[~nz] = 0
            ps, qs = _smooth(p), _smooth(q)
            kl = math.inf if ps is None or qs is None else _kl(ps, qs)
            if kl < best_kl:
                best_i, best_kl = i, kl
        return float(e[best_i])
    if flavor == "onnxruntime":
        n = h.size
        zero = n // 2
        half = nq // 2
        if zero < half:
            raise ValueError(f"hist must have at least num_quantized_bins={nq} bins, not {n}")
        best, best_kl = None, math.inf
        for i in range(half, zero + 1):
            start = zero - i
            end = min(zero + i + 1, n)
            sliced = h[start:end].copy()
            p = sliced.copy()
            p[0] += h[:start].sum()
            p[-1] += h[end:].sum()
            nonzero = (p != 0).astype(np.int64)
            q = _expand(sliced, nonzero, nq, integer=True)
            ps, qs = _smooth(p), _smooth(q)
            # as ORT: scipy's entropy on the float32 smoothed arrays, stored in the edges' dtype
            kl = math.inf if ps is None or qs is None else float(np.asarray(_scipy_entropy(ps, qs), e.dtype))
            if kl < best_kl:
                best, best_kl = (e[start], e[end]), kl
        return best
    raise ValueError(f"flavor must be 'tensorrt' or 'onnxruntime', not {flavor!r}")


def entropy_range(tensors, bits: int, *, signed: bool = False, num_bins: int = 2048, start_bin: int = 128,
                  fill_zero_bin: bool = True) -> tuple[float, float]:
    """TensorRT-style KL calibration: the threshold of :func:`entropy_threshold` on a histogram of ``|x|``.

    The histogram has ``num_bins`` bins over ``[0, max|x|]``; the quantizer has ``2^(bits-1)`` magnitude levels
    when ``signed`` (TensorRT int8: 128) and ``2^bits`` otherwise. As NVIDIA's pytorch-quantization does
    (``calib/histogram.py``, ``_compute_amax_entropy``: ``start_bin=128``, ``bins[0] = bins[1]``), candidates
    start at ``start_bin`` and, with ``fill_zero_bin``, the first bin's count is replaced by the second's: the
    exact zeros of ReLU outputs and image backgrounds otherwise dominate ``P`` and drive the threshold towards
    zero (measured on the Fashion-MNIST CNN: W8A8 79 % instead of 90 % top-1). The range is
    ``(max(lo, -t), min(hi, t))`` of the observed ``(lo, hi)``.

    Returns
    -------
    (lo, hi) : tuple of float
    """
    bits = check_bits(bits)
    x = collect(tensors)
    lo, hi = float(x.min()), float(x.max())
    amax = max(abs(lo), abs(hi))
    if amax == 0:
        return lo, hi
    nq = (1 << (bits - 1)) if signed else (1 << bits)
    nb = max(int(num_bins), nq)
    hist, edges = np.histogram(np.abs(x), bins=nb, range=(0.0, amax))
    if fill_zero_bin and hist.size > 1:
        hist[0] = hist[1]
    t = entropy_threshold(hist, edges, nq, flavor="tensorrt", start_bin=min(int(start_bin), nb))
    return max(lo, -t), min(hi, t)


# ------------------------------------------------------------------------------------------------------ ACIQ

def _aciq_mse(alpha: float, bits: int, dist: str, one_sided: bool) -> float:
    """Expected MSE of clipping at ``alpha`` plus uniform quantization noise, unit-scale distribution.

    Laplace(0, b=1) two-sided, range ``[-alpha, alpha]`` with ``2^M`` levels (Banner et al. 2019, eq. 5):
        ``2 e^{-alpha} + alpha^2 / (3 * 4^M)``
    Gaussian(0, sigma=1) two-sided (Banner et al. 2019, §3, Gaussian case):
        ``(alpha^2 + 1)(1 - erf(alpha/sqrt 2)) - sqrt(2/pi) alpha e^{-alpha^2/2} + alpha^2 / (3 * 4^M)``
    One-sided (a non-negative tensor, range ``[0, alpha]``, half of the tail): the clipping term halves and
    the step is ``alpha / 2^M``, so the noise term is ``alpha^2 / (12 * 4^M)``.
    """
    if dist == "laplace":
        clip = 2.0 * math.exp(-alpha)
    else:
        clip = ((alpha * alpha + 1.0) * (1.0 - math.erf(alpha / math.sqrt(2.0)))
                - math.sqrt(2.0 / math.pi) * alpha * math.exp(-alpha * alpha / 2.0))
    if one_sided:
        return clip / 2.0 + alpha * alpha / (12.0 * 4.0 ** bits)
    return clip + alpha * alpha / (3.0 * 4.0 ** bits)


def aciq_alpha(bits: int, dist: str = "laplace", *, one_sided: bool = False) -> float:
    """ACIQ's optimal clipping value in units of the distribution's scale (``b`` for Laplace, ``sigma`` for
    Gaussian): the minimiser of :func:`_aciq_mse` (Banner et al. 2019, §3), found by golden-section search on
    ``(0, 40)`` to 1e-10.

    Banner et al. report for Laplace two-sided ``alpha* = 2.83 b, 3.89 b, 5.03 b`` at 2, 3, 4 bits (and 9.89 b
    at 8 bits); this function reproduces them to the printed digits (tested).

    Parameters
    ----------
    bits : int
        ``M``, 1..16.
    dist : {"laplace", "gauss"}
    one_sided : bool, default False

    Returns
    -------
    float
    """
    bits = check_bits(bits)
    if dist not in ("laplace", "gauss"):
        raise ValueError(f"dist must be 'laplace' or 'gauss', not {dist!r}")
    lo, hi = 1e-6, 40.0
    g = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = _aciq_mse(a, bits, dist, one_sided), _aciq_mse(b, bits, dist, one_sided)
    while hi - lo > 1e-10:
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = _aciq_mse(a, bits, dist, one_sided)
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = _aciq_mse(b, bits, dist, one_sided)
    return (lo + hi) / 2.0


def aciq_range(tensors, bits: int, *, signed: bool = False, dist: str = "laplace") -> tuple[float, float]:
    """ACIQ clipping of the observed range with a fitted Laplace (``b = mean|x - mu|``) or Gaussian (``sigma =
    std``).

    Two-sided data (``min < 0``): ``(max(lo, mu - alpha), min(hi, mu + alpha))`` with ``alpha = aciq_alpha(bits,
    dist) * b``. Non-negative data (e.g. after ReLU): the one-sided optimum on the positive values,
    ``(lo, min(hi, alpha))`` with ``b`` (or ``sigma``) fitted as ``mean(x)`` (or ``sqrt(mean(x^2))``) of the
    positive part (the half-Laplace / half-normal estimates).

    Returns
    -------
    (lo, hi) : tuple of float
    """
    x = collect(tensors).astype(np.float64)
    lo, hi = float(x.min()), float(x.max())
    if lo >= 0:
        pos = x[x > 0]
        if pos.size == 0:
            return lo, hi
        scale = float(pos.mean()) if dist == "laplace" else float(np.sqrt(np.mean(pos * pos)))
        return lo, min(hi, aciq_alpha(bits, dist, one_sided=True) * scale)
    mu = float(x.mean())
    scale = float(np.mean(np.abs(x - mu))) if dist == "laplace" else float(x.std())
    a = aciq_alpha(bits, dist) * scale
    return max(lo, mu - a), min(hi, mu + a)


# ------------------------------------------------------------------------------------------------- dispatch

def calibrate_range(tensors, method: str, bits: int, *, signed: bool = False, symmetric: bool = False,
                    percentile: float = 99.99) -> tuple[float, float]:
    """The clipping range of ``method`` (one of :data:`CALIBRATION_METHODS`) for a ``bits``-bit quantizer.

    Parameters
    ----------
    tensors : array_like or iterable of array_like
    method : str
    bits : int
    signed, symmetric : bool
        The target quantizer (used by ``mse``, ``entropy`` and ``aciq``; ``percentile`` is symmetric iff
        ``symmetric``).
    percentile : float, default 99.99
        For ``method="percentile"``.

    Returns
    -------
    (lo, hi) : tuple of float

    Raises
    ------
    ValueError
        An unknown method.
    """
    if method == "minmax":
        return minmax_range(tensors)
    if method == "percentile":
        return percentile_range(tensors, percentile, symmetric=symmetric)
    if method == "mse":
        return mse_range(tensors, bits, signed=signed, symmetric=symmetric)
    if method == "entropy":
        return entropy_range(tensors, bits, signed=signed)
    if method == "aciq":
        return aciq_range(tensors, bits, signed=signed)
    raise ValueError(f"method must be one of {', '.join(map(repr, CALIBRATION_METHODS))}, not {method!r}")


def calibrate(tensors, bits: int, method: str = "minmax", *, signed: bool = False, symmetric: bool = False,
              percentile: float = 99.99) -> QParams:
    """A per-tensor quantizer calibrated by ``method``.

    ``symmetric``: :func:`hwsim.quant.symmetric_qparams` of ``max(|lo|, |hi|)`` (restricted range when signed);
    otherwise :func:`hwsim.quant.asymmetric_qparams` of ``(lo, hi)`` (the range is widened to contain 0).

    Returns
    -------
    QParams
    """
    lo, hi = calibrate_range(tensors, method, bits, signed=signed, symmetric=symmetric, percentile=percentile)
    return _qparams_for(lo, hi, bits, signed, symmetric)
