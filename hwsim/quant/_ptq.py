"""Post-training quantization (PTQ) methods: batch-norm folding, cross-layer equalization, bias correction and
AdaRound (survey: Gholami et al. 2021, §III-G2 and §IV-A).

All functions work on float numpy arrays with the ONNX/PyTorch layouts: conv weights ``(K, C/groups, R, S)``,
linear weights ``(out, in)``; "output channel" is axis 0.
"""

from __future__ import annotations

import math

import numpy as np

from ..numerics import QParams

__all__ = ["fold_batchnorm", "equalize_pair", "bias_correction", "adaround", "ADAROUND_ZETA",
           "ADAROUND_GAMMA", "weight_range_mse"]


def fold_batchnorm(weight, bias, gamma, beta, mean, var, eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """Fold an inference-mode batch norm that follows a conv/linear layer into its weight and bias.

    ``BN(Wx + b) = gamma (Wx + b - mean) / sqrt(var + eps) + beta``, so with ``k = gamma / sqrt(var + eps)``
    per output channel (Jacob et al., "Quantization and Training of Neural Networks for Efficient
    Integer-Arithmetic- Only Inference", CVPR 2018, §3.2; survey §IV-A "batch-norm folding")::

        W' = W * k[:, None, ...],   b' = (b - mean) * k + beta

    Computed in float64 and returned as float32.

    Parameters
    ----------
    weight : array_like of float, shape (K, ...)
    bias : array_like of float, shape (K,), or None (treated as 0)
    gamma, beta, mean, var : array_like of float, shape (K,)
        BN weight, bias, running mean and running variance.
    eps : float, default 1e-5 (PyTorch's BatchNorm2d default)

    Returns
    -------
    (W', b') : float32 arrays of shapes (K, ...) and (K,)

    Raises
    ------
    ValueError
        Shapes that do not agree, or ``var + eps <= 0``.
    """
    w = np.asarray(weight, np.float64)
    k_out = w.shape[0]
    vecs = {n: np.asarray(v, np.float64) for n, v in
            (("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var))}
    b = np.zeros(k_out) if bias is None else np.asarray(bias, np.float64)
    for n, v in (*vecs.items(), ("bias", b)):
        if v.shape != (k_out,):
            raise ValueError(f"{n} must have shape ({k_out},) (one per output channel), not {v.shape}")
    den = vecs["var"] + float(eps)
    if np.any(den <= 0):
        raise ValueError("var + eps must be positive")
    k = vecs["gamma"] / np.sqrt(den)
    w2 = w * k.reshape((-1,) + (1,) * (w.ndim - 1))
    b2 = (b - vecs["mean"]) * k + vecs["beta"]
    return w2.astype(np.float32), b2.astype(np.float32)


def _out_range(w: np.ndarray) -> np.ndarray:
    return np.abs(w).reshape(w.shape[0], -1).max(axis=1)


def equalize_pair(w1, b1, w2, *, depthwise2: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                    np.ndarray]:
    """Cross-layer equalization of two consecutive layers (Nagel, van Baalen, Blankevoort, Welling, "Data-Free
    Quantization Through Weight Equalization and Bias Correction", ICCV 2019, §4.1, eq. 9-11).

    Layer 1 (output channel ``i``: ``w1[i]``) feeds layer 2 through a positively homogeneous function
    (``f(x/s) = f(x)/s`` for ``s > 0``: ReLU, identity; ReLU6 becomes a per-channel clip at ``6/s_i``). With
    the ranges ``r1_i = max|w1[i]|`` and ``r2_i = max|w2[:, i]|`` (``max|w2[i]|`` for a depthwise layer 2)::

        s_i = sqrt(r1_i / r2_i)            (= r2_i^-1 sqrt(r1_i r2_i), eq. 11)
        w1'[i] = w1[i] / s_i,  b1'_i = b1_i / s_i,  w2'[:, i] = w2[:, i] * s_i

    after which both ranges equal ``sqrt(r1_i r2_i)``. Channels with a zero range keep ``s_i = 1``.

    Parameters
    ----------
    w1 : array_like of float, shape (C, ...)
        Layer 1 weights; ``C`` output channels.
    b1 : array_like of float, shape (C,)
    w2 : array_like of float
        Layer 2 weights: ``(K, C, R, S)`` / ``(K, C)`` (dense), or ``(C, 1, R, S)`` with ``depthwise2=True``.
    depthwise2 : bool, default False

    Returns
    -------
    (w1', b1', w2', s) : float32 arrays; ``s`` has shape (C,)

    Raises
    ------
    ValueError
        Channel counts that do not chain.
    """
    w1 = np.asarray(w1, np.float64)
    b1 = np.asarray(b1, np.float64)
    w2 = np.asarray(w2, np.float64)
    c = w1.shape[0]
    if b1.shape != (c,):
        raise ValueError(f"b1 must have shape ({c},), not {b1.shape}")
    axis2 = 0 if depthwise2 else 1
    if w2.ndim < 2 or w2.shape[axis2] != c:
        raise ValueError(f"w2 must have {c} input channels along axis {axis2}, not shape {w2.shape}")
    r1 = _out_range(w1)
    r2 = _out_range(np.moveaxis(w2, axis2, 0))
    ok = (r1 > 0) & (r2 > 0)
    s = np.where(ok, np.sqrt(np.where(ok, r1, 1.0) / np.where(ok, r2, 1.0)), 1.0)
    w1n = w1 / s.reshape((-1,) + (1,) * (w1.ndim - 1))
    shape2 = [1] * w2.ndim
    shape2[axis2] = c
    w2n = w2 * s.reshape(shape2)
    return (w1n.astype(np.float32), (b1 / s).astype(np.float32), w2n.astype(np.float32),
            s.astype(np.float32))


def bias_correction(w, w_quant, input_mean, *, groups: int = 1) -> np.ndarray:
    """The bias change that removes the expected output error of quantized weights (Nagel et al. 2019, §4.2).

    The error ``eps = W~ - W`` shifts the expected output by ``E[eps x] = eps E[x]`` (eq. 13); subtracting it
    from the bias restores the expected output. For a conv, ``E[x]`` per input channel is taken at every
    kernel tap (padding is ignored)::

        delta_b[k] = - sum_{c, r, s} (W~ - W)[k, c, r, s] * E[x_{g(k) * C/groups + c}]

    ``input_mean`` comes from calibration data (the empirical variant) or from the preceding batch norm's
    statistics (the data-free variant of the paper, eq. 14-16); the caller chooses.

    Parameters
    ----------
    w, w_quant : array_like of float, same shape (K, C/groups, R, S) or (K, C)
        Float and dequantized weights.
    input_mean : array_like of float, shape (C,)
        Mean of the layer's input per channel.
    groups : int, default 1

    Returns
    -------
    numpy.ndarray of float32, shape (K,)
        Add it to the bias.

    Raises
    ------
    ValueError
        Shapes that do not agree.
    """
    w = np.asarray(w, np.float64)
    wq = np.asarray(w_quant, np.float64)
    m = np.asarray(input_mean, np.float64)
    if w.shape != wq.shape:
        raise ValueError(f"w and w_quant must have the same shape, not {w.shape} and {wq.shape}")
    k_out, cg = w.shape[0], w.shape[1]
    if m.shape != (cg * groups,):
        raise ValueError(f"input_mean must have shape ({cg * groups},), not {m.shape}")
    err = (wq - w).reshape(k_out, cg, -1).sum(axis=2)                     # (K, C/groups)
    kg = k_out // groups
    mean_per_k = m.reshape(groups, cg)[np.arange(k_out) // kg]           # (K, C/groups)
    return (-(err * mean_per_k).sum(axis=1)).astype(np.float32)


# ------------------------------------------------------------------------------------- weight range by MSE

def weight_range_mse(w, bits: int, gram=None, *, cross=None, groups: int = 1, ratios=None) -> np.ndarray:
    """Per-output-channel clipping thresholds of symmetric (restricted-range) weights that minimise the
    layer's output error under nearest rounding (MSE-based range setting, Nagel et al., "A White Paper on
    Neural Network Quantization", 2021, §3.2; with ``gram`` the error is weighted by the input statistics as
    in AdaRound's objective).

    For every ratio ``r`` in ``ratios`` (default ``0.30, 0.31, ..., 1.00``) and every output channel ``k``,
    quantize ``w[k]`` with ``amax = r * max|w[k]|`` (:func:`hwsim.quant.symmetric_qparams`, float32 scale,
    ONNX rounding and saturation) and score ``e_k = d_k G d_k^T`` with ``d = W~ - W`` (``gram`` None: ``G =
    I``, plain weight MSE); with ``cross`` (``C = E[x x^^T]``, ``gram = E[x^ x^^T]``, the asymmetric
    reconstruction of :func:`adaround`) ``e_k = W~_k G W~_k^T - 2 W_k C W~_k^T``. Each channel keeps its
    best ratio (the first on ties).

    Parameters
    ----------
    w : array_like of float, shape (K, ...)
        Float weights (conv ``(K, C/groups, R, S)`` or linear ``(K, D)``).
    bits : int
        Weight bits (2..16).
    gram, cross : array_like of float, shape (groups, D, D) or (D, D), optional
    groups : int, default 1
    ratios : sequence of float in (0, 1], optional

    Returns
    -------
    numpy.ndarray of float32, shape (K,)
        ``amax`` per channel (pass to :func:`hwsim.quant.symmetric_qparams` with ``axis=0``).

    Raises
    ------
    ValueError
        Shapes that do not agree, or a ratio outside (0, 1].
    """
    from ..numerics import dequantize, quantize
    from ._granular import symmetric_qparams

    w32 = np.asarray(w, np.float32)
    k_out = w32.shape[0]
    wf = w32.reshape(k_out, -1).astype(np.float64)
    d = wf.shape[1]
    if k_out % groups:
        raise ValueError(f"groups={groups} must divide the {k_out} output channels")
    kg = k_out // groups

    def per_group(m):
        if m is None:
            return None
        m = np.asarray(m, np.float64)
        m = m[None] if m.ndim == 2 else m
        if m.shape != (groups, d, d):
            raise ValueError(f"gram/cross must have shape ({groups}, {d}, {d}), not {m.shape}")
        return m

    g, c = per_group(gram), per_group(cross)
    rs = np.arange(30, 101) / 100.0 if ratios is None else np.asarray(ratios, np.float64)
    if rs.size == 0 or np.any((rs <= 0) | (rs > 1)):
        raise ValueError("ratios must be non-empty and in (0, 1]")
    amax0 = np.abs(wf).max(axis=1)
    best = np.full(k_out, np.inf)
    out = amax0.astype(np.float32)
    for r in rs:
        amax = (amax0 * r).astype(np.float32)
        qp = symmetric_qparams(amax, bits, axis=0)
        wq = dequantize(quantize(w32, qp), qp).reshape(k_out, -1).astype(np.float64)
        if g is None:
            e = ((wq - wf) ** 2).sum(axis=1)
        else:
            def quad(a, m, b):  # per channel a_k M_g(k) b_k^T
                return (np.matmul(a.reshape(groups, kg, d), m).reshape(k_out, d) * b).sum(axis=1)

            e = quad(wq - wf, g, wq - wf) if c is None else quad(wq, g, wq) - 2.0 * quad(wf, c, wq)
        better = e < best
        best[better] = e[better]
        out[better] = amax[better]
    return out


# ------------------------------------------------------------------------------------------------- AdaRound

#: Stretch parameters of AdaRound's rectified sigmoid (Nagel et al. 2020, eq. 23).
ADAROUND_ZETA, ADAROUND_GAMMA = 1.1, -0.1


def _rect_sigmoid(v: np.ndarray) -> np.ndarray:
    return np.clip(1.0 / (1.0 + np.exp(-v)) * (ADAROUND_ZETA - ADAROUND_GAMMA) + ADAROUND_GAMMA, 0.0, 1.0)


def adaround(w, gram, qp: QParams, *, iters: int = 1000, lr: float = 1e-2, reg: float = 0.01,
             beta: tuple[float, float] = (20.0, 2.0), warmup: float = 0.2, groups: int = 1,
             cross=None) -> np.ndarray:
    """AdaRound: learn whether each weight rounds up or down (Nagel, Amjad, van Baalen, Louizos, Blankevoort,
    "Up or Down? Adaptive Rounding for Post-Training Quantization", ICML 2020, §3-4).

    Minimises the layer's output reconstruction error plus a regulariser that drives every rounding variable
    to 0 or 1 (eq. 21-24)::

        W~(V) = s * clip(floor(W / s) + h(V), qmin - z, qmax - z),
        h(V)  = clip(sigmoid(V)(zeta - gamma) + gamma, 0, 1)
        loss  = tr((W~ - W) G (W~ - W)^T) / K  +  reg * sum(1 - |2 h(V) - 1|^beta)

    with ``G = E[x x^T]`` the input's second-moment (Gram) matrix, so that ``tr(.)/K`` is the mean squared
    output error per output channel of the *linear* layer (the activation function of eq. 25 is left out: this
    is the layer-wise linear variant).

    With ``cross`` the reconstruction is *asymmetric* (AdaRound's eq. 25 without its activation function; the
    sequential layer-wise reconstruction that BRECQ and GPTQ also use): the quantized layer sees the quantized
    network's input ``x^`` and must reproduce the float layer on the float input ``x``,
    ``E||W x - W~ x^||^2 / K``; then ``gram`` is ``E[x^ x^^T]``, ``cross`` is ``E[x x^^T]`` and the
    reconstruction gradient is ``2 (W~ G - W C) / K`` (with ``C = G`` it is the symmetric one,
    ``2 (W~ - W) G / K``).

    ``V`` starts at the fractional part (``h(V) = W/s - floor(W/s)``); ``beta`` decays linearly from
    ``beta[0]`` to ``beta[1]`` after a warm-up fraction without the regulariser
    (AIMET's defaults: ``reg = 0.01``, ``beta`` 20 -> 2, warm-up 0.2); Adam (``lr``, betas 0.9/0.999, eps
    1e-8) in float64, full batch (deterministic). The result rounds ``h(V) >= 0.5`` up.

    Parameters
    ----------
    w : array_like of float, shape (K, C/groups, R, S) or (K, D)
        Float weights.
    gram : array_like of float, shape (groups, D, D) or (D, D)
        ``E[x x^T]`` of the layer's input patches per group, ``D = C/groups * R * S`` in the weight's
        flattening order (im2col columns ``(c, r, s)``).
    qp : QParams
        The weight quantizer (per tensor, or per output channel along axis 0), zero point included.
    iters : int, default 1000
    lr, reg : float
    beta : (float, float), default (20, 2)
    warmup : float in [0, 1), default 0.2
    groups : int, default 1
        Conv groups (depthwise: ``groups = K``).
    cross : array_like of float, shape of ``gram``, optional
        ``E[x x^^T]`` (float input times quantized input, per group) for the asymmetric reconstruction.

    Returns
    -------
    numpy.ndarray, shape of ``w``, dtype ``qp.storage_dtype``
        The codes (in ``[qp.qmin, qp.qmax]``), each ``floor(w/s) + {0, 1} + z``.

    Raises
    ------
    ValueError
        Shapes that do not agree, or a per-channel quantizer not along axis 0.
    """
    w = np.asarray(w, np.float64)
    k_out = w.shape[0]
    if k_out % groups:
        raise ValueError(f"groups={groups} must divide the {k_out} output channels")
    kg = k_out // groups
    d = int(np.prod(w.shape[1:]))
    g = np.asarray(gram, np.float64)
    if g.ndim == 2:
        g = g[None]
    if g.shape != (groups, d, d):
        raise ValueError(f"gram must have shape ({groups}, {d}, {d}), not {g.shape}")
    c = None
    if cross is not None:
        c = np.asarray(cross, np.float64)
        c = c[None] if c.ndim == 2 else c
        if c.shape != g.shape:
            raise ValueError(f"cross must have the shape of gram {g.shape}, not {c.shape}")
    if qp.per_channel and (qp.axis % w.ndim != 0 or qp.scale.shape[0] != k_out):
        raise ValueError("qp must be per tensor or per output channel (axis 0)")
    s = np.broadcast_to(qp.scale.astype(np.float64).reshape(-1, 1), (k_out, 1)) if qp.per_channel \
        else np.full((k_out, 1), float(qp.scale))
    z = np.broadcast_to(qp.zero_point.astype(np.float64).reshape(-1, 1), (k_out, 1)) if qp.per_channel \
        else np.full((k_out, 1), float(qp.zero_point))
    wf = w.reshape(k_out, d)
    lo, hi = qp.qmin - z, qp.qmax - z
    base = np.floor(wf / s)
    frac = np.clip(wf / s - base, 0.0, 1.0)
    # inverse of the rectified sigmoid at the fractional part (clipped away from 0 and 1)
    p = np.clip((frac - ADAROUND_GAMMA) / (ADAROUND_ZETA - ADAROUND_GAMMA), 1e-6, 1 - 1e-6)
    v = np.log(p / (1 - p))
    m1 = np.zeros_like(v)
    m2 = np.zeros_like(v)
    b1, b2, eps = 0.9, 0.999, 1e-8
    n_warm = int(math.floor(warmup * iters))
    for t in range(1, int(iters) + 1):
        sig = 1.0 / (1.0 + np.exp(-v))
        h_raw = sig * (ADAROUND_ZETA - ADAROUND_GAMMA) + ADAROUND_GAMMA
        h = np.clip(h_raw, 0.0, 1.0)
        q = base + h
        inside = (q >= lo) & (q <= hi)
        wt = s * np.clip(q, lo, hi)
        if c is None:
            delta = wt - wf                                             # (K, D)
            if groups > 1:
                grad_wt = 2.0 * np.matmul(delta.reshape(groups, kg, d), g).reshape(k_out, d) / k_out
            else:
                grad_wt = 2.0 * (delta @ g[0]) / k_out
        elif groups > 1:
            grad_wt = 2.0 * (np.matmul(wt.reshape(groups, kg, d), g)
                             - np.matmul(wf.reshape(groups, kg, d), c)).reshape(k_out, d) / k_out
        else:
            grad_wt = 2.0 * (wt @ g[0] - wf @ c[0]) / k_out
        grad_h = grad_wt * s * inside
        if t > n_warm:
            frac_t = (t - n_warm) / max(1, iters - n_warm)
            bt = beta[0] + (beta[1] - beta[0]) * frac_t
            u = 2.0 * h - 1.0
            grad_h = grad_h + reg * (-bt * np.abs(u) ** (bt - 1.0) * np.sign(u) * 2.0)
        grad_v = grad_h * ((h_raw > 0) & (h_raw < 1)) * (ADAROUND_ZETA - ADAROUND_GAMMA) * sig * (1.0 - sig)
        m1 = b1 * m1 + (1 - b1) * grad_v
        m2 = b2 * m2 + (1 - b2) * grad_v * grad_v
        v = v - lr * (m1 / (1 - b1 ** t)) / (np.sqrt(m2 / (1 - b2 ** t)) + eps)
    up = (_rect_sigmoid(v) >= 0.5).astype(np.float64)
    codes = np.clip(base + up, lo, hi) + z
    return codes.reshape(w.shape).astype(qp.storage_dtype)
