"""The int16 pair-saturating u8 x s8 GEMM of x86 ``vpmaddubsw``, fast: :func:`pair_saturating_gemm`.

``vpmaddubsw`` (Intel SDM, PMADDUBSW) multiplies unsigned by signed bytes and adds each pair of adjacent
products with signed int16 saturation; onnxruntime's AVX2 U8S8 GEMM then adds the int16 pair sums into int32
with ``vpmaddwd`` by ones (``onnxruntime/core/mlas/lib/x86_64/QgemmU8S8KernelAvx2.S``). Which ``k`` form a
pair depends on how a kernel packs its operands; this function pairs ``(k, k + 1)`` for even ``k`` in the
order it is given, so callers permute the reduction axis into the kernel's order first (e.g. an NHWC im2col in
``(r, s, c)`` order).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import _avx2, _exact_gemm, _packcache
from ._exact_gemm import _threads_for

__all__ = ["pair_saturating_gemm"]

#: Reduction length of one int32 chunk: 32768 pairs, each within [-32768, 32767], stay inside int32.
_CHUNK = 65536


@njit(parallel=True, cache=True)
def _pairsat_loop(a, b, out):
    """Portable kernel: ``out[i, j] = sum_p sat16(a[i,2p] b[2p,j] + a[i,2p+1] b[2p+1,j])``, K even."""
    m, k = a.shape
    n = b.shape[1]
    for i in prange(m):
        for p in range(k // 2):
            u0 = np.int32(a[i, 2 * p])
            u1 = np.int32(a[i, 2 * p + 1])
            b0 = b[2 * p]
            b1 = b[2 * p + 1]
            for j in range(n):
                s = u0 * np.int32(b0[j]) + u1 * np.int32(b1[j])
                out[i, j] += min(max(s, -32768), 32767)


def pair_saturating_gemm(a_u8: np.ndarray, b_s8: np.ndarray) -> np.ndarray:
    """``acc[i, j] = sum_p sat16(a[i, 2p] b[2p, j] + a[i, 2p+1] b[2p+1, j])`` (``vpmaddubsw`` semantics).

    Parameters
    ----------
    a_u8 : numpy.ndarray of uint8, shape (M, K)
        Unsigned operand (raw activation codes).
    b_s8 : numpy.ndarray of int8, shape (K, N)
        Signed operand (raw weight codes).

    Returns
    -------
    numpy.ndarray of int64, shape (M, N)
        ``sat16(v) = min(max(v, -32768), 32767)``; pairs run over ``k = (0, 1), (2, 3), ...`` in the given
        order; an odd ``K`` pairs its last ``k`` with a zero. The pair sums are added exactly (int32 chunks of
        65536 ``k``, i.e. at most ``32768 * 32768 = 2^30`` in magnitude, summed in int64). Zero points are the
        caller's: ``sum (a - z_a)(b - z_b)`` differs from this by the usual correction terms.

    Runs the AVX2 kernel of :mod:`._avx2` when the CPU has AVX2, else a portable numba loop (same values).

    Raises
    ------
    TypeError
        If ``a_u8`` is not uint8 or ``b_s8`` not int8.
    ValueError
        If the shapes are not (M, K) and (K, N).
    """
    if not isinstance(a_u8, np.ndarray) or a_u8.dtype != np.uint8:
        raise TypeError(f"a_u8 must be a uint8 array, not {getattr(a_u8, 'dtype', type(a_u8).__name__)}")
    if not isinstance(b_s8, np.ndarray) or b_s8.dtype != np.int8:
        raise TypeError(f"b_s8 must be an int8 array, not {getattr(b_s8, 'dtype', type(b_s8).__name__)}")
    if a_u8.ndim != 2 or b_s8.ndim != 2 or a_u8.shape[1] != b_s8.shape[0]:
        raise ValueError(f"expected a_u8 (M, K) and b_s8 (K, N), got {a_u8.shape} and {b_s8.shape}")
    m, k = a_u8.shape
    n = b_s8.shape[1]
    acc = np.zeros((m, n), np.int64)
    if not (m and n and k):
        return acc
    with _threads_for(m * n * k, _exact_gemm.AVX2_PARALLEL_MIN_MACS if _avx2.AVAILABLE else None):
        _chunks(a_u8, b_s8, acc)
    return acc


def _chunks(a_u8, b_s8, acc):
    m, k = a_u8.shape
    n = b_s8.shape[1]
    for k0 in range(0, k, _CHUNK):  # _CHUNK is even: no pair straddles two chunks
        kc = min(k, k0 + _CHUNK) - k0
        a, b = a_u8[:, k0:k0 + kc], b_s8[k0:k0 + kc]
        if _avx2.AVAILABLE:
            _, kp, np_ = _avx2.padded(m, kc, n, 4)
            # constant weights are packed once (_packcache: served only for equal bytes)
            xp = _packcache.packed(("panels8", kp, np_), b, b"",
                                   lambda b=b, kp=kp, np_=np_: _avx2.pack_panels8(b, kp, np_))
            acc += _avx2.gemm_ubs(a, xp, m, kc, n, kp, np_)
        else:
            if kc % 2:
                a = np.concatenate([a, np.zeros((m, 1), np.uint8)], axis=1)
                b = np.concatenate([b, np.zeros((1, n), np.int8)], axis=0)
            part = np.zeros((m, n), np.int32)
            _pairsat_loop(np.ascontiguousarray(a), np.ascontiguousarray(b), part)
            acc += part
