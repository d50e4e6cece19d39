"""Fake (simulated) quantization agrees bit for bit with the integer datapath; the textbook QDQ version does
not always (measured)."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.datapath import conv2d_acc, gemm_acc, qlinear_conv2d, qlinear_matmul
from hwsim.quant import (
    QParams,
    asymmetric_qparams,
    dequantize,
    exact_conv2d_acc,
    exact_gemm_acc,
    fake_quant_conv2d,
    fake_quant_linear,
    float_conv2d,
    qdq_conv2d,
    quantize,
    quantize_bias,
    symmetric_qparams,
)

F32 = np.float32

CONV_CASES = [
    # (N, C, H, K, R, stride, pads, groups, per_channel, relu)
    (2, 8, 9, 6, 3, 1, (1, 1, 1, 1), 1, True, True),
    (1, 6, 15, 4, 3, 2, (1, 1, 1, 1), 2, False, False),
    (2, 12, 8, 12, 3, 1, (1, 1, 1, 1), 12, True, True),     # depthwise
    (1, 5, 7, 3, 1, 1, (0, 0, 0, 0), 1, True, False),       # 1x1
    (1, 4, 11, 5, 5, 2, (2, 1, 2, 1), 1, False, True),      # 5x5, asymmetric padding
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_fake_quant_conv2d_equals_the_integer_datapath_bit_for_bit(case):
    n, c, h, k, r, stride, pads, groups, per_channel, relu = case
    rng = np.random.default_rng(hash(case) % 2**32)
    x = rng.normal(0.2, 1.0, (n, c, h, h)).astype(F32)
    w = rng.standard_normal((k, c // groups, r, r)).astype(F32)
    b = rng.standard_normal(k).astype(F32)
    x_qp = asymmetric_qparams(x.min(), x.max(), 8)
    w_qp = symmetric_qparams(np.abs(w).reshape(k, -1).max(axis=1) if per_channel else np.abs(w).max(), 8,
                             axis=0 if per_channel else None)
    y_qp = asymmetric_qparams(-3.0, 5.0, 8)
    kw = dict(stride=(stride, stride), pads=pads, groups=groups)
    fq = fake_quant_conv2d(x, w, b, x_qp=x_qp, w_qp=w_qp, y_qp=y_qp, relu=relu, **kw)
    yq = qlinear_conv2d(quantize(x, x_qp), quantize(w, w_qp), x_qp=x_qp, w_qp=w_qp, y_qp=y_qp,
                        bias=quantize_bias(b, x_qp, w_qp), relu=relu, **kw)
    assert np.array_equal(fq, dequantize(yq, y_qp))
    # the exact float64 accumulator equals the datapath's 64-bit accumulator
    acc_f = exact_conv2d_acc(quantize(x, x_qp), quantize(w, w_qp), x_zp=int(x_qp.zero_point), **kw)
    acc_d, _ = conv2d_acc(quantize(x, x_qp), quantize(w, w_qp), x_zp=int(x_qp.zero_point), w_zp=0,
                          acc_bits=64, **kw)
    assert np.array_equal(acc_f, acc_d)


def test_fake_quant_linear_equals_qlinear_matmul_including_ties():
    # power-of-two scales put many outputs on exact .5 ties (docs/verification.md §6), odd output zero point
    rng = np.random.default_rng(9)
    x_qp = QParams(scale=F32(2**-4), zero_point=3, bits=8, signed=False)
    w_qp = QParams(scale=F32(2**-5), zero_point=0, bits=8, signed=True)
    y_qp = QParams(scale=F32(2**-6), zero_point=101, bits=8, signed=False)
    x = dequantize(rng.integers(0, 12, (64, 16)).astype(np.uint8), x_qp)
    w = dequantize(rng.integers(-3, 4, (8, 16)).astype(np.int8), w_qp)
    fq = fake_quant_linear(x, w, None, x_qp=x_qp, w_qp=w_qp, y_qp=y_qp)
    yq = qlinear_matmul(quantize(x, x_qp), quantize(w.T, w_qp), a_qp=x_qp, b_qp=w_qp, y_qp=y_qp)
    assert np.array_equal(fq, dequantize(yq, y_qp))
    acc = exact_gemm_acc(quantize(x, x_qp), quantize(w.T, w_qp), a_zp=3)
    assert np.array_equal(acc, gemm_acc(quantize(x, x_qp), quantize(w.T, w_qp), a_zp=3, b_zp=0,
                                        acc_bits=64)[0])
    # M = 2^-4 * 2^-5 / 2^-6 = 1/8: at least 10 % of outputs are exact ties, so rounding is really exercised
    assert np.mean((acc % 8) == 4) > 0.1


def test_textbook_qdq_differs_from_the_datapath_by_at_most_one_code():
    rng = np.random.default_rng(10)
    x = rng.normal(0, 1, (4, 16, 12, 12)).astype(F32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(F32) * 0.1
    b = rng.standard_normal(16).astype(F32) * 0.5
    x_qp = asymmetric_qparams(x.min(), x.max(), 8)
    w_qp = symmetric_qparams(np.abs(w).reshape(16, -1).max(axis=1), 8, axis=0)
    y_qp = asymmetric_qparams(-2.0, 2.0, 8)
    kw = dict(x_qp=x_qp, w_qp=w_qp, y_qp=y_qp, pads=(1, 1, 1, 1))
    exact = fake_quant_conv2d(x, w, b, **kw)
    qdq = qdq_conv2d(x, w, b, **kw)
    diff = np.rint((qdq - exact) / y_qp.scale).astype(np.int64)
    # measured: 6 of 9,216 outputs one code apart, none further. The integer datapath rounds the bias to int32
    # units of s_x * s_w (ONNX QLinearConv) while QDQ adds the float bias: an error of up to M/2 = 0.002 codes
    # moves an output near a .5 boundary to the other side. Without a bias the two agree on this data.
    assert np.abs(diff).max() == 1
    assert 0 < np.count_nonzero(diff) <= 20
    assert np.array_equal(fake_quant_conv2d(x, w, None, **kw), qdq_conv2d(x, w, None, **kw))


def test_float_conv2d_paths_agree_with_a_direct_loop():
    rng = np.random.default_rng(11)
    for groups, r in ((1, 3), (4, 3), (8, 3), (1, 1)):
        x = rng.standard_normal((1, 8, 6, 6))
        w = rng.standard_normal((8, 8 // groups, r, r))
        y = float_conv2d(x, w, None, stride=(2, 2), pads=(1, 0, 1, 0) if r == 3 else (0, 0, 0, 0),
                         groups=groups)
        xp = np.pad(x, ((0, 0), (0, 0), (1, 0), (1, 0))) if r == 3 else x
        ref = np.zeros_like(y)
        cg, kg = 8 // groups, 8 // groups
        for k in range(8):
            g = k // kg
            for i in range(y.shape[2]):
                for j in range(y.shape[3]):
                    patch = xp[0, g * cg:(g + 1) * cg, 2 * i:2 * i + r, 2 * j:2 * j + r]
                    ref[0, k, i, j] = np.sum(patch * w[k])
        assert np.allclose(y, ref, atol=1e-12)
