"""The torch_fbgemm profile and the int16 pair-saturation accumulator against PyTorch's fbgemm engine."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from hwsim.datapath import conv2d_acc, gemm_acc
from hwsim.onnxq import host_info
from hwsim.quant import fbgemm_bias_addend, requant_multiplier, requantize

torch = pytest.importorskip("torch")

F32 = np.float32


@pytest.fixture(autouse=True)
def fbgemm():
    if "fbgemm" not in torch.backends.quantized.supported_engines:
        pytest.skip("this torch build has no fbgemm engine")
    old = torch.backends.quantized.engine
    torch.backends.quantized.engine = "fbgemm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
    torch.backends.quantized.engine = old


def test_depthwise_conv_needs_the_pair_saturation_model():
    # full-range uint8 x int8 depthwise 3x3: fbgemm sums tap pairs with int16 saturation
    # (docs/verification.md §3)
    rng = np.random.default_rng(0)
    c, h = 16, 12
    x = rng.integers(0, 256, (1, c, h, h)).astype(np.uint8)
    w = rng.integers(-128, 128, (c, 1, 3, 3)).astype(np.int8)
    sx, zx, sw, sy, zy = F32(0.02), 7, F32(0.01), F32(0.5), 100
    bias = (rng.standard_normal(c) * 0.3).astype(F32)
    qx = torch._make_per_tensor_quantized_tensor(torch.from_numpy(x), float(sx), zx)
    qw = torch._make_per_tensor_quantized_tensor(torch.from_numpy(w), float(sw), 0)
    packed = torch.ops.quantized.conv2d_prepack(qw, torch.from_numpy(bias), [1, 1], [1, 1], [1, 1], c)
    y = torch.ops.quantized.conv2d(qx, packed, float(sy), zy).int_repr().numpy()
    m = requant_multiplier(sx, sw, sy, profile="torch_fbgemm")
    fb = np.ascontiguousarray(fbgemm_bias_addend(bias, np.multiply(sx, sw, dtype=F32)))
    got = {}
    for pair in (True, False):
        acc, _ = conv2d_acc(x, w, x_zp=zx, w_zp=0, pads=(1, 1, 1, 1), groups=c, int16_pairs=pair)
        got[pair] = requantize(acc, m, zero_point=zy, qmin=0, qmax=255, profile="torch_fbgemm", float_bias=fb,
                               channel_axis=1)
    assert np.count_nonzero(got[True] != y) == 0
    assert np.count_nonzero(got[False] != y) > 100  # the exact integer model misses many


def test_linear_per_channel_float_bias():
    rng = np.random.default_rng(1)
    m_, k, n = 64, 200, 32
    a = rng.integers(0, 256, (m_, k)).astype(np.uint8)
    b = rng.integers(-128, 128, (n, k)).astype(np.int8)
    bias = (rng.standard_normal(n) * 0.5).astype(F32)
    ws = rng.uniform(0.001, 0.01, n).astype(F32)
    qa = torch._make_per_tensor_quantized_tensor(torch.from_numpy(a), 0.03, 11)
    qb = torch._make_per_channel_quantized_tensor(torch.from_numpy(b),
                                                  torch.from_numpy(ws.astype(np.float64)),
                                                  torch.zeros(n, dtype=torch.long), 0)
    y = torch.ops.quantized.linear(qa, torch.ops.quantized.linear_prepack(qb, torch.from_numpy(bias)), 0.2,
                                   120).int_repr().numpy()
    # fbgemm's AVX2 GEMM (no VNNI) sums u8 x s8 pairs along K with int16 saturation (vpmaddubsw, K packed in
    # groups of 4 as MLAS does); with VNNI it is exact: the host's pair semantics, as onnxruntime's probe
    # shows
    acc, _ = gemm_acc(a, np.ascontiguousarray(b.T), a_zp=11, b_zp=0, int16_pairs=host_info().int16_pairs)
    act = np.multiply(F32(0.03), ws, dtype=F32)
    mult = requant_multiplier(F32(0.03), ws, F32(0.2), profile="torch_fbgemm")
    got = requantize(acc, mult, zero_point=120, qmin=0, qmax=255, profile="torch_fbgemm",
                     float_bias=fbgemm_bias_addend(bias, act), channel_axis=1)
    np.testing.assert_array_equal(got, y)


@pytest.mark.parametrize("c, k, groups, ks", [(7, 5, 1, 3), (8, 8, 2, 3)])
def test_conv_on_the_hosts_pair_semantics(c, k, groups, ks):
    # fbgemm's non-depthwise conv is an im2col GEMM in NHWC order: on an AVX2 host without VNNI it sums the
    # (r, s, c) reduction in int16 pairs as MLAS does (odd C = 7 included: pairs cross taps), exactly with
    # VNNI
    rng = np.random.default_rng(c)
    x = rng.integers(200, 256, (1, c, 9, 9)).astype(np.uint8)  # near 255: pairs of 255 * 127 overflow int16
    w = rng.integers(-128, 128, (k, c // groups, ks, ks)).astype(np.int8)
    sx, zx, sw, sy, zy = F32(0.02), 7, F32(0.01), F32(2.0), 100
    bias = np.zeros(k, F32)
    qx = torch._make_per_tensor_quantized_tensor(torch.from_numpy(x), float(sx), zx)
    qw = torch._make_per_tensor_quantized_tensor(torch.from_numpy(w), float(sw), 0)
    packed = torch.ops.quantized.conv2d_prepack(qw, torch.from_numpy(bias), [1, 1], [1, 1], [1, 1], groups)
    y = torch.ops.quantized.conv2d(qx, packed, float(sy), zy).int_repr().numpy()
    m = requant_multiplier(sx, sw, sy, profile="torch_fbgemm")
    fb = np.ascontiguousarray(fbgemm_bias_addend(bias, np.multiply(sx, sw, dtype=F32)))
    got = {}
    for pairs in (True, False):
        acc, _ = conv2d_acc(x, w, x_zp=zx, w_zp=0, pads=(1, 1, 1, 1), groups=groups, int16_pairs=pairs)
        got[pairs] = requantize(acc, m, zero_point=zy, qmin=0, qmax=255, profile="torch_fbgemm",
                                float_bias=fb, channel_axis=1)
    host = host_info().int16_pairs
    assert np.count_nonzero(got[host] != y) == 0
    assert np.count_nonzero(got[not host] != y) > 100  # the other semantics misses many
