"""Fast exact accumulators for the order-independent (wrap) case. Private: used by :mod:`._layers`.

Both paths return the exact int64 sum ``sum (a - z_a)(b - z_b)``, so that the public functions stay bit-exact;
the tests compare them with the numba loops of :mod:`._kernels` (``tests/test_datapath_fast.py``).

1. **VNNI** (:mod:`._vnni`, when the CPU has AVX512-VNNI). 8-bit codes are mapped to one unsigned and one
   signed operand (``u = x + o`` with ``o`` 0 for uint8, 128 for int8; ``s = y + o'`` with ``o'`` 0 for int8,
   -128 for uint8), and the zero points move with them (``z' = z + o``). Then::

       sum_k (u - z_u')(s - z_s') = sum_k u s - z_s' sum_k u - z_u' sum_k s + K z_u' z_s'

   The first sum is the int32 ``vpdpbusd`` GEMM, exact for ``K <= 65536`` (``|u s| <= 255 * 128``);
   longer reductions are cut into such chunks and added in int64, as are the correction terms. A padded conv
   input holds the real value 0, i.e. the code ``z_a'``, whose terms cancel in the identity above.
2. **AVX2** (:mod:`._avx2`, when the CPU has AVX2 but not VNNI), two exact schemes:

   a. *int16 pairs* (``vpmaddwd``): the zero-shifted operands ``a - z_a`` and ``b - z_b`` are stored as int16
      (they must lie in ``[-32767, 32767]``; 8-bit codes give ``[-255, 255]``). ``vpmaddwd`` adds two int16
      products into int32 without saturation, so with ``B = max|a - z_a| max|b - z_b|`` every int32 partial
      sum of ``c`` terms is at most ``c B``: chunks of ``c = floor((2^31 - 1) / B)`` terms are exact (33025
      for 8-bit codes, more for narrower operands), the chunks are added in int64. No correction terms. The
      packed int16 panels of ``b`` (the weights) are reused across calls for equal bytes (:mod:`._packcache`);
      the kernel writes the int64 result itself (``docs/avx2_gemm.md``).
   b. *byte pairs* (``vpmaddubsw``, for narrow operands): one operand as unsigned bytes ``u = x + o`` in [0,
      255], the other zero-shifted as signed bytes ``s = y - z_y`` in [-128, 127]. ``vpmaddubsw`` saturates
      each pair ``u_0 s_0 + u_1 s_1`` to int16; ``|u_0 s_0 + u_1 s_1| <= 2 max(u) max|s|``, so when
      ``2 max(u) max|s| <= 32767`` no pair can saturate and the kernel is exact (e.g. any uint8 activation
      with weights of 7 bits or fewer: ``2 * 255 * 64 = 32640``; 4-bit x 4-bit: ``2 * 15 * 8 = 240``). The
      int32 sums of ``c`` pairs are at most ``2 c max(u) max|s| <= c 32767``, exact for ``c <= 65536``. Then
      ``sum (u - z_u')(s) = sum u s - z_u' sum s`` (one correction term). It runs about 1.7x faster than (a).

   Convs on AVX2 are implicit GEMMs (:func:`implicit_conv`): the kernel reads the padded NHWC image through
   per-pixel and per-tap offsets instead of an im2col matrix (``docs/performance.md``). The AVX2 kernels run
   on plain threads that share chunks of tiles (``_avx2._tiles``), parallel from
   :data:`AVX2_PARALLEL_MIN_MACS`.
3. **Float BLAS** (``DESIGN.md``, "Exact integers, fast"): a float32 product of integers is exact while every
   partial sum stays below ``2^24`` in magnitude. With ``B = max|a - z_a| * max|b - z_b|``, chunks of ``c =
   floor(2^24 / B)`` reduction terms have partial sums ``<= c * B <= 2^24`` in any summation order, so
   ``np.matmul`` on float32 chunks is exact; the chunks are added in int64. When ``c < 32`` (wide operands)
   float64 is used with ``2^53``.
"""

from __future__ import annotations

import contextlib

import numba
import numpy as np
from numba import njit, prange

from . import _avx2, _packcache, _vnni

__all__ = ["exact_gemm", "exact_conv", "pairs_conv", "implicit_conv", "vnni_available", "avx2_available",
           "fast_path_name"]

_F32_EXACT = 1 << 24
_F64_EXACT = 1 << 53
#: Below this many MACs the fast kernels run on one thread: each parallel region costs a thread wake-up,
#: which on a busy machine can take a scheduler time slice (milliseconds) and outweigh the work.
PARALLEL_MIN_MACS = 1 << 28
#: The same for the AVX2 kernels, which share work without a barrier (``_avx2._tiles``): a worker that does
#: not get a core takes no work, so only the hand-off (tens of microseconds) has to be paid for.
AVX2_PARALLEL_MIN_MACS = 1 << 22


@contextlib.contextmanager
def _threads_for(macs: int, floor: int | None = None):
    if macs >= (PARALLEL_MIN_MACS if floor is None else floor) or numba.get_num_threads() == 1:
        yield
        return
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(old)


def kernel_threads(macs: int) -> int:
    """Threads the fast path of this host uses for a product of ``macs`` multiply-accumulates (reports)."""
    floor = AVX2_PARALLEL_MIN_MACS if fast_path_name() == "avx2" else PARALLEL_MIN_MACS
    return numba.get_num_threads() if macs >= floor else 1


def vnni_available() -> bool:
    """True when the VNNI kernels can run on this CPU."""
    return _vnni.AVAILABLE


def avx2_available() -> bool:
    """True when the AVX2 kernels can run on this CPU (and numba targets the host)."""
    return _avx2.AVAILABLE


def fast_path_name() -> str:
    """The exact fast path of this host, for reports: ``"vnni"``, ``"avx2"`` or ``"float"``."""
    return "vnni" if _vnni.AVAILABLE else "avx2" if _avx2.AVAILABLE else "float"


def _u8_offset(a: np.ndarray) -> int | None:
    """Offset mapping the codes of ``a`` into [0, 255], or None."""
    if a.dtype == np.uint8:
        return 0
    if a.dtype == np.int8:
        return 128
    if a.size == 0:
        return 0
    lo, hi = int(a.min()), int(a.max())
    if lo >= 0 and hi <= 255:
        return 0
    if lo >= -128 and hi <= 127:
        return 128
    return None


def _s8_offset(b: np.ndarray) -> int | None:
    """Offset mapping the codes of ``b`` into [-128, 127], or None."""
    if b.dtype == np.int8:
        return 0
    if b.dtype == np.uint8:
        return -128
    if b.size == 0:
        return 0
    lo, hi = int(b.min()), int(b.max())
    if lo >= -128 and hi <= 127:
        return 0
    if lo >= 0 and hi <= 255:
        return -128
    return None


def _to_u8(a: np.ndarray, off: int) -> np.ndarray:
    if a.dtype == np.uint8 and off == 0:
        return a
    if a.dtype == np.int8 and off == 128:
        return a.view(np.uint8) ^ np.uint8(0x80)
    return (a.astype(np.int16) + off).astype(np.uint8)


def _to_s8(b: np.ndarray, off: int) -> np.ndarray:
    if b.dtype == np.int8 and off == 0:
        return b
    if b.dtype == np.uint8 and off == -128:
        return (b ^ np.uint8(0x80)).view(np.int8)
    return (b.astype(np.int16) + off).astype(np.int8)


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _vnni_gemm(a: np.ndarray, b: np.ndarray, az: int, bz: np.ndarray) -> np.ndarray | None:
    """VNNI path for ``a (M, K) @ b (K, N)``: the activations become the *signed* broadcast operand and the
    weights the *unsigned* vector operand (``vpdpbusd`` broadcasts only its signed source), so the kernel
    writes ``(M, N)`` row-major directly: ``a_s = a + o_a`` in [-128, 127], ``b_u = b + o_b`` in [0, 255], and
    ``sum (a - z_a)(b - z_b) = sum (a_s - z_a')(b_u - z_b')`` with ``z' = z + o``, expanded as above."""
    oa = _s8_offset(a)
    ob = _u8_offset(b)
    if oa is None or ob is None:
        return None
    za = az + oa
    zb = bz.astype(np.int64) + ob
    a_s = _to_s8(a, oa)
    m, k = a_s.shape
    n = b.shape[1]
    # the weights' unsigned copy, its column sums and its packed panels depend on b's bytes alone: cached by
    # content (_packcache: a full compare on every hit) as on the AVX2 path, so a layer run again (verify's
    # reference and target runs, a sweep's quality model) packs them once
    b_u: list = []

    def unsigned():
        if not b_u:
            b_u.append(_to_u8(b, ob))
        return b_u[0]

    rows = a_s.sum(axis=1, dtype=np.int64)
    cols = _packcache.packed(("vnni_cols", ob), b, b"", lambda: unsigned().sum(axis=0, dtype=np.int64))
    acc = np.empty((m, n), np.int64)
    for c, k0 in enumerate(range(0, k, _vnni.MAX_K)):
        k1 = min(k, k0 + _vnni.MAX_K)
        kc = k1 - k0
        kp = _cdiv(kc, 4) * 4
        np_ = _cdiv(max(n, 1), _vnni.NR) * _vnni.NR
        xp = _packcache.packed(("vnni_u8", ob, k0, k1, kp, np_), b, b"",
                               lambda k0=k0, k1=k1, kp=kp, np_=np_: _vnni.pack_u8(unsigned()[k0:k1], kp, np_))
        part = _vnni.gemm_s8u8(a_s[:, k0:k1], xp, m, kc, n, kp, np_)
        if c == 0:
            _correct(part, rows, cols, za, zb, k, acc)
        else:
            acc += part
    return acc


@njit(parallel=True, cache=True)
def _correct(part, rows, cols, za, zb, k, out):
    """``out = part - rows[i] zb[j] - za cols[j] + k za zb[j]`` in int64, one pass."""
    m, n = out.shape
    for i in prange(m):
        ri = rows[i]
        for j in range(n):
            out[i, j] = np.int64(part[i, j]) - ri * zb[j] - za * cols[j] + k * za * zb[j]


@njit(parallel=True, cache=True)
def _correct_rows(part, zr, cols, zc, rsum, k, out):
    """``out[i, j] = part[i, j] - zr[i] cols[j] - zc rsum[i] + k zc zr[i]`` (weights as rows, conv)."""
    m, n = out.shape
    for i in prange(m):
        a = zr[i]
        b = zc * rsum[i] - k * zc * a
        for j in range(n):
            out[i, j] = np.int64(part[i, j]) - a * cols[j] - b


def _float_gemm(a_s: np.ndarray, b_s: np.ndarray) -> np.ndarray | None:
    """Exact int64 ``a_s @ b_s`` for zero-shifted integer operands through float BLAS, or None."""
    m, k = a_s.shape
    n = b_s.shape[1]
    bound = (int(np.abs(a_s).max()) if a_s.size else 0) * (int(np.abs(b_s).max()) if b_s.size else 0)
    if bound == 0 or k == 0:
        return np.zeros((m, n), np.int64)
    chunk, dt = _F32_EXACT // bound, np.float32
    if chunk < 32:
        chunk, dt = _F64_EXACT // bound, np.float64
        if chunk < 1:
            return None
    af = a_s.astype(dt)
    bf = b_s.astype(dt)
    acc = np.zeros((m, n), np.int64)
    for k0 in range(0, k, chunk):
        acc += np.matmul(af[:, k0:k0 + chunk], bf[k0:k0 + chunk]).astype(np.int64)
    return acc


_I32_MAX = (1 << 31) - 1
_I16_MAX = 32767
#: Longest reduction of one ``vpmaddubsw`` chunk: 32768 pairs of |sum| <= 32767 stay below 2^31 in int32.
_UBS_MAX_K = 65536


def _range(v: np.ndarray, axis=None) -> tuple:
    return v.min(axis=axis).astype(np.int64), v.max(axis=axis).astype(np.int64)


def _shift16(v: np.ndarray, z) -> np.ndarray:
    """``v - z`` as int16 (the caller has checked that it fits)."""
    wide = np.int32 if v.dtype.itemsize <= 2 else np.int64
    return (v.astype(wide) - np.asarray(z, wide)).astype(np.int16)


def _ubs_offset(lo: int, hi: int) -> int | None:
    """Offset ``o`` with ``lo + o >= 0`` and ``hi + o <= 255`` (0 for unsigned codes, 128 for signed), or
    None."""
    for o in (0, 128):
        if lo + o >= 0 and hi + o <= 255:
            return o
    return None


def _avx2_gemm(a: np.ndarray, b: np.ndarray, az: int, bz: np.ndarray) -> np.ndarray | None:
    """AVX2 path for ``a (M, K) @ b (K, N)`` (module docstring, 2a and 2b), or None if the operands are too
    wide for int16."""
    m, k = a.shape
    n = b.shape[1]
    if not (m and k and n):
        return np.zeros((m, n), np.int64)
    alo, ahi = (int(v) for v in _range(a))
    blo, bhi = _range(b, axis=0)
    bz = bz.astype(np.int64)
    amag = max(abs(alo - az), abs(ahi - az))
    bmag = int(np.maximum(np.abs(blo - bz), np.abs(bhi - bz)).max())
    if amag == 0 or bmag == 0:
        return np.zeros((m, n), np.int64)
    # 2b with a unsigned (broadcast) and b - bz signed, or b unsigned and a - az signed
    oa = _ubs_offset(alo, ahi)
    if oa is not None and bmag <= 127 and 2 * (ahi + oa) * bmag <= _I16_MAX:
        b_s = (b.astype(np.int64) - bz).astype(np.int8)
        return _ubs_chunks(_to_u8(a, oa), b_s, -(az + oa) * b_s.sum(axis=0, dtype=np.int64)[None, :])
    ob = _ubs_offset(int(blo.min()), int(bhi.max()))
    if ob is not None and amag <= 127 and 2 * (int(bhi.max()) + ob) * amag <= _I16_MAX:
        a_s = (a.astype(np.int64) - az).astype(np.int8)
        b_u = (b.astype(np.int64) + ob).astype(np.uint8)
        return _ubs_chunks(a_s, b_u, -(bz + ob)[None, :] * a_s.sum(axis=1, dtype=np.int64)[:, None])
    # 2a: int16 pairs
    if amag > _I16_MAX or bmag > _I16_MAX:
        return None
    chunk = _I32_MAX // (amag * bmag)
    acc = None
    for k0 in range(0, k, chunk):
        kc = min(k, k0 + chunk) - k0
        _, kp, np_ = _avx2.padded(m, kc, n, 2)
        bk = b[k0:k0 + kc]
        xp = _packcache.packed(("panels16_shift", kp, np_), bk, bz.tobytes(),
                               lambda bk=bk, kp=kp, np_=np_: _avx2.pack_panels16_shift(bk, bz, kp, np_))
        part = _avx2.gemm_wd_shift(a[:, k0:k0 + kc], az, xp, m, kc, n, kp, np_)
        acc = part if acc is None else acc + part  # int64 (m, n)
    return acc


def _ubs_chunks(w: np.ndarray, x: np.ndarray, corr: np.ndarray) -> np.ndarray:
    """``w (M, K) @ x (K, N)`` by the byte-pair kernel (one operand uint8, the other int8), chunked so that
    the int32 sums are exact, plus ``corr`` (broadcast to (M, N)); int64."""
    m, k = w.shape
    n = x.shape[1]
    acc = np.zeros((m, n), np.int64)
    acc += corr
    for k0 in range(0, k, _UBS_MAX_K):
        kc = min(k, k0 + _UBS_MAX_K) - k0
        _, kp, np_ = _avx2.padded(m, kc, n, 4)
        acc += _avx2.gemm_ubs(w[:, k0:k0 + kc], _avx2.pack_panels8(x[k0:k0 + kc], kp, np_), m, kc, n, kp,
                              np_)
    return acc


def exact_gemm(a: np.ndarray, b: np.ndarray, az: int, bz: np.ndarray, *,
               path: str = "auto") -> np.ndarray | None:
    """Exact int64 ``sum_k (a[i,k] - az)(b[k,j] - bz[j])`` by a fast path, or None if none applies.

    ``path``: ``"auto"`` (VNNI, else AVX2, else float BLAS, as far as each applies), ``"simd"`` (VNNI or AVX2
    only), ``"vnni"``, ``"avx2"``, ``"float"``.
    """
    macs = a.shape[0] * a.shape[1] * b.shape[1]
    if path in ("auto", "simd", "vnni") and _vnni.AVAILABLE:
        with _threads_for(macs):
            r = _vnni_gemm(a, b, az, bz)
        if r is not None or path == "vnni":
            return r
    if path == "vnni":
        return None
    if path in ("auto", "simd", "avx2") and _avx2.AVAILABLE:
        with _threads_for(macs, AVX2_PARALLEL_MIN_MACS):
            r = _avx2_gemm(a, b, az, bz)
        if r is not None or path == "avx2":
            return r
    if path in ("avx2", "simd"):
        return None
    a_s = a.astype(np.int64) - az
    b_s = b.astype(np.int64) - bz.astype(np.int64)[None, :]
    return _float_gemm(a_s, b_s)


@njit(parallel=True, cache=True)
def _im2col_pack(x32, kr, ks, sh, sw, dh, dw, ho, wo, out32):
    """Pack the im2col matrix of a padded NHWC uint8 image whose channels (a multiple of four) are viewed as
    int32 words ``x32`` (N, Hp, Wp, C/4).

    The reduction index runs ``q = ((r * S + s) * C + c)`` (channels innermost: the sum is exact in any
    order), so four consecutive taps are four consecutive channels and move as one int32:
    ``out32[(r*S + s)*C/4 + c4, p] = x32[n, oh*sh + r*dh, ow*sw + s*dw, c4]`` with ``p = (n*Ho + oh)*Wo +
    ow``; ``out32`` viewed as bytes is the packed ``(Kp/4, Np, 4)`` operand of :mod:`._vnni`.
    """
    nb = x32.shape[0]
    c4n = x32.shape[3]
    for q4 in prange(kr * ks * c4n):
        rs = q4 // c4n
        c4 = q4 - rs * c4n
        r = rs // ks
        s = rs - r * ks
        orow = out32[q4]
        for n in range(nb):
            for oh in range(ho):
                ih = oh * sh + r * dh
                pb = (n * ho + oh) * wo
                for ow in range(wo):
                    orow[pb + ow] = x32[n, ih, ow * sw + s * dw, c4]


def _window_sums(xu, c0, cg, kr, ks, sh, sw, dh, dw, ho, wo) -> np.ndarray:
    """``sum_q`` of the im2col column of every output pixel: the channel-summed image summed over the
    kernel's taps; (N * Ho * Wo,) int64."""
    img = xu[:, c0:c0 + cg].sum(axis=1, dtype=np.int64)  # (N, Hp, Wp)
    tot = np.zeros((xu.shape[0], ho, wo), np.int64)
    for r in range(kr):
        for s in range(ks):
            tot += img[:, r * dh:r * dh + sh * (ho - 1) + 1:sh, s * dw:s * dw + sw * (wo - 1) + 1:sw]
    return tot.reshape(-1)


def exact_conv(x: np.ndarray, w: np.ndarray, xz: int, wz: np.ndarray, stride, pads, dilation, groups: int,
               ho: int, wo: int) -> np.ndarray | None:
    """Exact int64 conv sums (N, K, Ho, Wo) on the VNNI path (im2col per group) or the AVX2 path (implicit
    GEMM on the padded NHWC image, :func:`implicit_conv`), or None if neither
    applies.

    Applies when the CPU has VNNI (8-bit codes, reduction in one chunk) or AVX2 (operands within int16, one
    exact chunk), and each group has at least ``MR`` output channels; depthwise and other narrow groups run a
    direct numba kernel with int32 sums where they are provably exact (:func:`_direct_conv`).
    """
    macs = x.shape[0] * ho * wo * w.shape[0] * w.shape[1] * w.shape[2] * w.shape[3]
    out = None
    if _vnni.AVAILABLE:
        out = _vnni_conv_checked(x, w, xz, wz, stride, pads, dilation, groups, ho, wo)
    elif _avx2.AVAILABLE:
        with _threads_for(macs, AVX2_PARALLEL_MIN_MACS):
            out = _avx2_conv(x, w, xz, wz, stride, pads, dilation, groups, ho, wo)
    if out is None and w.shape[0] // groups < _avx2.MR:
        with _threads_for(macs):
            out = _direct_conv(x, w, xz, wz, stride, pads, dilation, groups, ho, wo)
    return out


@njit(parallel=True, cache=True)
def _conv_direct_i32(xs, ws, out, sh, sw, dh, dw, groups):
    """Direct conv with int32 sums (the caller bounds them): ``out[n, k] += ws[k, c, r, s] * xs[n, g Cg + c,
    oh sh + r dh, ow sw + s dw]``; xs (N, C, Hp, Wp) int16 shifted and padded, ws (K, Cg, R, S) int32,
    out (N, K, Ho, Wo) int32 zeroed. One (n, k) plane per parallel task; the output row loop vectorises."""
    n_b = xs.shape[0]
    k_out, cg, kr, ks = ws.shape
    ho, wo = out.shape[2], out.shape[3]
    kg = k_out // groups
    for t in prange(n_b * k_out):
        n = t // k_out
        k = t - n * k_out
        g = k // kg
        o = out[n, k]
        for c in range(cg):
            xc = xs[n, g * cg + c]
            for r in range(kr):
                for s in range(ks):
                    wv = ws[k, c, r, s]
                    if wv == 0:
                        continue
                    base = s * dw
                    for oh in range(ho):
                        xrow = xc[oh * sh + r * dh]
                        orow = o[oh]
                        if sw == 1:
                            for ow in range(wo):
                                orow[ow] += wv * np.int32(xrow[base + ow])
                        else:
                            for ow in range(wo):
                                orow[ow] += wv * np.int32(xrow[base + ow * sw])


def _direct_conv(x, w, xz, wz, stride, pads, dilation, groups, ho, wo):
    """Grouped / depthwise convs (fewer than ``MR`` outputs per group) with int32 sums, exact when
    ``Cg R S max|x - z_x| max|w - z_w| <= 2^31 - 1`` (checked; 8-bit 3 x 3 depthwise: 9 * 255 * 255); else
    None. int32 products vectorise on AVX2 (``vpmulld``), int64 ones do not."""
    n_b, ch, h, wd = x.shape
    k_out, cg, kr, ks = w.shape
    if not x.size or not w.size:
        return None
    xlo, xhi = (int(v) for v in _range(x))
    xmag = max(abs(xlo - xz), abs(xhi - xz))
    wz = wz.astype(np.int64)
    wlo, whi = _range(w.reshape(k_out, -1), axis=1)
    wmag = int(np.maximum(np.abs(wlo - wz), np.abs(whi - wz)).max())
    if xmag > _I16_MAX or wmag > _I16_MAX or cg * kr * ks * xmag * wmag > _I32_MAX:
        return None
    pt, pb, pl, pr = pads
    xs = np.zeros((n_b, ch, h + pt + pb, wd + pl + pr), np.int16)
    xs[:, :, pt:pt + h, pl:pl + wd] = _shift16(x, xz)
    ws = (w.astype(np.int64) - wz.reshape(-1, 1, 1, 1)).astype(np.int32)
    out = np.zeros((n_b, k_out, ho, wo), np.int32)
    _conv_direct_i32(xs, ws, out, stride[0], stride[1], dilation[0], dilation[1], groups)
    return out.astype(np.int64)


def _vnni_conv_checked(x, w, xz, wz, stride, pads, dilation, groups, ho, wo):
    n_b, ch, h, wd = x.shape
    k_out, cg, kr, ks = w.shape
    kg = k_out // groups
    q = cg * kr * ks
    if kg < _vnni.MR or q > _vnni.MAX_K:
        return None
    oa, ob = _u8_offset(x), _s8_offset(w)
    if oa is None or ob is None:
        return None
    za = xz + oa
    zb = wz.astype(np.int64) + ob
    if not (0 <= za <= 255):
        return None
    with _threads_for(n_b * ho * wo * k_out * q):
        return _vnni_conv(x, w, xz, wz, stride, pads, dilation, groups, ho, wo, oa, ob, za, zb, q, kg)


def _nhwc_padded(x: np.ndarray, c0: int, cg: int, cpad: int, pads, fill: int, off: int, dtype) -> np.ndarray:
    """Channels ``c0 .. c0 + cg`` of the NCHW image ``x`` as a padded NHWC image (N, Hp, Wp, cpad) of
    ``dtype`` holding ``x + off``; spatial padding holds ``fill``, padded channels 0. One pass per copy."""
    n_b, _, h, wd = x.shape
    pt, pb, pl, pr = pads
    xg = np.zeros((n_b, h + pt + pb, wd + pl + pr, cpad), dtype)
    if fill:
        xg[..., :cg] = fill
    dst = xg[:, pt:pt + h, pl:pl + wd, :cg]
    src = x[:, c0:c0 + cg]
    if dtype == np.uint8:
        dst[...] = _to_u8(src, off).transpose(0, 2, 3, 1)
    else:
        np.add(src.transpose(0, 2, 3, 1), off, out=dst, dtype=np.int32, casting="unsafe")
    return xg


def implicit_conv(xg: np.ndarray, wq: np.ndarray, kind: str, kr: int, ks: int, stride, dilation, ho: int,
                  wo: int) -> np.ndarray:
    """int32 conv sums of a padded NHWC image by the implicit-GEMM AVX2 kernel (:func:`._avx2.conv_tiles`).

    ``xg`` (N, Hp, Wp, Cp): int16 (``kind="wd"``, ``Cp`` even) or uint8 (``"ubs"``, ``Cp`` a multiple of 4);
    ``wq`` (R * S * Cp, K) in ``(r, s, c)`` order, int16 or int8. Returns ``(N * Ho * Wo, K)`` int32, rows
    ``p = (n * Ho + oh) * Wo + ow`` (a view of a padded buffer; its row stride is a multiple of 16).
    The sums are exact int32 for ``"wd"`` while they stay below ``2^31``; ``"ubs"`` saturates each pair of
    adjacent channels to int16 (``vpmaddubsw``). The caller checks both.
    """
    n_b, hp, wp_, cp = xg.shape
    sh, sw = stride
    dh, dw = dilation
    esz = xg.itemsize
    p_tot = n_b * ho * wo
    pp = _cdiv(p_tot, _avx2.MR) * _avx2.MR
    pix = np.arange(p_tot, dtype=np.int64)
    ow_, rest = pix % wo, pix // wo
    oh_, nn = rest % ho, rest // ho
    poff = np.zeros(pp, np.int64)
    poff[:p_tot] = ((nn * hp + oh_ * sh) * wp_ + ow_ * sw) * (cp * esz)
    rr, ss = np.divmod(np.arange(kr * ks, dtype=np.int64), ks)
    toff = (rr * dh * wp_ + ss * dw) * (cp * esz)
    k_out = wq.shape[1]
    np_ = _cdiv(max(k_out, 1), _avx2.NR) * _avx2.NR
    q = kr * ks * cp
    wp = _avx2.pack_panels16(wq, q, np_) if kind == "wd" else _avx2.pack_panels8(wq, q, np_)
    part = _avx2.conv_tiles(kind, xg.reshape(-1).view(np.uint8), poff, toff, wp, pp, kr * ks, cp * esz // 4,
                            np_)
    return part[:p_tot, :k_out]


@njit(cache=True)
def _conv_epilogue(part, a, ps, b, hw, k0, out):
    """``out[n, k0 + k, i] = part[n hw + i, k] - a[k] ps[n hw + i] - b[k]`` in int64: the (pixel, channel)
    sums to NCHW with the zero-point corrections (``ps`` of length 1: no ``a`` term), in blocks of 64
    pixels so that the strided reads stay in L1."""
    kg = part.shape[1]
    n_b = part.shape[0] // hw
    use_ps = ps.shape[0] > 1
    for n in range(n_b):
        for i0 in range(0, hw, 64):
            i1 = min(hw, i0 + 64)
            for k in range(kg):
                bk = b[k]
                row = out[n, k0 + k]
                if use_ps:
                    ak = a[k]
                    for i in range(i0, i1):
                        row[i] = np.int64(part[n * hw + i, k]) - bk - ak * ps[n * hw + i]
                else:
                    for i in range(i0, i1):
                        row[i] = np.int64(part[n * hw + i, k]) - bk


def _window_sums_nhwc(xg: np.ndarray, kr, ks, stride, dilation, ho, wo) -> np.ndarray:
    """``sum`` over each output pixel's window (all taps, all channels) of a padded NHWC image; (P,) int64."""
    img = xg.sum(axis=3, dtype=np.int64)
    sh, sw = stride
    dh, dw = dilation
    tot = np.zeros((xg.shape[0], ho, wo), np.int64)
    for r in range(kr):
        for s in range(ks):
            tot += img[:, r * dh:r * dh + sh * (ho - 1) + 1:sh, s * dw:s * dw + sw * (wo - 1) + 1:sw]
    return tot.reshape(-1)


def _avx2_conv(x, w, xz, wz, stride, pads, dilation, groups, ho, wo):
    """AVX2 conv (module docstring, 2a / 2b) as an implicit GEMM: the kernel reads the padded NHWC image
    directly (no im2col matrix), the reduction runs in ``(r, s, c)`` order (channels innermost), the output
    channels are the vector operand and the pixels the broadcast rows."""
    n_b, ch, h, wd = x.shape
    k_out, cg, kr, ks = w.shape
    kg = k_out // groups
    q = cg * kr * ks
    if kg < _avx2.MR or not x.size or not w.size:
        return None
    xlo, xhi = (int(v) for v in _range(x))
    xlo, xhi = min(xlo, xz), max(xhi, xz)  # padded taps hold the code xz
    wz = wz.astype(np.int64)
    wr = w.reshape(k_out, -1)
    wlo, whi = _range(wr, axis=1)
    xmag = max(abs(xlo - xz), abs(xhi - xz))
    wmag = int(np.maximum(np.abs(wlo - wz), np.abs(whi - wz)).max())
    geo = (kr, ks, stride, dilation, ho, wo)
    out = np.empty((n_b, k_out, ho * wo), np.int64)
    none = np.zeros(1, np.int64)
    ox = _ubs_offset(xlo, xhi)
    if ox is not None and wmag <= 127 and 2 * (xhi + ox) * wmag <= _I16_MAX and q <= _UBS_MAX_K:
        # 2b: unsigned image codes u = x + ox (padding u = xz + ox = za), signed shifted weights
        kind, za, cp, wdt = "ubs", xz + ox, _cdiv(cg, 4) * 4, np.int8
    elif xmag <= _I16_MAX and wmag <= _I16_MAX and q * xmag * wmag <= _I32_MAX:
        # 2a: zero-shifted int16 (padding 0 = the real value 0), one exact int32 chunk
        kind, za, cp, wdt = "wd", 0, _cdiv(cg, 2) * 2, np.int16
    else:
        return None
    ws = (w.astype(np.int64) - wz.reshape(-1, 1, 1, 1)).astype(wdt)
    for g in range(groups):
        if kind == "ubs":
            xg = _nhwc_padded(x, g * cg, cg, cp, pads, za, ox, np.uint8)
        else:
            xg = _nhwc_padded(x, g * cg, cg, cp, pads, 0, -xz, np.int16)
        wq = np.zeros((kg, kr, ks, cp), wdt)  # (k, r, s, c), padded channels 0
        wq[..., :cg] = ws[g * kg:(g + 1) * kg].transpose(0, 2, 3, 1)
        wq = wq.reshape(kg, -1)
        part = implicit_conv(xg, np.ascontiguousarray(wq.T), kind, *geo)
        # 2b: padded channels are 0 in both operands; padded taps hold u = za, i.e. the real value 0
        b = za * wq.sum(axis=1, dtype=np.int64) if za else np.zeros(kg, np.int64)
        _conv_epilogue(part, none, none, b, ho * wo, g * kg, out)
    return out.reshape(n_b, k_out, ho, wo)


def pairs_conv(x, w, ox: int, ow: int, xz: int, wz: np.ndarray, pads, stride, dilation, groups: int, ho: int,
               wo: int) -> np.ndarray | None:
    """conv2d_acc's ``int16_pairs`` model on the AVX2 implicit-GEMM ``vpmaddubsw`` kernel, or None where it
    does not apply (no AVX2, fewer than ``MR`` outputs per group, or an odd ``C / groups``: channel padding to
    a multiple of four would then move the pairs across taps).

    Unsigned codes ``x' = x + ox`` (padding ``xz' = xz + ox``), signed ``w' = w + ow``, reduction in ``(r, s,
    c)`` order, pairs ``(2p, 2p + 1)`` saturated to int16; then ``acc = pairs - wz'[k] sum_q x' - xz' sum_q
    w'[k] + Q xz' wz'[k]`` (exact int64). Returns int64 (N, K, Ho, Wo).
    """
    n_b, ch, h, wd = x.shape
    k_out, cg, kr, ks = w.shape
    kg = k_out // groups
    if not _avx2.AVAILABLE or kg < _avx2.MR or cg % 2 or not x.size or kr * ks * cg > _UBS_MAX_K:
        return None
    macs = n_b * ho * wo * k_out * cg * kr * ks
    cp = _cdiv(cg, 4) * 4
    xzp = xz + ox
    wzp = wz.astype(np.int64) + ow
    q = cg * kr * ks
    wsr = (w.astype(np.int16) + ow).astype(np.int8)
    out = np.empty((n_b, k_out, ho * wo), np.int64)
    with _threads_for(macs, AVX2_PARALLEL_MIN_MACS):
        for g in range(groups):
            xg = _nhwc_padded(x, g * cg, cg, cp, pads, xzp, ox, np.uint8)
            wq = np.zeros((kg, kr, ks, cp), np.int8)
            wq[..., :cg] = wsr[g * kg:(g + 1) * kg].transpose(0, 2, 3, 1)
            wq = wq.reshape(kg, -1)
            part = implicit_conv(xg, np.ascontiguousarray(wq.T), "ubs", kr, ks, stride, dilation, ho, wo)
            zg = wzp[g * kg:(g + 1) * kg]
            ps = (_window_sums_nhwc(xg, kr, ks, stride, dilation, ho, wo) if zg.any()
                  else np.zeros(1, np.int64))
            b = xzp * wq.sum(axis=1, dtype=np.int64) - q * xzp * zg
            _conv_epilogue(part, zg, ps, b, ho * wo, g * kg, out)
    return out.reshape(n_b, k_out, ho, wo)


def _vnni_conv(x, w, xz, wz, stride, pads, dilation, groups, ho, wo, oa, ob, za, zb, q, kg):
    n_b, ch, h, wd = x.shape
    k_out, cg, kr, ks = w.shape
    pt, pb, pl, pr = pads
    xu = np.full((n_b, ch, h + pt + pb, wd + pl + pr), za, np.uint8)
    xu[:, :, pt:pt + h, pl:pl + wd] = _to_u8(x, oa)
    cg4 = _cdiv(cg, 4) * 4
    ws = _to_s8(w, ob)
    p_tot = n_b * ho * wo
    q4n = kr * ks * cg4 // 4
    np_ = _cdiv(p_tot, _vnni.NR) * _vnni.NR
    out = np.empty((k_out, p_tot), np.int64)
    for g in range(groups):
        xg = np.zeros(xu.shape[:1] + xu.shape[2:] + (cg4,), np.uint8)  # NHWC, channels padded with 0
        xg[..., :cg] = xu[:, g * cg:(g + 1) * cg].transpose(0, 2, 3, 1)
        xp = np.zeros((q4n, np_), np.int32)
        _im2col_pack(xg.view(np.int32), kr, ks, stride[0], stride[1], dilation[0], dilation[1], ho, wo, xp)
        colsum = _window_sums(xu, g * cg, cg, kr, ks, stride[0], stride[1], dilation[0], dilation[1], ho, wo)
        wg = np.zeros((kg, kr, ks, cg4), np.int8)  # weights in the same (r, s, c) order, padded with 0
        wg[..., :cg] = ws[g * kg:(g + 1) * kg].transpose(0, 2, 3, 1)
        wg = wg.reshape(kg, -1)
        zg = zb[g * kg:(g + 1) * kg]
        part = _vnni.gemm_s8u8(wg, xp.reshape(-1).view(np.uint8), kg, q4n * 4, p_tot, q4n * 4, np_)
        # padded taps are 0 in both operands: the identity holds with the true tap count q
        _correct_rows(part, zg, colsum, np.int64(za), wg.sum(axis=1, dtype=np.int64), q,
                      out[g * kg:(g + 1) * kg])
    return np.ascontiguousarray(out.reshape(k_out, n_b, ho, wo).transpose(1, 0, 2, 3))
