"""An exact u8 x s8 integer GEMM on AVX512-VNNI (``vpdpbusd``), written with numba intrinsics. Private.

``vpdpbusd`` multiplies 64 unsigned bytes by 64 signed bytes, adds each group of four products and adds the
four-product sums to sixteen int32 lanes, with no intermediate saturation (Intel SDM, VPDPBUSD). The int32
sums are exact while ``|sum| < 2^31``; the caller chunks the reduction so that this holds (``MAX_K``) and
accumulates the chunks in int64.

Kernel layout (the "broadcast" form of an int8 GEMM micro-kernel)::

    out[m, n] = sum_k w[m, k] * x[k, n]      w: (Mp, Kp) int8 rows,  x packed as xp[k // 4, n, k % 4] uint8

A tile is ``MR = 6`` rows of ``w`` by ``NR = 64`` columns of ``x``: 24 zmm accumulators, four 64-byte loads
of ``xp`` and six 4-byte broadcasts of ``w`` per step of four ``k``. ``Mp`` must be a multiple of 6, ``Np`` of
64 and ``Kp`` of 4 (the caller pads with zeros, which add nothing).

:data:`AVAILABLE` is False when the host CPU lacks AVX512-VNNI (or AVX512BW); the kernels must then not be
called (LLVM could not select the instruction).
"""

from __future__ import annotations

import llvmlite.binding as _llvm
import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

__all__ = ["AVAILABLE", "MR", "NR", "MAX_K", "gemm_s8u8", "pack_u8"]

MR = 6
NR = 64
#: Largest reduction length whose u8 x s8 int32 sums cannot overflow: 65536 * 255 * 128 < 2^31.
MAX_K = 65536


def _host_has_vnni() -> bool:
    # numba compiles for the host CPU unless NUMBA_CPU_NAME / NUMBA_CPU_FEATURES say otherwise (e.g. a
    # portable "generic" cache), in which case LLVM could not select vpdpbusd: stay off then
    if numba.config.CPU_NAME not in (None, "", "host") or numba.config.CPU_FEATURES not in (None, ""):
        return False
    try:
        feats = _llvm.get_host_cpu_features()
    except Exception:  # pragma: no cover - llvmlite without feature detection
        return False
    return bool(feats.get("avx512vnni") and feats.get("avx512bw") and feats.get("avx512f"))


AVAILABLE = _host_has_vnni()


class _V16(types.Type):
    """Sixteen int32 lanes (one zmm register)."""

    def __init__(self):
        super().__init__(name="hwsim_v16i32")


_v16 = _V16()
_VT = ir.VectorType(ir.IntType(32), 16)


@register_model(_V16)
class _V16Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VT)


def _byte_ptr(context, builder, arrty, arr, off):
    ary = context.make_array(arrty)(context, builder, arr)
    p = builder.bitcast(ary.data, ir.IntType(8).as_pointer())
    return builder.gep(p, [off])


@intrinsic
def _vzero(typingctx):
    def cg(context, builder, sig, args):
        return ir.Constant(_VT, None)
    return _v16(), cg


@intrinsic
def _vload(typingctx, arr, off):
    """64 bytes of a 1-D byte array from byte offset ``off`` (unaligned)."""
    def cg(context, builder, sig, args):
        p = _byte_ptr(context, builder, sig.args[0], args[0], args[1])
        return builder.load(builder.bitcast(p, _VT.as_pointer()), align=1)
    return _v16(arr, off), cg


@intrinsic
def _vbcast(typingctx, arr, off):
    """The 4 bytes at byte offset ``off`` of a 1-D byte array, broadcast to all sixteen lanes."""
    def cg(context, builder, sig, args):
        p = _byte_ptr(context, builder, sig.args[0], args[0], args[1])
        s = builder.load(builder.bitcast(p, ir.IntType(32).as_pointer()), align=1)
        v = builder.insert_element(ir.Constant(_VT, None), s, ir.Constant(ir.IntType(32), 0))
        return builder.shuffle_vector(v, ir.Constant(_VT, None), ir.Constant(_VT, [0] * 16))
    return _v16(arr, off), cg


@intrinsic
def _vdp(typingctx, acc, u8v, s8v):
    """``acc + vpdpbusd(u8v, s8v)``."""
    def cg(context, builder, sig, args):
        fnty = ir.FunctionType(_VT, [_VT, _VT, _VT])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.avx512.vpdpbusd.512")
        return builder.call(fn, list(args))
    return _v16(_v16, _v16, _v16), cg


@intrinsic
def _vstore(typingctx, arr, off, v):
    """Store sixteen int32 lanes into a 1-D int32 array from element ``off``."""
    def cg(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        p = builder.gep(ary.data, [args[1]])
        builder.store(args[2], builder.bitcast(p, _VT.as_pointer()), align=1)
        return context.get_dummy_value()
    return types.void(arr, off, _v16), cg


@njit(parallel=True, cache=True)
def _gemm_tiles(ws, xp, out, mp, kp, np_):
    """ws: (mp*kp,) int8 flat; xp: (kp//4 * np_ * 4,) uint8 flat; out: (mp*np_,) int32 flat, overwritten."""
    nmb = mp // 6
    nnb = np_ // 64
    k4n = kp // 4
    # n-blocks outermost: the 64-column panel of xp (kp * 64 bytes) stays in L1/L2 for every m-block
    for t in prange(nmb * nnb):
        nb = t // nmb
        mb = t - nb * nmb
        m0 = mb * 6
        n0 = nb * 64
        a00 = _vzero(); a01 = _vzero(); a02 = _vzero(); a03 = _vzero()  # noqa: E702
        a10 = _vzero(); a11 = _vzero(); a12 = _vzero(); a13 = _vzero()  # noqa: E702
        a20 = _vzero(); a21 = _vzero(); a22 = _vzero(); a23 = _vzero()  # noqa: E702
        a30 = _vzero(); a31 = _vzero(); a32 = _vzero(); a33 = _vzero()  # noqa: E702
        a40 = _vzero(); a41 = _vzero(); a42 = _vzero(); a43 = _vzero()  # noqa: E702
        a50 = _vzero(); a51 = _vzero(); a52 = _vzero(); a53 = _vzero()  # noqa: E702
        wb = m0 * kp
        for k4 in range(k4n):
            base = (k4 * np_ + n0) * 4
            x0 = _vload(xp, base)
            x1 = _vload(xp, base + 64)
            x2 = _vload(xp, base + 128)
            x3 = _vload(xp, base + 192)
            o = wb + k4 * 4
            w = _vbcast(ws, o)
            a00 = _vdp(a00, x0, w); a01 = _vdp(a01, x1, w); a02 = _vdp(a02, x2, w); a03 = _vdp(a03, x3, w)  # noqa
            w = _vbcast(ws, o + kp)
            a10 = _vdp(a10, x0, w); a11 = _vdp(a11, x1, w); a12 = _vdp(a12, x2, w); a13 = _vdp(a13, x3, w)  # noqa
            w = _vbcast(ws, o + 2 * kp)
            a20 = _vdp(a20, x0, w); a21 = _vdp(a21, x1, w); a22 = _vdp(a22, x2, w); a23 = _vdp(a23, x3, w)  # noqa
            w = _vbcast(ws, o + 3 * kp)
            a30 = _vdp(a30, x0, w); a31 = _vdp(a31, x1, w); a32 = _vdp(a32, x2, w); a33 = _vdp(a33, x3, w)  # noqa
            w = _vbcast(ws, o + 4 * kp)
            a40 = _vdp(a40, x0, w); a41 = _vdp(a41, x1, w); a42 = _vdp(a42, x2, w); a43 = _vdp(a43, x3, w)  # noqa
            w = _vbcast(ws, o + 5 * kp)
            a50 = _vdp(a50, x0, w); a51 = _vdp(a51, x1, w); a52 = _vdp(a52, x2, w); a53 = _vdp(a53, x3, w)  # noqa
        o = m0 * np_ + n0
        _vstore(out, o, a00); _vstore(out, o + 16, a01); _vstore(out, o + 32, a02); _vstore(out, o + 48, a03)  # noqa
        o += np_
        _vstore(out, o, a10); _vstore(out, o + 16, a11); _vstore(out, o + 32, a12); _vstore(out, o + 48, a13)  # noqa
        o += np_
        _vstore(out, o, a20); _vstore(out, o + 16, a21); _vstore(out, o + 32, a22); _vstore(out, o + 48, a23)  # noqa
        o += np_
        _vstore(out, o, a30); _vstore(out, o + 16, a31); _vstore(out, o + 32, a32); _vstore(out, o + 48, a33)  # noqa
        o += np_
        _vstore(out, o, a40); _vstore(out, o + 16, a41); _vstore(out, o + 32, a42); _vstore(out, o + 48, a43)  # noqa
        o += np_
        _vstore(out, o, a50); _vstore(out, o + 16, a51); _vstore(out, o + 32, a52); _vstore(out, o + 48, a53)  # noqa


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def pack_u8(x_kn: np.ndarray, kp: int, np_: int) -> np.ndarray:
    """Pack a (K, N) uint8 matrix as the flat ``xp[k // 4, n, k % 4]`` layout, zero-padded to (kp, np_)."""
    k, n = x_kn.shape
    buf = np.zeros((kp, np_), np.uint8)
    buf[:k, :n] = x_kn
    return np.ascontiguousarray(buf.reshape(kp // 4, 4, np_).transpose(0, 2, 1)).reshape(-1)


def gemm_s8u8(w_mk: np.ndarray, xp: np.ndarray, m: int, k: int, n: int, kp: int, np_: int) -> np.ndarray:
    """Exact int32 ``w (m, k) int8 @ x (k, n) uint8`` with ``x`` already packed by :func:`pack_u8`.

    ``k <= MAX_K`` so that no int32 sum can overflow. Returns (m, n) int32 (a view of a padded buffer).
    """
    mp = _cdiv(max(m, 1), MR) * MR
    ws = np.zeros((mp, kp), np.int8)
    ws[:m, :k] = w_mk
    out = np.empty(mp * np_, np.int32)
    # dynamic scheduling in small chunks: a static split stalls when another process holds one of the cores
    with numba.parallel_chunksize(4):
        _gemm_tiles(ws.reshape(-1), xp, out, mp, kp, np_)
    return out.reshape(mp, np_)[:m, :n]
