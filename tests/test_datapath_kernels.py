"""Integer datapath semantics that onnxruntime cannot check: independent references, narrow accumulators
(wrap vs saturate, hand-derived), sub-8-bit outputs, fused ReLU, pooling, and the exact error messages."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hwsim.datapath import (
    conv2d_acc,
    conv_output_size,
    gemm_acc,
    global_avgpool,
    maxpool2d,
    qlinear_conv2d,
    qlinear_matmul,
)
from hwsim.quant import QParams, requant_multiplier, requantize

F32 = np.float32


# -- independent references ----------------------------------------------------------------------------------

def ref_conv(x, w, x_zp, w_zp, bias, stride, pads, dil, groups):
    """Exact int64 conv by shifted slices and einsum (a different algorithm from the numba kernel)."""
    n, c, h, wd = x.shape
    k, cg, kr, ks = w.shape
    (sh, sw), (pt, pb, pl, pr), (dh, dw) = stride, pads, dil
    xs = np.pad(x.astype(np.int64) - x_zp, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    ws = w.astype(np.int64) - np.broadcast_to(np.asarray(w_zp, np.int64), (k,)).reshape(-1, 1, 1, 1)
    ho = (h + pt + pb - dh * (kr - 1) - 1) // sh + 1
    wo = (wd + pl + pr - dw * (ks - 1) - 1) // sw + 1
    kg = k // groups
    out = np.zeros((n, k, ho, wo), np.int64)
    for g, r, s in itertools.product(range(groups), range(kr), range(ks)):
        rows = slice(r * dh, r * dh + sh * (ho - 1) + 1, sh)
        cols = slice(s * dw, s * dw + sw * (wo - 1) + 1, sw)
        patch = xs[:, g * cg:(g + 1) * cg, rows, cols]
        out[:, g * kg:(g + 1) * kg] += np.einsum("nchw,kc->nkhw", patch, ws[g * kg:(g + 1) * kg, :, r, s])
    if bias is not None:
        out += np.asarray(bias, np.int64).reshape(1, -1, 1, 1)
    return out


def ref_conv_saturate(x, w, x_zp, w_zp, bias, stride, pads, dil, groups, bits):
    """Pure-Python saturating PE: per output, start at 0, add products in (c, r, s) order, then the bias."""
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    n_b, ch, h, wd = x.shape
    k_out, cg, kr, ks = w.shape
    (sh, sw), (pt, pb, pl, pr), (dh, dw) = stride, pads, dil
    ho = (h + pt + pb - dh * (kr - 1) - 1) // sh + 1
    wo = (wd + pl + pr - dw * (ks - 1) - 1) // sw + 1
    kg = k_out // groups
    out = np.zeros((n_b, k_out, ho, wo), np.int64)
    events = 0
    for n, k, oh, ow in itertools.product(range(n_b), range(k_out), range(ho), range(wo)):
        acc = 0
        g = k // kg
        for c, r, s in itertools.product(range(cg), range(kr), range(ks)):
            ih, iw = oh * sh - pt + r * dh, ow * sw - pl + s * dw
            xv = int(x[n, g * cg + c, ih, iw]) - x_zp if 0 <= ih < h and 0 <= iw < wd else 0
            acc += xv * (int(w[k, c, r, s]) - int(np.broadcast_to(w_zp, (k_out,))[k]))
            if not lo <= acc <= hi:
                acc, events = min(max(acc, lo), hi), events + 1
        if bias is not None:
            acc += int(bias[k])
            if not lo <= acc <= hi:
                acc, events = min(max(acc, lo), hi), events + 1
        out[n, k, oh, ow] = acc
    return out, events


def wrap(v, bits):
    return ((v + 2 ** (bits - 1)) % 2**bits) - 2 ** (bits - 1)


CONV_LAYOUTS = [
    # x shape, w shape, stride, pads, dilation, groups
    ((2, 4, 7, 7), (6, 4, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    ((1, 6, 15, 15), (6, 1, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 6),  # depthwise, stride 2, odd size
    ((1, 8, 9, 11), (8, 2, 3, 3), (1, 2), (2, 1, 0, 2), (2, 1), 4),
    ((2, 3, 5, 6), (4, 3, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    ((1, 2, 8, 8), (3, 2, 5, 5), (3, 2), (2, 2, 2, 2), (1, 1), 1),
    ((1, 4, 6, 6), (4, 2, 2, 3), (1, 1), (1, 0, 2, 1), (2, 2), 2),
]


@pytest.mark.parametrize("layout", range(len(CONV_LAYOUTS)))
def test_conv2d_acc_matches_reference(layout):
    xshape, wshape, stride, pads, dil, groups = CONV_LAYOUTS[layout]
    rng = np.random.default_rng(layout)
    x = rng.integers(0, 256, xshape).astype(np.uint8)
    w = rng.integers(-128, 128, wshape).astype(np.int8)
    w_zp = rng.integers(-5, 6, wshape[0])  # per-channel zero points with different values
    bias = rng.integers(-(2**20), 2**20, wshape[0]).astype(np.int32)
    kw = dict(stride=stride, pads=pads, dilation=dil, groups=groups)
    acc, overflow = conv2d_acc(x, w, x_zp=17, w_zp=w_zp, bias=bias, **kw)
    expect = ref_conv(x, w, 17, w_zp, bias, stride, pads, dil, groups)
    assert acc.dtype == np.int64 and overflow == 0
    np.testing.assert_array_equal(acc, expect)
    # a 16-bit accumulator wraps the same sums modulo 2^16 and counts the outputs that did not fit
    acc16, over16 = conv2d_acc(x, w, x_zp=17, w_zp=w_zp, bias=bias, acc_bits=16, **kw)
    np.testing.assert_array_equal(acc16, wrap(expect, 16))
    assert over16 == np.count_nonzero((expect < -(2**15)) | (expect >= 2**15)) > 0


@pytest.mark.parametrize("layout", [0, 1, 2, 5])
def test_conv2d_acc_saturate_matches_python_pe(layout):
    xshape, wshape, stride, pads, dil, groups = CONV_LAYOUTS[layout]
    rng = np.random.default_rng(100 + layout)
    x = rng.integers(-128, 128, xshape).astype(np.int8)
    w = rng.integers(-128, 128, wshape).astype(np.int8)
    bias = rng.integers(-3000, 3000, wshape[0]).astype(np.int32)
    kw = dict(stride=stride, pads=pads, dilation=dil, groups=groups)
    acc, events = conv2d_acc(x, w, x_zp=-3, w_zp=2, bias=bias, acc_bits=15, acc_mode="saturate", **kw)
    expect, expect_events = ref_conv_saturate(x, w, -3, 2, bias, stride, pads, dil, groups, 15)
    np.testing.assert_array_equal(acc, expect)
    assert events == expect_events > 0


def test_gemm_acc_matches_reference():
    rng = np.random.default_rng(7)
    a = rng.integers(-128, 128, (37, 53)).astype(np.int8)
    b = rng.integers(0, 256, (53, 29)).astype(np.uint8)
    b_zp = rng.integers(0, 256, 29)
    bias = rng.integers(-(2**25), 2**25, 29).astype(np.int32)
    acc, overflow = gemm_acc(a, b, a_zp=-9, b_zp=b_zp, bias=bias)
    expect = np.einsum("mk,kn->mn", a.astype(np.int64) + 9, b.astype(np.int64) - b_zp) + bias
    np.testing.assert_array_equal(acc, expect)
    assert overflow == 0


# -- narrow accumulators, hand-derived -----------------------------------------------------------------------

def test_gemm_wrap_vs_saturate_acc_bits_8():
    # One output, products 100, 100, -100 (in k order) into an 8-bit register [-128, 127]:
    #   wrap:     exact sum 100 fits -> 100, no overflow (intermediate overflow is invisible mod 2^8)
    #   saturate: 100 -> 200 clamps to 127 (1 event) -> 127 - 100 = 27
    a = np.array([[100, 100, -100]], np.int8)
    b = np.ones((3, 1), np.int8)
    assert gemm_acc(a, b, a_zp=0, b_zp=0, acc_bits=8) == (np.array([[100]]), 0)
    acc, events = gemm_acc(a, b, a_zp=0, b_zp=0, acc_bits=8, acc_mode="saturate")
    assert acc.tolist() == [[27]] and events == 1
    # Products 100, 100 (exact 200): wrap -> 200 - 256 = -56 with 1 overflowed output;
    # saturate -> 127 with 1 event
    a2 = np.array([[100, 100]], np.int8)
    acc, over = gemm_acc(a2, b[:2], a_zp=0, b_zp=0, acc_bits=8)
    assert acc.tolist() == [[-56]] and over == 1
    acc, events = gemm_acc(a2, b[:2], a_zp=0, b_zp=0, acc_bits=8, acc_mode="saturate")
    assert acc.tolist() == [[127]] and events == 1


def test_gemm_saturate_adds_bias_last():
    # Products 100, 100 then bias -100, 8-bit register:
    #   saturate: 100 -> 200 clamps to 127 (event) -> bias: 127 - 100 = 27
    #   wrap:     exact 100 + 100 - 100 = 100 fits: 100, no overflow
    a = np.array([[100, 100]], np.int8)
    b = np.ones((2, 1), np.int8)
    bias = np.array([-100], np.int32)
    acc, events = gemm_acc(a, b, a_zp=0, b_zp=0, bias=bias, acc_bits=8, acc_mode="saturate")
    assert acc.tolist() == [[27]] and events == 1
    assert gemm_acc(a, b, a_zp=0, b_zp=0, bias=bias, acc_bits=8) == (np.array([[100]]), 0)
    # bias saturating on its own: 100 + 100 = 200 -> 127 (event), + 100 -> 227 -> 127 (event): 2 events
    acc, events = gemm_acc(a, b, a_zp=0, b_zp=0, bias=np.array([100]), acc_bits=8, acc_mode="saturate")
    assert acc.tolist() == [[127]] and events == 2


def test_conv_saturate_order_is_c_r_s():
    # 1 output, C=2 channels, a 1x2 kernel. x - z_x = 1 everywhere; weights (c, r, s):
    #   c=0: [100, 100], c=1: [-100, -100]  -> (c, r, s) order: 100, 127 (sat), 27, -73
    # An (s, c) order would give 100, 0, 100, 0: no saturation. Exact sum: 0.
    x = np.full((1, 2, 1, 2), 11, np.uint8)
    w = np.array([[[[100, 100]], [[-100, -100]]]], np.int8)
    acc, events = conv2d_acc(x, w, x_zp=10, w_zp=0, acc_bits=8, acc_mode="saturate")
    assert acc.tolist() == [[[[-73]]]] and events == 1
    assert conv2d_acc(x, w, x_zp=10, w_zp=0, acc_bits=8) == (np.zeros((1, 1, 1, 1)), 0)


def test_conv_wrap_counts_outputs_not_steps():
    # 3 outputs (a 1x3 input, 1x1 kernel): products 60*3 = 180, -60*3 = -180, 120. In an 8-bit register:
    # 180 -> 180 - 256 = -76, -180 -> 76, 120 fits: 2 overflowed outputs.
    x = np.array([[[[60, -60, 40]]]], np.int8)
    w = np.full((1, 1, 1, 1), 3, np.int8)
    acc, over = conv2d_acc(x, w, x_zp=0, w_zp=0, acc_bits=8)
    assert acc.tolist() == [[[[-76, 76, 120]]]] and over == 2
    acc, events = conv2d_acc(x, w, x_zp=0, w_zp=0, acc_bits=8, acc_mode="saturate")
    assert acc.tolist() == [[[[127, -128, 120]]]] and events == 2


def test_acc_bits_64_is_the_exact_sum():
    x = np.full((1, 1, 1, 4), 255, np.uint8)
    w = np.full((1, 1, 1, 4), -128, np.int8)
    bias = np.array([2**31 - 1], np.int64)
    acc, over = conv2d_acc(x, w, x_zp=0, w_zp=0, bias=bias, acc_bits=64, pads=(0, 0, 0, 0))
    assert acc.tolist() == [[[[2**31 - 1 - 4 * 255 * 128]]]] and over == 0
    # at 32 bits the same output fits too; a bias of 2^31 - 1 plus a positive sum wraps
    acc, over = gemm_acc(np.array([[1]], np.int8), np.array([[1]], np.int8), a_zp=0, b_zp=0,
                         bias=np.array([2**31 - 1], np.int32))
    assert acc.tolist() == [[-(2**31)]] and over == 1


# -- sub-8-bit outputs, ReLU, profiles through the layers ----------------------------------------------------

def test_qlinear_matmul_4bit_output_hand_values():
    # acc = [-20, 3, 100, 4, 12] (a 1x1 weight of 1), M = 2^-4 * 2^-5 / 2^-6 = 1/8:
    # -2.5 -> -2, 0.375 -> 0, 12.5 -> 12 -> clamp 7, 0.5 -> 0, 1.5 -> 2 ; signed 4-bit range [-8, 7], z_y = 0
    a = np.array([[-20], [3], [100], [4], [12]], np.int8)
    b = np.ones((1, 1), np.int8)
    a_qp, b_qp = QParams(F32(2**-4), 0, 8, True), QParams(F32(2**-5), 0, 8, True)
    y_qp = QParams(F32(2**-6), 0, 4, True)
    y = qlinear_matmul(a, b, a_qp=a_qp, b_qp=b_qp, y_qp=y_qp)
    assert y.dtype == np.int8 and y[:, 0].tolist() == [-2, 0, 7, 0, 2]
    # unsigned 2-bit output [0, 3] with z_y = 1: -2 + 1 -> 0 (clamp), 0 + 1, 12 + 1 -> 3, 0 + 1, 2 + 1 = 3
    y2 = qlinear_matmul(a, b, a_qp=a_qp, b_qp=b_qp, y_qp=QParams(F32(2**-6), 1, 2, False))
    assert y2.dtype == np.uint8 and y2[:, 0].tolist() == [0, 1, 3, 1, 3]


def test_qlinear_relu_clamps_at_output_zero_point():
    # same accumulators; z_y = -3, int8: relu lower bound is -3 (real 0): -2.5 -> -2 - 3 = -5 -> -3
    a = np.array([[-20], [3], [100], [-100]], np.int8)
    b = np.ones((1, 1), np.int8)
    a_qp, b_qp = QParams(F32(2**-4), 0, 8, True), QParams(F32(2**-5), 0, 8, True)
    y_qp = QParams(F32(2**-6), -3, 8, True)
    plain = qlinear_matmul(a, b, a_qp=a_qp, b_qp=b_qp, y_qp=y_qp)
    relu = qlinear_matmul(a, b, a_qp=a_qp, b_qp=b_qp, y_qp=y_qp, relu=True)
    assert plain[:, 0].tolist() == [-5, -3, 9, -15]  # 100/8 = 12.5 -> 12 - 3 = 9; -12.5 -> -12 - 3
    assert relu[:, 0].tolist() == [-3, -3, 9, -3]


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 7, 8])
@pytest.mark.parametrize("signed", [False, True])
def test_qlinear_conv2d_low_bits_equal_requantize(bits, signed):
    rng = np.random.default_rng(bits * 2 + signed)
    x_qp = QParams(F32(0.05), 3 if not signed else -1, bits, signed)
    w_qp = QParams(rng.uniform(0.01, 0.1, 4).astype(F32), np.zeros(4, np.int32), bits, True, axis=0)
    x = rng.integers(x_qp.qmin, x_qp.qmax + 1, (1, 3, 6, 6)).astype(x_qp.storage_dtype)
    w = rng.integers(w_qp.qmin, w_qp.qmax + 1, (4, 3, 3, 3)).astype(np.int8)
    y_qp = QParams(F32(0.07), x_qp.qmax // 2 if not signed else 0, bits, signed)
    y, over = qlinear_conv2d(x, w, x_qp=x_qp, w_qp=w_qp, y_qp=y_qp, pads=(1, 1, 1, 1), relu=True,
                             return_overflow=True)
    acc, _ = conv2d_acc(x, w, x_zp=int(x_qp.zero_point), w_zp=0, pads=(1, 1, 1, 1))
    m = requant_multiplier(x_qp.scale, w_qp.scale, y_qp.scale)
    z = int(y_qp.zero_point)
    # ort_cpu by hand: rne(f32(f32(acc) * M)) + z, clamped to [max(qmin, z), qmax]
    v = np.rint(np.multiply(acc.astype(F32), m.reshape(1, -1, 1, 1), dtype=F32)).astype(np.int64) + z
    np.testing.assert_array_equal(y, np.clip(v, max(y_qp.qmin, z), y_qp.qmax))
    assert over == 0 and y.dtype == y_qp.storage_dtype
    assert y.min() >= max(y_qp.qmin, z) and y.max() <= y_qp.qmax


@pytest.mark.parametrize("profile", ["torch_onednn", "tflite_double", "tflite_single", "hawq_dyadic"])
def test_qlinear_conv2d_profiles_pass_through(profile):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (1, 2, 5, 5)).astype(np.uint8)
    w = rng.integers(-128, 128, (3, 2, 3, 3)).astype(np.int8)
    x_qp = QParams(F32(0.03), 10, 8, False)
    w_qp = QParams(np.array([0.01, 0.02, 0.005], F32), [0, 0, 0], 8, True, axis=0)
    y_qp = QParams(F32(0.4), 128, 8, False)
    y = qlinear_conv2d(x, w, x_qp=x_qp, w_qp=w_qp, y_qp=y_qp, profile=profile)
    acc, _ = conv2d_acc(x, w, x_zp=10, w_zp=0)
    m = requant_multiplier(x_qp.scale, w_qp.scale, y_qp.scale, profile=profile)
    expect = requantize(acc, m, zero_point=128, qmin=0, qmax=255, channel_axis=1, profile=profile)
    np.testing.assert_array_equal(y, expect)


# -- pooling -------------------------------------------------------------------------------------------------

def test_maxpool2d_padding_never_wins():
    # all codes at the int8 minimum; a padded 3x3/s2 window still returns -128 (padding acts as -inf)
    x = np.full((1, 1, 4, 4), -128, np.int8)
    assert maxpool2d(x, 3, 2, (1, 1, 1, 1)).tolist() == [[[[-128, -128], [-128, -128]]]]
    x = np.arange(16, dtype=np.uint8).reshape(1, 1, 4, 4)
    assert maxpool2d(x, 2).tolist() == [[[[5, 7], [13, 15]]]]
    assert maxpool2d(x, (2, 2), (1, 1), (1, 0, 1, 0))[0, 0, 0].tolist() == [0, 1, 2, 3]


def test_global_avgpool_hand_values():
    # 2x2 image [1, 2, 3, 5], z_x = 1: acc = 11 - 4 = 7; M = 1 / (0.5 * 4) = 0.5: 3.5 -> rne 4, + z_y 2 = 6
    x = np.array([[[[1, 2], [3, 5]]]], np.uint8)
    y = global_avgpool(x, x_qp=QParams(F32(1.0), 1, 8, False), y_qp=QParams(F32(0.5), 2, 4, False))
    assert y.tolist() == [[[[6]]]] and y.dtype == np.uint8


def test_conv_output_size():
    assert conv_output_size(15, 3, 2, 1, 1) == 8
    assert conv_output_size(13, 3, 1, 2, 2, dilation=2) == 13
    assert conv_output_size(8, 2, 2, 0, 0) == 4


# -- error messages (exact, anchored) ------------------------------------------------------------------------

X = np.zeros((1, 4, 5, 5), np.uint8)
W = np.zeros((4, 4, 3, 3), np.int8)


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: conv2d_acc(X[0], W, x_zp=0, w_zp=0), ValueError,
     r"^x_q must have 4 dimensions \(N, C, H, W\), not 3$"),
    (lambda: conv2d_acc(X, W[0], x_zp=0, w_zp=0), ValueError,
     r"^w_q must have 4 dimensions \(K, C/groups, R, S\), not 3$"),
    (lambda: conv2d_acc(X.astype(F32), W, x_zp=0, w_zp=0), TypeError,
     r"^x_q must have an integer dtype, not float32$"),
    (lambda: conv2d_acc(X.tolist(), W, x_zp=0, w_zp=0), TypeError,
     r"^x_q must be a numpy.ndarray, not list$"),
    (lambda: conv2d_acc(X, W, x_zp=0, w_zp=0, groups=3), ValueError,
     r"^x_q channels C=4 must be divisible by groups=3$"),
    (lambda: conv2d_acc(X, W, x_zp=0, w_zp=0, groups=2), ValueError,
     r"^w_q must have C/groups = 2 input channels \(dimension 1\), not 4$"),
    (lambda: conv2d_acc(X, W[:3, :2], x_zp=0, w_zp=0, groups=2), ValueError,
     r"^w_q output channels K=3 must be divisible by groups=2$"),
    (lambda: conv2d_acc(X, W, x_zp=0, w_zp=[0, 0]), ValueError,
     r"^w_zp must be a scalar or have shape \(4,\) \(one per output channel\), not \(2,\)$"),
    (lambda: conv2d_acc(X, W, x_zp=0.5, w_zp=0), TypeError, r"^x_zp must be an int, not 0\.5$"),
    (lambda: conv2d_acc(X, W, x_zp=0, w_zp=0, bias=np.zeros(3, np.int32)), ValueError,
     r"^bias must have shape \(4,\) \(one per output channel\), not \(3,\)$"),
    (lambda: conv2d_acc(X, W, x_zp=0, w_zp=0, bias=np.zeros(4, F32)), TypeError,
     r"^bias must have an integer dtype, not float32$"),
    (lambda: conv2d_acc(X, W, x_zp=0, w_zp=0, pads=(1, 1)), ValueError,
     r"^pads must be a tuple of 4 ints, not \(1, 1\)$"),
    (lambda: conv2d_acc(X, W, x_zp=0, w_zp=0, stride=(0, 1)), ValueError,
     r"^stride must be a tuple of 2 ints >= 1, not \(0, 1\)$"),
    (lambda: conv2d_acc(X, W, x_zp=0, w_zp=0, dilation=(3, 3)), ValueError,
     r"^output size must be positive, not -1x-1: the dilated kernel 7x7 does not fit the padded input 5x5$"),
    (lambda: conv2d_acc(X, W, x_zp=0, w_zp=0, acc_bits=1), ValueError,
     r"^acc_bits must be in \[2, 64\], not 1$"),
    (lambda: conv2d_acc(X, W, x_zp=0, w_zp=0, acc_bits=65), ValueError,
     r"^acc_bits must be in \[2, 64\], not 65$"),
    (lambda: conv2d_acc(X, W, x_zp=0, w_zp=0, acc_mode="clip"), ValueError,
     r"^acc_mode must be 'wrap' or 'saturate', not 'clip'$"),
    (lambda: gemm_acc(np.zeros((2, 3), np.int8), np.zeros((4, 2), np.int8), a_zp=0, b_zp=0), ValueError,
     r"^b_q must have K = 3 rows \(the columns of a_q\), not 4$"),
    (lambda: gemm_acc(np.zeros((2, 3, 1), np.int8), np.zeros((3, 2), np.int8), a_zp=0, b_zp=0), ValueError,
     r"^a_q must have 2 dimensions \(M, K\), not 3$"),
    (lambda: gemm_acc(np.zeros((2, 3), np.int8), np.zeros((3, 2), np.int8), a_zp=0, b_zp=np.zeros(3, int)),
     ValueError, r"^b_zp must be a scalar or have shape \(2,\) \(one per column\), not \(3,\)$"),
    (lambda: maxpool2d(X, 2, 2, (2, 0, 0, 0)), ValueError,
     r"^pads must be smaller than the kernel \(2, 2\), not \(2, 0, 0, 0\)$"),
    (lambda: maxpool2d(X.astype(np.int32), 2), TypeError,
     r"^x_q must have an integer dtype of at most 16 bits, not int32$"),
])
def test_datapath_errors(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_qlinear_errors():
    x_qp = QParams(F32(0.1), 0, 4, False)
    w_qp = QParams(F32(0.1), 0, 8, True)
    y_qp = QParams(F32(0.1), 0, 8, False)
    x = np.full((1, 4, 5, 5), 200, np.uint8)
    with pytest.raises(ValueError, match=r"^x_q values must lie in \[0, 15\] \(x_qp: 4-bit unsigned\), "
                                         r"found \[200, 200\]$"):
        qlinear_conv2d(x, W, x_qp=x_qp, w_qp=w_qp, y_qp=y_qp)
    pc = QParams(np.ones(5, F32), np.zeros(5, np.int32), 8, False, axis=1)
    with pytest.raises(ValueError,
                       match=r"^x_qp must be per tensor \(axis None\), not per channel along axis 1$"):
        qlinear_conv2d(X, W, x_qp=pc, w_qp=w_qp, y_qp=y_qp)
    w3 = QParams(np.ones(3, F32), np.zeros(3, np.int32), 8, True, axis=0)
    with pytest.raises(ValueError, match=r"^w_qp must have one scale per output channel \(4\), not 3$"):
        qlinear_conv2d(X, W, x_qp=y_qp, w_qp=w3, y_qp=y_qp)
    w_ax1 = QParams(np.ones(4, F32), np.zeros(4, np.int32), 8, True, axis=1)
    with pytest.raises(ValueError,
                       match=r"^w_qp must be per tensor or per output channel \(axis 0\), not axis 1$"):
        qlinear_conv2d(X, W, x_qp=y_qp, w_qp=w_ax1, y_qp=y_qp)
    with pytest.raises(TypeError, match=r"^y_qp must be a QParams, not float$"):
        qlinear_conv2d(X, W, x_qp=y_qp, w_qp=w_qp, y_qp=0.1)
    with pytest.raises(ValueError, match=r"^profile must be one of 'ort_cpu', 'torch_onednn', "
                                         r"'tflite_double', "
                                         r"'tflite_single', 'hawq_dyadic', 'torch_fbgemm', not 'tflite'$"):
        qlinear_matmul(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.int8), a_qp=y_qp, b_qp=w_qp, y_qp=y_qp,
                       profile="tflite")
    with pytest.raises(ValueError, match=r"^x_q must have 4 dimensions \(N, C, H, W\), not 2$"):
        global_avgpool(np.zeros((2, 2), np.uint8), x_qp=y_qp, y_qp=y_qp)
    with pytest.raises(ValueError, match=r"^x_q values must lie in \[0, 15\] \(x_qp: 4-bit unsigned\), "
                                         r"found \[200, 200\]$"):
        global_avgpool(x, x_qp=x_qp, y_qp=y_qp)
    b_ax0 = QParams(np.ones(2, F32), np.zeros(2, np.int32), 8, True, axis=0)
    with pytest.raises(ValueError, match=r"^b_qp must be per tensor or per column \(axis 1\), not axis 0$"):
        qlinear_matmul(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.int8), a_qp=y_qp, b_qp=b_ax0,
                       y_qp=y_qp)
