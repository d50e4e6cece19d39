"""The AVX2 GEMM's column-panel packing, its int64 output and the cache of packed weights (issue 11, item 1).

The packing and the cache are plain numpy / numba code and run on every host; the kernel tests need AVX2 and
compare with int64 numpy products (exact integers) and hand-derived sums.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.datapath import _avx2, _exact_gemm, _packcache

needs_avx2 = pytest.mark.skipif(not _avx2.AVAILABLE, reason="no AVX2 on this CPU")


@pytest.mark.parametrize("k, n", [(1, 1), (5, 17), (8, 16), (33, 40)])
def test_panel_packing_follows_its_index_formula(k, n):
    # xp[n // 16, k // 2, n % 16, k % 2] = x[k, n] - z[n], zero in the padding, element by element
    rng = np.random.default_rng(k * 100 + n)
    x = rng.integers(-128, 128, (k, n)).astype(np.int8)
    z = rng.integers(-100, 101, n)
    _, kp, np_ = _avx2.padded(1, k, n, 2)
    got = _avx2.pack_panels16_shift(x, z, kp, np_).view(np.int16).reshape(np_ // 16, kp // 2, 16, 2)
    want = np.zeros_like(got)
    for q in range(k):
        for j in range(n):
            want[j // 16, q // 2, j % 16, q % 2] = int(x[q, j]) - int(z[j])
    np.testing.assert_array_equal(got, want)
    # the unshifted int16 and 8-bit packings: the same positions
    np.testing.assert_array_equal(_avx2.pack_panels16((x - z).astype(np.int16), kp, np_).view(np.int16),
                                  want.reshape(-1))
    _, kp4, _ = _avx2.padded(1, k, n, 4)
    q8 = _avx2.pack_panels8(x, kp4, np_).view(np.int8).reshape(np_ // 16, kp4 // 4, 16, 4)
    assert all(q8[j // 16, q // 4, j % 16, q % 4] == x[q, j] for q in range(k) for j in range(n))
    assert int(np.abs(q8.astype(np.int64)).sum()) == int(np.abs(x.astype(np.int64)).sum())  # padding is 0


def test_pack_cache_serves_equal_bytes_only(monkeypatch):
    _packcache.clear()
    calls = []

    def pack(v):
        calls.append(1)
        return v.astype(np.int32) * 2

    x = np.arange(1 << 16, dtype=np.int32) % 251  # 256 KB, above MIN_BYTES
    p1 = _packcache.packed(("t",), x, b"", lambda: pack(x))
    p2 = _packcache.packed(("t",), x.copy(), b"", lambda: pack(x))  # another array, the same bytes: a hit
    assert p2 is p1 and len(calls) == 1
    assert _packcache.packed(("t",), x, b"z", lambda: pack(x)) is not p1  # other extra bytes: a miss
    assert _packcache.packed(("u",), x, b"", lambda: pack(x)) is not p1  # other tag: a miss
    assert len(calls) == 3
    # changed in place where the 64 samples do not look (element 1 is not sampled): compared in full
    x[1] += 1
    p3 = _packcache.packed(("t",), x, b"", lambda: pack(x))
    assert len(calls) == 4 and p3[1] == 2 * x[1]
    # the byte bound: an entry is a 256 KB copy + 256 KB packed; two fill 1 MB, the oldest go first
    monkeypatch.setattr(_packcache, "MAX_BYTES", 1 << 20)
    _packcache.clear()
    for i in range(4):
        _packcache.packed(("t",), x + i, b"", lambda i=i: pack(x + i))
    assert _packcache._BYTES == 1 << 20 and len(_packcache._ENTRIES) == 2
    assert _packcache.packed(("t",), x + 3, b"", lambda: pack(x + 3)) is not None and len(calls) == 8  # hit
    _packcache.clear()


@needs_avx2
def test_avx2_gemm_int64_output_edges_and_blocks(monkeypatch):
    # all terms (0 - 255) * 127 = -32385; K = 1000: -32,385,000 per output (negative: the int32 sums are
    # sign-extended); m = 7, n = 17: full and edge tiles (6 x 16)
    a = np.zeros((7, 1000), np.uint8)
    b = np.full((1000, 17), 127, np.int8)
    got = _exact_gemm.exact_gemm(a, b, 255, np.zeros(17, np.int64), path="avx2")
    assert got.dtype == np.int64 and got.shape == (7, 17) and got.flags.c_contiguous
    assert (got == -32_385_000).all()
    # several reduction blocks (int32 partial sums in between), odd shapes, zero points per column
    rng = np.random.default_rng(3)
    monkeypatch.setattr(_avx2, "KB2", 16)
    for m, k, n in [(1, 3, 1), (5, 70, 15), (13, 301, 33), (12, 64, 32)]:
        a = rng.integers(0, 256, (m, k)).astype(np.uint8)
        b = rng.integers(-128, 128, (k, n)).astype(np.int8)
        bz = rng.integers(-128, 128, n)
        want = (a.astype(np.int64) - 77) @ (b.astype(np.int64) - bz[None, :])
        np.testing.assert_array_equal(_exact_gemm.exact_gemm(a, b, 77, bz, path="avx2"), want)


@needs_avx2
def test_avx2_gemm_with_cached_weights_stays_exact():
    # the same weights three times (stored on the first call, served on the next), then changed in place; the
    # AVX2 path by name, because gemm_acc takes the VNNI kernel (which packs per call) on a VNNI host
    _packcache.clear()
    rng = np.random.default_rng(4)
    a = rng.integers(0, 256, (30, 512)).astype(np.uint8)
    b = rng.integers(-128, 128, (512, 160)).astype(np.int8)  # 80 KB
    bz = np.zeros(160, np.int64)
    for _ in range(3):
        np.testing.assert_array_equal(_exact_gemm.exact_gemm(a, b, 128, bz, path="avx2"),
                                      (a.astype(np.int64) - 128) @ b.astype(np.int64))
    assert len(_packcache._ENTRIES) == 1
    b[100, 3] = -b[100, 3] - 1
    np.testing.assert_array_equal(_exact_gemm.exact_gemm(a, b, 128, bz, path="avx2"),
                                  (a.astype(np.int64) - 128) @ b.astype(np.int64))
    _packcache.clear()


def test_pair_saturating_gemm_with_cached_weights(monkeypatch):
    # vpmaddubsw model on the same weights three times, then changed in place; each equals the portable loop
    # (the plain numba pairs of _pairsat), saturation included: all-255 activations with b = 127
    # pairs to 64770 -> 32767
    from hwsim.datapath import pair_saturating_gemm

    _packcache.clear()
    rng = np.random.default_rng(6)
    a = rng.integers(0, 256, (9, 300)).astype(np.uint8)
    a[0] = 255
    b = rng.integers(-128, 128, (300, 260)).astype(np.int8)  # 78 KB: cached
    b[:, 0] = 127

    def portable():
        with monkeypatch.context() as mp:
            mp.setattr(_avx2, "AVAILABLE", False)
            return pair_saturating_gemm(a, b)

    for _ in range(3):
        np.testing.assert_array_equal(pair_saturating_gemm(a, b), portable())
    assert pair_saturating_gemm(a, b)[0, 0] == 150 * 32767
    assert len(_packcache._ENTRIES) == (1 if _avx2.AVAILABLE else 0)  # the packed weights, stored once
    b[17, 5] = -b[17, 5] - 1
    np.testing.assert_array_equal(pair_saturating_gemm(a, b), portable())
    _packcache.clear()
