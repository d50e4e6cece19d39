"""Requantization of an integer accumulator to a narrow output code, one profile per public runtime.

After an integer conv/GEMM, the accumulator ``acc = sum (x - z_x)(w - z_w) + bias`` holds the real output in
units of ``s_x * s_w``. Requantization rescales it to the output scale ``s_y`` with ``M = s_x * s_w / s_y``
and adds the output zero point. Runtimes differ in how ``M`` is formed, how ``acc`` is converted, how they
round and where the zero point goes (``shared/reference/bitexact.md`` §0, §2, §3, §7). Each profile below is
named after the runtime it reproduces:

=================  ===========================================================================================
profile            formula (``rne`` = round half to even)
=================  ===========================================================================================
``ort_cpu``        ``clamp(rne(f32(f32(acc) * M)) + z, qmin, qmax)``, ``M`` float32 (ORT CPU EP, §0, §1)
``torch_onednn``   ``clamp(rne(f32(f32(f32(acc) * M) + z)), qmin, qmax)``: ``z`` before rounding (onednn, §3)
``tflite_double``  ``clamp(RoundingDivideByPOT(SRDHM(acc * 2^l, q), r) + z, qmin, qmax)`` (gemmlowp, §2)
``tflite_single``  ``clamp(((acc * q + 2^(t-1)) >> t) + z, qmin, qmax)``, ``t = 31 - shift`` (TFLite, §2)
``hawq_dyadic``    ``clamp(rne(f64(f64(acc) * b) / 2^c) + z, qmin, qmax)``, ``M ~ b / 2^c`` (HAWQ-V3, §2)
=================  ===========================================================================================
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["PROFILES", "requant_multiplier", "requantize", "quantize_multiplier", "dyadic_multiplier"]

#: The requantization profiles that :func:`requantize` knows.
PROFILES = ("ort_cpu", "torch_onednn", "tflite_double", "tflite_single", "hawq_dyadic")

_INT32_MIN = -(1 << 31)
_INT32_MAX = (1 << 31) - 1


def _check_profile(profile) -> str:
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(map(repr, PROFILES))}, not {profile!r}")
    return profile


def _positive_scale(v, name: str) -> np.ndarray:
    a = np.asarray(v)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a real numeric scale, not dtype {a.dtype}")
    if a.ndim > 1:
        raise ValueError(f"{name} must have shape () or (C,), not {a.shape}")
    a = a.astype(np.float32)
    if not (np.all(np.isfinite(a)) and np.all(a > 0)):
        raise ValueError(f"{name} must be positive and finite, not {a.tolist()!r}")
    return a


def requant_multiplier(s_x, s_w, s_y, *, profile: str = "ort_cpu") -> np.ndarray:
    """The requantization multiplier ``M = s_x * s_w / s_y``, in the arithmetic of the target runtime.

    The scales are first taken as float32 (as the runtimes store them). Then, per profile:

    * ``ort_cpu``, ``torch_onednn``: ``f32(f32(s_x * s_w) / s_y)``, float32 throughout, multiply first (ORT
      ``qlinearconv.cc`` / ``quantize_linear_matmul.cc``: ``X_scale * W_scale[i] / Y_scale``; PyTorch
      ``act_times_w_scale / output_scale``; ``bitexact.md`` §0 point 3). Returns float32.
    * ``tflite_double``, ``tflite_single``: ``f64(s_x) * f64(s_w) / f64(s_y)`` in double (TFLite
      ``PopulateConvolutionQuantizationParams``, §2). Returns float64.
    * ``hawq_dyadic``: ``f64(f32(s_x * s_w)) / f64(s_y)`` (HAWQ-V3 ``fixedpoint_fn``, §2). Returns float64.

    Parameters
    ----------
    s_x : float
        Input (activation) scale, per tensor.
    s_w : float or array_like of float, shape () or (C,)
        Weight scale, per tensor or per output channel / column.
    s_y : float
        Output scale, per tensor.
    profile : str, default "ort_cpu"
        One of :data:`PROFILES`.

    Returns
    -------
    numpy.ndarray, shape of ``s_w``, float32 (ORT/onednn) or float64 (TFLite/HAWQ)

    Raises
    ------
    ValueError
        A scale is not positive and finite, ``s_x``/``s_y`` are not scalars, or an unknown profile.
    """
    profile = _check_profile(profile)
    sx = _positive_scale(s_x, "s_x")
    sw = _positive_scale(s_w, "s_w")
    sy = _positive_scale(s_y, "s_y")
    if sx.ndim or sy.ndim:
        raise ValueError(f"s_x and s_y must be scalars (per tensor), not shapes {sx.shape} and {sy.shape}")
    if profile in ("ort_cpu", "torch_onednn"):
        return np.asarray(np.divide(np.multiply(sx, sw, dtype=np.float32), sy, dtype=np.float32))
    if profile in ("tflite_double", "tflite_single"):
        return np.asarray(sx.astype(np.float64) * sw.astype(np.float64) / sy.astype(np.float64))
    # hawq_dyadic
    return np.asarray(np.multiply(sx, sw, dtype=np.float32).astype(np.float64) / sy.astype(np.float64))


def quantize_multiplier(m: float, *, single_rounding: bool = False) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier``: a real multiplier as a Q31 mantissa and a power-of-two shift.

    ``m ~ q * 2^(shift - 31)`` with ``q`` in ``[2^30, 2^31)`` (TFLite
    ``kernels/internal/quantization_util.cc``; ``bitexact.md`` §2): ``frac, shift = frexp(m)``, ``q =
    round_half_away(frac * 2^31)``; if ``q == 2^31`` it is halved and ``shift`` incremented; if ``shift <
    -31`` the multiplier is flushed to ``(0, 0)``. With ``single_rounding`` a ``shift > 30`` saturates to
    ``(2^31 - 1, 30)``. ``m == 0`` gives ``(0, 0)``.

    Parameters
    ----------
    m : float
        The real multiplier (double), ``m >= 0``.
    single_rounding : bool, default False
        Apply the ``TFLITE_SINGLE_ROUNDING`` shift limit.

    Returns
    -------
    (q, shift) : tuple of int

    Raises
    ------
    ValueError
        ``m`` negative or not finite.
    """
    m = float(m)
    if not (math.isfinite(m) and m >= 0):
        raise ValueError(f"m must be a finite non-negative multiplier, not {m!r}")
    if m == 0.0:
        return 0, 0
    frac, shift = math.frexp(m)
    q = math.floor(frac * 2.0**31 + 0.5)  # frac*2^31 is exact; + 0.5 is exact below 2^52: half away from zero
    if q == 1 << 31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if single_rounding and shift > 30:
        return _INT32_MAX, 30
    return int(q), int(shift)


def dyadic_multiplier(m: float, *, mantissa_bits: int = 31) -> tuple[int, int]:
    """HAWQ-V3's dyadic number ``b / 2^c`` for a real multiplier (``batch_frexp``).

    ``frac, e = frexp(m)``; ``b = round_half_up(frac * 2^mantissa_bits)``; ``c = mantissa_bits - e``
    (HAWQ ``utils/quantization_utils/quant_utils.py``; ``bitexact.md`` §2). ``b`` may equal
    ``2^mantissa_bits`` when ``frac`` rounds up; HAWQ keeps it so, and so does this function.

    Parameters
    ----------
    m : float
        The real multiplier, ``m > 0``, finite.
    mantissa_bits : int, default 31

    Returns
    -------
    (b, c) : tuple of int
        ``m ~ b * 2^-c``.

    Raises
    ------
    ValueError
        ``m`` not positive and finite.
    """
    m = float(m)
    if not (math.isfinite(m) and m > 0):
        raise ValueError(f"m must be a positive finite multiplier, not {m!r}")
    frac, e = math.frexp(m)
    b = math.floor(frac * 2.0**mantissa_bits + 0.5)
    return int(b), int(mantissa_bits - e)


def _trunc_div_pow2(v: np.ndarray, e: int) -> np.ndarray:
    """C integer division ``v / 2^e`` (truncation toward zero) on int64."""
    return np.where(v >= 0, v >> e, -((-v) >> e))


def _srdhm(a: np.ndarray, b: int) -> np.ndarray:
    """gemmlowp ``SaturatingRoundingDoublingHighMul(a, b)`` on int32 values held in int64 (bitexact.md §2)."""
    ab = a * np.int64(b)
    nudge = np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    hi = _trunc_div_pow2(ab + nudge, 31)
    if b == _INT32_MIN:
        hi = np.where(a == _INT32_MIN, np.int64(_INT32_MAX), hi)
    return hi


def _rounding_divide_by_pot(x: np.ndarray, e: int) -> np.ndarray:
    """gemmlowp ``RoundingDivideByPOT(x, e)``: ``x / 2^e`` rounded half away from zero."""
    if e == 0:
        return x
    mask = np.int64((1 << e) - 1)
    rem = x & mask
    thr = (mask >> 1) + (x < 0).astype(np.int64)
    return (x >> e) + (rem > thr).astype(np.int64)


def _wrap_int32(v: np.ndarray) -> np.ndarray:
    return ((v - _INT32_MIN) & np.int64(0xFFFFFFFF)) + _INT32_MIN


def _scaled_tflite(acc: np.ndarray, m: float, single: bool) -> np.ndarray:
    q, shift = quantize_multiplier(m, single_rounding=single)
    if single:
        total = 31 - shift
        # (x * q + 2^(total-1)) >> total; |x*q| < 2^62, so int64 holds it exactly as in C.
        return (acc * np.int64(q) + np.int64(1 << (total - 1))) >> total
    left = max(shift, 0)
    right = max(-shift, 0)
    x = _wrap_int32(acc << left) if left else acc  # C: x * (1 << left_shift) in int32
    return _rounding_divide_by_pot(_srdhm(x, q), right)


def requantize(acc, multiplier, *, zero_point: int, qmin: int, qmax: int, channel_axis: int | None = None,
               profile: str = "ort_cpu") -> np.ndarray:
    """Rescale an integer accumulator to output codes, bit-exactly as the named runtime does.

    Profiles (``bitexact.md`` §0, §2, §3; ``rne`` = round half to even; ``z`` = ``zero_point``):

    ``ort_cpu`` (the default; ORT ``core/mlas/lib/quantize.cpp`` ``MlasRequantizeOutput``)
        ``y = clamp(rne(f32(f32(acc) * M)) + z, qmin, qmax)``. The accumulator is converted to float32 first
        (this rounds when ``|acc| > 2^24``, §0 point 1), multiplied in float32 without FMA, rounded, then
        ``z`` is added. MLAS clamps the float to ``[qmin - z, qmax - z]`` before converting; since those
        bounds are integers that is the same as clamping after.
    ``torch_onednn`` (PyTorch onednn engine, x86 conv; §3)
        ``y = clamp(rne(f32(f32(f32(acc) * M) + z)), qmin, qmax)``: ``z`` added in float before rounding,
        which differs from ``ort_cpu`` on exact ties when ``z`` is odd. (The float32 rounding of the ``+ z``
        step is our model; only the tie behaviour was measured.)
    ``tflite_double`` (gemmlowp double rounding; TFLite ``MultiplyByQuantizedMultiplier``)
        ``(q, shift) = quantize_multiplier(M)``; ``y = clamp(RDBPOT(SRDHM(acc * 2^max(shift,0), q),
        max(-shift,0)) + z, qmin, qmax)``. ``acc * 2^left`` wraps in int32 as the C code does.
    ``tflite_single`` (``TFLITE_SINGLE_ROUNDING``)
        ``t = 31 - shift``; ``y = clamp(((acc * q + 2^(t-1)) >> t) + z, qmin, qmax)``: one rounding, half up.
    ``hawq_dyadic`` (HAWQ-V3 ``fixedpoint_fn``)
        ``(b, c) = dyadic_multiplier(M)``; ``y = clamp(rne(f64(f64(acc) * b) / 2^c) + z, qmin, qmax)``. The
        product is a float64 product, as in HAWQ's torch code (it rounds above 2^53).

    For ``tflite_*`` and ``hawq_dyadic`` pass the float64 multiplier from
    ``requant_multiplier(..., profile=...)``; a float32 ``M`` is used as its exact float64 value.

    Parameters
    ----------
    acc : array_like of int
        The accumulator (bias included), e.g. ``(N, K, Ho, Wo)`` int64 from ``conv2d_acc`` or ``(M, N)`` from
        ``gemm_acc``. For the ``tflite_*`` profiles every value must fit int32 (the TFLite accumulator type).
    multiplier : float or array_like of float, shape () or (C,)
        ``M``, per tensor or per channel along ``channel_axis``; positive and finite.
    zero_point : int
        Output zero point ``z``, in ``[qmin, qmax]``.
    qmin, qmax : int
        Saturation range (e.g. ``[-128, 127]``; ``[z, 127]`` for a fused ReLU), ``qmin <= qmax``.
    channel_axis : int or None
        The axis of ``acc`` that a per-channel ``multiplier`` runs along (1 for conv ``(N, K, Ho, Wo)`` and
        for GEMM ``(M, N)`` columns). Required when ``multiplier`` has shape ``(C,)``.
    profile : str, default "ort_cpu"
        One of :data:`PROFILES`.

    Returns
    -------
    numpy.ndarray of int32, shape of ``acc``
        Codes in ``[qmin, qmax]`` (int32 so that any width up to 16 bits fits; the ``qlinear_*`` layers narrow
        it).

    Raises
    ------
    TypeError
        ``acc`` is not an integer array.
    ValueError
        Bad shapes, an unknown profile, a non-positive multiplier, ``zero_point`` outside ``[qmin, qmax]``, or
        (``tflite_*``) an accumulator outside int32.
    """
    profile = _check_profile(profile)
    a = np.asarray(acc)
    if a.dtype.kind not in "iu":
        raise TypeError(f"acc must be an integer array, not dtype {a.dtype}")
    a = a.astype(np.int64, copy=False)
    m = np.asarray(multiplier)
    if m.dtype.kind != "f":
        raise TypeError(f"multiplier must be a float array, not dtype {m.dtype}")
    if m.ndim > 1:
        raise ValueError(f"multiplier must have shape () or (C,), not {m.shape}")
    if not (np.all(np.isfinite(m)) and np.all(m > 0)):
        raise ValueError(f"multiplier must be positive and finite, not {m.tolist()!r}")
    for name, v in (("zero_point", zero_point), ("qmin", qmin), ("qmax", qmax)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must be an int, not {v!r}")
    zero_point, qmin, qmax = int(zero_point), int(qmin), int(qmax)
    if qmin > qmax:
        raise ValueError(f"qmin must be <= qmax, not qmin={qmin} > qmax={qmax}")
    if m.ndim == 1:
        if channel_axis is None:
            raise ValueError(f"channel_axis must be given for a per-channel multiplier of shape {m.shape}, "
                             f"not None")
        if not -a.ndim <= channel_axis < a.ndim:
            raise ValueError(f"channel_axis must be in [{-a.ndim}, {a.ndim - 1}] for acc of shape {a.shape}, "
                             f"not {channel_axis}")
        ax = channel_axis % a.ndim
        if a.shape[ax] != m.shape[0]:
            raise ValueError(f"acc must have {m.shape[0]} channels along axis {channel_axis} "
                             f"(one per multiplier), "
                             f"not {a.shape[ax]}")
    else:
        ax = None

    if profile in ("ort_cpu", "torch_onednn"):
        m32 = m.astype(np.float32)
        if ax is not None:
            shape = [1] * a.ndim
            shape[ax] = m.shape[0]
            m32 = m32.reshape(shape)
        v = np.multiply(a.astype(np.float32), m32, dtype=np.float32)
        if profile == "ort_cpu":
            v = np.rint(np.clip(v, np.float32(qmin - zero_point), np.float32(qmax - zero_point)))
            return v.astype(np.int32) + np.int32(zero_point)
        v = np.add(v, np.float32(zero_point), dtype=np.float32)
        return np.rint(np.clip(v, np.float32(qmin), np.float32(qmax))).astype(np.int32)

    if profile.startswith("tflite"):
        if a.size and (a.min() < _INT32_MIN or a.max() > _INT32_MAX):
            raise ValueError(f"acc must fit int32 for profile {profile!r}, "
                             f"found range [{a.min()}, {a.max()}]")
    out = np.empty(a.shape, np.int64)
    ms = m.astype(np.float64).reshape(-1)
    for c, mc in enumerate(ms):
        if ax is None:
            sl = (...,)
        else:
            sl = [slice(None)] * a.ndim
            sl[ax] = c
            sl = tuple(sl)
        part = a[sl]
        if profile == "hawq_dyadic":
            b, cc = dyadic_multiplier(mc)
            v = np.rint((part.astype(np.float64) * float(b)) / 2.0**cc)
            out[sl] = np.clip(v, qmin - zero_point, qmax - zero_point).astype(np.int64)
        else:
            out[sl] = _scaled_tflite(part, float(mc), profile == "tflite_single")
    return np.clip(out + zero_point, qmin, qmax).astype(np.int32)
