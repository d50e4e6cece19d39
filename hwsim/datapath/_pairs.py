"""int16 pair-saturating accumulation (x86 ``vpmaddubsw``), as a reference model. Private: used by
:mod:`._layers`.

``vpmaddubsw`` multiplies unsigned bytes ``u`` by signed bytes ``s`` and adds each adjacent pair of products
into one int16 lane **with signed saturation** (Intel SDM, PMADDUBSW); the int16 pair sums are then widened
and added exactly in int32 (``vpmaddwd`` with ones, ``vpaddd``). For one output::

    acc = sum_p sat16(u[2p] s[2p] + u[2p+1] s[2p+1])        (an odd last term is paired with 0)

Only the pairs saturate: a pair of ``255 * 127 + 255 * 127 = 64,770`` becomes ``32,767``. Single products
(``|u s| <= 255 * 128``) always fit. The zero points are *not* inside the pairs: the kernels multiply raw
codes, and the callers (and onnxruntime's MLAS, ``qgemm.h`` row/column sums) add the exact correction
``- z_s sum u - z_u sum s + K z_u z_s`` in int32 afterwards.

The loops are plain numba (about 0.5 to 1 GMAC/s); a vectorised kernel could replace :func:`pair_sums16`
without changing any caller, and ``tests/test_datapath_pairs.py`` pins its values.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["pair_sums16", "im2col_rsc"]


@njit(parallel=True, cache=True)
def _pair_sums16(u, st, out):
    m, k = u.shape
    n = st.shape[0]
    kp = k // 2
    for i in prange(m):
        for j in range(n):
            acc = np.int64(0)
            for p in range(kp):
                v = np.int32(u[i, 2 * p]) * np.int32(st[j, 2 * p]) \
                    + np.int32(u[i, 2 * p + 1]) * np.int32(st[j, 2 * p + 1])
                if v > 32767:
                    v = 32767
                elif v < -32768:
                    v = -32768
                acc += v
            if k % 2:
                acc += np.int32(u[i, k - 1]) * np.int32(st[j, k - 1])
            out[i, j] = acc


def pair_sums16(u: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``sum_p sat16(u[i,2p] s[2p,j] + u[i,2p+1] s[2p+1,j])`` for ``u`` (M, K) in [0, 255], ``s`` (K, N) in
    [-128, 127] (any integer dtype); returns int64 (M, N). Pairs run over ``k = (0, 1), (2, 3), ...``; an odd
    ``K`` leaves the last product alone (the zero padding MLAS's ``CopyPackA``/``CopyPackB`` add)."""
    u = np.ascontiguousarray(u, dtype=np.int16)
    st = np.ascontiguousarray(np.asarray(s).T, dtype=np.int16)
    out = np.empty((u.shape[0], st.shape[0]), np.int64)
    if out.size:
        _pair_sums16(u, st, out)
    return out


def im2col_rsc(xp: np.ndarray, kr: int, ks: int, stride, dilation, ho: int, wo: int) -> np.ndarray:
    """The im2col matrix of a padded NCHW image ``xp`` (N, C, Hp, Wp), rows ``(n, oh, ow)`` and the reduction
    index ``q = (r * S + s) * C + c`` (NHWC order: channels innermost), as onnxruntime's QLinearConv builds it
    (``Im2col<T, StorageOrder::NHWC>``); (N * Ho * Wo, R * S * C) int16."""
    n_b, ch = xp.shape[:2]
    cols = np.empty((n_b, ho, wo, kr, ks, ch), np.int16)
    sh, sw = stride
    dh, dw = dilation
    for r in range(kr):
        for s_ in range(ks):
            win = xp[:, :, r * dh:r * dh + sh * (ho - 1) + 1:sh, s_ * dw:s_ * dw + sw * (wo - 1) + 1:sw]
            cols[:, :, :, r, s_, :] = win.transpose(0, 2, 3, 1)
    return cols.reshape(n_b * ho * wo, kr * ks * ch)
