"""Requantization of an integer accumulator to a narrow output code, one profile per public runtime.

After an integer conv/GEMM, the accumulator ``acc = sum (x - z_x)(w - z_w) + bias`` holds the real output in
units of ``s_x * s_w``. Requantization rescales it to the output scale ``s_y`` with ``M = s_x * s_w / s_y``
and adds the output zero point. Runtimes differ in how ``M`` is formed, how ``acc`` is converted, how they
round and where the zero point goes (``docs/verification.md`` §0, §2, §3, §7). Each profile below is
named after the runtime it reproduces:

=================  ===========================================================================================
profile            formula (``rne`` = round half to even)
=================  ===========================================================================================
``ort_cpu``        ``clamp(rne(f32(f32(acc) * M)) + z, qmin, qmax)``, ``M`` float32 (ORT CPU EP, §0, §1)
``torch_onednn``   ``clamp(rne(f32(f32(f32(acc) * M) + z)), qmin, qmax)``: ``z`` before rounding (onednn, §3)
``tflite_double``  ``clamp(RoundingDivideByPOT(SRDHM(acc * 2^l, q), r) + z, qmin, qmax)`` (gemmlowp, §2)
``tflite_single``  ``clamp(((acc * q + 2^(t-1)) >> t) + z, qmin, qmax)``, ``t = 31 - shift`` (TFLite, §2)
``hawq_dyadic``    ``clamp(rne(f64(f64(acc) * b) / 2^c) + z, qmin, qmax)``, ``M ~ b / 2^c`` (HAWQ-V3, §2)
``torch_fbgemm``   ``clamp(rne(f32(f32(f32(acc) + f32(b / act)) * M)) + z, qmin, qmax)``: float bias added
                   before the multiply (PyTorch fbgemm ``ReQuantizeOutput``, §3)
=================  ===========================================================================================

Rounding: every profile has its runtime's own rounding (``rounding=None``). :data:`ROUNDING_MODES` names the
alternatives a hardware requantizer may use (``half_even``, ``half_away``, ``half_up``, ``floor`` and seeded
``stochastic``); :func:`round_values` applies one to real values and :func:`requantize` accepts one as
``rounding=`` to replace the profile's rounding step (see there).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._modes import PROFILES, ROUNDING_MODES

__all__ = ["PROFILES", "ROUNDING_MODES", "requant_multiplier", "requantize", "quantize_multiplier",
           "dyadic_multiplier", "round_values", "fbgemm_bias_addend"]


_FLOAT32_PROFILES = ("ort_cpu", "torch_onednn", "torch_fbgemm")

_INT32_MIN = -(1 << 31)
_INT32_MAX = (1 << 31) - 1


def check_profile(profile) -> str:
    """``profile`` if it is one of :data:`PROFILES`, else ``ValueError`` listing them."""
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

    * ``ort_cpu``, ``torch_onednn``, ``torch_fbgemm``: ``f32(f32(s_x * s_w) / s_y)``, float32 throughout,
      multiply first (ORT
      ``qlinearconv.cc`` / ``quantize_linear_matmul.cc``: ``X_scale * W_scale[i] / Y_scale``; PyTorch
      ``act_times_w_scale / output_scale``, fbgemm's ``C_multiplier``; ``docs/verification.md`` §0 point 3).
      Returns float32.
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
    numpy.ndarray, shape of ``s_w``, float32 (ORT/onednn/fbgemm) or float64 (TFLite/HAWQ)

    Raises
    ------
    ValueError
        A scale is not positive and finite, ``s_x``/``s_y`` are not scalars, or an unknown profile.
    """
    profile = check_profile(profile)
    sx = _positive_scale(s_x, "s_x")
    sw = _positive_scale(s_w, "s_w")
    sy = _positive_scale(s_y, "s_y")
    if sx.ndim or sy.ndim:
        raise ValueError(f"s_x and s_y must be scalars (per tensor), not shapes {sx.shape} and {sy.shape}")
    if profile in _FLOAT32_PROFILES:
        return np.asarray(np.divide(np.multiply(sx, sw, dtype=np.float32), sy, dtype=np.float32))
    if profile in ("tflite_double", "tflite_single"):
        return np.asarray(sx.astype(np.float64) * sw.astype(np.float64) / sy.astype(np.float64))
    # hawq_dyadic
    return np.asarray(np.multiply(sx, sw, dtype=np.float32).astype(np.float64) / sy.astype(np.float64))


def quantize_multiplier(m: float, *, single_rounding: bool = False) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier``: a real multiplier as a Q31 mantissa and a power-of-two shift.

    ``m ~ q * 2^(shift - 31)`` with ``q`` in ``[2^30, 2^31)`` (TFLite
    ``kernels/internal/quantization_util.cc``; ``docs/verification.md`` §2): ``frac, shift = frexp(m)``,
    ``q = round_half_away(frac * 2^31)``; if ``q == 2^31`` it is halved and ``shift`` incremented; if
    ``shift < -31`` the multiplier is flushed to ``(0, 0)``. With ``single_rounding`` a ``shift > 30``
    saturates to ``(2^31 - 1, 30)``. ``m == 0`` gives ``(0, 0)``.

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
    (HAWQ ``utils/quantization_utils/quant_utils.py``; ``docs/verification.md`` §2). ``b`` may equal
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
    """gemmlowp ``SaturatingRoundingDoublingHighMul(a, b)`` on int32 values held in int64
    (``docs/verification.md`` §2)."""
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


def _check_rounding(rounding) -> str | None:
    if rounding is not None and rounding not in ROUNDING_MODES:
        raise ValueError(f"rounding must be None or one of {', '.join(map(repr, ROUNDING_MODES))}, "
                         f"not {rounding!r}")
    return rounding


def round_values(v, mode: str = "half_even", *, seed: int | None = None) -> np.ndarray:
    """Round real values to integers with the named rounding mode.

    ============  ==========================================================================================
    mode          result (``v`` real; ties are values exactly halfway between two integers)
    ============  ==========================================================================================
    half_even     nearest integer, ties to the even one (IEEE 754 default; ORT, PyTorch, ``np.rint``)
    half_away     nearest integer, ties away from zero (C ``round``, TFLite ``TfLiteRound``)
    half_up       nearest integer, ties toward +infinity: ``floor(v + 1/2)`` (TFLite single rounding)
    floor         toward -infinity: ``floor(v)`` (an arithmetic right shift with no rounding)
    stochastic    ``floor(v + u)``, ``u`` uniform in [0, 1) from ``numpy.random.default_rng(seed)``: rounds
                  up with probability ``v - floor(v)`` (Gupta et al., ICML 2015)
    ============  ==========================================================================================

    The arithmetic is done in float64 on the given values (float32 inputs are exact there), so ``v + 1/2``
    does not round for ``|v| < 2^52``.

    Parameters
    ----------
    v : array_like of float
        Values to round.
    mode : str, default "half_even"
        One of :data:`ROUNDING_MODES`.
    seed : int, optional
        Seed of the ``stochastic`` mode (required for it, so that results are reproducible).

    Returns
    -------
    numpy.ndarray of float64, shape of ``v``, integer-valued

    Raises
    ------
    ValueError
        An unknown mode, or ``stochastic`` without a seed.
    """
    if mode not in ROUNDING_MODES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, ROUNDING_MODES))}, not {mode!r}")
    a = np.asarray(v, dtype=np.float64)
    if mode == "half_even":
        return np.rint(a)
    if mode == "half_away":
        return np.copysign(np.floor(np.abs(a) + 0.5), a)
    if mode == "half_up":
        return np.floor(a + 0.5)
    if mode == "floor":
        return np.floor(a)
    if seed is None:
        raise ValueError("seed must be given for stochastic rounding, not None")
    u = np.random.default_rng(seed).random(a.shape)
    return np.floor(a + u)


def _round_int_div_pow2(p: np.ndarray, t: int, mode: str, seed) -> np.ndarray:
    """``p / 2^t`` rounded with ``mode``, exactly on integers (p int64 or Python-int object arrays)."""
    if t <= 0:
        return p << (-t)
    if mode == "floor":
        return p >> t
    if mode == "half_up":
        return (p + (1 << (t - 1))) >> t
    fl = p >> t
    rem = p - (fl << t)  # in [0, 2^t)
    half = 1 << (t - 1)
    if mode == "half_even":
        up = (rem > half) | ((rem == half) & ((fl & 1) == 1))
    elif mode == "half_away":
        up = (rem > half) | ((rem == half) & (p >= 0))
    else:  # stochastic: up with probability rem / 2^t
        u = np.random.default_rng(seed).random(np.shape(p))
        up = u * 2.0**t < rem.astype(np.float64)
    return fl + up.astype(fl.dtype) if isinstance(fl, np.ndarray) and fl.dtype != object else fl + up


def fbgemm_bias_addend(bias_float, act_scale) -> np.ndarray:
    """The float32 addend fbgemm adds to the accumulator: ``f32(bias / act_scale)``.

    PyTorch's quantized linear/conv keep the bias as float; fbgemm's ``ReQuantizeOutput`` computes ``raw_f =
    float(acc) + bias[j] / act_times_w_scale[j]`` (``docs/verification.md`` §3) with ``act_times_w_scale =
    f32(s_x * s_w[j])``. The division is a float32 division.

    Parameters
    ----------
    bias_float : array_like of float, shape () or (C,)
        The real-valued bias PyTorch stores.
    act_scale : array_like of float, shape () or (C,)
        ``f32(s_x * s_w)``, per tensor or per output channel.

    Returns
    -------
    numpy.ndarray of float32, broadcast shape of the inputs
    """
    b = np.asarray(bias_float, dtype=np.float32)
    a = np.asarray(act_scale, dtype=np.float32)
    return np.asarray(np.divide(b, a, dtype=np.float32))


def _scaled_tflite(acc: np.ndarray, m: float, single: bool, rounding: str | None, seed) -> np.ndarray:
    q, shift = quantize_multiplier(m, single_rounding=single)
    if single:
        total = 31 - shift
        if rounding is None or rounding == "half_up":
            # (x * q + 2^(total-1)) >> total; |x*q| < 2^62, so int64 holds it exactly as in C.
            return (acc * np.int64(q) + np.int64(1 << (total - 1))) >> total
        return _round_int_div_pow2(acc * np.int64(q), total, rounding, seed)
    left = max(shift, 0)
    right = max(-shift, 0)
    x = _wrap_int32(acc << left) if left else acc  # C: x * (1 << left_shift) in int32
    return _rounding_divide_by_pot(_srdhm(x, q), right)


@njit(cache=True)
def _rq_f32_kernel(a3, m, lo, hi, z, zfirst, out3):
    """One pass of the float32 profiles (no float bias, the profile's own rounding) over ``a3`` (P, C, Q)
    int64 with ``m`` (C,) or (1,) float32: ``v = f32(f32(a) * m)`` (an IEEE float32 product: numba compiles
    without fastmath, so no FMA and no reassociation), then ``ort_cpu``: ``rne(clamp(v, lo, hi)) + z`` with
    ``lo = qmin - z``; ``torch_onednn`` (``zfirst``): ``rne(clamp(f32(v + z), lo, hi))`` with ``lo = qmin``.
    ``np.float32(int64)`` rounds once to nearest even, as numpy's ``astype(float32)`` and x86 ``cvtsi2ss``
    (``cvtdq2ps`` in MLAS) do; ``np.rint`` is round half to even, as numpy's."""
    p_n, c_n, q_n = a3.shape
    one = m.shape[0] == 1
    zf = np.float32(z) if zfirst else np.float32(0)
    zadd = np.int32(0) if zfirst else z
    for i in range(p_n):
        for c in range(c_n):
            mc = m[0] if one else m[c]
            src = a3[i, c]
            dst = out3[i, c]
            for j in range(q_n):
                v = np.float32(src[j]) * mc + zf  # + 0.0 is exact (ort_cpu)
                v = min(max(v, lo), hi)
                dst[j] = np.int32(np.rint(v)) + zadd


def requantize(acc, multiplier, *, zero_point: int, qmin: int, qmax: int, channel_axis: int | None = None,
               profile: str = "ort_cpu", float_bias=None, rounding: str | None = None,
               seed: int | None = None) -> np.ndarray:
    """Rescale an integer accumulator to output codes, bit-exactly as the named runtime does.

    Profiles (``docs/verification.md`` §0, §2, §3; ``rne`` = round half to even; ``z`` = ``zero_point``):

    ``ort_cpu`` (the default; ORT ``core/mlas/lib/quantize.cpp`` ``MlasRequantizeOutput``)
        ``y = clamp(rne(f32(f32(acc) * M)) + z, qmin, qmax)``. The accumulator is converted to float32 first
        (this rounds when ``|acc| > 2^24``, §0 point 1), multiplied in float32 without FMA, rounded, then
        ``z`` is added. MLAS clamps the float to ``[qmin - z, qmax - z]`` before converting; since those
        bounds are integers that is the same as clamping after.
    ``torch_onednn`` (PyTorch onednn engine, x86 conv; §3)
        ``y = clamp(rne(f32(f32(f32(acc) * M) + z)), qmin, qmax)``: ``z`` added in float before rounding,
        which differs from ``ort_cpu`` on exact ties when ``z`` is odd. (The float32 rounding of the ``+ z``
        step is our model; only the tie behaviour was measured.)
    ``torch_fbgemm`` (PyTorch fbgemm/qnnpack ``ReQuantizeOutput`` with a float bias; §3)
        ``y = clamp(rne(f32(f32(f32(acc) + f32(b / act)) * M)) + z, qmin, qmax)``: the bias is a float,
        added to the float32 accumulator *before* the multiply (``float_bias`` = ``f32(b / act)``, see
        :func:`fbgemm_bias_addend`); ``acc`` must then exclude the bias. Without ``float_bias`` it equals
        ``ort_cpu``. (The int16 pair saturation of fbgemm's depthwise kernels, and of its linear and conv on
        CPUs without VNNI, is an accumulator effect: ``int16_pairs`` of :func:`hwsim.datapath.conv2d_acc`.)
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

    ``rounding`` replaces the profile's rounding step by one of :data:`ROUNDING_MODES` (a hardware variant of
    the profile): for the float profiles and ``hawq_dyadic`` the scaled real value is rounded with
    :func:`round_values`; for ``tflite_single`` the exact product ``acc * q`` is divided by ``2^t`` with that
    rounding in integer arithmetic. ``tflite_double`` has two fixed rounding steps and accepts only ``None``.

    Parameters
    ----------
    acc : array_like of int
        The accumulator (bias included, except for ``torch_fbgemm`` with ``float_bias``), e.g. ``(N, K, Ho,
        Wo)`` int64 from ``conv2d_acc`` or ``(M, N)`` from ``gemm_acc``. For the ``tflite_*`` profiles every
        value must fit int32 (the TFLite accumulator type).
    multiplier : float or array_like of float, shape () or (C,)
        ``M``, per tensor or per channel along ``channel_axis``; positive and finite.
    zero_point : int
        Output zero point ``z``, in ``[qmin, qmax]``.
    qmin, qmax : int
        Saturation range (e.g. ``[-128, 127]``; ``[z, 127]`` for a fused ReLU), ``qmin <= qmax``.
    channel_axis : int or None
        The axis of ``acc`` that a per-channel ``multiplier`` (or ``float_bias``) runs along (1 for conv
        ``(N, K, Ho, Wo)`` and for GEMM ``(M, N)`` columns). Required when either has shape ``(C,)``.
    profile : str, default "ort_cpu"
        One of :data:`PROFILES`.
    float_bias : array_like of float32, shape () or (C,), optional
        ``torch_fbgemm`` only: the float32 addend ``f32(b / act)`` (accumulator units).
    rounding : str, optional
        One of :data:`ROUNDING_MODES`; ``None`` keeps the profile's rounding.
    seed : int, optional
        Seed of ``rounding="stochastic"``.

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
        Bad shapes, an unknown profile or rounding, a non-positive multiplier, ``zero_point`` outside ``[qmin,
        qmax]``, ``float_bias`` with a profile other than ``torch_fbgemm``, ``rounding`` with
        ``tflite_double``, or (``tflite_*``) an accumulator outside int32.
    """
    profile = check_profile(profile)
    rounding = _check_rounding(rounding)
    if rounding == "stochastic" and seed is None:
        raise ValueError("seed must be given for stochastic rounding, not None")
    if rounding is not None and profile == "tflite_double":
        raise ValueError(f"rounding must be None for profile 'tflite_double' (its two rounding steps are "
                         f"fixed), not {rounding!r}")
    if float_bias is not None and profile != "torch_fbgemm":
        raise ValueError(f"float_bias is only for profile 'torch_fbgemm', not {profile!r}")
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
    fb = None if float_bias is None else np.asarray(float_bias, dtype=np.float32)
    if fb is not None and fb.ndim > 1:
        raise ValueError(f"float_bias must have shape () or (C,), not {fb.shape}")
    nch = m.shape[0] if m.ndim == 1 else (fb.shape[0] if fb is not None and fb.ndim == 1 else None)
    if nch is not None:
        if m.ndim == 1 and fb is not None and fb.ndim == 1 and fb.shape != m.shape:
            raise ValueError(f"float_bias must have the shape of the multiplier {m.shape}, not {fb.shape}")
        if channel_axis is None:
            raise ValueError(f"channel_axis must be given for a per-channel multiplier of shape ({nch},), "
                             f"not None")
        if not -a.ndim <= channel_axis < a.ndim:
            raise ValueError(f"channel_axis must be in [{-a.ndim}, {a.ndim - 1}] for acc of shape {a.shape}, "
                             f"not {channel_axis}")
        ax = channel_axis % a.ndim
        if a.shape[ax] != nch:
            raise ValueError(f"acc must have {nch} channels along axis {channel_axis} "
                             f"(one per multiplier), "
                             f"not {a.shape[ax]}")
    else:
        ax = None

    def _bcast(v):
        if ax is None or v.ndim == 0:
            return v
        shape = [1] * a.ndim
        shape[ax] = v.shape[0]
        return v.reshape(shape)

    if profile in _FLOAT32_PROFILES and fb is None and rounding is None and a.size:
        # the same formula in one compiled pass (about 10x fewer memory passes than the numpy form below)
        shp = (1, 1, a.size) if ax is None else (int(np.prod(a.shape[:ax])), a.shape[ax],
                                                 int(np.prod(a.shape[ax + 1:])))
        out = np.empty(a.shape, np.int32)
        zfirst = profile == "torch_onednn"
        lo, hi = (qmin, qmax) if zfirst else (qmin - zero_point, qmax - zero_point)
        _rq_f32_kernel(np.ascontiguousarray(a).reshape(shp), m.astype(np.float32).reshape(-1), np.float32(lo),
                       np.float32(hi), np.int32(zero_point), zfirst, out.reshape(shp))
        return out
    if profile in _FLOAT32_PROFILES:
        m32 = _bcast(m.astype(np.float32))
        v = a.astype(np.float32)
        if fb is not None:
            v = np.add(v, _bcast(fb), dtype=np.float32)
        v = np.multiply(v, m32, dtype=np.float32)
        rnd = (lambda t: np.rint(t)) if rounding is None else (lambda t: round_values(t, rounding, seed=seed))
        if profile == "torch_onednn":
            v = np.add(v, np.float32(zero_point), dtype=np.float32)
            return rnd(np.clip(v, np.float32(qmin), np.float32(qmax))).astype(np.int32)
        v = rnd(np.clip(v, np.float32(qmin - zero_point), np.float32(qmax - zero_point)))
        return v.astype(np.int32) + np.int32(zero_point)

    if profile.startswith("tflite") and a.size and (a.min() < _INT32_MIN or a.max() > _INT32_MAX):
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
        cseed = None if seed is None else (seed, c)
        if profile == "hawq_dyadic":
            b, cc = dyadic_multiplier(mc)
            v = (part.astype(np.float64) * float(b)) / 2.0**cc
            v = np.rint(v) if rounding is None else round_values(v, rounding, seed=cseed)
            out[sl] = np.clip(v, qmin - zero_point, qmax - zero_point).astype(np.int64)
        else:
            out[sl] = _scaled_tflite(part, float(mc), profile == "tflite_single", rounding, cseed)
    return np.clip(out + zero_point, qmin, qmax).astype(np.int32)
