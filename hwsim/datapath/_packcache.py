"""Packed GEMM operands, reused when the same values come again (constant weights). Private.

onnxruntime packs a constant ``B`` once, when the session is created (MLAS ``MlasGemmPackB``); hwsim's
datapath functions get plain arrays and packed them on every call (1024 x 1024 int8 weights as int16 panels:
0.6-0.9 ms of a 15-20 ms GEMM on one AVX2 core). :func:`packed` keeps the packed form of recent operands and
returns it only for an operand whose **bytes are equal** to the stored copy (compared in full on every hit, so
an array changed in place or a different array with the same shape is never served stale panels).

* Key: a tag naming the packing and its parameters, shape, dtype, the caller's extra key bytes (e.g. the zero
  points folded into the packing), and 64 sampled elements; a match is then compared byte for byte with the
  stored copy (:func:`_equal`: 8-byte words in blocks of 4 KB, with an early exit).
* Every operand of at least :data:`MIN_BYTES` is stored on a miss (a copy: one memcpy, a fraction of the
  packing it saves on the next call).
* At most :data:`MAX_BYTES` of copies and packed panels are kept (least recently used first out); operands
  smaller than :data:`MIN_BYTES` are packed directly (nothing to win).
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Callable

import numpy as np
from numba import njit

#: Bytes of stored copies plus packed panels kept at most.
MAX_BYTES = 64 << 20
#: Operands below this size are not cached.
MIN_BYTES = 64 << 10

_LOCK = threading.Lock()
_ENTRIES: collections.OrderedDict = collections.OrderedDict()  # key -> (copy, packed)
_BYTES = 0


@njit(nogil=True, cache=True)
def _equal_words(a, b):
    """``a == b`` for two 1-D arrays of one length and dtype, in blocks of 512 elements (a vectorised
    XOR-OR per block, then an early exit)."""
    n = a.shape[0]
    for i0 in range(0, n, 512):
        d = a[i0] ^ b[i0]
        for i in range(i0 + 1, min(n, i0 + 512)):
            d |= a[i] ^ b[i]
        if d != 0:
            return False
    return True


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    """Byte equality of two 1-D uint8 arrays of one length: 8-byte words, then the tail bytes."""
    n8 = a.shape[0] // 8 * 8
    return bool(_equal_words(a[:n8].view(np.uint64), b[:n8].view(np.uint64))
                and _equal_words(a[n8:], b[n8:]))


def _key(tag: tuple, x: np.ndarray, extra: bytes) -> tuple:
    flat = x.reshape(-1)
    idx = np.linspace(0, flat.size - 1, 64).astype(np.int64)
    return tag, x.shape, x.dtype.str, extra, flat[idx].tobytes()


def packed(tag: tuple, x: np.ndarray, extra: bytes, pack: Callable[[], np.ndarray]) -> np.ndarray:
    """``pack()``, or the array it returned before for an ``x`` with the same bytes (and equal ``tag``,
    ``extra``). The result must not be written to (it may be shared with later calls).

    ``tag``: hashable, names the packing and every parameter it depends on besides ``x`` and ``extra``;
    ``x``: the operand (any dtype; not cached unless C-contiguous); ``extra``: bytes the packing also depends
    on (zero points)."""
    global _BYTES
    if x.nbytes < MIN_BYTES or not x.flags.c_contiguous:
        return pack()
    key = _key(tag, x, extra)
    xb = x.reshape(-1).view(np.uint8)
    with _LOCK:
        hit = _ENTRIES.get(key)
        if hit is not None:
            _ENTRIES.move_to_end(key)
    if hit is not None and _equal(hit[0], xb):
        return hit[1]
    out = pack()
    with _LOCK:
        size = xb.nbytes + out.nbytes
        if size > MAX_BYTES:
            return out
        old = _ENTRIES.pop(key, None)
        if old is not None:
            _BYTES -= old[0].nbytes + old[1].nbytes
        while _ENTRIES and _BYTES + size > MAX_BYTES:
            _, (c, p) = _ENTRIES.popitem(last=False)
            _BYTES -= c.nbytes + p.nbytes
        _ENTRIES[key] = (xb.copy(), out)
        _BYTES += size
    return out


def clear() -> None:
    """Forget every stored operand (tests)."""
    global _BYTES
    with _LOCK:
        _ENTRIES.clear()
        _BYTES = 0


def _after_fork() -> None:  # another thread may have held the lock at the fork
    global _LOCK, _BYTES
    _LOCK = threading.Lock()
    _ENTRIES.clear()
    _BYTES = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
