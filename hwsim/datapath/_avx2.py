"""Integer GEMM micro-kernels for AVX2 (``vpmaddwd``, ``vpmaddubsw``), written with numba intrinsics. Private.

Two instructions do the multiplying (Intel SDM, PMADDWD and PMADDUBSW):

* ``vpmaddwd(x, y)``: sixteen int16 lanes times sixteen int16 lanes; each pair of adjacent products is added
  into one int32 lane **without saturation**. The pair sum ``x0 y0 + x1 y1`` is exact unless both products are
  ``(-32768)^2`` (the one input that wraps); operands are kept in ``[-32767, 32767]``, so it is always exact.
* ``vpmaddubsw(u, s)``: 32 unsigned bytes times 32 signed bytes; each pair of adjacent products is added into
  one int16 lane **with signed saturation** (``[-32768, 32767]``). Followed by ``vpmaddwd(t, 1)``, which adds
  the two int16 pair sums of a column into int32, this is onnxruntime's AVX2 U8S8 inner step
  (onnxruntime ``onnxruntime/core/mlas/lib/x86_64/QgemmU8S8KernelAvx2.S``, macro ``MultiplyAccumulateRow``).

Kernel layout (the "broadcast" form of an integer GEMM micro-kernel)::

    out[m, n] = sum_k w[m, k] * x[k, n]

* :func:`gemm_wd`: ``w`` int16 rows (Mp, Kp) broadcast two at a time (packed in panels, :func:`pack_rows`);
  ``x`` packed in column panels ``xp[n // 16, k // 2, n % 16, k % 2]`` int16 (:func:`pack_panels16`). A tile
  is ``MR = 6`` rows by ``NR = 16`` columns: 12 ymm accumulators of 8 int32, two 32-byte loads and six 4-byte
  broadcasts per step of two ``k``.
* :func:`gemm_ubs`: ``x`` packed in column panels ``xp[n // 16, k // 4, n % 16, k % 4]`` bytes
  (:func:`pack_panels8`), ``w`` byte rows broadcast four at a time;
  the dtype of ``w`` (uint8 or int8) says which operand is the unsigned one. Same 6 x 16 tile, one step per
  four ``k``. Every pair ``(k, k + 1)`` with ``k`` even is saturated to int16 (exact when
  ``2 max|u| max|s| <= 32767``), the two pairs of a column and step are added in int32.

``Mp`` must be a multiple of 6, ``Np`` of 16 and ``Kp`` of 2 (wd) or 4 (ubs); the caller pads with zeros,
which add nothing. The GEMMs' vector operand is packed in column panels so that a tile reads one contiguous
stream: in the row-major ``[k // 2, n, k % 2]`` form consecutive steps were ``4 Np`` bytes apart (4 KB for
``N = 1024``), every step of a panel fell into the same L1 set (32 KB, 8-way: 8 lines per set); the 1024^3
kernel took 23-25 ms on one AMD EPYC (Zen 3) core, in panels 15-17 ms (``docs/avx2_gemm.md``). The
convs' weights (:func:`conv_tiles`) are column panels too. int32 sums are exact while they stay below
``2^31``: the callers chunk the reduction.

:data:`AVAILABLE` is False when the host CPU lacks AVX2 (or numba targets another CPU): the kernels must then
not be called (LLVM could not select the instructions).
"""

from __future__ import annotations

import concurrent.futures
import itertools
import os

import llvmlite.binding as _llvm
import numba
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

__all__ = ["AVAILABLE", "MR", "NR", "gemm_wd", "gemm_ubs", "pack_panels16", "pack_panels8", "conv_tiles"]

MR = 6
NR = 16


def _host_has_avx2() -> bool:
    # as in _vnni: a NUMBA_CPU_NAME / NUMBA_CPU_FEATURES target other than the host may lack AVX2: stay off
    if numba.config.CPU_NAME not in (None, "", "host") or numba.config.CPU_FEATURES not in (None, ""):
        return False
    try:
        feats = _llvm.get_host_cpu_features()
    except Exception:  # pragma: no cover - llvmlite without feature detection
        return False
    return bool(feats.get("avx2"))


AVAILABLE = _host_has_avx2()


class _V8(types.Type):
    """Eight int32 lanes (one ymm register)."""

    def __init__(self):
        super().__init__(name="hwsim_v8i32")


_v8 = _V8()
_VT = ir.VectorType(ir.IntType(32), 8)
_V16 = ir.VectorType(ir.IntType(16), 16)
_V32 = ir.VectorType(ir.IntType(8), 32)


@register_model(_V8)
class _V8Model(models.PrimitiveModel):
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
    return _v8(), cg


@intrinsic
def _vload(typingctx, arr, off):
    """32 bytes of a 1-D array from byte offset ``off`` (unaligned)."""
    def cg(context, builder, sig, args):
        p = _byte_ptr(context, builder, sig.args[0], args[0], args[1])
        return builder.load(builder.bitcast(p, _VT.as_pointer()), align=1)
    return _v8(arr, off), cg


@intrinsic
def _vbcast(typingctx, arr, off):
    """The 4 bytes at byte offset ``off`` of a 1-D array, broadcast to all eight lanes."""
    def cg(context, builder, sig, args):
        p = _byte_ptr(context, builder, sig.args[0], args[0], args[1])
        s = builder.load(builder.bitcast(p, ir.IntType(32).as_pointer()), align=1)
        v = builder.insert_element(ir.Constant(_VT, None), s, ir.Constant(ir.IntType(32), 0))
        return builder.shuffle_vector(v, ir.Constant(_VT, None), ir.Constant(_VT, [0] * 8))
    return _v8(arr, off), cg


def _pmaddwd(builder, x16, y16):
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VT, [_V16, _V16]),
                                        "llvm.x86.avx2.pmadd.wd")
    return builder.call(fn, [x16, y16])


@intrinsic
def _vwd(typingctx, acc, x, y):
    """``acc + vpmaddwd(x, y)`` (x, y as sixteen int16)."""
    def cg(context, builder, sig, args):
        p = _pmaddwd(builder, builder.bitcast(args[1], _V16), builder.bitcast(args[2], _V16))
        return builder.add(args[0], p)
    return _v8(_v8, _v8, _v8), cg


@intrinsic
def _vubs(typingctx, acc, u, s):
    """``acc + vpmaddwd(vpmaddubsw(u, s), 1)``: u unsigned bytes, s signed bytes; int16-saturated pairs."""
    def cg(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_V16, [_V32, _V32]),
                                            "llvm.x86.avx2.pmadd.ub.sw")
        t = builder.call(fn, [builder.bitcast(args[1], _V32), builder.bitcast(args[2], _V32)])
        p = _pmaddwd(builder, t, ir.Constant(_V16, [1] * 16))
        return builder.add(args[0], p)
    return _v8(_v8, _v8, _v8), cg


_V8I64 = ir.VectorType(ir.IntType(64), 8)


@intrinsic
def _vstore64(typingctx, arr, off, v):
    """Store eight int32 lanes, sign-extended, into a 1-D int64 array from element ``off`` (unaligned)."""
    def cg(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        p = builder.gep(ary.data, [args[1]])
        builder.store(builder.sext(args[2], _V8I64), builder.bitcast(p, _V8I64.as_pointer()), align=1)
        return context.get_dummy_value()
    return types.void(arr, off, _v8), cg


@intrinsic
def _vstore(typingctx, arr, off, v):
    """Store eight int32 lanes into a 1-D int32 array from element ``off``."""
    def cg(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        p = builder.gep(ary.data, [args[1]])
        builder.store(args[2], builder.bitcast(p, _VT.as_pointer()), align=1)
        return context.get_dummy_value()
    return types.void(arr, off, _v8), cg


@njit(nogil=True, cache=True)
def _wd_tiles(ws, xp, out, o64, mp, kp, np_, m, n, k2a, k2b, first, last, t0, t1):
    """ws: (mp*kp,) int16 panels as bytes; xp: (np_//16, kp//2, 16, 2) int16 panels as bytes; out: (mp*np_,)
    int32 partial sums; o64: (m*n,) int64, the result.
    Adds the pairs ``k2a <= k // 2 < k2b`` to ``out`` (read unless ``first``): callers run the reduction in
    blocks so that a tile's two panels stay in L1. The ``last`` block writes the (m, n) rows of ``o64``
    instead (sign-extended: no int32 buffer and no copy when one block covers the reduction)."""
    tmp = np.empty(96, np.int32)
    nmb = mp // 6
    nnb = np_ // 16
    rb = kp * 2  # bytes per row of ws
    pb = kp * 32  # bytes per column panel of xp
    for t in range(t0, t1):
        # groups of MG row panels: a group's rows (MG * 6 rows of a reduction block) stay in L2 while each
        # 16-column panel (in L1) serves the MG tiles of the group (GotoBLAS order)
        g = t // (MG * nnb)
        gsz = min(MG, nmb - g * MG)
        rem = t - g * MG * nnb
        nb = rem // gsz
        mb = g * MG + rem - nb * gsz
        m0 = mb * 6
        n0 = nb * 16
        if first:
            a00 = _vzero(); a01 = _vzero(); a10 = _vzero(); a11 = _vzero()  # noqa: E702
            a20 = _vzero(); a21 = _vzero(); a30 = _vzero(); a31 = _vzero()  # noqa: E702
            a40 = _vzero(); a41 = _vzero(); a50 = _vzero(); a51 = _vzero()  # noqa: E702
        else:
            o = (m0 * np_ + n0) * 4
            r = np_ * 4
            a00 = _vload(out, o); a01 = _vload(out, o + 32); o += r  # noqa: E702
            a10 = _vload(out, o); a11 = _vload(out, o + 32); o += r  # noqa: E702
            a20 = _vload(out, o); a21 = _vload(out, o + 32); o += r  # noqa: E702
            a30 = _vload(out, o); a31 = _vload(out, o + 32); o += r  # noqa: E702
            a40 = _vload(out, o); a41 = _vload(out, o + 32); o += r  # noqa: E702
            a50 = _vload(out, o); a51 = _vload(out, o + 32)  # noqa: E702
        wb = m0 * rb
        xb = nb * pb
        for k2 in range(k2a, k2b):
            base = xb + k2 * 64
            x0 = _vload(xp, base)
            x1 = _vload(xp, base + 32)
            o = wb + k2 * 24
            w = _vbcast(ws, o)
            a00 = _vwd(a00, x0, w); a01 = _vwd(a01, x1, w)  # noqa: E702
            w = _vbcast(ws, o + 4)
            a10 = _vwd(a10, x0, w); a11 = _vwd(a11, x1, w)  # noqa: E702
            w = _vbcast(ws, o + 8)
            a20 = _vwd(a20, x0, w); a21 = _vwd(a21, x1, w)  # noqa: E702
            w = _vbcast(ws, o + 12)
            a30 = _vwd(a30, x0, w); a31 = _vwd(a31, x1, w)  # noqa: E702
            w = _vbcast(ws, o + 16)
            a40 = _vwd(a40, x0, w); a41 = _vwd(a41, x1, w)  # noqa: E702
            w = _vbcast(ws, o + 20)
            a50 = _vwd(a50, x0, w); a51 = _vwd(a51, x1, w)  # noqa: E702
        if last and m0 + 6 <= m and n0 + 16 <= n:
            o = m0 * n + n0
            _vstore64(o64, o, a00); _vstore64(o64, o + 8, a01); o += n  # noqa: E702
            _vstore64(o64, o, a10); _vstore64(o64, o + 8, a11); o += n  # noqa: E702
            _vstore64(o64, o, a20); _vstore64(o64, o + 8, a21); o += n  # noqa: E702
            _vstore64(o64, o, a30); _vstore64(o64, o + 8, a31); o += n  # noqa: E702
            _vstore64(o64, o, a40); _vstore64(o64, o + 8, a41); o += n  # noqa: E702
            _vstore64(o64, o, a50); _vstore64(o64, o + 8, a51)  # noqa: E702
            continue
        if last:  # an edge tile: the rows and columns inside (m, n)
            dst = tmp
            o = 0
            r = 16
        else:
            dst = out
            o = m0 * np_ + n0
            r = np_
        _vstore(dst, o, a00); _vstore(dst, o + 8, a01); o += r  # noqa: E702
        _vstore(dst, o, a10); _vstore(dst, o + 8, a11); o += r  # noqa: E702
        _vstore(dst, o, a20); _vstore(dst, o + 8, a21); o += r  # noqa: E702
        _vstore(dst, o, a30); _vstore(dst, o + 8, a31); o += r  # noqa: E702
        _vstore(dst, o, a40); _vstore(dst, o + 8, a41); o += r  # noqa: E702
        _vstore(dst, o, a50); _vstore(dst, o + 8, a51)  # noqa: E702
        if last:
            for i in range(min(6, m - m0)):
                for j in range(min(16, n - n0)):
                    o64[(m0 + i) * n + n0 + j] = tmp[i * 16 + j]


@njit(nogil=True, cache=True)
def _ubs_tiles_ub(ws, xp, out, mp, kp, np_, t0, t1):
    """Unsigned broadcast rows ``ws`` (mp*kp,) uint8, signed column panels ``xp`` (np_//16, kp//4, 16, 4)
    int8."""
    nmb = mp // 6
    k4n = kp // 4
    for t in range(t0, t1):
        nb = t // nmb
        mb = t - nb * nmb
        m0 = mb * 6
        n0 = nb * 16
        a00 = _vzero(); a01 = _vzero(); a10 = _vzero(); a11 = _vzero()  # noqa: E702
        a20 = _vzero(); a21 = _vzero(); a30 = _vzero(); a31 = _vzero()  # noqa: E702
        a40 = _vzero(); a41 = _vzero(); a50 = _vzero(); a51 = _vzero()  # noqa: E702
        wb = m0 * kp
        xb = nb * kp * 16
        for k4 in range(k4n):
            base = xb + k4 * 64
            x0 = _vload(xp, base)
            x1 = _vload(xp, base + 32)
            o = wb + k4 * 24
            w = _vbcast(ws, o)
            a00 = _vubs(a00, w, x0); a01 = _vubs(a01, w, x1)  # noqa: E702
            w = _vbcast(ws, o + 4)
            a10 = _vubs(a10, w, x0); a11 = _vubs(a11, w, x1)  # noqa: E702
            w = _vbcast(ws, o + 8)
            a20 = _vubs(a20, w, x0); a21 = _vubs(a21, w, x1)  # noqa: E702
            w = _vbcast(ws, o + 12)
            a30 = _vubs(a30, w, x0); a31 = _vubs(a31, w, x1)  # noqa: E702
            w = _vbcast(ws, o + 16)
            a40 = _vubs(a40, w, x0); a41 = _vubs(a41, w, x1)  # noqa: E702
            w = _vbcast(ws, o + 20)
            a50 = _vubs(a50, w, x0); a51 = _vubs(a51, w, x1)  # noqa: E702
        o = m0 * np_ + n0
        _vstore(out, o, a00); _vstore(out, o + 8, a01); o += np_  # noqa: E702
        _vstore(out, o, a10); _vstore(out, o + 8, a11); o += np_  # noqa: E702
        _vstore(out, o, a20); _vstore(out, o + 8, a21); o += np_  # noqa: E702
        _vstore(out, o, a30); _vstore(out, o + 8, a31); o += np_  # noqa: E702
        _vstore(out, o, a40); _vstore(out, o + 8, a41); o += np_  # noqa: E702
        _vstore(out, o, a50); _vstore(out, o + 8, a51)  # noqa: E702


@njit(nogil=True, cache=True)
def _ubs_tiles_sb(ws, xp, out, mp, kp, np_, t0, t1):
    """Signed broadcast rows ``ws`` (mp*kp,) int8, unsigned column panels ``xp`` (np_//16, kp//4, 16, 4)
    uint8."""
    nmb = mp // 6
    k4n = kp // 4
    for t in range(t0, t1):
        nb = t // nmb
        mb = t - nb * nmb
        m0 = mb * 6
        n0 = nb * 16
        a00 = _vzero(); a01 = _vzero(); a10 = _vzero(); a11 = _vzero()  # noqa: E702
        a20 = _vzero(); a21 = _vzero(); a30 = _vzero(); a31 = _vzero()  # noqa: E702
        a40 = _vzero(); a41 = _vzero(); a50 = _vzero(); a51 = _vzero()  # noqa: E702
        wb = m0 * kp
        xb = nb * kp * 16
        for k4 in range(k4n):
            base = xb + k4 * 64
            x0 = _vload(xp, base)
            x1 = _vload(xp, base + 32)
            o = wb + k4 * 24
            w = _vbcast(ws, o)
            a00 = _vubs(a00, x0, w); a01 = _vubs(a01, x1, w)  # noqa: E702
            w = _vbcast(ws, o + 4)
            a10 = _vubs(a10, x0, w); a11 = _vubs(a11, x1, w)  # noqa: E702
            w = _vbcast(ws, o + 8)
            a20 = _vubs(a20, x0, w); a21 = _vubs(a21, x1, w)  # noqa: E702
            w = _vbcast(ws, o + 12)
            a30 = _vubs(a30, x0, w); a31 = _vubs(a31, x1, w)  # noqa: E702
            w = _vbcast(ws, o + 16)
            a40 = _vubs(a40, x0, w); a41 = _vubs(a41, x1, w)  # noqa: E702
            w = _vbcast(ws, o + 20)
            a50 = _vubs(a50, x0, w); a51 = _vubs(a51, x1, w)  # noqa: E702
        o = m0 * np_ + n0
        _vstore(out, o, a00); _vstore(out, o + 8, a01); o += np_  # noqa: E702
        _vstore(out, o, a10); _vstore(out, o + 8, a11); o += np_  # noqa: E702
        _vstore(out, o, a20); _vstore(out, o + 8, a21); o += np_  # noqa: E702
        _vstore(out, o, a30); _vstore(out, o + 8, a31); o += np_  # noqa: E702
        _vstore(out, o, a40); _vstore(out, o + 8, a41); o += np_  # noqa: E702
        _vstore(out, o, a50); _vstore(out, o + 8, a51)  # noqa: E702


@njit(nogil=True, cache=True)
def _conv_wd_tiles(xb, poff, toff, wp, out, pp, ntaps, cwn, np_, t0, t1):
    """Implicit-GEMM conv tiles, int16 image (two channels per 4-byte broadcast), int16 weight pairs in
    column panels ``wp[n // 16, q // 2, n % 16, q % 2]`` (q = tap * C + c), ``vpmaddwd``; see
    :func:`conv_tiles`."""
    nmb = pp // 6
    pq = ntaps * cwn * 64  # bytes per 16-column panel of wp
    for t in range(t0, t1):
        nb = t // nmb
        mb = t - nb * nmb
        m0 = mb * 6
        n0 = nb * 16
        a00 = _vzero(); a01 = _vzero(); a10 = _vzero(); a11 = _vzero()  # noqa: E702
        a20 = _vzero(); a21 = _vzero(); a30 = _vzero(); a31 = _vzero()  # noqa: E702
        a40 = _vzero(); a41 = _vzero(); a50 = _vzero(); a51 = _vzero()  # noqa: E702
        p0 = poff[m0]; p1 = poff[m0 + 1]; p2 = poff[m0 + 2]  # noqa: E702
        p3 = poff[m0 + 3]; p4 = poff[m0 + 4]; p5 = poff[m0 + 5]  # noqa: E702
        for tp in range(ntaps):
            to = toff[tp]
            wb = nb * pq + tp * cwn * 64
            for cw in range(cwn):
                base = wb + cw * 64
                x0 = _vload(wp, base)
                x1 = _vload(wp, base + 32)
                o = to + cw * 4
                w = _vbcast(xb, p0 + o)
                a00 = _vwd(a00, w, x0); a01 = _vwd(a01, w, x1)  # noqa: E702
                w = _vbcast(xb, p1 + o)
                a10 = _vwd(a10, w, x0); a11 = _vwd(a11, w, x1)  # noqa: E702
                w = _vbcast(xb, p2 + o)
                a20 = _vwd(a20, w, x0); a21 = _vwd(a21, w, x1)  # noqa: E702
                w = _vbcast(xb, p3 + o)
                a30 = _vwd(a30, w, x0); a31 = _vwd(a31, w, x1)  # noqa: E702
                w = _vbcast(xb, p4 + o)
                a40 = _vwd(a40, w, x0); a41 = _vwd(a41, w, x1)  # noqa: E702
                w = _vbcast(xb, p5 + o)
                a50 = _vwd(a50, w, x0); a51 = _vwd(a51, w, x1)  # noqa: E702
        o = m0 * np_ + n0
        _vstore(out, o, a00); _vstore(out, o + 8, a01); o += np_  # noqa: E702
        _vstore(out, o, a10); _vstore(out, o + 8, a11); o += np_  # noqa: E702
        _vstore(out, o, a20); _vstore(out, o + 8, a21); o += np_  # noqa: E702
        _vstore(out, o, a30); _vstore(out, o + 8, a31); o += np_  # noqa: E702
        _vstore(out, o, a40); _vstore(out, o + 8, a41); o += np_  # noqa: E702
        _vstore(out, o, a50); _vstore(out, o + 8, a51)  # noqa: E702


@njit(nogil=True, cache=True)
def _conv_ubs_tiles(xb, poff, toff, wp, out, pp, ntaps, cwn, np_, t0, t1):
    """Implicit-GEMM conv tiles, uint8 image (four channels per broadcast), int8 weight quads in column
    panels ``wp[n // 16, q // 4, n % 16, q % 4]``, ``vpmaddubsw`` (int16-saturated pairs); see
    :func:`conv_tiles`."""
    nmb = pp // 6
    pq = ntaps * cwn * 64  # bytes per 16-column panel of wp
    for t in range(t0, t1):
        nb = t // nmb
        mb = t - nb * nmb
        m0 = mb * 6
        n0 = nb * 16
        a00 = _vzero(); a01 = _vzero(); a10 = _vzero(); a11 = _vzero()  # noqa: E702
        a20 = _vzero(); a21 = _vzero(); a30 = _vzero(); a31 = _vzero()  # noqa: E702
        a40 = _vzero(); a41 = _vzero(); a50 = _vzero(); a51 = _vzero()  # noqa: E702
        p0 = poff[m0]; p1 = poff[m0 + 1]; p2 = poff[m0 + 2]  # noqa: E702
        p3 = poff[m0 + 3]; p4 = poff[m0 + 4]; p5 = poff[m0 + 5]  # noqa: E702
        for tp in range(ntaps):
            to = toff[tp]
            wb = nb * pq + tp * cwn * 64
            for cw in range(cwn):
                base = wb + cw * 64
                x0 = _vload(wp, base)
                x1 = _vload(wp, base + 32)
                o = to + cw * 4
                w = _vbcast(xb, p0 + o)
                a00 = _vubs(a00, w, x0); a01 = _vubs(a01, w, x1)  # noqa: E702
                w = _vbcast(xb, p1 + o)
                a10 = _vubs(a10, w, x0); a11 = _vubs(a11, w, x1)  # noqa: E702
                w = _vbcast(xb, p2 + o)
                a20 = _vubs(a20, w, x0); a21 = _vubs(a21, w, x1)  # noqa: E702
                w = _vbcast(xb, p3 + o)
                a30 = _vubs(a30, w, x0); a31 = _vubs(a31, w, x1)  # noqa: E702
                w = _vbcast(xb, p4 + o)
                a40 = _vubs(a40, w, x0); a41 = _vubs(a41, w, x1)  # noqa: E702
                w = _vbcast(xb, p5 + o)
                a50 = _vubs(a50, w, x0); a51 = _vubs(a51, w, x1)  # noqa: E702
        o = m0 * np_ + n0
        _vstore(out, o, a00); _vstore(out, o + 8, a01); o += np_  # noqa: E702
        _vstore(out, o, a10); _vstore(out, o + 8, a11); o += np_  # noqa: E702
        _vstore(out, o, a20); _vstore(out, o + 8, a21); o += np_  # noqa: E702
        _vstore(out, o, a30); _vstore(out, o + 8, a31); o += np_  # noqa: E702
        _vstore(out, o, a40); _vstore(out, o + 8, a41); o += np_  # noqa: E702
        _vstore(out, o, a50); _vstore(out, o + 8, a51)  # noqa: E702


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def padded(m: int, k: int, n: int, kstep: int) -> tuple[int, int, int]:
    """(Mp, Kp, Np): ``m`` rounded up to MR, ``k`` to ``kstep``, ``n`` to NR (each at least one block)."""
    return _cdiv(max(m, 1), MR) * MR, _cdiv(max(k, 1), kstep) * kstep, _cdiv(max(n, 1), NR) * NR


def pack_panels16(x_kn: np.ndarray, kp: int, np_: int) -> np.ndarray:
    """Pack a (K, N) int16 matrix in column panels, the flat ``xp[n // NR, k // 2, n % NR, k % 2]`` bytes,
    zero-padded to (kp, np_): a tile's steps through the reduction read one contiguous stream."""
    k, n = x_kn.shape
    buf = np.zeros((kp, np_), np.int16)
    buf[:k, :n] = x_kn
    panels = buf.reshape(kp // 2, 2, np_ // NR, NR).transpose(2, 0, 3, 1)
    return np.ascontiguousarray(panels).reshape(-1).view(np.uint8)


def pack_panels8(x_kn: np.ndarray, kp: int, np_: int) -> np.ndarray:
    """Pack a (K, N) 8-bit matrix in column panels, the flat ``xp[n // NR, k // 4, n % NR, k % 4]`` bytes,
    zero-padded to (kp, np_)."""
    k, n = x_kn.shape
    buf = np.zeros((kp, np_), x_kn.dtype)
    buf[:k, :n] = x_kn
    panels = buf.reshape(kp // 4, 4, np_ // NR, NR).transpose(2, 0, 3, 1)
    return np.ascontiguousarray(panels).reshape(-1).view(np.uint8)


def pack_rows(w_mk: np.ndarray, mp: int, kp: int, step: int, dtype) -> np.ndarray:
    """Pack the broadcast rows (m, k) into panels ``[m // MR, k // step, m % MR, k % step]``, zero-padded to
    (mp, kp): one pointer and constant offsets reach the MR broadcasts of a step."""
    m, k = w_mk.shape
    ws = np.zeros((mp, kp), dtype)
    ws[:m, :k] = w_mk
    return np.ascontiguousarray(ws.reshape(mp // MR, MR, kp // step, step).transpose(0, 2, 1, 3)).reshape(-1)


@njit(cache=True)
def _pack_panels16_shift(x, z, out):
    """``out[n // NR, k // 2, n % NR, k % 2] = x[k, n] - z[n]`` as int16 (out zero-initialised, (np_ // NR,
    kp // 2, NR, 2)). One column panel at a time: the panel is written in order, and the rows it reads (16
    codes of each) stay in L2 for the next panel; the full panels' constant width lets LLVM vectorise."""
    k, n = x.shape
    for nb in range(-(-n // 16)):
        j0 = nb * 16
        p = out[nb]
        if j0 + 16 <= n:
            zz = z[j0:j0 + 16]
            for k2 in range(k // 2):
                r0 = x[2 * k2, j0:j0 + 16]
                r1 = x[2 * k2 + 1, j0:j0 + 16]
                o = p[k2]
                for j in range(16):
                    o[j, 0] = np.int16(np.int64(r0[j]) - zz[j])
                    o[j, 1] = np.int16(np.int64(r1[j]) - zz[j])
        else:
            for q in range(k - k % 2):
                r = x[q]
                o = p[q // 2]
                for j in range(n - j0):
                    o[j, q % 2] = np.int16(np.int64(r[j0 + j]) - z[j0 + j])
        if k % 2:
            r = x[k - 1]
            o = p[k // 2]
            for j in range(min(16, n - j0)):
                o[j, 0] = np.int16(np.int64(r[j0 + j]) - z[j0 + j])


@njit(cache=True)
def _pack_rows16_shift(w, z, out):
    """``out[m // MR, k // 2, m % MR, k % 2] = w[m, k] - z`` as int16 (out zero-initialised)."""
    m, k = w.shape
    for i in range(m):
        mb = i // 6
        r = i - mb * 6
        row = w[i]
        o = out[mb]
        for q in range(k):
            o[q // 2, r, q % 2] = np.int16(np.int64(row[q]) - z)


def pack_panels16_shift(x_kn: np.ndarray, z: np.ndarray, kp: int, np_: int) -> np.ndarray:
    """:func:`pack_panels16` of ``x - z[None, :]`` in one pass (the caller checks that it fits int16)."""
    out = np.zeros((np_ // NR, kp // 2, NR, 2), np.int16)
    _pack_panels16_shift(x_kn, z.astype(np.int64), out)
    return out.reshape(-1).view(np.uint8)


def gemm_wd_shift(w_mk: np.ndarray, wz: int, xp: np.ndarray, m: int, k: int, n: int, kp: int,
                  np_: int) -> np.ndarray:
    """:func:`gemm_wd` of ``w - wz`` (shifted while packed, in one pass); (m, n) int64."""
    mp = _cdiv(max(m, 1), MR) * MR
    ws = np.zeros((mp // MR, kp // 2, MR, 2), np.int16)
    _pack_rows16_shift(w_mk, np.int64(wz), ws)
    return _run(_wd_tiles, ws, xp, m, n, mp, kp, np_)


#: Reduction block of the ``vpmaddwd`` GEMM, in pairs of ``k`` (longer reductions run in several passes that
#: add into the int32 output). Measured on an AMD EPYC (AVX2, 32 KB L1d, 512 KB L2 per core): blocks of 128
#: or 256 pairs were no faster than 512 once the tiles run in the order of ``MG``.
KB2 = 512
#: Row panels per group in the ``vpmaddwd`` GEMM's tile order (GotoBLAS order: a group's 16 * 6 rows of one
#: reduction block, 192 KB, stay in L2 while each 16-column panel serves the group's tiles from L1): 1.2x
#: faster than a plain column-major tile order at 1024^3 (MG = 8 and 32 were slower).
MG = 16


_POOL = None
#: Chunks of tiles per thread: small enough that a thread which is descheduled (a busy machine) holds up the
#: others by one chunk at most, large enough that the dispatch (a few microseconds) does not matter.
CHUNKS_PER_THREAD = 12


def _pool():
    global _POOL
    if _POOL is None:
        _POOL = concurrent.futures.ThreadPoolExecutor(max(numba.config.NUMBA_NUM_THREADS - 1, 1),
                                                      thread_name_prefix="hwsim-avx2")
    return _POOL


def _forget_pool():  # a forked child has none of the parent's threads
    global _POOL
    _POOL = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _tiles(kernel, args, ntiles: int) -> None:
    """Run ``kernel(*args, t0, t1)`` over the tiles ``[0, ntiles)`` on ``numba.get_num_threads()`` threads.

    The kernels are ``nogil`` numba functions; the calling thread works too, and every thread takes the next
    chunk of tiles from a shared counter (work sharing without a barrier). numba's own parallel runtime
    (OpenMP by default) ends each region at a barrier of all its threads: on a machine where other processes
    hold the cores, a worker that is not scheduled kept the caller waiting for a time slice (a 1024^3 GEMM ran
    2x slower on two threads than on one at load average 8; measured here, AMD EPYC, 2 cores). Here a worker
    that never gets a core simply takes no chunk.
    """
    nth = min(numba.get_num_threads(), numba.config.NUMBA_NUM_THREADS)
    if nth <= 1 or ntiles < 2 * nth:
        kernel(*args, 0, ntiles)
        return
    nch = min(ntiles, CHUNKS_PER_THREAD * nth)
    size = -(-ntiles // nch)
    nch = -(-ntiles // size)
    ctr = itertools.count()  # next() on a count is atomic under the GIL

    def work():
        while True:
            i = next(ctr)
            if i >= nch:
                return
            kernel(*args, i * size, min(ntiles, (i + 1) * size))

    futs = [_pool().submit(work) for _ in range(nth - 1)]
    work()
    for f in futs:
        f.result()


def _run(kernel, ws, xp, m, n, mp, kp, np_):
    wsb = ws.reshape(-1).view(np.uint8)
    ntiles = (mp // MR) * (np_ // NR)
    if kernel is _wd_tiles:
        k2n = kp // 2
        o64 = np.empty((m, n), np.int64)
        # the int32 partial sums of the reduction blocks before the last (none when one block covers it)
        out = np.empty(mp * np_ if k2n > KB2 else 1, np.int32)
        for k2a in range(0, max(k2n, 1), KB2):
            k2b = min(k2n, k2a + KB2)
            _tiles(kernel, (wsb, xp, out, o64.reshape(-1), mp, kp, np_, m, n, k2a, k2b, k2a == 0, k2b >= k2n),
                   ntiles)
        return o64
    out = np.empty(mp * np_, np.int32)
    _tiles(kernel, (wsb, xp, out, mp, kp, np_), ntiles)
    return out.reshape(mp, np_)[:m, :n]


def gemm_wd(w_mk: np.ndarray, xp: np.ndarray, m: int, k: int, n: int, kp: int, np_: int) -> np.ndarray:
    """int32 ``w (m, k) int16 @ x (k, n) int16``, ``x`` packed by :func:`pack_panels16` (to ``(kp, np_)``).

    Exact when ``k max|w| max|x| < 2^31`` and no operand is -32768 (the caller checks). Returns the (m, n)
    int64 result (the int32 sums sign-extended).
    """
    mp = _cdiv(max(m, 1), MR) * MR
    return _run(_wd_tiles, pack_rows(w_mk, mp, kp, 2, np.int16), xp, m, n, mp, kp, np_)


def gemm_ubs(w_mk: np.ndarray, xp: np.ndarray, m: int, k: int, n: int, kp: int, np_: int) -> np.ndarray:
    """int32 ``sum_p sat16(w[m,2p] x[2p,n] + w[m,2p+1] x[2p+1,n])`` with ``x`` packed by :func:`pack_panels8`.

    ``w`` (m, k) uint8 with ``x`` int8, or ``w`` int8 with ``x`` uint8 (the unsigned operand may be either).
    int32 sums: exact while ``(kp / 2) * 32768 < 2^31``, i.e. ``kp <= 131072`` (the caller chunks). Returns an
    (m, n) int32 view of a padded buffer.
    """
    mp = _cdiv(max(m, 1), MR) * MR
    kernel = _ubs_tiles_ub if w_mk.dtype == np.uint8 else _ubs_tiles_sb
    return _run(kernel, pack_rows(w_mk, mp, kp, 4, w_mk.dtype), xp, m, n, mp, kp, np_)


def conv_tiles(kind: str, xb: np.ndarray, poff: np.ndarray, toff: np.ndarray, wp: np.ndarray, pp: int,
               ntaps: int, cwn: int, np_: int) -> np.ndarray:
    """Implicit-GEMM conv: ``out[p, n] = sum_{tap, c} img[poff[p] + toff[tap] + c] * w[tap, c, n]`` (int32).

    No im2col matrix: the broadcast operand is read from the padded NHWC image itself. ``xb`` is that image
    as flat bytes (int16 codes for ``kind="wd"``, uint8 for ``"ubs"``, channels padded to a multiple of 2 or
    4); ``poff`` (``pp``,) int64 the byte offset of each output pixel's window origin (``pp`` a multiple of
    ``MR``; padding pixels may point anywhere valid); ``toff`` (``ntaps``,) int64 the byte offset of each
    kernel tap; ``cwn`` the 4-byte words per pixel (``C / 2`` or ``C / 4``); ``wp`` the weights packed as
    :func:`pack_panels16` / :func:`pack_panels8` of the ``(ntaps * C, N)`` matrix, ``np_`` their padded
    ``N``. Exactness as :func:`gemm_wd` / :func:`gemm_ubs` (the caller checks). Returns ``(pp, np_)`` int32.
    """
    out = np.empty(pp * np_, np.int32)
    kernel = _conv_wd_tiles if kind == "wd" else _conv_ubs_tiles
    _tiles(kernel, (xb, poff, toff, wp, out, pp, ntaps, cwn, np_), (pp // MR) * (np_ // NR))
    return out.reshape(pp, np_)
