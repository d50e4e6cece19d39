"""The integer datapath and the quantizers against onnxruntime, bit for bit.

Each case builds one ONNX node with ``onnx.helper`` (opset 21), runs it on ORT's CPU EP and compares every
output code. The cases follow ``docs/verification.md`` §6: power-of-two scales that put many outputs
on exact .5 ties (with odd and even output zero points), saturation, the float32 conversion of large
accumulators, int32 wrap-around, per-channel scales, padding with a non-zero input zero point, groups,
depthwise, dilation, odd sizes with stride 2, and extreme operands. Where a case is meant to separate rounding
models, the test also asserts that it does (so a weaker case cannot pass silently).

Every comparison uses this host's target (``hwsim.onnxq.host_info``): on an AVX2 host without VNNI the u8 x s8
GEMM-like layers run with int16 pair sums (``int16_pairs``), as onnxruntime's MLAS does there; on a VNNI host
exactly. The wrappers below add that option; the pair model's own values are pinned host-independently in
``tests/test_verify_targets.py``.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from hwsim import datapath as _dp
from hwsim.datapath import global_avgpool, maxpool2d
from hwsim.onnxq import host_info, ort_int16_pairs
from hwsim.quant import QParams, dequantize, quantize, requant_multiplier

HOST = host_info().target


def _host_pairs(op, x, w, groups=1, transposed=False):
    depthwise = w.ndim == 4 and groups > 1 and w.shape[1] == 1 and w.shape[0] == groups
    return ort_int16_pairs(HOST, op, x.dtype, w.dtype, depthwise=depthwise)


def conv2d_acc(x, w, **kw):
    kw.setdefault("int16_pairs", _host_pairs("QLinearConv", x, w, kw.get("groups", 1)))
    return _dp.conv2d_acc(x, w, **kw)


def gemm_acc(a, b, **kw):
    kw.setdefault("int16_pairs", _host_pairs("QLinearMatMul", a, b))
    return _dp.gemm_acc(a, b, **kw)


def qlinear_conv2d(x, w, **kw):
    kw.setdefault("int16_pairs", _host_pairs("QLinearConv", x, w, kw.get("groups", 1)))
    return _dp.qlinear_conv2d(x, w, **kw)


def qlinear_matmul(a, b, **kw):
    kw.setdefault("int16_pairs", _host_pairs("QLinearMatMul", a, b))
    return _dp.qlinear_matmul(a, b, **kw)

F32 = np.float32


def run_ort(op: str, inputs: list, out_dtype, attrs: dict | None = None, opset: int = 21, domain: str = ""):
    """Run one ONNX node on ORT's CPU EP.

    ``inputs`` is ``[(name, array or None), ...]``: the first is the graph input, the others become
    initializers (``None`` = an omitted optional input)."""
    x_name, x = inputs[0]
    inits = [numpy_helper.from_array(np.asarray(v), n) for n, v in inputs[1:] if v is not None]
    node = helper.make_node(op, [n if v is not None else "" for n, v in inputs], ["y"], domain=domain,
                            **(attrs or {}))
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info(x_name, helper.np_dtype_to_tensor_dtype(x.dtype), x.shape)],
        [helper.make_tensor_value_info("y", helper.np_dtype_to_tensor_dtype(np.dtype(out_dtype)), None)],
        inits)
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=opsets)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {x_name: x})[0]


def ort_qlinearconv(x, x_qp, w, w_qp, y_qp, bias=None, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1),
                    groups=1):
    """ORT QLinearConv; ``pads`` in hwsim order (top, bottom, left, right), converted to ONNX's order."""
    pt, pb, pl, pr = pads
    inputs = [("x", x), ("xs", x_qp.scale), ("xz", x_qp.zero_point.astype(x.dtype)), ("w", w),
              ("ws", w_qp.scale), ("wz", w_qp.zero_point.astype(w.dtype)), ("ys", y_qp.scale),
              ("yz", y_qp.zero_point.astype(y_qp.storage_dtype)),
              ("B", None if bias is None else bias.astype(np.int32))]
    attrs = dict(strides=list(stride), pads=[pt, pl, pb, pr], dilations=list(dilation), group=groups)
    return run_ort("QLinearConv", inputs, y_qp.storage_dtype, attrs)


def ort_qlinearmatmul(a, a_qp, b, b_qp, y_qp):
    """ORT QLinearMatMul; a per-column ``b_qp`` becomes [1, N] scale and zero-point tensors (ORT wants it)."""
    shape = (1, b.shape[1]) if b_qp.per_channel else ()
    inputs = [("a", a), ("as", a_qp.scale), ("az", a_qp.zero_point.astype(a.dtype)), ("b", b),
              ("bs", b_qp.scale.reshape(shape)), ("bz", b_qp.zero_point.astype(b.dtype).reshape(shape)),
              ("ys", y_qp.scale), ("yz", y_qp.zero_point.astype(y_qp.storage_dtype))]
    return run_ort("QLinearMatMul", inputs, y_qp.storage_dtype)


def codes(rng, signed: bool, shape, lo=None, hi=None):
    """Random 8-bit codes of the given signedness, in [lo, hi] (default: the full range)."""
    lo = (-128 if signed else 0) if lo is None else lo
    hi = (127 if signed else 255) if hi is None else hi
    return rng.integers(lo, hi + 1, shape).astype(np.int8 if signed else np.uint8)


def spread_scale(acc, s_x, s_w, levels=60.0, pct=99) -> np.float32:
    """An output scale that maps the ``pct`` percentile of |acc| (in real units) to about ``levels`` codes."""
    real = float(np.percentile(np.abs(acc), pct)) * float(s_x) * float(np.max(s_w))
    return F32(max(real, 1e-6) / levels)


def pt_qp(scale, zp, signed):
    return QParams(F32(scale), zp, 8, signed)


def pc_qp(scales, axis, signed=True, zps=None):
    scales = np.asarray(scales, F32)
    zps = np.zeros(scales.shape, np.int32) if zps is None else zps
    return QParams(scales, zps, 8, signed, axis=axis)


# -- QLinearConv: layouts ------------------------------------------------------------------------------------

# name: (x signed, x shape, x_zp, w shape, per-channel w, w signed, w_zp, groups, stride, pads, dilation,
#        y_zp, bias)
CONV_CASES = {
    "u8_3x3_s1_pad_xzp7_bias": (False, (2, 8, 10, 10), 7, (16, 8, 3, 3), False, True, 0, 1, (1, 1),
                                (1, 1, 1, 1), (1, 1), 128, True),
    "s8_3x3_s2_15x15_per_channel_bias": (True, (1, 8, 15, 15), -3, (16, 8, 3, 3), True, True, 0, 1, (2, 2),
                                         (1, 1, 1, 1), (1, 1), -1, True),
    "u8_depthwise_s1_per_channel": (False, (1, 16, 12, 12), 128, (16, 1, 3, 3), True, True, 0, 16, (1, 1),
                                    (1, 1, 1, 1), (1, 1), 100, True),
    "s8_depthwise_s2_15x15": (True, (1, 8, 15, 15), 5, (8, 1, 3, 3), True, True, 0, 8, (2, 2), (1, 1, 1, 1),
                              (1, 1), 0, False),
    "u8_groups4_pad2_dilation2": (False, (1, 8, 13, 13), 20, (12, 2, 3, 3), False, True, 0, 4, (1, 1),
                                  (2, 2, 2, 2), (2, 2), 90, True),
    "s8_groups4_per_channel_stride2": (True, (2, 8, 15, 15), 0, (8, 2, 3, 3), True, True, 0, 4, (2, 2),
                                       (1, 1, 1, 1), (1, 1), 11, False),
    "u8_5x5_pad2": (False, (1, 4, 11, 11), 0, (8, 4, 5, 5), False, True, 0, 1, (1, 1), (2, 2, 2, 2),
                    (1, 1), 30, True),
    "s8_1x1_stride2_odd": (True, (2, 16, 7, 7), -128, (8, 16, 1, 1), True, True, 0, 1, (2, 2), (0, 0, 0, 0),
                           (1, 1), -50, True),
    "u8_asymmetric_pads_stride_dilation": (False, (1, 3, 9, 14), 50, (6, 3, 3, 2), False, True, 0, 1, (2, 1),
                                           (0, 2, 1, 0), (1, 2), 77, True),
    "u8_weights_zp127": (False, (1, 4, 9, 9), 3, (8, 4, 3, 3), False, False, 127, 1, (1, 1), (1, 1, 1, 1),
                         (1, 1), 64, True),
    "s8_weights_zp_nonzero": (True, (1, 4, 9, 9), -7, (8, 4, 3, 3), False, True, 5, 1, (1, 1), (1, 1, 1, 1),
                              (1, 1), 9, False),
}


@pytest.mark.parametrize("name", sorted(CONV_CASES))
def test_qlinear_conv2d_matches_ort(name):
    xs, xshape, xzp, wshape, per_ch, ws_signed, wzp, groups, stride, pads, dil, yzp, has_bias = \
        CONV_CASES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    x = codes(rng, xs, xshape)
    w = codes(rng, ws_signed, wshape)
    k = wshape[0]
    s_x = F32(rng.uniform(0.005, 0.05))
    if per_ch:
        w_qp = pc_qp(rng.uniform(0.001, 0.02, k), 0)
    else:
        w_qp = QParams(F32(rng.uniform(0.001, 0.02)), wzp, 8, ws_signed)
    bias = rng.integers(-30000, 30000, k).astype(np.int32) if has_bias else None
    x_qp = pt_qp(s_x, xzp, xs)
    kw = dict(bias=bias, stride=stride, pads=pads, dilation=dil, groups=groups)
    acc, overflow = conv2d_acc(x, w, x_zp=xzp, w_zp=w_qp.zero_point, **kw)
    assert overflow == 0
    y_qp = pt_qp(spread_scale(acc, s_x, w_qp.scale), yzp, xs)
    y = qlinear_conv2d(x, w, x_qp=x_qp, w_qp=w_qp, y_qp=y_qp, **kw)
    ref = ort_qlinearconv(x, x_qp, w, w_qp, y_qp, **kw)
    assert y.dtype == ref.dtype and y.shape == ref.shape
    np.testing.assert_array_equal(y, ref)
    # a real test: the outputs are spread out, not all clamped
    assert len(np.unique(y)) > 20


def test_conv_output_shapes_against_ort():
    # stride 2 on 15x15 with pad 1: (15 + 2 - 3) // 2 + 1 = 8; dilation 2, pad 2 on 13: (13 + 4 - 5) + 1 = 13
    y = ort_qlinearconv(*_tiny_conv((1, 2, 15, 15), (2, 2, 3, 3)), stride=(2, 2), pads=(1, 1, 1, 1))
    assert y.shape == (1, 2, 8, 8)


def _tiny_conv(xshape, wshape):
    rng = np.random.default_rng(5)
    return (codes(rng, False, xshape), pt_qp(0.1, 0, False), codes(rng, True, wshape), pt_qp(0.1, 0, True),
            pt_qp(1.0, 0, False))


# -- QLinearConv: rounding, saturation, accumulator edge cases -----------------------------------------------

@pytest.mark.parametrize("signed, y_zp", [(False, 100), (False, 101), (True, 0), (True, -7)])
def test_qlinear_conv2d_ties_power_of_two_scales(signed, y_zp):
    # s_x = 2^-4, s_w = 2^-5, s_y = 2^-6: M = 1/8 exactly, so every acc = 8j + 4 is an exact .5 tie.
    rng = np.random.default_rng(10 + y_zp)
    x_zp = -2 if signed else 9
    x = (rng.integers(-3, 4, (2, 6, 9, 9)) + x_zp).astype(np.int8 if signed else np.uint8)
    w = rng.integers(-3, 4, (8, 6, 3, 3)).astype(np.int8)
    x_qp, w_qp, y_qp = pt_qp(2**-4, x_zp, signed), pt_qp(2**-5, 0, True), pt_qp(2**-6, y_zp, signed)
    acc, _ = conv2d_acc(x, w, x_zp=x_zp, w_zp=0, pads=(1, 1, 1, 1))
    ties = np.count_nonzero(acc % 8 == 4)
    assert ties > 0.08 * acc.size
    y = qlinear_conv2d(x, w, x_qp=x_qp, w_qp=w_qp, y_qp=y_qp, pads=(1, 1, 1, 1))
    ref = ort_qlinearconv(x, x_qp, w, w_qp, y_qp, pads=(1, 1, 1, 1))
    np.testing.assert_array_equal(y, ref)
    # hand check of the rule: acc = 12 -> 1.5 -> rne 2; acc = 20 -> 2.5 -> rne 2; acc = -12 -> -2
    tie_12 = (acc == 12)
    if tie_12.any():
        assert np.all(y[tie_12].astype(int) == 2 + y_zp)
    # the zero point is added after rounding: with an odd z_y, the onednn order (z_y before rounding) differs
    onednn = qlinear_conv2d(x, w, x_qp=x_qp, w_qp=w_qp, y_qp=y_qp, pads=(1, 1, 1, 1), profile="torch_onednn")
    if y_zp % 2:
        assert np.count_nonzero(onednn != ref) > 0.5 * ties
    else:
        np.testing.assert_array_equal(onednn, ref)


@pytest.mark.parametrize("signed", [False, True])
def test_qlinear_conv2d_saturation(signed):
    rng = np.random.default_rng(20 + signed)
    x = codes(rng, signed, (1, 8, 10, 10))
    w = codes(rng, True, (8, 8, 3, 3))
    x_qp, w_qp = pt_qp(0.02, 3, signed), pc_qp(rng.uniform(0.002, 0.01, 8), 0)
    acc, _ = conv2d_acc(x, w, x_zp=3, w_zp=0)
    y_qp = pt_qp(spread_scale(acc, 0.02, w_qp.scale) / 40, 1, signed)  # s_y shrunk 40x
    y = qlinear_conv2d(x, w, x_qp=x_qp, w_qp=w_qp, y_qp=y_qp)
    np.testing.assert_array_equal(y, ort_qlinearconv(x, x_qp, w, w_qp, y_qp))
    lo, hi = y_qp.qmin, y_qp.qmax
    assert np.count_nonzero((y == lo) | (y == hi)) > 0.75 * y.size
    assert (y == lo).any() and (y == hi).any()


def test_qlinear_conv2d_float32_accumulator_conversion():
    # docs/verification.md §0 point 1 / §6: |acc + bias| in [2^24, 2^25.6) with M = 2^-18 and the bias at
    # exact tie points (odd multiples of 2^17). ORT converts the int32 accumulator to float32 (ulp 2 or 4
    # there) before scaling; an exact integer model (acc * M in double, then RNE) is wrong on many of these
    # outputs.
    rng = np.random.default_rng(30)
    k = 32
    x_zp = 128
    x = (rng.integers(-2, 3, (2, 16, 8, 8)) + x_zp).astype(np.uint8)
    w = rng.integers(-1, 2, (k, 16, 1, 1)).astype(np.int8)
    odd = rng.integers(128, 194, k) | 1  # bias / 2^17 odd, in [128, 194): bias in [2^24, 2^25.6)
    bias = (odd << 17).astype(np.int32)
    x_qp, w_qp, y_qp = pt_qp(2**-6, x_zp, False), pt_qp(2**-6, 0, True), pt_qp(2**6, 0, False)
    assert requant_multiplier(x_qp.scale, w_qp.scale, y_qp.scale) == F32(2**-18)
    acc, _ = conv2d_acc(x, w, x_zp=x_zp, w_zp=0, bias=bias)
    assert acc.min() >= 2**24
    y = qlinear_conv2d(x, w, x_qp=x_qp, w_qp=w_qp, y_qp=y_qp, bias=bias)
    ref = ort_qlinearconv(x, x_qp, w, w_qp, y_qp, bias=bias)
    np.testing.assert_array_equal(y, ref)
    exact = np.clip(np.rint(acc.astype(np.float64) * 2.0**-18), 0, 255)
    assert np.count_nonzero(exact != ref) > 0.05 * ref.size


def test_qlinear_conv2d_int32_accumulator_wraps_like_ort():
    # bias 2^31 - 1000 plus a positive sum of 4 * 200 * 100 = 80000 overflows int32 and wraps to
    # 2^31 - 1000 + 80000 - 2^32 = -2147404648; ORT's _mm_add_epi32 wraps the same way. With M = 2^-24 that is
    # -127.996 -> -128 -> + z_y 200 = 72 (a non-wrapping accumulator would give +128 + 200 -> clamp 255).
    x = np.full((1, 4, 3, 3), 200, np.uint8)
    w = np.full((2, 4, 1, 1), 100, np.int8)
    bias = np.array([2**31 - 1000, -(2**30)], np.int32)
    x_qp, w_qp, y_qp = pt_qp(2**-10, 0, False), pt_qp(2**-10, 0, True), pt_qp(2**4, 200, False)
    # (on a pair-saturating host onnxruntime sums sat16(2 * 20000) twice instead: 65534 for 80000, the same
    # codes)
    acc, overflow = _dp.conv2d_acc(x, w, x_zp=0, w_zp=0, bias=bias)
    assert acc[0, 0, 0, 0] == -2147404648 and overflow == 9  # the 9 outputs of channel 0
    assert acc[0, 1, 0, 0] == -(2**30) + 80000  # no wrap: (-2^30 + 80000) * 2^-24 = -63.995 -> -64 + 200
    y = qlinear_conv2d(x, w, x_qp=x_qp, w_qp=w_qp, y_qp=y_qp, bias=bias)
    ref = ort_qlinearconv(x, x_qp, w, w_qp, y_qp, bias=bias)
    np.testing.assert_array_equal(y, ref)
    assert ref[0, 0, 0, 0] == 72 and ref[0, 1, 0, 0] == 136


@pytest.mark.parametrize("xval, wval, signed", [(255, 127, False), (255, -128, False), (-128, -128, True),
                                                (127, 127, True), (-128, 127, True)])
def test_qlinear_conv2d_extreme_operands(xval, wval, signed):
    # x at an end of its range everywhere (padding = z_x = 0 at the border), w constant at an end: the int16
    # pair-overflow adversary of docs/verification.md §6 (harmless on VNNI hosts, where ORT is exact).
    x = np.full((1, 8, 6, 6), xval, np.int8 if signed else np.uint8)
    w = np.full((4, 8, 3, 3), wval, np.int8)
    acc, _ = _dp.conv2d_acc(x, w, x_zp=0, w_zp=0, pads=(1, 1, 1, 1))
    assert acc[0, 0, 2, 2] == 72 * xval * wval  # interior: 8 channels * 9 taps
    host_acc = conv2d_acc(x, w, x_zp=0, w_zp=0, pads=(1, 1, 1, 1))[0][0, 0, 2, 2]
    if _host_pairs("QLinearConv", x, w):  # 36 pairs (4 per tap), each sat16(2 * 255 * w)
        assert host_acc == 36 * int(np.clip(2 * xval * wval, -32768, 32767))
    x_qp, w_qp = pt_qp(0.01, 0, signed), pt_qp(0.01, 0, True)
    y_qp = pt_qp(abs(72 * xval * wval) * 1e-4 / 100, 5, signed)  # the interior maps to +-100 codes
    y = qlinear_conv2d(x, w, x_qp=x_qp, w_qp=w_qp, y_qp=y_qp, pads=(1, 1, 1, 1))
    ref = ort_qlinearconv(x, x_qp, w, w_qp, y_qp, pads=(1, 1, 1, 1))
    np.testing.assert_array_equal(y, ref)
    expect = int(np.clip(5 + round(100 * host_acc / (72 * xval * wval)) * np.sign(xval * wval), y_qp.qmin,
                         y_qp.qmax))
    assert abs(int(ref[0, 0, 2, 2]) - expect) <= 1


# -- QLinearMatMul -------------------------------------------------------------------------------------------

# name: (a signed, b signed, out signed, per-column b, a_zp, b_zp, y_zp)
MATMUL_CASES = {
    "u8s8_u8_per_tensor": (False, True, False, False, 100, 0, 128),
    "s8s8_s8_per_tensor_bzp": (True, True, True, False, -20, 3, -1),
    "u8s8_u8_per_column": (False, True, False, True, 0, 0, 10),
    "s8s8_s8_per_column": (True, True, True, True, 7, 0, 0),
    "u8u8_u8_per_column_zps": (False, False, False, True, 9, None, 33),
}


@pytest.mark.parametrize("name", sorted(MATMUL_CASES))
def test_qlinear_matmul_matches_ort(name):
    a_s, b_s, y_s, per_col, a_zp, b_zp, y_zp = MATMUL_CASES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    m, k, n = 33, 70, 19
    a = codes(rng, a_s, (m, k))
    b = codes(rng, b_s, (k, n))
    s_a = F32(rng.uniform(0.005, 0.05))
    if per_col:
        zps = rng.integers(0, 256, n) if b_zp is None else np.full(n, b_zp)
        b_qp = pc_qp(rng.uniform(0.001, 0.02, n), 1, b_s, zps)
    else:
        b_qp = QParams(F32(rng.uniform(0.001, 0.02)), b_zp, 8, b_s)
    a_qp = pt_qp(s_a, a_zp, a_s)
    acc, _ = gemm_acc(a, b, a_zp=a_zp, b_zp=b_qp.zero_point)
    y_qp = pt_qp(spread_scale(acc, s_a, b_qp.scale), y_zp, y_s)
    y = qlinear_matmul(a, b, a_qp=a_qp, b_qp=b_qp, y_qp=y_qp)
    ref = ort_qlinearmatmul(a, a_qp, b, b_qp, y_qp)
    assert y.dtype == ref.dtype
    np.testing.assert_array_equal(y, ref)
    assert len(np.unique(y)) > 20


@pytest.mark.parametrize("signed, y_zp", [(False, 100), (False, 101), (True, -4), (True, 3)])
def test_qlinear_matmul_ties(signed, y_zp):
    # uint8: s = 2^-4, 2^-5, 2^-6 -> M = 1/8 with b_zp = 3;
    # int8: s_y = 2^-5 -> M = 1/16 (ties at acc = 16j + 8)
    rng = np.random.default_rng(40 + y_zp)
    a_zp, b_zp = (-1, 0) if signed else (9, 3)
    a = (rng.integers(-3, 4, (40, 24)) + a_zp).astype(np.int8 if signed else np.uint8)
    b = (rng.integers(-3, 4, (24, 32)) + b_zp).astype(np.int8 if signed else np.uint8)
    a_qp, b_qp = pt_qp(2**-4, a_zp, signed), pt_qp(2**-5, b_zp, signed)
    y_qp = pt_qp(2**-5 if signed else 2**-6, y_zp, signed)
    period = 16 if signed else 8
    acc, _ = gemm_acc(a, b, a_zp=a_zp, b_zp=b_zp)
    assert np.count_nonzero(acc % period == period // 2) > 0.04 * acc.size
    y = qlinear_matmul(a, b, a_qp=a_qp, b_qp=b_qp, y_qp=y_qp)
    np.testing.assert_array_equal(y, ort_qlinearmatmul(a, a_qp, b, b_qp, y_qp))


@pytest.mark.parametrize("signed", [False, True])
def test_qlinear_matmul_saturation_and_extremes(signed):
    rng = np.random.default_rng(50 + signed)
    a = codes(rng, signed, (16, 64))
    a[0] = -128 if signed else 255  # extreme rows
    a[1] = 127 if signed else 0
    b = codes(rng, True, (64, 12))
    b[:, 0] = 127
    b[:, 1] = -128
    a_qp, b_qp = pt_qp(0.02, 0, signed), pc_qp(rng.uniform(0.002, 0.01, 12), 1)
    acc, _ = gemm_acc(a, b, a_zp=0, b_zp=0)
    y_qp = pt_qp(spread_scale(acc, 0.02, b_qp.scale, pct=50) / 40, 0, signed)
    y = qlinear_matmul(a, b, a_qp=a_qp, b_qp=b_qp, y_qp=y_qp)
    np.testing.assert_array_equal(y, ort_qlinearmatmul(a, a_qp, b, b_qp, y_qp))
    assert np.count_nonzero((y == y_qp.qmin) | (y == y_qp.qmax)) > 0.8 * y.size


def test_qlinear_matmul_large_accumulator_near_ties():
    # acc = 255 * S_j with S_j = sum_k b[k, j] chosen so that acc is 2^17 * odd + delta, |delta| <= 3, and acc
    # in [2^24, 2^26): M = 2^-18 puts acc * M within 2^-16 of a .5 tie, where f32(acc) (ulp 2 or 4) moves it.
    targets = [s for s in range(65794, 263172) if abs((255 * s) % 2**18 - 2**17) <= 3]
    assert len(targets) >= 4
    # weights up to 64: every pair 255 * 64 * 2 = 32,640 fits int16, so the sums are exact on every host
    k = 4200
    b = np.zeros((k, len(targets)), np.int8)
    for j, s in enumerate(targets):
        full, rest = divmod(s, 64)
        b[:full, j] = 64
        b[full, j] = rest
    a = np.full((2, k), 255, np.uint8)
    a[1, 0] = 0  # a second row, 255 * 64 smaller on every column
    a_qp, b_qp, y_qp = pt_qp(2**-6, 0, False), pt_qp(2**-6, 0, True), pt_qp(2**6, 0, False)
    acc, _ = gemm_acc(a, b, a_zp=0, b_zp=0)
    assert acc.min() >= 2**24 and acc.max() < 2**26
    y = qlinear_matmul(a, b, a_qp=a_qp, b_qp=b_qp, y_qp=y_qp)
    ref = ort_qlinearmatmul(a, a_qp, b, b_qp, y_qp)
    np.testing.assert_array_equal(y, ref)
    exact = np.rint(acc[0].astype(np.float64) / 2**18)
    assert np.count_nonzero(exact != ref[0]) >= 1


# -- QuantizeLinear / DequantizeLinear -----------------------------------------------------------------------

@pytest.mark.parametrize("signed, zp", [(False, 0), (False, 131), (True, 0), (True, -3)])
@pytest.mark.parametrize("scale", [1 / 3, 0.1, 2**-4, 0.0173])
def test_quantize_matches_ort(signed, zp, scale):
    rng = np.random.default_rng(60)
    s = F32(scale)
    qp = QParams(s, zp, 8, signed)
    x = (rng.uniform(-300, 300, 20000) * s).astype(F32)  # beyond the range at both ends
    ties = (np.arange(-300, 300) + 0.5).astype(F32) * s  # exact .5 ties (exact for s = 2^-4)
    x = np.concatenate([x, ties, [0.0, -0.0]]).astype(F32)
    ref = run_ort("QuantizeLinear", [("x", x), ("s", s), ("z", np.asarray(zp, qp.storage_dtype))],
                  qp.storage_dtype)
    y = quantize(x, qp)
    assert y.dtype == ref.dtype
    np.testing.assert_array_equal(y, ref)


def test_quantize_is_a_division_not_a_reciprocal_multiply():
    # Values next to ties where f32(x / s) and f32(x * f32(1 / s)) round to different integers; ORT divides.
    s = F32(1 / 3)
    k = np.arange(-120, 120)
    centre = ((k + 0.5) * np.float64(s)).astype(F32)
    cand = np.concatenate([np.nextafter(centre, F32(-np.inf)), centre, np.nextafter(centre, F32(np.inf))])
    div = np.rint(np.divide(cand, s, dtype=F32))
    mul = np.rint(np.multiply(cand, np.divide(F32(1), s, dtype=F32), dtype=F32))
    x = cand[div != mul].astype(F32)
    assert x.size >= 1
    qp = QParams(s, 0, 8, True)
    ref = run_ort("QuantizeLinear", [("x", x), ("s", s), ("z", np.int8(0))], np.int8)
    np.testing.assert_array_equal(quantize(x, qp), ref)
    assert np.all(quantize(x, qp) != np.clip(mul[div != mul], -128, 127))


def test_quantize_dequantize_per_axis_match_ort():
    rng = np.random.default_rng(61)
    scales = rng.uniform(0.01, 0.2, 5).astype(F32)
    zps = np.array([0, 3, 250, 17, 128])
    qp = QParams(scales, zps, 8, False, axis=1)
    x = rng.uniform(-30, 60, (4, 5, 50)).astype(F32)
    q_ref = run_ort("QuantizeLinear", [("x", x), ("s", scales), ("z", zps.astype(np.uint8))], np.uint8,
                    dict(axis=1))
    q = quantize(x, qp)
    np.testing.assert_array_equal(q, q_ref)
    d_ref = run_ort("DequantizeLinear", [("q", q), ("s", scales), ("z", zps.astype(np.uint8))], F32,
                    dict(axis=1))
    d = dequantize(q, qp)
    assert d.dtype == F32
    np.testing.assert_array_equal(d, d_ref)


# -- MaxPool -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("kernel, stride, pads", [((3, 3), (2, 2), (1, 1, 1, 1)),
                                                  ((2, 2), None, (0, 0, 0, 0)),
                                                  ((3, 2), (1, 2), (2, 0, 0, 1))])
def test_maxpool2d_matches_ort(signed, kernel, stride, pads):
    rng = np.random.default_rng(70)
    x = codes(rng, signed, (2, 3, 15, 15))
    x[0, 0] = -128 if signed else 0  # a whole plane at the minimum: padding must still lose
    pt, pb, pl, pr = pads
    attrs = dict(kernel_shape=list(kernel), pads=[pt, pl, pb, pr], strides=list(stride or kernel))
    ref = run_ort("MaxPool", [("x", x)], x.dtype, attrs, opset=12)
    y = maxpool2d(x, kernel, stride, pads)
    assert y.dtype == x.dtype
    np.testing.assert_array_equal(y, ref)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.float32])
@pytest.mark.parametrize("kernel, stride, pads, dil, ceil", [((2, 2), (2, 2), (0, 0, 0, 0), (2, 2), True),
                                                             ((3, 2), (2, 3), (1, 2, 0, 1), (1, 2), True),
                                                             ((2, 3), (1, 2), (1, 0, 1, 1), (3, 1), False)])
def test_maxpool2d_dilation_ceil_matches_ort(dtype, kernel, stride, pads, dil, ceil):
    # the one max pool (datapath, onnxq, models) with dilations and ceil mode on integer codes and float32
    rng = np.random.default_rng(71)
    x = codes(rng, dtype == np.int8, (2, 3, 10, 11)) if dtype != np.float32 else \
        rng.standard_normal((2, 3, 10, 11)).astype(np.float32)
    pt, pb, pl, pr = pads
    attrs = dict(kernel_shape=list(kernel), pads=[pt, pl, pb, pr], strides=list(stride), dilations=list(dil),
                 ceil_mode=int(ceil))
    ref = run_ort("MaxPool", [("x", x)], x.dtype, attrs, opset=12)
    y = maxpool2d(x, kernel, stride, pads, dilation=dil, ceil_mode=ceil)
    assert y.dtype == x.dtype and y.shape == ref.shape
    np.testing.assert_array_equal(y, ref)


# -- QLinearGlobalAveragePool (com.microsoft) ----------------------------------------------------------------

@pytest.mark.parametrize("signed, x_zp, s_y, y_zp, ties", [
    (False, 30, 0.002, 128, False), (True, -3, 0.0011, 1, False),
    # ties: H*W = 16, s_x = 2^-3, s_y = 2^-6 -> M = 2^-3 / (2^-6 * 16) = 1/2, so every odd acc is an exact
    # tie; with an odd z_y, rne(v) + z_y and rne(v + z_y) disagree on every tie
    (False, 100, 2**-6, 101, True), (True, 0, 2**-6, -7, True),
])
def test_global_avgpool_matches_ort(signed, x_zp, s_y, y_zp, ties):
    rng = np.random.default_rng(80 + signed)
    if ties:
        x = (rng.integers(-20, 21, (2, 24, 4, 4)) + x_zp).astype(np.int8 if signed else np.uint8)
        x_qp = pt_qp(2**-3, x_zp, signed)
    else:
        x = codes(rng, signed, (3, 20, 7, 7), lo=x_zp - 20, hi=x_zp + 20)
        x_qp = pt_qp(0.05, x_zp, signed)
    y_qp = pt_qp(s_y, y_zp, signed)
    inputs = [("x", x), ("xs", x_qp.scale), ("xz", x_qp.zero_point.astype(x.dtype)), ("ys", y_qp.scale),
              ("yz", y_qp.zero_point.astype(x.dtype))]
    ref = run_ort("QLinearGlobalAveragePool", inputs, x.dtype, dict(channels_last=0), domain="com.microsoft")
    y = global_avgpool(x, x_qp=x_qp, y_qp=y_qp)
    assert y.dtype == ref.dtype and y.shape == ref.shape == x.shape[:2] + (1, 1)
    np.testing.assert_array_equal(y, ref)
    assert len(np.unique(y)) > 10
    if ties:
        acc = x.astype(np.int64).sum(axis=(2, 3)) - x_zp * 16
        assert np.count_nonzero(acc % 2) > 0.3 * acc.size


# -- sub-8-bit codes and fused ReLU, anchored on ORT ---------------------------------------------------------

@pytest.mark.parametrize("x_bits, w_bits, y_bits, signed", [(4, 3, 4, False), (2, 2, 2, False),
                                                            (6, 4, 5, True), (3, 5, 7, True)])
def test_qlinear_conv2d_low_bits_are_ort_clamped(x_bits, w_bits, y_bits, signed):
    # Codes of b < 8 bits stored in int8/uint8 are valid 8-bit QLinearConv operands, and the narrower output
    # range is one more clamp: clamp(v, qmin_b, qmax_b) == clamp(clamp(v, 0|-128, 255|127), qmin_b, qmax_b).
    rng = np.random.default_rng(90 + x_bits * 10 + y_bits)
    x_qp = QParams(F32(0.1), 1 if not signed else 0, x_bits, signed)
    w_qp = QParams(rng.uniform(0.05, 0.2, 6).astype(F32), np.zeros(6, np.int32), w_bits, True, axis=0,
                   narrow_range=w_bits > 1)
    x = rng.integers(x_qp.qmin, x_qp.qmax + 1, (2, 4, 9, 9)).astype(x_qp.storage_dtype)
    w = rng.integers(w_qp.qmin, w_qp.qmax + 1, (6, 4, 3, 3)).astype(np.int8)
    acc, _ = conv2d_acc(x, w, x_zp=int(x_qp.zero_point), w_zp=0, pads=(1, 1, 1, 1), stride=(2, 2))
    s_y = spread_scale(acc, x_qp.scale, w_qp.scale, levels=2 ** (y_bits - 1), pct=90)
    y_qp = QParams(s_y, (2 ** (y_bits - 2)) if not signed else -1, y_bits, signed)
    y = qlinear_conv2d(x, w, x_qp=x_qp, w_qp=w_qp, y_qp=y_qp, pads=(1, 1, 1, 1), stride=(2, 2))
    y8 = QParams(y_qp.scale, int(y_qp.zero_point), 8, signed)
    ref = ort_qlinearconv(x, x_qp, w, w_qp, y8, pads=(1, 1, 1, 1), stride=(2, 2))
    np.testing.assert_array_equal(y, np.clip(ref, y_qp.qmin, y_qp.qmax))
    assert y.min() == y_qp.qmin and y.max() == y_qp.qmax  # both ends reached: the clamp is exercised


def test_qlinear_relu_is_ort_output_clamped_at_zero_point():
    # fused ReLU = clamp at z_y: clamp(v, max(qmin, z_y), qmax) == max(ORT QLinearConv output, z_y)
    rng = np.random.default_rng(95)
    x, w = codes(rng, False, (1, 4, 8, 8)), codes(rng, True, (8, 4, 3, 3))
    x_qp, w_qp, y_qp = pt_qp(0.02, 128, False), pt_qp(0.01, 0, True), pt_qp(0.05, 77, False)
    y = qlinear_conv2d(x, w, x_qp=x_qp, w_qp=w_qp, y_qp=y_qp, relu=True)
    ref = ort_qlinearconv(x, x_qp, w, w_qp, y_qp)
    assert (ref < 77).any()
    np.testing.assert_array_equal(y, np.maximum(ref, 77))
    a, b = codes(rng, True, (10, 20)), codes(rng, True, (20, 6))
    a_qp, b_qp, ym = pt_qp(0.02, 0, True), pt_qp(0.02, 0, True), pt_qp(0.02, -5, True)
    ref = ort_qlinearmatmul(a, a_qp, b, b_qp, ym)
    assert (ref < -5).any()
    np.testing.assert_array_equal(qlinear_matmul(a, b, a_qp=a_qp, b_qp=b_qp, y_qp=ym, relu=True),
                                  np.maximum(ref, -5))


# -- every requantization profile on the docs/verification.md §6 edge cases ------------------------------

@pytest.mark.parametrize("y_zp", [100, 101])
def test_profiles_on_depthwise_dilated_per_channel_ties(y_zp):
    """Depthwise 3x3, dilation 2, per-channel power-of-two weight scales (M_c = 2^-3 .. 2^-6, exact ties),
    small operands (many ties) and a few saturated outputs, odd and even output zero points. Each profile is
    compared with ORT: ort_cpu and torch_fbgemm (no float bias) and hawq_dyadic (|acc| < 2^24, dyadic M exact)
    agree everywhere; torch_onednn and tflite_single differ only on exact .5 ties (onednn only for odd z_y);
    tflite_double's double rounding stays within one code."""
    from hwsim.quant import PROFILES, requantize

    rng = np.random.default_rng(40 + y_zp)
    c = 8
    x_zp = 9
    x = (rng.integers(-6, 7, (2, c, 11, 11)) + x_zp).astype(np.uint8)
    x[0, :, 5, 5] = 255  # a few large outputs that saturate
    w = rng.integers(-5, 6, (c, 1, 3, 3)).astype(np.int8)
    w_scales = (2.0 ** -np.array([1, 2, 3, 4, 1, 2, 3, 4])).astype(F32)
    x_qp, w_qp, y_qp = pt_qp(2**-4, x_zp, False), pc_qp(w_scales, 0), pt_qp(2**-6, y_zp, False)
    kw = dict(pads=(2, 2, 2, 2), dilation=(2, 2), groups=c)
    acc, _ = conv2d_acc(x, w, x_zp=x_zp, w_zp=0, **kw)
    ref = ort_qlinearconv(x, x_qp, w, w_qp, y_qp, **kw).astype(int)
    m = (2.0**-4 * w_scales.astype(np.float64) / 2.0**-6).reshape(1, c, 1, 1)
    v = acc * m
    ties = np.abs(v - np.floor(v)) == 0.5
    assert ties.mean() > 0.08 and ((ref == 0) | (ref == 255)).any()
    for profile in PROFILES:
        mult = requant_multiplier(x_qp.scale, w_qp.scale, y_qp.scale, profile=profile)
        y = requantize(acc, mult, zero_point=y_zp, qmin=0, qmax=255, channel_axis=1,
                       profile=profile).astype(int)
        diff = y != ref
        if profile in ("ort_cpu", "torch_fbgemm", "hawq_dyadic"):
            assert not diff.any(), profile
        elif profile == "torch_onednn":
            assert not (diff & ~ties).any() and (diff.any() == bool(y_zp % 2))
        elif profile == "tflite_single":
            assert not (diff & ~ties).any() and diff.any()
        else:  # tflite_double
            assert np.abs(y - ref).max() <= 1 and diff.any()
        np.testing.assert_array_equal(y, qlinear_conv2d(x, w, x_qp=x_qp, w_qp=w_qp, y_qp=y_qp,
                                                        profile=profile, **kw).astype(int))
