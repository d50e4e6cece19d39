"""Uniform quantizers from a range (symmetric full/restricted/unsigned, asymmetric, per tensor/channel/group),
dynamic ranges against onnxruntime's DynamicQuantizeLinear, and non-uniform / extreme weight quantizers.

Expected values are hand-derived in the comments, or computed by a peer (onnxruntime) or by the project's
existing, ORT-tested quantizers.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.datapath import conv2d_acc, gemm_acc, qlinear_matmul
from hwsim.quant import (
    QParams,
    asymmetric_per_tensor,
    asymmetric_qparams,
    binary_quantize,
    dequantize,
    dequantize_per_group,
    dynamic_quantize,
    group_gemm,
    pow2_dequantize,
    pow2_quantize,
    pow2_to_int,
    quantize,
    quantize_per_group,
    shift_gemm_acc,
    symmetric_per_channel,
    symmetric_qparams,
    ternary_quantize,
)

F32 = np.float32


# -- symmetric ---------------------------------------------------------------------------------------------

def test_symmetric_restricted_full_and_unsigned_scales_hand_derived():
    # amax = 1.27 at 8 bits: restricted s = 1.27/127 = 0.01, codes [-127, 127];
    # full range s = 1.27/127.5 = 2*1.27/255, codes [-128, 127]; unsigned s = 1.27/255, codes [0, 255]
    r = symmetric_qparams(1.27, 8)
    assert r.scale == F32(F32(1.27) / F32(127)) and (r.qmin, r.qmax) == (-127, 127) and r.narrow_range
    f = symmetric_qparams(1.27, 8, narrow_range=False)
    assert f.scale == F32(F32(1.27) / F32(127.5)) and (f.qmin, f.qmax) == (-128, 127)
    u = symmetric_qparams(1.27, 8, signed=False)
    assert u.scale == F32(F32(1.27) / F32(255)) and (u.qmin, u.qmax) == (0, 255) and int(u.zero_point) == 0
    # 4-bit restricted: codes -7..7; -1.27 -> -7, 0.5 -> rne(0.5 / (1.27/7)) = rne(2.756) = 3
    q4 = symmetric_qparams(1.27, 4)
    assert quantize(np.array([-1.27, 0.5, 1.27], F32), q4).tolist() == [-7, 3, 7]


def test_symmetric_qparams_equals_symmetric_per_channel():
    w = np.random.default_rng(0).standard_normal((16, 8, 3, 3)).astype(F32)
    for narrow in (True, False):
        a = symmetric_per_channel(w, 6, axis=0, narrow_range=narrow)
        b = symmetric_qparams(np.abs(w).reshape(16, -1).max(axis=1), 6, axis=0, narrow_range=narrow)
        assert a == b


def test_symmetric_zero_range_gets_unit_scale():
    qp = symmetric_qparams(np.array([0.0, 2.0], F32), 8, axis=0)
    assert qp.scale.tolist() == [1.0, F32(2.0) / F32(127)]


def test_symmetric_errors():
    with pytest.raises(ValueError, match="amax must be >= 0"):
        symmetric_qparams(-1.0, 8)
    with pytest.raises(ValueError, match="axis must be given"):
        symmetric_qparams(np.ones(3, F32), 8)


# -- asymmetric --------------------------------------------------------------------------------------------

def test_asymmetric_per_tensor_equals_existing_ort_quantizer():
    rng = np.random.default_rng(1)
    for _ in range(50):
        lo, hi = sorted(rng.normal(0, 3, 2))
        for bits in (2, 4, 8):
            for signed in (False, True):
                assert asymmetric_qparams(lo, hi, bits, signed=signed) == asymmetric_per_tensor(lo, hi, bits,
                                                                                                signed)


def test_asymmetric_per_channel_is_per_tensor_per_row():
    lo = np.array([-1.0, 0.0, 0.5, -3.0], F32)
    hi = np.array([1.0, 2.0, 0.75, -1.0], F32)
    qp = asymmetric_qparams(lo, hi, 8, axis=0)
    for c in range(4):
        ref = asymmetric_per_tensor(lo[c], hi[c], 8)
        assert qp.scale[c] == ref.scale and qp.zero_point[c] == ref.zero_point
    # hand-derived row 1: [0, 2] -> s = 2/255, z = 0; row 3: [-3, -1] widened to [-3, 0] -> s = 3/255, z = 255
    assert qp.zero_point.tolist()[1] == 0 and qp.zero_point.tolist()[3] == 255


def test_dynamic_quantize_matches_onnxruntime_bit_for_bit():
    rng = np.random.default_rng(2)
    cases = [rng.normal(0.3, 2.0, (64, 33)).astype(F32), np.abs(rng.normal(0, 1, (7, 5))).astype(F32),
             -np.abs(rng.normal(0, 1, (9,))).astype(F32), np.zeros((4,), F32),
             (rng.integers(-20, 20, (200,)) / 8.0).astype(F32)]
    for x in cases:
        q, qp = dynamic_quantize(x)
        y, ref_scale, ref_zp = _ort_dynamic(x)
        assert np.array_equal(q, y)
        assert qp.scale == ref_scale and int(qp.zero_point) == int(ref_zp)


def _ort_dynamic(x):
    """onnxruntime's DynamicQuantizeLinear (opset 21): (y uint8, scale, zero point)."""
    import onnxruntime as ort
    from onnx import helper

    node = helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", 1, x.shape)],
                              [helper.make_tensor_value_info("y", 2, None),
                               helper.make_tensor_value_info("s", 1, None),
                               helper.make_tensor_value_info("z", 2, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    y, s, z = sess.run(None, {"x": x})
    return y, F32(s), int(z)


# -- group-wise --------------------------------------------------------------------------------------------

def test_per_group_scales_hand_derived():
    # one row, K = 6, groups of 4: group 0 max|w| = 1.4 -> s = 1.4/7 = 0.2 (4-bit); group 1 (2 elements) max
    # 0.7
    w = np.array([[1.4, -0.2, 0.1, 0.0, 0.7, -0.35]], F32)
    gq = quantize_per_group(w, 4, 4)
    assert gq.n_groups == 2 and gq.scale.shape == (1, 2)
    assert gq.scale[0, 0] == F32(F32(1.4) / F32(7)) and gq.scale[0, 1] == F32(F32(0.7) / F32(7))
    assert gq.codes.tolist() == [[7, -1, 0, 0, 7, -4]]  # -0.35/0.1 = -3.5 -> rne -4; 0.1/0.2 = 0.5 -> 0
    assert np.allclose(dequantize_per_group(gq), [[1.4, -0.2, 0.0, 0.0, 0.7, -0.4]], atol=1e-6)


def test_group_gemm_is_the_sum_of_integer_group_partials():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((5, 40)).astype(F32)
    gq = quantize_per_group(w, 4, 16)  # groups of 16, 16, 8
    a_qp = asymmetric_qparams(-1.0, 3.0, 8)
    a_q = quantize(rng.uniform(-1, 3, (7, 40)).astype(F32), a_qp)
    y = group_gemm(a_q, a_qp, gq)
    # reference: exact integer partial sums per group, scaled in float64 (float32 rounding apart)
    ref = np.zeros((7, 5))
    for g in range(3):
        sl = slice(16 * g, 16 * (g + 1))
        acc = (a_q[:, sl].astype(np.int64) - int(a_qp.zero_point)) @ gq.codes[:, sl].T.astype(np.int64)
        ref += acc * float(a_qp.scale) * gq.scale[:, g].astype(np.float64)
    assert np.allclose(y, ref, rtol=1e-5, atol=1e-5)
    # and it approximates the float product of the dequantized operands
    assert np.allclose(y, dequantize(a_q, a_qp) @ dequantize_per_group(gq).T, rtol=1e-4, atol=1e-4)


# -- power of two, binary, ternary -------------------------------------------------------------------------

def test_pow2_levels_hand_derived():
    # 3 bits: 3 exponents, levels {1, 2, 4} * s with s = amax / 4 = 0.25 (amax = 1)
    w = np.array([[1.0, 0.6, 0.3, 0.2, 0.1, -0.45, 0.0]], F32)
    pq = pow2_quantize(w, 3, axis=0)
    assert pq.scale.tolist() == [0.25] and pq.n_exponents == 3
    # |w|/s = 4, 2.4, 1.2, 0.8, 0.4, 1.8, 0 -> log2 = 2, 1.26, 0.26, -0.32, ., 0.85, . -> e = 2, 1, 0, 0,
    # zero, 1, zero
    assert pow2_to_int(pq).tolist() == [[4, 2, 1, 1, 0, -2, 0]]
    assert pow2_dequantize(pq).tolist() == [[1.0, 0.5, 0.25, 0.25, 0.0, -0.5, 0.0]]


def test_shift_add_gemm_equals_the_integer_datapath():
    rng = np.random.default_rng(4)
    w = rng.standard_normal((24, 10)).astype(F32)           # B operand (K, N), per-column scales
    pq = pow2_quantize(w, 4, axis=1)
    a = rng.integers(0, 256, (9, 24)).astype(np.uint8)
    acc_shift = shift_gemm_acc(a, 128, pq)
    acc_mac, _ = gemm_acc(a, pow2_to_int(pq), a_zp=128, b_zp=0)
    assert np.array_equal(acc_shift, acc_mac)
    # conv: the expanded integers run on conv2d_acc unchanged (4-bit codes -> |w| <= 64)
    wc = pow2_to_int(pow2_quantize(rng.standard_normal((4, 3, 3, 3)).astype(F32), 4))
    assert np.abs(wc).max() == 64
    x = rng.integers(0, 256, (1, 3, 6, 6)).astype(np.uint8)
    acc, over = conv2d_acc(x, wc, x_zp=0, w_zp=0)
    assert over == 0 and acc.shape == (1, 4, 4, 4)


def test_binary_and_ternary_hand_derived_and_run_on_the_datapath():
    w = np.array([[0.5, -0.1, 0.2, -0.8], [0.0, 0.3, -0.3, 0.1]], F32)
    codes, qp = binary_quantize(w)
    # alpha = mean|w| per row: (0.5+0.1+0.2+0.8)/4 = 0.4, (0+0.3+0.3+0.1)/4 = 0.175; sign(0) = +1
    assert np.allclose(qp.scale, [0.4, 0.175]) and codes.tolist() == [[1, -1, 1, -1], [1, 1, -1, 1]]
    t, tq = ternary_quantize(w)
    # delta = 0.7 * mean|w| = 0.28, 0.1225; kept |w| > delta: row 0 {0.5, 0.8} -> alpha 0.65; row 1 {0.3, 0.3}
    assert t.tolist() == [[1, 0, 0, -1], [0, 1, -1, 0]] and np.allclose(tq.scale, [0.65, 0.3])
    assert (tq.qmin, tq.qmax, tq.bits) == (-1, 1, 2)
    # the codes are an ordinary 2-bit QParams pair: qlinear_matmul accepts them (B = w.T, per column)
    a_qp = QParams(scale=F32(0.01), zero_point=0, bits=8, signed=False)
    y_qp = QParams(scale=F32(0.05), zero_point=128, bits=8, signed=False)
    b_qp = QParams(scale=tq.scale, zero_point=np.zeros(2, np.int32), bits=2, signed=True, axis=1,
                   narrow_range=True)
    a = np.array([[100, 50, 20, 10]], np.uint8)
    y = qlinear_matmul(a, np.ascontiguousarray(t.T), a_qp=a_qp, b_qp=b_qp, y_qp=y_qp)
    # real: row . [1,0,0,-1]*0.65 = (1.0 - 0.1)*0.65 = 0.585 -> 0.585/0.05 = 11.7 -> 12 + 128;
    # [0,1,-1,0]*0.3 = (0.5 - 0.2)*0.3 = 0.09 -> 1.8 -> 2 + 128
    assert y.tolist() == [[140, 130]]
