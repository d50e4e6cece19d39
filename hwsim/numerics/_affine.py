"""Uniform affine quantization: parameters, range-based scale choice, and ONNX/ORT-exact quantize formulas.

A real value ``r`` and its integer code ``q`` are related by ``r = s * (q - z)`` (Gholami et al. 2021, "A
Survey of Quantization Methods for Efficient Neural Network Inference", eq. 2-3), with a float32 scale ``s >
0`` and an integer zero point ``z``. The integer codes live in ``[qmin, qmax]``:

* signed ``b``-bit: ``[-2^(b-1), 2^(b-1) - 1]`` (``narrow_range``: ``[-(2^(b-1) - 1), 2^(b-1) - 1]``);
* unsigned ``b``-bit: ``[0, 2^b - 1]``.

:func:`quantize` and :func:`dequantize` reproduce onnxruntime's QuantizeLinear and DequantizeLinear bit for
bit (``docs/verification.md`` §0 and §1, ORT ``onnxruntime/core/mlas/lib/quantize.cpp``
``MlasQuantizeLinear``): a true float32 division, round half to even, then the zero point, then saturation.

Storage: quantized codes are returned in the smallest NumPy integer type that holds ``[qmin, qmax]``
(:attr:`QParams.storage_dtype`): ``int8``/``uint8`` for 1 to 8 bits (so 8-bit codes have ORT's own dtypes) and
``int16``/``uint16`` for 9 to 16 bits. Sub-byte codes are *not* packed here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = ["QParams", "symmetric_per_channel", "asymmetric_per_tensor", "minmax_calibrate", "quantize",
           "dequantize"]

_F32_TINY = float(np.finfo(np.float32).tiny)


def check_bits(bits, *, name: str = "bits", low: int = 1, high: int = 16) -> int:
    """``bits`` as an int after checking it is an integer (not a bool) in ``[low, high]``.

    Raises
    ------
    TypeError, ValueError
        Not an integer, or out of range; the message names ``name``.
    """
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
        raise TypeError(f"{name} must be an integer in [{low}, {high}], not {bits!r}")
    if not low <= int(bits) <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], not {int(bits)!r}")
    return int(bits)


def qrange(bits: int, signed: bool, narrow_range: bool = False) -> tuple[int, int]:
    """The integer range ``(qmin, qmax)`` of a ``bits``-bit code.

    Signed: ``[-2^(bits-1), 2^(bits-1) - 1]``, or ``[-(2^(bits-1) - 1), 2^(bits-1) - 1]`` with
    ``narrow_range``. Unsigned: ``[0, 2^bits - 1]``. This is the saturation range of ONNX QuantizeLinear for
    2, 4, 8 and 16 bits (``onnx/defs/quantization/defs.cc``), extended to every width from 1 to 16.
    """
    if signed:
        qmax = (1 << (bits - 1)) - 1
        return (-qmax if narrow_range else -qmax - 1), qmax
    return 0, (1 << bits) - 1


@dataclass(frozen=True, eq=False)
class QParams:
    """Parameters of a uniform affine quantizer, ``r = scale * (q - zero_point)``.

    Parameters
    ----------
    scale : array_like of float, shape () or (C,)
        Positive finite step size(s), stored as a read-only ``np.float32`` array. Shape ``()`` is per tensor;
        shape ``(C,)`` is per channel along ``axis``.
    zero_point : array_like of int, same shape as ``scale``
        The code of the real value 0, stored as a read-only ``np.int32`` array; must lie in ``[qmin, qmax]``.
    bits : int
        Code width, 1 to 16.
    signed : bool
        Two's-complement codes (``True``) or unsigned codes (``False``).
    axis : int or None
        The tensor axis that ``scale``/``zero_point`` run along (negative counts from the end); ``None``
        exactly when they are per tensor (shape ``()``).
    narrow_range : bool, default False
        Signed only: drop the most negative code, so ``qmin = -(2^(bits-1) - 1)`` (symmetric weights).

    Raises
    ------
    TypeError
        ``bits`` is not an integer, ``signed``/``narrow_range`` not a bool, ``axis`` not an int or None.
    ValueError
        A bad value; the message says the requirement and what was found.
    """

    scale: np.ndarray
    zero_point: np.ndarray
    bits: int
    signed: bool
    axis: int | None = None
    narrow_range: bool = False

    def __post_init__(self):
        bits = check_bits(self.bits)
        if not isinstance(self.signed, (bool, np.bool_)):
            raise TypeError(f"signed must be a bool, not {self.signed!r}")
        if not isinstance(self.narrow_range, (bool, np.bool_)):
            raise TypeError(f"narrow_range must be a bool, not {self.narrow_range!r}")
        if self.axis is not None and (isinstance(self.axis, bool)
                                      or not isinstance(self.axis, (int, np.integer))):
            raise TypeError(f"axis must be an int or None, not {self.axis!r}")
        if self.narrow_range and not self.signed:
            raise ValueError("narrow_range requires signed codes, not signed=False")
        if self.narrow_range and bits < 2:
            raise ValueError(f"narrow_range requires bits >= 2, not {bits}")
        scale = np.array(self.scale, dtype=np.float32)
        if scale.ndim > 1:
            raise ValueError(f"scale must have shape () or (C,), not {scale.shape}")
        if not (np.all(np.isfinite(scale)) and np.all(scale > 0)):
            raise ValueError(f"scale must be positive and finite, not {scale.tolist()!r}")
        zp_in = np.asarray(self.zero_point)
        integral_floats = zp_in.dtype.kind == "f" and np.all(zp_in == np.round(zp_in))
        if zp_in.dtype.kind not in "iu" and not integral_floats:
            raise TypeError(f"zero_point must hold integers, not {zp_in.dtype} values {zp_in.tolist()!r}")
        zp = zp_in.astype(np.int64)
        if zp.shape != scale.shape:
            raise ValueError(f"zero_point must have the shape of scale {scale.shape}, not {zp.shape}")
        qmin, qmax = qrange(bits, bool(self.signed), bool(self.narrow_range))
        if np.any(zp < qmin) or np.any(zp > qmax):
            raise ValueError(f"zero_point must lie in [{qmin}, {qmax}], not {zp.tolist()!r}")
        if scale.ndim == 1 and self.axis is None:
            raise ValueError(f"axis must be given for per-channel scale of shape {scale.shape}, not None")
        if scale.ndim == 0 and self.axis is not None:
            raise ValueError(f"axis must be None for a per-tensor (shape ()) scale, not {self.axis!r}")
        zp = zp.astype(np.int32)
        scale.flags.writeable = False
        zp.flags.writeable = False
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "zero_point", zp)
        object.__setattr__(self, "bits", bits)
        object.__setattr__(self, "signed", bool(self.signed))
        object.__setattr__(self, "narrow_range", bool(self.narrow_range))
        object.__setattr__(self, "axis", None if self.axis is None else int(self.axis))

    @property
    def qmin(self) -> int:
        """Smallest code: ``-2^(bits-1)`` (``+1`` with ``narrow_range``) if signed, else 0."""
        return qrange(self.bits, self.signed, self.narrow_range)[0]

    @property
    def qmax(self) -> int:
        """Largest code: ``2^(bits-1) - 1`` if signed, else ``2^bits - 1``."""
        return qrange(self.bits, self.signed, self.narrow_range)[1]

    @property
    def per_channel(self) -> bool:
        """True when ``scale`` has shape ``(C,)``."""
        return self.scale.ndim == 1

    @property
    def storage_dtype(self) -> np.dtype:
        """The NumPy dtype that :func:`quantize` returns: int8/uint8 up to 8 bits, int16/uint16 up to 16."""
        if self.bits <= 8:
            return np.dtype(np.int8 if self.signed else np.uint8)
        return np.dtype(np.int16 if self.signed else np.uint16)

    def __eq__(self, other):
        if not isinstance(other, QParams):
            return NotImplemented
        return (self.bits == other.bits and self.signed == other.signed and self.axis == other.axis
                and self.narrow_range == other.narrow_range and self.scale.shape == other.scale.shape
                and np.array_equal(self.scale, other.scale)
                and np.array_equal(self.zero_point, other.zero_point))

    def __hash__(self):
        return hash((self.bits, self.signed, self.axis, self.narrow_range, self.scale.tobytes(),
                     self.zero_point.tobytes()))

    def __repr__(self):
        s = self.scale.tolist()
        z = self.zero_point.tolist()
        nr = ", narrow_range=True" if self.narrow_range else ""
        return (f"QParams(scale={s!r}, zero_point={z!r}, bits={self.bits}, signed={self.signed}, "
                f"axis={self.axis}{nr})")


def as_float32(x, name: str) -> np.ndarray:
    """``x`` as a float32 array (a real numeric array of any shape; the values are rounded to float32).

    Raises
    ------
    TypeError
        ``x`` is not a real numeric array (``name`` is named).
    """
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a real numeric array, not dtype {a.dtype}")
    a = a.astype(np.float32, copy=False)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return a


def symmetric_per_channel(w, bits: int, axis: int | None = 0, narrow_range: bool = True) -> QParams:
    """Symmetric (zero point 0) signed quantizer for weights, one scale per channel along ``axis``.

    Formula (restricted range, Gholami et al. 2021 §III-B; TFLite/ORT symmetric weights)::

        narrow_range=True:  scale_c = f32(f32(max|w_c|) / (2^(b-1) - 1)),    codes [-(2^(b-1)-1), 2^(b-1)-1]
        narrow_range=False: scale_c = f32(f32(max|w_c|) / (2^(b-1) - 0.5)),  codes [-2^(b-1), 2^(b-1)-1]

    with ``b = bits`` (the full-range divisor ``(qmax - qmin) / 2`` is PyTorch's symmetric MinMaxObserver).
    The division is a float32 division. A channel whose scale would be below the smallest normal float32 (in
    particular an all-zero channel) gets ``scale = 1.0``: every code of such a channel is 0 anyway, and 1.0 is
    what ORT's ``quantization/quant_utils.py`` ``compute_scale_zp`` picks for an empty range.

    Parameters
    ----------
    w : array_like of float, any shape with ``ndim >= 1`` (e.g. conv weights ``(K, C/groups, R, S)``)
        The float weights (converted to float32).
    bits : int
        Code width, 2 to 16.
    axis : int or None, default 0
        The channel axis (0 = output channels for ONNX conv weights). ``None`` gives a single per-tensor
        scale. For a MatMul ``B`` of shape ``(K, N)`` use ``axis=1`` (per column, as ORT QLinearMatMul wants).
    narrow_range : bool, default True
        Restricted range (symmetric codes, as above).

    Returns
    -------
    QParams
        ``signed=True``, ``zero_point`` all 0, ``scale`` of shape ``(w.shape[axis],)`` (or ``()`` for
        ``axis=None``).

    Raises
    ------
    ValueError
        ``w`` is empty, 0-d with an axis, non-finite, or ``axis``/``bits`` are out of range.
    """
    bits = check_bits(bits, low=2)
    w = as_float32(w, "w")
    if w.size == 0:
        raise ValueError(f"w must not be empty, found shape {w.shape}")
    qmax = (1 << (bits - 1)) - 1
    divisor = np.float32(qmax) if narrow_range else np.float32(qmax + 0.5)
    if axis is None:
        amax = np.max(np.abs(w)).astype(np.float32)
    else:
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"axis must be an int or None, not {axis!r}")
        if not -w.ndim <= axis < w.ndim:
            raise ValueError(f"axis must be in [{-w.ndim}, {w.ndim - 1}] for w of shape {w.shape}, "
                             f"not {axis}")
        axis = int(axis) % w.ndim
        other = tuple(i for i in range(w.ndim) if i != axis)
        amax = np.max(np.abs(w), axis=other).astype(np.float32) if other else np.abs(w)
    scale = np.asarray(np.divide(amax, divisor, dtype=np.float32))
    scale = np.where(scale < _F32_TINY, np.float32(1.0), scale).astype(np.float32)
    return QParams(scale=scale, zero_point=np.zeros(scale.shape, np.int32), bits=bits, signed=True, axis=axis,
                   narrow_range=bool(narrow_range))


def asymmetric_per_tensor(xmin, xmax, bits: int, signed: bool = False) -> QParams:
    """Asymmetric per-tensor quantizer for activations from a calibrated range ``[xmin, xmax]``.

    Formula (ORT ``onnxruntime/quantization/quant_utils.py`` ``compute_scale_zp``; Gholami et al. 2021 eq.
    3)::

        xmin' = min(xmin, 0),  xmax' = max(xmax, 0)           # the range always contains real 0
        scale = f32( f32(xmax' - xmin') / (qmax - qmin) )     # float32 subtraction and division
        zero_point = clamp( rne(qmin - xmin' / scale), qmin, qmax )   # in float64, with the float32 scale

    ``rne`` is round half to even. If ``scale`` is below the smallest normal float32 (e.g. ``xmin = xmax =
    0``), ``scale = 1.0`` and ``zero_point = 0``, as ORT does. Because 0 lies in the range, real 0 is exactly
    representable (``dequantize(zero_point) == 0``), so zero padding is exact.

    Parameters
    ----------
    xmin, xmax : float
        The observed range (e.g. from :func:`minmax_calibrate`), ``xmin <= xmax``, both finite.
    bits : int
        Code width, 1 to 16.
    signed : bool, default False
        Signed codes ``[-2^(bits-1), 2^(bits-1)-1]`` or unsigned ``[0, 2^bits - 1]`` (ORT's default is uint8).

    Returns
    -------
    QParams
        Per tensor (``axis=None``), ``scale`` and ``zero_point`` of shape ``()``.

    Raises
    ------
    ValueError
        ``xmin > xmax``, a non-finite bound, or ``bits`` out of range.
    """
    bits = check_bits(bits)
    lo = as_float32(xmin, "xmin")
    hi = as_float32(xmax, "xmax")
    if lo.ndim or hi.ndim:
        raise ValueError(f"xmin and xmax must be scalars, not shapes {lo.shape} and {hi.shape}")
    if lo > hi:
        raise ValueError(f"xmin must be <= xmax, not xmin={float(lo)!r} > xmax={float(hi)!r}")
    lo = np.minimum(lo, np.float32(0))
    hi = np.maximum(hi, np.float32(0))
    qmin, qmax = qrange(bits, bool(signed))
    scale = np.float32(np.float32(hi - lo) / np.float32(qmax - qmin))
    if not scale >= _F32_TINY:
        return QParams(scale=np.float32(1.0), zero_point=0, bits=bits, signed=bool(signed))
    zp = int(np.clip(np.round(np.float64(qmin) - np.float64(lo) / np.float64(scale)), qmin, qmax))
    return QParams(scale=scale, zero_point=zp, bits=bits, signed=bool(signed))


def minmax_calibrate(tensors: Iterable) -> tuple[float, float]:
    """Running minimum and maximum over an iterable of arrays (a min/max calibrator).

    Parameters
    ----------
    tensors : iterable of array_like of float
        Calibration activations, any shapes; consumed once (a generator is fine).

    Returns
    -------
    (xmin, xmax) : tuple of float
        The smallest and the largest value seen, as Python floats of float32 values (the inputs are converted
        to float32 first, as the quantizer sees them).

    Raises
    ------
    ValueError
        The iterable is empty, holds only empty arrays, or a value is NaN or infinite.
    """
    lo = np.float32(np.inf)
    hi = np.float32(-np.inf)
    seen = 0
    for i, t in enumerate(tensors):
        a = np.asarray(t)
        if a.dtype.kind not in "fiu":
            raise TypeError(f"tensor {i} must be a real numeric array, not dtype {a.dtype}")
        a = a.astype(np.float32, copy=False)
        if a.size == 0:
            continue
        if not np.all(np.isfinite(a)):
            raise ValueError(f"tensor {i} must be finite (no NaN or inf)")
        lo = min(lo, a.min())
        hi = max(hi, a.max())
        seen += 1
    if seen == 0:
        raise ValueError("tensors must contain at least one non-empty array, found none")
    return float(lo), float(hi)


def _broadcast_params(qp: QParams, ndim: int, shape: tuple, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``scale`` and ``zero_point`` reshaped to broadcast against an array of ``shape``."""
    if qp.axis is None:
        return qp.scale, qp.zero_point
    if not -ndim <= qp.axis < ndim:
        raise ValueError(f"{name} must have an axis {qp.axis} for per-channel QParams, found shape {shape}")
    ax = qp.axis % ndim
    if shape[ax] != qp.scale.shape[0]:
        raise ValueError(f"{name} must have {qp.scale.shape[0]} entries along axis {qp.axis} "
                         f"(one per scale), "
                         f"not {shape[ax]} (shape {shape})")
    bshape = [1] * ndim
    bshape[ax] = shape[ax]
    return qp.scale.reshape(bshape), qp.zero_point.reshape(bshape)


def quantize(x, qp: QParams) -> np.ndarray:
    """Quantize real values exactly as onnxruntime's QuantizeLinear does.

    Formula (``docs/verification.md`` §0 "ONNX QuantizeLinear (ORT)", ORT ``core/mlas/lib/quantize.cpp``
    ``MlasQuantizeLinear``, ``qmath.h``)::

        y = clamp( rne( f32(x / s) ) + z, qmin, qmax )

    with ``x`` converted to float32 first, ``x / s`` a true float32 division (not ``x * (1/s)``, which differs
    on about 1 in 200k values) and ``rne`` round half to even. Per-channel parameters broadcast along
    ``qp.axis``.

    Parameters
    ----------
    x : array_like of float, any shape
        Real values (converted to float32; float64 input is rounded to float32 first, as ORT's float input
        is).
    qp : QParams
        The quantizer.

    Returns
    -------
    numpy.ndarray, shape of ``x``, dtype ``qp.storage_dtype`` (int8/uint8 for <= 8 bits, int16/uint16 above)
        The codes, each in ``[qp.qmin, qp.qmax]``.

    Raises
    ------
    TypeError
        ``qp`` is not a QParams, or ``x`` is not numeric.
    ValueError
        ``x`` holds NaN, or has no axis ``qp.axis`` / the wrong length along it.
    """
    if not isinstance(qp, QParams):
        raise TypeError(f"qp must be a QParams, not {type(qp).__name__}")
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"x must be a real numeric array, not dtype {a.dtype}")
    a = a.astype(np.float32, copy=False)
    if np.isnan(a).any():
        raise ValueError("x must not contain NaN")
    s, z = _broadcast_params(qp, a.ndim, a.shape, "x")
    v = np.divide(a, s, dtype=np.float32)
    # Clamping before rounding is the same as after (the bounds qmin - z, qmax - z are integers); it keeps
    # infinities and huge quotients out of the integer conversion, as MLAS's float clamp does.
    lo = (qp.qmin - z).astype(np.float32)
    hi = (qp.qmax - z).astype(np.float32)
    v = np.rint(np.clip(v, lo, hi))
    return (v.astype(np.int32) + z).astype(qp.storage_dtype)


def dequantize(q, qp: QParams) -> np.ndarray:
    """Real values of integer codes, exactly as onnxruntime's DequantizeLinear computes them.

    Formula (``docs/verification.md`` §0 "ONNX DequantizeLinear (ORT)")::

        y = f32( f32(q - z) * s )

    ``q - z`` is exact in int32 and exactly representable in float32 (|q - z| < 2^17), so only the multiply
    rounds.

    Parameters
    ----------
    q : array_like of int, any shape
        Codes (any integer dtype; values are not range-checked).
    qp : QParams
        The quantizer; per-channel parameters broadcast along ``qp.axis``.

    Returns
    -------
    numpy.ndarray of float32, shape of ``q``

    Raises
    ------
    TypeError
        ``qp`` is not a QParams, or ``q`` is not an integer array.
    ValueError
        ``q`` has no axis ``qp.axis`` / the wrong length along it.
    """
    if not isinstance(qp, QParams):
        raise TypeError(f"qp must be a QParams, not {type(qp).__name__}")
    a = np.asarray(q)
    if a.dtype.kind not in "iu":
        raise TypeError(f"q must be an integer array, not dtype {a.dtype}")
    s, z = _broadcast_params(qp, a.ndim, a.shape, "q")
    d = (a.astype(np.int64) - z).astype(np.float32)
    return np.multiply(d, s, dtype=np.float32)
