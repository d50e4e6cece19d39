"""Affine quantizers (hwsim.numerics._affine) and requantization profiles (hwsim.numerics._requant).

Expected values are derived by hand in the comments; the ORT bit-exact comparisons are in
test_datapath_ort.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.quant import (
    PROFILES,
    QParams,
    asymmetric_per_tensor,
    dequantize,
    dyadic_multiplier,
    minmax_calibrate,
    qrange,
    quantize,
    quantize_multiplier,
    requant_multiplier,
    requantize,
    symmetric_per_channel,
)

F32 = np.float32


# -- QParams -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bits", range(1, 17))
def test_qrange_all_widths(bits):
    assert qrange(bits, True) == (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    assert qrange(bits, False) == (0, 2**bits - 1)
    if bits >= 2:
        assert qrange(bits, True, narrow_range=True) == (-(2 ** (bits - 1)) + 1, 2 ** (bits - 1) - 1)


def test_qparams_properties_and_storage():
    qp = QParams(0.5, -3, 4, True)
    assert (qp.qmin, qp.qmax) == (-8, 7)
    assert qp.scale.dtype == F32 and qp.scale.shape == () and qp.zero_point.dtype == np.int32
    assert qp.storage_dtype == np.int8 and not qp.per_channel
    assert QParams(1.0, 0, 8, False).storage_dtype == np.uint8
    assert QParams(1.0, 0, 9, False).storage_dtype == np.uint16
    assert QParams(1.0, 0, 16, True).storage_dtype == np.int16
    pc = QParams([0.1, 0.2], [0, 1], 8, False, axis=0)
    assert pc.per_channel and pc.scale.shape == (2,) and (pc.qmin, pc.qmax) == (0, 255)
    assert pc == QParams(np.array([0.1, 0.2], F32), np.array([0, 1]), 8, False, axis=0)
    assert hash(pc) == hash(QParams([0.1, 0.2], [0, 1], 8, False, axis=0))
    with pytest.raises(ValueError):  # frozen arrays
        pc.scale[0] = 1.0


@pytest.mark.parametrize("kwargs, exc, msg", [
    (dict(scale=0.0, zero_point=0, bits=8, signed=True), ValueError,
     r"^scale must be positive and finite, not 0\.0$"),
    (dict(scale=np.nan, zero_point=0, bits=8, signed=True), ValueError,
     r"^scale must be positive and finite, not nan$"),
    (dict(scale=1.0, zero_point=0, bits=0, signed=True), ValueError,
     r"^bits must be an integer in \[1, 16\], not 0$"),
    (dict(scale=1.0, zero_point=0, bits=17, signed=True), ValueError,
     r"^bits must be an integer in \[1, 16\], not 17$"),
    (dict(scale=1.0, zero_point=0, bits=8.0, signed=True), TypeError,
     r"^bits must be an integer in \[1, 16\], not 8\.0$"),
    (dict(scale=1.0, zero_point=200, bits=8, signed=True), ValueError,
     r"^zero_point must lie in \[-128, 127\], not 200$"),
    (dict(scale=1.0, zero_point=0.5, bits=8, signed=True), TypeError,
     r"^zero_point must hold integers, not float64 values 0\.5$"),
    (dict(scale=[1.0, 2.0], zero_point=0, bits=8, signed=True, axis=0), ValueError,
     r"^zero_point must have the shape of scale \(2,\), not \(\)$"),
    (dict(scale=[1.0, 2.0], zero_point=[0, 0], bits=8, signed=True), ValueError,
     r"^axis must be given for per-channel scale of shape \(2,\), not None$"),
    (dict(scale=1.0, zero_point=0, bits=8, signed=True, axis=0), ValueError,
     r"^axis must be None for a per-tensor \(shape \(\)\) scale, not 0$"),
    (dict(scale=[[1.0]], zero_point=[[0]], bits=8, signed=True, axis=0), ValueError,
     r"^scale must have shape \(\) or \(C,\), not \(1, 1\)$"),
    (dict(scale=1.0, zero_point=0, bits=8, signed=False, narrow_range=True), ValueError,
     r"^narrow_range requires signed codes, not signed=False$"),
    (dict(scale=1.0, zero_point=0, bits=8, signed="yes"), TypeError, r"^signed must be a bool, not 'yes'$"),
])
def test_qparams_errors(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        QParams(**kwargs)


# -- scale choice --------------------------------------------------------------------------------------------

def test_symmetric_per_channel_formula_and_zero_channel():
    w = np.array([[0.7, -0.35], [0.0, 0.0], [-2.54, 1.0]], np.float32)
    qp = symmetric_per_channel(w, 8)
    # scale_c = f32(max|w_c| / 127); the all-zero channel gets 1.0
    assert qp.scale.tolist() == [F32(0.7) / F32(127), 1.0, F32(2.54) / F32(127)]
    assert qp.axis == 0 and qp.signed and qp.narrow_range and (qp.qmin, qp.qmax) == (-127, 127)
    assert np.all(qp.zero_point == 0)
    q = quantize(w, qp)
    assert q.dtype == np.int8 and q[:, 0].tolist() == [127, 0, -127] and q[1].tolist() == [0, 0]


def test_symmetric_per_channel_4bit_ties_and_axes():
    # 4 bits: scale = 0.7 / 7 = 0.1 (float32); -0.35 / 0.1 = -3.5 -> rne -> -4
    w = np.array([[0.7, -0.35]], np.float32)
    qp = symmetric_per_channel(w, 4)
    assert qp.scale.tolist() == [F32(0.7) / F32(7)] and quantize(w, qp).tolist() == [[7, -4]]
    # axis=1 (MatMul B columns) and axis=None (per tensor)
    b = np.array([[1.0, -4.0], [-2.0, 0.5]], np.float32)
    assert symmetric_per_channel(b, 8, axis=1).scale.tolist() == [F32(2) / F32(127), F32(4) / F32(127)]
    t = symmetric_per_channel(b, 8, axis=None)
    assert t.scale.shape == () and t.axis is None and float(t.scale) == F32(4) / F32(127)


def test_symmetric_full_range():
    # narrow_range=False: scale = f32(0.3 / 127.5); 0.3 / scale = 127.5 in float32 -> rne 128 -> clamp 127,
    # -0.3 -> -127.5 -> -128 (the full signed range). For 1.0 the float32 quotient is 127.49999 -> 127, -127.
    w = np.array([[0.3, -0.3]])
    qp = symmetric_per_channel(w, 8, axis=None, narrow_range=False)
    assert float(qp.scale) == F32(0.3) / F32(127.5) and qp.qmin == -128
    assert quantize(w, qp).tolist() == [[127, -128]]
    one = symmetric_per_channel(np.array([1.0, -1.0]), 8, axis=None, narrow_range=False)
    assert quantize(np.array([1.0, -1.0]), one).tolist() == [127, -127]


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 7, 8])
def test_symmetric_roundtrip_error_bound(bits):
    rng = np.random.default_rng(bits)
    w = rng.normal(size=(6, 3, 3, 3)).astype(F32)
    qp = symmetric_per_channel(w, bits)
    q = quantize(w, qp)
    assert q.min() >= qp.qmin and q.max() <= qp.qmax
    assert np.abs(q).max() == 2 ** (bits - 1) - 1  # every channel's max hits the top code
    err = np.abs(dequantize(q, qp) - w)
    assert np.all(err <= qp.scale.reshape(-1, 1, 1, 1) * 0.5 * (1 + 1e-6))


def test_asymmetric_per_tensor_formula():
    # [-1, 3], uint8: scale = f32(4 / 255); zero point = rne(0 - (-1) / scale) = rne(63.75) = 64
    qp = asymmetric_per_tensor(-1.0, 3.0, 8)
    assert float(qp.scale) == F32(4) / F32(255) and int(qp.zero_point) == 64 and qp.axis is None
    assert quantize(np.array([-1.0, 0.0, 3.0]), qp).tolist() == [0, 64, 255]
    assert dequantize(np.array([64], np.uint8), qp).tolist() == [0.0]  # real 0 is exact
    # signed: zero point = rne(-128 + 63.75) = rne(-64.25) = -64
    qs = asymmetric_per_tensor(-1.0, 3.0, 8, signed=True)
    assert int(qs.zero_point) == -64 and qs.storage_dtype == np.int8
    # range widened to include 0: [0.5, 1.5] -> [0, 1.5]; 4 bits: scale = 1.5 / 15 = 0.1, zero point 0
    q4 = asymmetric_per_tensor(0.5, 1.5, 4)
    assert float(q4.scale) == F32(1.5) / F32(15) and int(q4.zero_point) == 0
    # all-negative range [-2, -1] -> [-2, 0]: zero point = rne(0 + 2 / (2/255)) = 255
    assert int(asymmetric_per_tensor(-2.0, -1.0, 8).zero_point) == 255
    # degenerate range: scale 1.0, zero point 0 (ORT compute_scale_zp)
    d = asymmetric_per_tensor(0.0, 0.0, 8)
    assert float(d.scale) == 1.0 and int(d.zero_point) == 0


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 7, 8])
@pytest.mark.parametrize("signed", [False, True])
def test_asymmetric_roundtrip_error_bound(bits, signed):
    rng = np.random.default_rng(bits)
    x = rng.uniform(-0.7, 2.3, 5000).astype(F32)
    qp = asymmetric_per_tensor(*minmax_calibrate([x]), bits, signed=signed)
    q = quantize(x, qp)
    assert q.dtype == (np.int8 if signed else np.uint8)
    assert q.min() == qp.qmin and q.max() >= qp.qmax - 1  # the calibrated range spans the codes
    assert np.abs(dequantize(q, qp) - x).max() <= 0.5 * float(qp.scale) * 1.0001 + 1e-7


def test_asymmetric_errors():
    with pytest.raises(ValueError, match=r"^xmin must be <= xmax, not xmin=2\.0 > xmax=1\.0$"):
        asymmetric_per_tensor(2.0, 1.0, 8)
    with pytest.raises(ValueError, match=r"^xmin must be finite \(no NaN or inf\)$"):
        asymmetric_per_tensor(-np.inf, 1.0, 8)
    with pytest.raises(ValueError, match=r"^bits must be an integer in \[2, 16\], not 1$"):
        symmetric_per_channel(np.ones(3), 1)
    with pytest.raises(ValueError, match=r"^axis must be in \[-2, 1\] for w of shape \(2, 2\), not 2$"):
        symmetric_per_channel(np.ones((2, 2)), 8, axis=2)


def test_minmax_calibrate():
    batches = (np.array([[0.5, -0.25]]), np.array([3.0, 1.0]), np.zeros(0), [-2.0])
    assert minmax_calibrate(iter(batches)) == (-2.0, 3.0)
    assert minmax_calibrate([np.float64(0.1)]) == (float(F32(0.1)), float(F32(0.1)))
    with pytest.raises(ValueError, match=r"^tensors must contain at least one non-empty array, found none$"):
        minmax_calibrate([np.zeros(0)])
    with pytest.raises(ValueError, match=r"^tensor 1 must be finite \(no NaN or inf\)$"):
        minmax_calibrate([np.ones(2), np.array([np.nan])])


# -- quantize / dequantize -----------------------------------------------------------------------------------

def test_quantize_round_half_even_and_saturate():
    # scale 1, zero point 0, int4 [-8, 7]: ties to even, then clamp
    qp = QParams(1.0, 0, 4, True)
    x = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 100.0, -100.0, np.inf, -np.inf]
    assert quantize(np.array(x), qp).tolist() == [0, 2, 2, 0, -2, -2, 7, -8, 7, -8]
    # the zero point is added after rounding: z = 1 -> rne(0.5) + 1 = 1, rne(1.5) + 1 = 3
    assert quantize(np.array([0.5, 1.5]), QParams(1.0, 1, 4, True)).tolist() == [1, 3]


def test_quantize_float64_input_is_rounded_to_float32_first():
    # 0.5 + 2^-30 is a float64 just above a tie; as float32 it is exactly 0.5 -> rne -> 0 (ORT takes float32)
    qp = QParams(1.0, 0, 8, True)
    assert quantize(np.array([0.5 + 2**-30]), qp).tolist() == [0]


def test_quantize_per_axis_and_errors():
    qp = QParams([1.0, 0.5], [0, 10], 8, False, axis=-1)
    x = np.array([[1.0, 1.0], [2.0, -5.0]])
    assert quantize(x, qp).tolist() == [[1, 12], [2, 0]]
    np.testing.assert_array_equal(dequantize(np.array([[1, 12]], np.uint8), qp), [[1.0, 1.0]])
    with pytest.raises(ValueError, match=r"^x must have 2 entries along axis -1 \(one per scale\), not 3 "
                                         r"\(shape \(2, 3\)\)$"):
        quantize(np.zeros((2, 3)), qp)
    with pytest.raises(ValueError, match=r"^x must not contain NaN$"):
        quantize(np.array([np.nan]), QParams(1.0, 0, 8, True))
    with pytest.raises(TypeError, match=r"^qp must be a QParams, not float$"):
        quantize(np.zeros(2), 0.5)
    with pytest.raises(TypeError, match=r"^q must be an integer array, not dtype float64$"):
        dequantize(np.zeros(2), QParams(1.0, 0, 8, True))


def test_dequantize_formula():
    # f32(f32(q - z) * s): (3 - (-2)) * 0.1f
    qp = QParams(0.1, -2, 8, True)
    assert dequantize(np.array([3], np.int8), qp).tolist() == [F32(5) * F32(0.1)]


# -- requantization ------------------------------------------------------------------------------------------

def test_requant_multiplier_orders():
    # ORT: f32(f32(s_x * s_w) / s_y), float32 throughout; TFLite: double; HAWQ: f64(f32(s_x*s_w)) / f64(s_y)
    sx, sw, sy = F32(0.1), np.array([0.3, 0.7], F32), F32(0.9)
    m = requant_multiplier(sx, sw, sy)
    assert m.dtype == F32 and m.shape == (2,)
    np.testing.assert_array_equal(m, np.divide(np.multiply(sx, sw, dtype=F32), sy, dtype=F32))
    t = requant_multiplier(sx, sw, sy, profile="tflite_double")
    assert t.dtype == np.float64
    np.testing.assert_array_equal(t, np.float64(sx) * sw.astype(np.float64) / np.float64(sy))
    h = requant_multiplier(sx, sw, sy, profile="hawq_dyadic")
    np.testing.assert_array_equal(h, np.multiply(sx, sw, dtype=F32).astype(np.float64) / np.float64(sy))
    # the order matters at the ulp level: find scales where f32(f32(a*b)/c) != f32(a*f32(b/c))
    rng = np.random.default_rng(0)
    a, b, c = (rng.uniform(0.001, 0.1, 2000).astype(F32) for _ in range(3))
    ort_order = np.divide(np.multiply(a, b, dtype=F32), c, dtype=F32)
    other = np.multiply(a, np.divide(b, c, dtype=F32), dtype=F32)
    i = int(np.flatnonzero(ort_order != other)[0])
    assert requant_multiplier(a[i], b[i], c[i]) == ort_order[i] != other[i]
    assert requant_multiplier(2**-4, 2**-5, 2**-6) == F32(0.125)
    with pytest.raises(ValueError,
                       match=r"^s_x and s_y must be scalars \(per tensor\), not shapes \(2,\) and \(\)$"):
        requant_multiplier([1.0, 2.0], 1.0, 1.0)


M8 = 0.125  # M = 1/8: acc = 8j + 4 is an exact tie
ACC = np.array([3, -3, 4, -4, 12, -12, 20, -20, 1000, -1000])


def req(profile, zp=0, acc=ACC, qmin=-128, qmax=127):
    m = requant_multiplier(2**-4, 2**-5, 2**-6, profile=profile)
    return requantize(acc, m, zero_point=zp, qmin=qmin, qmax=qmax, profile=profile).tolist()


def test_requantize_ort_cpu_hand_values():
    # acc / 8 = 0.375, -0.375, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 125, -125 -> RNE: 0 0 0 0 2 -2 2 -2 125 -125
    assert req("ort_cpu") == [0, 0, 0, 0, 2, -2, 2, -2, 125, -125]
    # z = 5 is added after rounding, then clamp to [-128, 127]: 125 + 5 -> 127
    assert req("ort_cpu", zp=5) == [5, 5, 5, 5, 7, 3, 7, 3, 127, -120]
    # float32 conversion of the accumulator: acc = 2^24 + 2^17 + 1 -> f32 = 2^24 + 2^17 (ulp 2, tie to even),
    # times 2^-18 = 64.5 -> RNE 64; the exact value 64.5000038 would round to 65.
    big = np.array([2**24 + 2**17 + 1])
    assert requantize(big, F32(2**-18), zero_point=0, qmin=0, qmax=255).tolist() == [64]


def test_requantize_torch_onednn_adds_zero_point_before_rounding():
    # z = 1 (odd): rne(0.5 + 1) = 2 (ORT: rne(0.5) + 1 = 1); rne(-0.5 + 1) = 0 (ORT: 1);
    # rne(1.5 + 1) = 2 (ORT: 3); rne(2.5 + 1) = 4 (ORT: 3). Even z = 0 agrees with ORT.
    onednn = req("torch_onednn", zp=1)
    ort = req("ort_cpu", zp=1)
    assert onednn[2:8] == [2, 0, 2, 0, 4, -2] and ort[2:8] == [1, 1, 3, -1, 3, -1]
    assert req("torch_onednn", zp=0) == req("ort_cpu", zp=0)


def test_requantize_tflite_double_rounding():
    # M = 1/8 -> (q, shift) = (2^30, -2). SRDHM(x, 2^30) = (x * 2^30 + nudge) / 2^31 truncated, then
    # RoundingDivideByPOT(., 2) rounds half away from zero (docs/verification.md §2):
    #   x = 3:  (3*2^30 + 2^30) / 2^31 = 2;  2 / 4 = 0.5 -> 1   (exact 0.375 -> 0: the double-rounding error)
    #   x = -3: (-3*2^30 + 1 - 2^30) / 2^31 = -1.99.. -> -1;  -1 / 4 = -0.25 -> 0
    #   x = 4:  5*2^30 / 2^31 = 2.5 -> 2;  0.5 -> 1;  x = -4: -2.49.. -> -2;  -0.5 -> -1
    #   x = 12: 6.5 -> 6; 1.5 -> 2;  x = 20: 10.5 -> 10; 2.5 -> 3 (away);  x = -20 -> -3;  x = 1000 -> 125
    assert quantize_multiplier(M8) == (2**30, -2)
    assert req("tflite_double") == [1, 0, 1, -1, 2, -2, 3, -3, 125, -125]


def test_requantize_tflite_double_rounding_multiplier_above_one():
    # M = 2: frexp = (0.5, 2) -> (q, shift) = (2^30, 2): left shift 2, no right shift.
    #   x = 3:  3 << 2 = 12; SRDHM(12, 2^30) = (12*2^30 + 2^30) / 2^31 = 6.5 -> truncated 6
    #   x = -5: -20; (-20*2^30 + 1 - 2^30) / 2^31 = -10.49.. -> -10
    assert quantize_multiplier(2.0) == (2**30, 2)
    assert requantize(np.array([3, -5]), 2.0, zero_point=0, qmin=-128, qmax=127,
                      profile="tflite_double").tolist() == [6, -10]


def test_requantize_tflite_single_rounding():
    # total shift 33: (x * 2^30 + 2^32) >> 33 = floor(x/8 + 0.5): round half up (toward +inf)
    #   3 -> floor(0.875) = 0; -3 -> floor(0.125) = 0; 4 -> 1; -4 -> 0; 12 -> 2; -12 -> -1; 20 -> 3; -20 -> -2
    assert req("tflite_single") == [0, 0, 1, 0, 2, -1, 3, -2, 125, -125]


def test_requantize_hawq_dyadic():
    # M = 1/8 -> b = 2^30, c = 33: rne(acc * 2^30 / 2^33) = rne(acc / 8): the same as ORT here
    assert dyadic_multiplier(M8) == (2**30, 33)
    assert req("hawq_dyadic") == req("ort_cpu")
    # M = 0.1: frexp = (0.8, -3), b = round_half_up(0.8 * 2^31) = 1717986918 (from 1717986918.4), c = 34
    assert dyadic_multiplier(0.1) == (1717986918, 34)
    # acc = 35: 35 * 1717986918 / 2^34 = 3.49999999994 -> 3 (the dyadic M is slightly below 0.1)
    assert requantize(np.array([35, 45]), np.float64(0.1), zero_point=0, qmin=-8, qmax=7,
                      profile="hawq_dyadic").tolist() == [3, 4]


def test_quantize_multiplier_edges():
    # 0.75: frexp = (0.75, 0) -> q = 0.75 * 2^31 = 1610612736
    assert quantize_multiplier(0.75) == (1610612736, 0)
    assert quantize_multiplier(1.0) == (2**30, 1)
    # 1 - 2^-40: q rounds to 2^31 -> halved to 2^30, shift 0 + 1
    assert quantize_multiplier(1 - 2**-40) == (2**30, 1)
    assert quantize_multiplier(2**-40) == (0, 0)  # shift -39 < -31: flushed to zero
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(2.0**31, single_rounding=True) == (2**31 - 1, 30)
    # round half away from zero: frac * 2^31 = 2^30 + 0.5 -> 2^30 + 1
    assert quantize_multiplier((2**30 + 0.5) / 2**31) == (2**30 + 1, 0)


def test_requantize_per_channel_axis():
    acc = np.array([[8, 8], [-8, 24]])
    m = np.array([0.25, 0.125], F32)
    out = requantize(acc, m, zero_point=0, qmin=-128, qmax=127, channel_axis=1)
    assert out.dtype == np.int32 and out.tolist() == [[2, 1], [-2, 3]]
    for profile in PROFILES:
        out = requantize(acc, m.astype(np.float64), zero_point=0, qmin=-128, qmax=127, channel_axis=1,
                         profile=profile)
        assert out.tolist() == [[2, 1], [-2, 3]]


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: requantize(np.ones(3), F32(1), zero_point=0, qmin=0, qmax=255), TypeError,
     r"^acc must be an integer array, not dtype float64$"),
    (lambda: requantize(np.ones(3, int), F32(-1), zero_point=0, qmin=0, qmax=255), ValueError,
     r"^multiplier must be positive and finite, not -1\.0$"),
    (lambda: requantize(np.ones((2, 3), int), np.ones(2, F32), zero_point=0, qmin=0, qmax=255), ValueError,
     r"^channel_axis must be given for a per-channel multiplier of shape \(2,\), not None$"),
    (lambda: requantize(np.ones((2, 3), int), np.ones(2, F32), zero_point=0, qmin=0, qmax=255,
                        channel_axis=1),
     ValueError, r"^acc must have 2 channels along axis 1 \(one per multiplier\), not 3$"),
    (lambda: requantize(np.ones(3, int), F32(1), zero_point=0, qmin=5, qmax=4), ValueError,
     r"^qmin must be <= qmax, not qmin=5 > qmax=4$"),
    (lambda: requantize(np.ones(3, int), F32(1), zero_point=0, qmin=0, qmax=255, profile="gemmlowp"),
     ValueError,
     r"^profile must be one of 'ort_cpu', 'torch_onednn', 'tflite_double', 'tflite_single', 'hawq_dyadic', "
     r"'torch_fbgemm', not 'gemmlowp'$"),
    (lambda: requantize(np.array([2**31]), 0.5, zero_point=0, qmin=0, qmax=255, profile="tflite_double"),
     ValueError, r"^acc must fit int32 for profile 'tflite_double', found range \[2147483648, 2147483648\]$"),
])
def test_requantize_errors(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


# -- rounding modes and the torch_fbgemm profile (hand-derived)
# ------------------------------------------------

def test_round_values_modes_by_hand():
    from hwsim.quant import ROUNDING_MODES, round_values

    v = [2.5, -2.5, 0.5, -0.5, 1.5, -1.5, 2.4, -2.6]
    assert round_values(v, "half_even").tolist() == [2, -2, 0, 0, 2, -2, 2, -3]
    assert round_values(v, "half_away").tolist() == [3, -3, 1, -1, 2, -2, 2, -3]
    assert round_values(v, "half_up").tolist() == [3, -2, 1, 0, 2, -1, 2, -3]
    assert round_values(v, "floor").tolist() == [2, -3, 0, -1, 1, -2, 2, -3]
    # stochastic: each value goes to one of its two neighbours, up with probability frac(v); seeded
    s = round_values(np.full(100_000, 0.25), "stochastic", seed=3)
    assert set(np.unique(s)) == {0.0, 1.0} and abs(s.mean() - 0.25) < 0.01
    assert np.array_equal(s, round_values(np.full(100_000, 0.25), "stochastic", seed=3))
    assert round_values([3.0, -7.0], "stochastic", seed=1).tolist() == [3, -7]  # integers stay
    assert ROUNDING_MODES == ("half_even", "half_away", "half_up", "floor", "stochastic")
    with pytest.raises(ValueError, match=r"^seed must be given for stochastic rounding, not None$"):
        round_values(v, "stochastic")


TIES = np.array([4, -4, 12, -12, 20, 3])  # / 8 = 0.5, -0.5, 1.5, -1.5, 2.5, 0.375


@pytest.mark.parametrize("profile", ["ort_cpu", "torch_onednn", "torch_fbgemm", "hawq_dyadic",
                                     "tflite_single"])
def test_requantize_rounding_modes_on_ties(profile):
    # M = 2^-4 * 2^-5 / 2^-6 = 1/8 exactly, so every profile sees the same exact ties
    # (docs/verification.md §6)
    def r(mode):
        return req(profile, acc=TIES, zp=0) if mode is None else requantize(
            TIES, requant_multiplier(2**-4, 2**-5, 2**-6, profile=profile), zero_point=0, qmin=-128, qmax=127,
            profile=profile, rounding=mode, seed=0).tolist()

    assert r("half_even") == [0, 0, 2, -2, 2, 0]
    assert r("half_away") == [1, -1, 2, -2, 3, 0]
    assert r("half_up") == [1, 0, 2, -1, 3, 0]
    assert r("floor") == [0, -1, 1, -2, 2, 0]
    assert r(None) == (r("half_up") if profile == "tflite_single" else r("half_even"))
    st = r("stochastic")
    assert all(lo <= s <= lo + 1 for s, lo in zip(st, [0, -1, 1, -2, 2, 0], strict=True))


def test_requantize_rounding_errors():
    with pytest.raises(ValueError, match=r"^rounding must be None for profile 'tflite_double'"):
        requantize(TIES, 0.125, zero_point=0, qmin=-128, qmax=127, profile="tflite_double", rounding="floor")
    with pytest.raises(ValueError, match=r"^rounding must be None or one of 'half_even'"):
        requantize(TIES, F32(0.125), zero_point=0, qmin=-128, qmax=127, rounding="up")
    with pytest.raises(ValueError, match=r"^float_bias is only for profile 'torch_fbgemm', not 'ort_cpu'$"):
        requantize(TIES, F32(0.125), zero_point=0, qmin=-128, qmax=127, float_bias=F32(0.5))


def test_torch_fbgemm_float_bias_before_the_multiply():
    from hwsim.quant import fbgemm_bias_addend

    # s_x = 2^-4, s_w = 2^-5 -> act = 2^-9; s_y = 2^-8 -> M = 1/2. A float bias of half a step (b = 0.5 *
    # act): fbgemm: rne((1 + 0.5) * 0.5) = rne(0.75) = 1; ORT with the int32 bias rne(0.5) = 0: rne(1 * 0.5) =
    # 0 (tie)
    act = F32(2**-9)
    addend = fbgemm_bias_addend(F32(0.5) * act, act)
    assert addend == F32(0.5)
    m = requant_multiplier(2**-4, 2**-5, 2**-8, profile="torch_fbgemm")
    assert m == F32(0.5)
    fb = requantize(np.array([1, 3, -1]), m, zero_point=0, qmin=-128, qmax=127, profile="torch_fbgemm",
                    float_bias=addend)
    assert fb.tolist() == [1, 2, 0]  # 0.75 -> 1; 1.75 -> 2; -0.25 -> 0
    assert requantize(np.array([1, 3, -1]), m, zero_point=0, qmin=-128, qmax=127).tolist() == [0, 2, 0]
    # the float32 sum rounds above 2^24: acc = 2^24 + 1 -> f32 2^24 (tie to even); + 1.0 -> 2^24 again, so
    # fbgemm gives 2^23, while an int32 bias (acc + 1 = 2^24 + 2, exact in float32) gives 2^23 + 1
    big = np.array([2**24 + 1])
    assert requantize(big, m, zero_point=0, qmin=0, qmax=2**30, profile="torch_fbgemm",
                      float_bias=F32(1.0)).tolist() == [2**23]
    assert requantize(big + 1, m, zero_point=0, qmin=0, qmax=2**30).tolist() == [2**23 + 1]
    # without a float bias it is ort_cpu
    assert req("torch_fbgemm") == req("ort_cpu")


@pytest.mark.parametrize("profile", ["ort_cpu", "torch_onednn", "torch_fbgemm"])
def test_requantize_compiled_pass_equals_numpy_form(profile):
    # The float32 profiles run one compiled pass when rounding is the profile's own; rounding="half_even"
    # (the same rounding) takes the numpy form. They must agree everywhere, in particular where int64 -> f32
    # rounds (|acc| > 2^24, ties to even), on exact .5 products, at the clamps, and per channel.
    rng = np.random.default_rng(7)
    acc = np.concatenate([rng.integers(-2**31, 2**31, 3000), rng.integers(-3000, 3000, 3000),
                          np.arange(2**24 - 40, 2**24 + 40), -np.arange(2**25 - 40, 2**25 + 40),
                          np.arange(-64, 64) * 8 + 4])
    for m in (F32(1 / 3), F32(2**-3), F32(2**-20), F32(7e-5)):
        for zp, qmin, qmax in ((0, -128, 127), (128, 0, 255), (3, -128, 127)):
            kw = dict(zero_point=zp, qmin=qmin, qmax=qmax, profile=profile)
            np.testing.assert_array_equal(requantize(acc, m, **kw),
                                          requantize(acc, m, rounding="half_even", **kw))
    acc4 = rng.integers(-2**20, 2**20, (2, 6, 5, 7))
    mc = (rng.random(6) * 1e-3 + 1e-5).astype(np.float32)
    kw = dict(zero_point=-3, qmin=-128, qmax=127, channel_axis=1, profile=profile)
    np.testing.assert_array_equal(requantize(acc4, mc, **kw),
                                  requantize(acc4, mc, rounding="half_even", **kw))
