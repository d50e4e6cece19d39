"""The fast exact accumulators (VNNI, float BLAS) equal the reference numba loops bit for bit.

Also: the narrow multiplier operand model and the int16 pair saturation model, with hand-derived values.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from hwsim.datapath import _avx2, _exact_gemm, _vnni, conv2d_acc, gemm_acc, narrow_operand

INT8 = (np.int8, np.uint8)


def codes(rng, dt, shape):
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max + 1, shape).astype(dt)


@pytest.mark.parametrize("adt", INT8)
@pytest.mark.parametrize("bdt", INT8)
@pytest.mark.parametrize("path", ["vnni", "avx2", "float"])
def test_exact_gemm_paths_equal_numba(adt, bdt, path):
    if path == "vnni" and not _vnni.AVAILABLE:
        pytest.skip("no AVX512-VNNI on this CPU")
    if path == "avx2" and not _avx2.AVAILABLE:
        pytest.skip("no AVX2 on this CPU")
    rng = np.random.default_rng(7)
    for m, k, n in [(1, 1, 1), (5, 3, 7), (37, 300, 29), (70, 129, 65)]:
        a, b = codes(rng, adt, (m, k)), codes(rng, bdt, (k, n))
        az = int(codes(rng, adt, ()))
        bz = codes(rng, bdt, (n,)).astype(np.int64)
        ref, _ = gemm_acc(a, b, a_zp=az, b_zp=bz, acc_bits=64, fast=False)
        got = _exact_gemm.exact_gemm(a, b, az, bz, path=path)
        np.testing.assert_array_equal(got, ref)


def test_vnni_chunks_long_reductions(monkeypatch):
    if not _vnni.AVAILABLE:
        pytest.skip("no AVX512-VNNI on this CPU")
    monkeypatch.setattr(_vnni, "MAX_K", 64)  # force several int32 chunks summed in int64
    rng = np.random.default_rng(3)
    a, b = codes(rng, np.uint8, (13, 1000)), codes(rng, np.int8, (1000, 9))
    ref, _ = gemm_acc(a, b, a_zp=200, b_zp=-3, acc_bits=64, fast=False)
    np.testing.assert_array_equal(_exact_gemm.exact_gemm(a, b, 200, np.full(9, -3, np.int64), path="vnni"),
                                  ref)


def test_vnni_gemm_with_cached_weights_stays_exact():
    # the packed weights and their column sums are cached by content: the same weights three times (stored,
    # then served), then changed in place (repacked); each equals the int64 product
    if not _vnni.AVAILABLE:
        pytest.skip("no AVX512-VNNI on this CPU")
    from hwsim.datapath import _packcache

    _packcache.clear()
    rng = np.random.default_rng(7)
    a = codes(rng, np.uint8, (20, 600))
    b = codes(rng, np.int8, (600, 200))   # 120 KB: cached
    bz = np.zeros(200, np.int64)
    for _ in range(3):
        np.testing.assert_array_equal(_exact_gemm.exact_gemm(a, b, 9, bz, path="vnni"),
                                      (a.astype(np.int64) - 9) @ b.astype(np.int64))
    assert sum(k[0][0].startswith("vnni") for k in _packcache._ENTRIES) == 2   # panels and column sums
    b[300, 7] = -b[300, 7] - 1
    np.testing.assert_array_equal(_exact_gemm.exact_gemm(a, b, 9, bz, path="vnni"),
                                  (a.astype(np.int64) - 9) @ b.astype(np.int64))
    _packcache.clear()


def test_float_path_chunk_bound_keeps_partial_sums_exact():
    # 255 * 255 per term: float32 chunks of floor(2^24 / 65025) = 258 terms; K = 5000 crosses many chunks and
    # the exact sum (about 3.2e8) is far above 2^24, where a single float32 matmul would round
    a = np.full((2, 5000), 255, np.uint8)
    b = np.full((5000, 3), 0, np.uint8)
    got = _exact_gemm.exact_gemm(a, b, 0, np.full(3, 255, np.int64), path="float")
    assert got.tolist() == [[-5000 * 255 * 255] * 3] * 2
    naive = (a.astype(np.float32) @ (b.astype(np.float32) - 255)).astype(np.int64)
    assert naive[0, 0] != got[0, 0]


CONV_LAYOUTS = [
    # x shape, w shape, groups, stride, pads (t, b, l, r), dilation
    ((2, 8, 9, 9), (12, 8, 3, 3), 1, (1, 1), (1, 1, 1, 1), (1, 1)),
    ((1, 16, 15, 15), (24, 8, 3, 3), 2, (2, 1), (1, 2, 0, 1), (1, 2)),
    ((1, 6, 11, 7), (6, 6, 5, 1), 1, (1, 2), (2, 2, 0, 0), (1, 1)),
    ((2, 16, 12, 12), (16, 1, 3, 3), 16, (1, 1), (1, 1, 1, 1), (1, 1)),  # depthwise: numba kernel
]


@pytest.mark.parametrize("layout", CONV_LAYOUTS)
@pytest.mark.parametrize("xdt, wdt", [(np.uint8, np.int8), (np.int8, np.int8), (np.uint8, np.uint8)])
def test_conv2d_fast_equals_numba(layout, xdt, wdt):
    xs, wsh, groups, stride, pads, dil = layout
    rng = np.random.default_rng(11)
    x, w = codes(rng, xdt, xs), codes(rng, wdt, wsh)
    xz = int(codes(rng, xdt, ()))
    wz = codes(rng, wdt, (wsh[0],)).astype(np.int64)
    kw = dict(x_zp=xz, w_zp=wz, stride=stride, pads=pads, dilation=dil, groups=groups)
    ref, _ = conv2d_acc(x, w, acc_bits=64, fast=False, **kw)
    got, _ = conv2d_acc(x, w, acc_bits=64, fast=True, **kw)
    np.testing.assert_array_equal(got, ref)
    ref32, ov_ref = conv2d_acc(x, w, acc_bits=16, fast=False, **kw)
    got32, ov = conv2d_acc(x, w, acc_bits=16, fast=True, **kw)
    np.testing.assert_array_equal(got32, ref32)
    assert ov == ov_ref


def test_narrow_operand_wraps_and_counts():
    # 8-bit signed multiplier: 200 - 256 = -56, -129 + 256 = 127; 127 and -128 fit
    w, n = narrow_operand(np.array([200, -129, 127, -128, 0]), 8)
    assert w.tolist() == [-56, 127, 127, -128, 0] and n == 2
    # uint8 activations with zero point 0 need 9 bits: 255 - 0 = 255 wraps to -1 in 8 bits
    a = np.array([[255, 1]], np.uint8)
    b = np.array([[1], [1]], np.int8)
    assert gemm_acc(a, b, a_zp=0, b_zp=0)[0].tolist() == [[256]]
    assert gemm_acc(a, b, a_zp=0, b_zp=0, mult_bits=8)[0].tolist() == [[0]]
    assert gemm_acc(a, b, a_zp=0, b_zp=0, mult_bits=9)[0].tolist() == [[256]]
    assert gemm_acc(a, b, a_zp=128, b_zp=0, mult_bits=8)[0].tolist() == [[127 - 127]]


def test_int16_pairs_hand_values():
    # x = 255 (z_x = 0), w = 127: pairs 255*127*2 = 64770 saturate to 32767; K = 3: pairs (0,1), (2,-)
    a = np.array([[255, 255, 255]], np.uint8)
    b = np.array([[127], [127], [127]], np.int8)
    exact, _ = gemm_acc(a, b, a_zp=0, b_zp=0)
    sat, _ = gemm_acc(a, b, a_zp=0, b_zp=0, int16_pairs=True)
    assert exact.tolist() == [[3 * 32385]] and sat.tolist() == [[32767 + 32385]]
    # the zero point is corrected outside the pairs: z_x = 255 gives acc = sat - 255 * sum(w) = 0 - ... exact
    # 0
    sat_z, _ = gemm_acc(a, b, a_zp=255, b_zp=0, int16_pairs=True)
    assert sat_z.tolist() == [[32767 + 32385 - 255 * 381]]
    # no saturation when |pair| <= 32767: equals the exact sum
    rng = np.random.default_rng(0)
    a2, b2 = codes(rng, np.uint8, (4, 10)) // 2, codes(rng, np.int8, (10, 3)) // 2
    np.testing.assert_array_equal(gemm_acc(a2, b2, a_zp=3, b_zp=0, int16_pairs=True)[0],
                                  gemm_acc(a2, b2, a_zp=3, b_zp=0)[0])


def test_conv_int16_pairs_depthwise_taps_in_kernel_order():
    # depthwise 3x3, one channel, x = 255 everywhere, no padding: taps (0,1),(2,3),(4,5),(6,7),(8)
    x = np.full((1, 1, 3, 3), 255, np.uint8)
    w = np.array([127, 127, -128, -128, 127, -128, 1, 1, 127], np.int8).reshape(1, 1, 3, 3)
    acc, _ = conv2d_acc(x, w, x_zp=0, w_zp=0, groups=1, int16_pairs=True)
    pairs = [32767, -32768, 255 * (127 - 128), 255 * 2, 255 * 127]
    assert acc.ravel().tolist() == [sum(pairs)]
    exact, _ = conv2d_acc(x, w, x_zp=0, w_zp=0)
    assert exact.ravel().tolist() == [255 * int(w.astype(int).sum())]


def test_qlinear_layers_pass_rounding_and_pe_options():
    from hwsim.datapath import qlinear_matmul
    from hwsim.quant import QParams

    # M = 2^-4 * 2^-5 / 2^-6 = 1/8; acc = [4, 12, 20] -> 0.5, 1.5, 2.5
    a = np.array([[4, 12, 20]], np.int8).T.copy()
    b = np.array([[1]], np.int8)
    qp = dict(a_qp=QParams(np.float32(2**-4), 0, 8, True), b_qp=QParams(np.float32(2**-5), 0, 8, True),
              y_qp=QParams(np.float32(2**-6), 0, 8, True))
    assert qlinear_matmul(a, b, **qp).ravel().tolist() == [0, 2, 2]
    assert qlinear_matmul(a, b, rounding="half_away", **qp).ravel().tolist() == [1, 2, 3]
    assert qlinear_matmul(a, b, rounding="floor", **qp).ravel().tolist() == [0, 1, 2]
    # 20 wraps to -12: -1.5 -> -2
    assert qlinear_matmul(a, b, mult_bits=5, **qp).ravel().tolist() == [0, 2, -2]


def test_cross_term_zero_points_by_hand():
    # a = [200, 200] (uint8, z_a = 128), b = [100, 100]: shifted products 72 * 100 * 2 = 14400 fit 16 bits;
    # raw products 200 * 100 = 20000 twice reach 40000 > 32767: saturate to 32767 (one event), then the
    # correction -z_a * sum(b) = -25600 gives 7167. In wrap mode the raw 40000 wraps to -25536 and the
    # correction brings it back to 14400 (mod 2^16), with one overflow counted on the way.
    a = np.array([[200, 200]], np.uint8)
    b = np.array([[100], [100]], np.int8)
    kw = dict(a_zp=128, b_zp=0, acc_bits=16)
    assert gemm_acc(a, b, acc_mode="saturate", **kw) == ([[14400]], 0)
    acc, ev = gemm_acc(a, b, acc_mode="saturate", zero_point_mode="cross_term", **kw)
    assert acc.tolist() == [[7167]] and ev == 1
    acc, ov = gemm_acc(a, b, zero_point_mode="cross_term", **kw)
    assert acc.tolist() == [[14400]] and ov == 1
    with pytest.raises(ValueError, match=r"^zero_point_mode must be 'shift' or 'cross_term', not 'x'$"):
        gemm_acc(a, b, a_zp=0, b_zp=0, zero_point_mode="x")


@pytest.mark.parametrize("layout", CONV_LAYOUTS)
def test_cross_term_conv_wraps_to_the_same_result(layout):
    xs, wsh, groups, stride, pads, dil = layout
    rng = np.random.default_rng(12)
    x, w = codes(rng, np.uint8, xs), codes(rng, np.int8, wsh)
    wz = rng.integers(-4, 5, wsh[0])
    bias = rng.integers(-500, 500, wsh[0]).astype(np.int32)
    kw = dict(x_zp=77, w_zp=wz, bias=bias, stride=stride, pads=pads, dilation=dil, groups=groups)
    for bits in (64, 16):
        ref, ov = conv2d_acc(x, w, acc_bits=bits, **kw)
        got, ov_ct = conv2d_acc(x, w, acc_bits=bits, zero_point_mode="cross_term", **kw)
        np.testing.assert_array_equal(got, ref)  # congruent modulo 2^bits: equal registers
        assert ov_ct >= ov
    # exact sums and a hand-computed correction, on a tiny case with padding (padded taps hold the code 77)
    x1 = np.full((1, 1, 1, 1), 80, np.uint8)
    w1 = np.full((1, 1, 3, 3), 2, np.int8)
    assert conv2d_acc(x1, w1, x_zp=77, w_zp=0, pads=(1, 1, 1, 1), zero_point_mode="cross_term")[0].item() == 6


# -- AVX2 kernels (run on any AVX2 host, VNNI hosts included: they call the AVX2 functions directly) ---------

needs_avx2 = pytest.mark.skipif(not _avx2.AVAILABLE, reason="no AVX2 on this CPU")


def _ref_gemm(a, b, az, bz):
    return gemm_acc(a, b, a_zp=az, b_zp=bz, acc_bits=64, fast=False)[0]


@needs_avx2
@pytest.mark.parametrize("bits_a, bits_b", [(8, 8), (8, 7), (7, 8), (4, 4), (2, 3), (6, 5), (8, 2)])
def test_avx2_gemm_equals_numba_for_every_width(bits_a, bits_b, monkeypatch):
    # narrow operands take the byte-pair kernel where 2 max(u) max|s| <= 32767 (else int16 pairs); spy which
    calls = []
    for name in ("gemm_wd_shift", "gemm_ubs"):
        fn = getattr(_avx2, name)
        monkeypatch.setattr(_avx2, name, lambda *a, _f=fn, _n=name: calls.append(_n) or _f(*a))
    rng = np.random.default_rng(bits_a * 10 + bits_b)
    for m, k, n in [(1, 1, 1), (7, 5, 17), (13, 301, 33)]:
        calls.clear()
        a = rng.integers(0, 1 << bits_a, (m, k)).astype(np.uint8)  # unsigned activations
        b = rng.integers(-(1 << (bits_b - 1)), 1 << (bits_b - 1), (k, n)).astype(np.int8)  # signed weights
        az = int(rng.integers(0, 1 << bits_a))
        bz = rng.integers(-(1 << (bits_b - 1)), 1 << (bits_b - 1), n).astype(np.int64) // 2
        np.testing.assert_array_equal(_exact_gemm.exact_gemm(a, b, az, bz, path="avx2"),
                                      _ref_gemm(a, b, az, bz))
    # the last, largest case: 8 x 8 bits: |b - bz| reaches 191 > 127 and 2 * 255 * 128 > 32767: int16 pairs;
    # (8, 7): |b - bz| <= 96 and 2 * 255 * 96 = 48960 > 32767: int16 pairs too; (4, 4): 2 * 15 * 12 = 360:
    # byte pairs
    expect = {(8, 8): "gemm_wd_shift", (8, 7): "gemm_wd_shift", (4, 4): "gemm_ubs", (2, 3): "gemm_ubs"}
    if (bits_a, bits_b) in expect:
        assert set(calls) == {expect[(bits_a, bits_b)]}


@needs_avx2
def test_avx2_gemm_extreme_operands_and_chunks(monkeypatch):
    # all codes at the extremes: (255 - 0) * (-128 - 127) = -65025 per term, K = 1000: -65025000 each;
    # (0 - 255) * (127 - (-128)) = -65025 too; a forced chunk of 64 terms crosses many int32 chunks
    for a_val, az, b_val, bz in [(255, 0, -128, 127), (0, 255, 127, -128), (255, 255, -128, 0)]:
        a = np.full((7, 1000), a_val, np.uint8)
        b = np.full((1000, 5), b_val, np.int8)
        want = 1000 * (a_val - az) * (b_val - bz)
        assert _exact_gemm.exact_gemm(a, b, az, np.full(5, bz, np.int64),
                                      path="avx2").tolist() == [[want] * 5] * 7
    monkeypatch.setattr(_exact_gemm, "_I32_MAX", 64 * 255 * 255)
    monkeypatch.setattr(_exact_gemm, "_UBS_MAX_K", 8)
    rng = np.random.default_rng(5)
    for bits in (8, 3):
        a = rng.integers(0, 1 << bits, (11, 999)).astype(np.uint8)
        b = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), (999, 19)).astype(np.int8)
        bz = rng.integers(-2, 3, 19)
        np.testing.assert_array_equal(_exact_gemm.exact_gemm(a, b, 1, bz, path="avx2"),
                                      _ref_gemm(a, b, 1, bz))
    # narrow signed activations with unsigned 8-bit weights: the weights are the unsigned operand (2 * 255 *
    # 7 = 3570 <= 32767), the correction term is -(z_b) * sum_k (a - z_a)
    a = rng.integers(-4, 4, (6, 77)).astype(np.int8)
    b = rng.integers(0, 256, (77, 20)).astype(np.uint8)
    bz = rng.integers(0, 256, 20)
    np.testing.assert_array_equal(_exact_gemm.exact_gemm(a, b, -3, bz, path="avx2"), _ref_gemm(a, b, -3, bz))


@needs_avx2
def test_avx2_gemm_wide_operands_int16_and_refusal():
    rng = np.random.default_rng(9)
    a = rng.integers(-32767, 32768, (9, 40)).astype(np.int32)
    b = rng.integers(-32767, 32768, (40, 18)).astype(np.int32)
    got = _exact_gemm.exact_gemm(a, b, 0, np.zeros(18, np.int64), path="avx2")  # chunks of 2 terms
    np.testing.assert_array_equal(got, a.astype(np.int64) @ b.astype(np.int64))
    # -32768 - 0 does not fit [-32767, 32767] (vpmaddwd wraps (-32768)^2 * 2): the path declines
    a[0, 0] = -32768
    assert _exact_gemm.exact_gemm(a, b, 0, np.zeros(18, np.int64), path="avx2") is None


@needs_avx2
@pytest.mark.parametrize("layout", CONV_LAYOUTS[:3])
@pytest.mark.parametrize("bits", [8, 4])
def test_avx2_conv_equals_numba(layout, bits):
    xs, wsh, groups, stride, pads, dil = layout
    rng = np.random.default_rng(13 + bits)
    x = rng.integers(0, 1 << bits, xs).astype(np.uint8)
    w = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), wsh).astype(np.int8)
    for xz, wz in [(int(rng.integers(0, 1 << bits)), rng.integers(-2, 3, wsh[0])), ((1 << bits) - 1,
                                                                                   np.zeros(wsh[0], int))]:
        kw = dict(x_zp=xz, w_zp=wz, stride=stride, pads=pads, dilation=dil, groups=groups)
        ref, _ = conv2d_acc(x, w, acc_bits=64, fast=False, **kw)
        n, k, ho, wo = ref.shape
        got = _exact_gemm._avx2_conv(x, w, xz, np.asarray(wz, np.int64), stride, pads, dil, groups, ho, wo)
        np.testing.assert_array_equal(got, ref)
    # extremes: x = 255 everywhere with z_x = 0, w = -128: every tap -32640 (padded taps 0)
    if bits == 8:
        x = np.full(xs, 255, np.uint8)
        w = np.full(wsh, -128, np.int8)
        ref, _ = conv2d_acc(x, w, x_zp=0, w_zp=0, acc_bits=64, fast=False, stride=stride, pads=pads,
                            dilation=dil, groups=groups)
        got = _exact_gemm._avx2_conv(x, w, 0, np.zeros(wsh[0], np.int64), stride, pads, dil, groups,
                                     *ref.shape[2:])
        np.testing.assert_array_equal(got, ref)


# -- pair-saturating GEMM (vpmaddubsw) -----------------------------------------------------------------------

def _pairsat_plain(a, b):
    """The definition, one output at a time in plain Python (odd K: the last k pairs with 0)."""
    m, k = a.shape
    out = np.zeros((m, b.shape[1]), np.int64)
    for i in range(m):
        for j in range(b.shape[1]):
            tot = 0
            for p in range(0, k, 2):
                s = int(a[i, p]) * int(b[p, j]) + (int(a[i, p + 1]) * int(b[p + 1, j]) if p + 1 < k else 0)
                tot += min(max(s, -32768), 32767)
            out[i, j] = tot
    return out


@pytest.mark.parametrize("portable", [False, True])
def test_pair_saturating_gemm_equals_plain_loop(portable, monkeypatch):
    from hwsim.datapath import pair_saturating_gemm

    if portable:
        monkeypatch.setattr(_avx2, "AVAILABLE", False)
    elif not _avx2.AVAILABLE:
        pytest.skip("no AVX2 on this CPU")
    # hand values: 255*127 + 255*127 = 64770 -> 32767; 255*(-128) * 2 = -65280 -> -32768; K = 3: the last
    # pair is 255*127 + 0 = 32385 (and 255*1); row 2: 100*127 * 2 = 25400 and -25600 are not saturated
    a = np.array([[255, 255, 255], [100, 100, 0]], np.uint8)
    b = np.array([[127, -128], [127, -128], [127, 1]], np.int8)
    assert pair_saturating_gemm(a, b).tolist() == [[32767 + 32385, -32768 + 255], [25400, -25600]]
    rng = np.random.default_rng(21)
    for m, k, n in [(1, 1, 1), (5, 7, 3), (9, 64, 17), (7, 301, 40)]:
        a, b = codes(rng, np.uint8, (m, k)), codes(rng, np.int8, (k, n))
        np.testing.assert_array_equal(pair_saturating_gemm(a, b), _pairsat_plain(a, b))
    # extremes: every pair saturates, K = 1000 -> 500 pairs of +-32767/-32768, across forced chunks
    monkeypatch.setattr(sys.modules["hwsim.datapath._pairsat"], "_CHUNK", 64)
    a = np.full((3, 1000), 255, np.uint8)
    b = np.concatenate([np.full((1000, 1), 127, np.int8), np.full((1000, 1), -128, np.int8)], axis=1)
    assert pair_saturating_gemm(a, b).tolist() == [[500 * 32767, 500 * -32768]] * 3
    with pytest.raises(TypeError, match="^a_u8 must be a uint8 array, not int8$"):
        pair_saturating_gemm(b.T.copy(), b)


def test_direct_int32_conv_depthwise_extremes_and_bound():
    # depthwise 3x3, x = 255 (z_x = 0), w = -128: 9 taps of -32640 inside, fewer at the padded border
    x = np.full((2, 8, 6, 5), 255, np.uint8)
    w = np.full((8, 1, 3, 3), -128, np.int8)
    geo = dict(stride=(1, 2), pads=(1, 1, 1, 1), dilation=(1, 1), groups=8)
    ref, _ = conv2d_acc(x, w, x_zp=0, w_zp=0, acc_bits=64, fast=False, **geo)
    assert ref[0, 0, 1, 1] == 9 * 255 * -128
    got = _exact_gemm._direct_conv(x, w, 0, np.zeros(8, np.int64), (1, 2), (1, 1, 1, 1), (1, 1), 8,
                                   *ref.shape[2:])
    np.testing.assert_array_equal(got, ref)
    # int16 operands: 9 * 30000 * 30000 > 2^31 - 1, so the int32 kernel declines (None), and conv2d_acc stays
    # exact through the int64 loop
    x16 = np.full((1, 2, 4, 4), 30000, np.int16)
    w16 = np.full((2, 1, 3, 3), 30000, np.int16)
    zw = np.zeros(2, np.int64)
    assert _exact_gemm._direct_conv(x16, w16, 0, zw, (1, 1), (0, 0, 0, 0), (1, 1), 2, 2, 2) is None
    got = conv2d_acc(x16, w16, x_zp=0, w_zp=0, acc_bits=64, groups=2)[0]
    assert got.ravel().tolist() == [9 * 30000 ** 2] * 8


PAIR_CONV_LAYOUTS = CONV_LAYOUTS[:3] + [
    ((1, 4, 5, 5), (6, 4, 3, 3), 1, (1, 1), (1, 1, 1, 1), (1, 1)),  # C = 4: no channel padding
    ((3, 10, 4, 3), (7, 10, 2, 2), 1, (1, 1), (0, 1, 1, 0), (1, 1)),  # C = 10 (pads to 12), 18 pixels
    ((1, 5, 6, 6), (6, 5, 3, 3), 1, (1, 1), (1, 1, 1, 1), (1, 1)),  # odd C: the pairs cross taps (fallback)
]


@pytest.mark.parametrize("layout", PAIR_CONV_LAYOUTS)
@pytest.mark.parametrize("xdt, wdt", [(np.uint8, np.int8), (np.int8, np.int8), (np.uint8, np.uint8)])
def test_conv_int16_pairs_fast_equals_portable(layout, xdt, wdt, monkeypatch):
    # the implicit-GEMM vpmaddubsw conv against the im2col + portable numba pair loop (itself tested against
    # the definition in plain Python above); codes at the extremes so that many pairs saturate
    xs, wsh, groups, stride, pads, dil = layout
    rng = np.random.default_rng(sum(xs) + sum(wsh))
    x = codes(rng, xdt, xs)
    x.reshape(-1)[::3] = np.iinfo(xdt).max
    w = codes(rng, wdt, wsh)
    w.reshape(-1)[::2] = np.iinfo(wdt).min
    xz = int(rng.integers(np.iinfo(xdt).min, np.iinfo(xdt).max + 1))
    for wz in (0, rng.integers(np.iinfo(wdt).min, np.iinfo(wdt).max + 1, wsh[0])):
        kw = dict(x_zp=xz, w_zp=wz, stride=stride, pads=pads, dilation=dil, groups=groups, int16_pairs=True,
                  acc_bits=64)
        got, _ = conv2d_acc(x, w, **kw)
        with monkeypatch.context() as mp:
            mp.setattr(_exact_gemm, "pairs_conv", lambda *a: None)
            mp.setattr(_avx2, "AVAILABLE", False)
            ref, _ = conv2d_acc(x, w, **kw)
        np.testing.assert_array_equal(got, ref)
        # the fast kernel did run where it applies (AVX2, >= 6 outputs per group, C / groups even)
        if _avx2.AVAILABLE and (wsh[0] // groups) >= _avx2.MR and wsh[1] % 2 == 0:
            assert _exact_gemm.pairs_conv(x, w, 128 if xdt == np.int8 else 0, -128 if wdt == np.uint8 else 0,
                                          xz, np.broadcast_to(np.asarray(wz, np.int64), (wsh[0],)),
                                          pads, stride, dil, groups, *ref.shape[2:]) is not None


def test_conv_int16_pairs_saturating_taps_by_hand():
    # 1x1 conv, C = 4 channels, x = 255: pairs (c0, c1) = 255 * 254 -> 32767, (c2, c3) = -255 * 256 -> -32768,
    # so acc = -1 for each of the 6 outputs (exact: 255 * (127 + 127 - 128 - 128) = -510)
    x = np.full((1, 4, 2, 3), 255, np.uint8)
    w = np.tile(np.array([127, 127, -128, -128], np.int8).reshape(1, 4, 1, 1), (6, 1, 1, 1))
    acc, _ = conv2d_acc(x, w, x_zp=0, w_zp=0, int16_pairs=True)
    assert acc.ravel().tolist() == [-1] * 36
    assert conv2d_acc(x, w, x_zp=0, w_zp=0)[0].ravel().tolist() == [-510] * 36


@needs_avx2
@pytest.mark.parametrize("layout", PAIR_CONV_LAYOUTS[3:] + [
    ((1, 3, 1, 1), (6, 3, 1, 1), 1, (1, 1), (0, 0, 0, 0), (1, 1)),  # one pixel (tile padded to 6), odd C
    ((1, 3, 3, 3), (9, 3, 3, 3), 1, (1, 1), (0, 0, 0, 0), (1, 1)),  # one output pixel, K = 9 (not 16)
    ((2, 64, 5, 4), (16, 64, 3, 3), 1, (2, 1), (1, 1, 1, 1), (1, 1)),  # C = 64, stride 2
])
@pytest.mark.parametrize("bits", [8, 4])
def test_avx2_implicit_conv_small_and_odd_shapes(layout, bits):
    xs, wsh, groups, stride, pads, dil = layout
    rng = np.random.default_rng(bits + wsh[0])
    x = rng.integers(0, 1 << bits, xs).astype(np.uint8)
    w = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), wsh).astype(np.int8)
    for xz in (int(rng.integers(0, 1 << bits)), 0):
        kw = dict(x_zp=xz, w_zp=0, stride=stride, pads=pads, dilation=dil, groups=groups)
        ref, _ = conv2d_acc(x, w, acc_bits=64, fast=False, **kw)
        got = _exact_gemm._avx2_conv(x, w, xz, np.zeros(wsh[0], np.int64), stride, pads, dil, groups,
                                     *ref.shape[2:])
        np.testing.assert_array_equal(got, ref)


@needs_avx2
def test_avx2_work_sharing_threads_equal_one_thread(monkeypatch):
    # every kernel split into many small chunks over two threads gives the one-thread result (tile ranges
    # cover each tile once; the GEMM's reduction blocks add up)
    import numba

    rng = np.random.default_rng(21)
    a, b = codes(rng, np.uint8, (37, 1100)), codes(rng, np.int8, (1100, 45))
    x, w = codes(rng, np.uint8, (2, 12, 9, 8)), codes(rng, np.int8, (18, 12, 3, 3))
    kw = dict(x_zp=128, w_zp=0, pads=(1, 1, 1, 1))

    def run():
        return (gemm_acc(a, b, a_zp=128, b_zp=0)[0], gemm_acc(a, b // 2, a_zp=0, b_zp=0)[0],
                gemm_acc(a, b, a_zp=0, b_zp=0, int16_pairs=True)[0], conv2d_acc(x, w, **kw)[0],
                conv2d_acc(x, w // 2, **kw)[0], conv2d_acc(x, w, int16_pairs=True, **kw)[0])

    monkeypatch.setattr(_avx2, "KB2", 64)  # several reduction blocks
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = run()
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        monkeypatch.setattr(_exact_gemm, "AVX2_PARALLEL_MIN_MACS", 0)
        monkeypatch.setattr(_avx2, "CHUNKS_PER_THREAD", 50)
        two = run()
    finally:
        numba.set_num_threads(old)
    for p, q in zip(one, two, strict=False):
        np.testing.assert_array_equal(p, q)
    np.testing.assert_array_equal(one[0], (a.astype(np.int64) - 128) @ b.astype(np.int64))
