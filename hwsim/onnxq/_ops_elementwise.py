"""Element-wise ONNX kernels, exact to onnxruntime's float32 (and, for ARM64's QLinearAdd, integer)
arithmetic: com.microsoft QLinearAdd/QLinearMul/QLinearLeakyRelu/QLinearSigmoid/QLinearConcat, float
Add/Sub/Mul, Relu, Clip. QLinearAdd and QLinearMul follow the MLAS kernel of the configured target.

Each kernel takes the node, its input arrays (``None`` for an omitted optional input) and the
:class:`~hwsim.onnxq.DatapathConfig`, and returns its output arrays plus a :class:`NodeStats` record.
"""

from __future__ import annotations

import numpy as np

from ._ops_common import NodeStats, OpError, _attr, _qrange, _scalar, _zp
from ._targets import TARGETS

__all__ = ["qlinear_add", "neon_add_parameters", "qlinear_mul", "qlinear_leaky_relu", "mlas_logistic",
           "qlinear_sigmoid", "float_binary", "relu", "clip", "qlinear_concat"]


# -- elementwise ---------------------------------------------------------------------------------------------

def _fma_f32(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Correctly rounded float32 fused multiply-add ``f32(a*b + c)`` for float32 arrays.

    ``a*b`` is exact in float64 (24 + 24 bits); the float64 sum is made round-to-odd with the TwoSum error,
    after which rounding to float32 is correct (53 >= 24 + 2; Boldo and Melquiond, IEEE TC 2008).
    """
    p = a.astype(np.float64) * b.astype(np.float64)
    c64 = np.broadcast_to(c, p.shape).astype(np.float64)
    s = p + c64
    bb = s - p
    err = (p - (s - bb)) + (c64 - bb)
    bits = s.view(np.int64)
    even = (bits & 1) == 0
    fix = (err != 0) & even
    if np.any(fix):
        s = np.where(fix, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)
    return s.astype(np.float32)


def _f32(v) -> np.float32:
    return np.float32(v)


def _kernel(cfg, field: str, default: str) -> str:
    """The MLAS kernel (``Target.add_kernel`` / ``mul_kernel``) of ``cfg``'s target; ``default`` without
    one."""
    name = getattr(cfg, "target", None)
    return default if name is None else getattr(TARGETS[name], field)


def _cvtps_epi32(v: np.ndarray) -> np.ndarray:
    """x86 ``cvtps2dq`` (``_mm_cvtps_epi32``/``_mm256_cvtps_epi32``) as int64: round half to even (the default
    MXCSR mode); a value outside ``[-2^31, 2^31)`` or NaN gives the "integer indefinite" ``-2^31`` (Intel SDM,
    CVTPS2DQ). After the packs' saturation a too large positive sum thus gives the type's *minimum* (measured
    on onnxruntime 1.32 for QLinearAdd and QLinearMul, ``tests/test_onnxq_ops.py``)."""
    v = np.asarray(v, np.float32)
    ok = (v >= np.float32(-2.0**31)) & (v < np.float32(2.0**31))
    return np.where(ok, np.rint(np.where(ok, v, 0)), -2.0**31).astype(np.int64)


def _cvtn_s32(v: np.ndarray) -> np.ndarray:
    """AArch64 ``fcvtns`` (``vcvtnq_s32_f32``) as int64: round half to even, saturating to int32, NaN -> 0
    (Arm ARM, FCVTNS)."""
    v = np.asarray(v, np.float32)
    nan = np.isnan(v)
    return np.where(nan, 0, np.clip(np.rint(np.where(nan, 0, v)), -2.0**31, 2.0**31 - 1)).astype(np.int64)


def qlinear_add(node, ins, cfg):
    """com.microsoft QLinearAdd as onnxruntime's MLAS kernel of ``cfg``'s target computes it
    (:attr:`hwsim.onnxq.Target.add_kernel`): the x86 AVX2 kernel (below; also without a target), the SSE2
    helper of an x86-64 host without AVX2 (:func:`_qladd_sse2`) or the fixed-point NEON helper of ARM64
    (:func:`_qladd_neon`). Inputs: codes ``a``, ``b`` (uint8 or int8, broadcastable), scalar float32 scales
    and zero points; output: codes of ``a``'s dtype, the broadcast shape.

    AVX2 (``mlas/lib/intrinsics/avx2/qladd_avx2.cpp``, the kernel of every x86 host with AVX2, VNNI ones too):
    ``r_a = f32(s_a / s_c)``, ``r_b = f32(s_b / s_c)``, ``F = f32(z_c - fma(r_a, z_a, f32(r_b z_b)))``;
    elementwise ``y = sat(cvt(fma(a, r_a, fma(b, r_b, F))))`` on the raw codes (two fused multiply-adds;
    ``cvt``: :func:`_cvtps_epi32`, round half to even, a sum of 2^31 or more gives the type's minimum).
    Where ORT's broadcasting makes one side a scalar over the inner span, the kernel runs with the vector side
    as ``a`` (``qlinear_binary_op.cc`` swaps the operands when input 0 is the scalar), folds the scalar ``s``
    in as ``F' = fma(s, r_s, F)`` and one fma remains. ``F``'s sum of two products and ``F'``'s multiply-add
    are written as separate operations in the source; the wheel's compiler contracted each into one fused
    multiply-add (GCC's default ``-ffp-contract=fast``): measured on onnxruntime 1.32, random scales and zero
    points where the two readings give different codes always match the contracted one (up to 65 of the
    65,536 code pairs differ otherwise, ``tests/test_onnxq_ops.py``). Checked exhaustively against
    onnxruntime over all 256 x 256 code pairs.
    """
    a, sa, za, b, sb, zb, sc, zc = ins[:8]
    kernel = _kernel(cfg, "add_kernel", "avx2")
    if kernel == "neon":
        return [_qladd_neon(a, b, sa, sb, sc, _zp(za), _zp(zb), _zp(zc))], NodeStats()
    if kernel == "sse2":
        return [_qladd_sse2(a, b, sa, sb, sc, _zp(za), _zp(zb), _zp(zc))], NodeStats()
    out_dt = a.dtype
    ra = np.divide(_f32(_scalar(sa, "A_scale")), _f32(_scalar(sc, "C_scale")), dtype=np.float32)
    rb = np.divide(_f32(_scalar(sb, "B_scale")), _f32(_scalar(sc, "C_scale")), dtype=np.float32)
    za_, zb_, zc_ = _zp(za), _zp(zb), _zp(zc)
    shape = np.broadcast_shapes(a.shape, b.shape)
    mode = _broadcast_mode(a.shape, b.shape, shape)
    af = np.broadcast_to(a, shape).astype(np.float32)
    bf = np.broadcast_to(b, shape).astype(np.float32)
    if mode in ("scalar_b", "scalar_a"):
        # the kernel's a: the vector side (v), its b: the scalar side (s)
        vf, rv, zv, sf, rs, zs = ((af, ra, za_, bf, rb, zb_) if mode == "scalar_b"
                                  else (bf, rb, zb_, af, ra, za_))
        fixed = _fixed_part(rv, zv, rs, zs, zc_)
        f2 = _fma_f32(sf, np.broadcast_to(rs, shape), np.broadcast_to(fixed, shape))
        v = _fma_f32(vf, np.broadcast_to(rv, shape), f2)
    else:
        fixed = _fixed_part(ra, za_, rb, zb_, zc_)
        qmin, qmax = _qrange(out_dt)
        if a.dtype.itemsize == 1 and b.dtype.itemsize == 1 and a.dtype == b.dtype and len(shape) \
                and int(np.prod(shape)) >= 4 * 65536:
            # byte codes: the same element-wise formula over all 256 x 256 code pairs, then a lookup (the
            # result of an element depends only on its two codes)
            codes = np.arange(256, dtype=np.int64).astype(np.uint8).view(a.dtype)
            lut = _qlinear_add_full(codes[:, None].astype(np.float32), codes[None, :].astype(np.float32),
                                    ra, rb, fixed, (256, 256), qmin, qmax, out_dt)
            ia = np.broadcast_to(a, shape).view(np.uint8).astype(np.intp)
            ib = np.broadcast_to(b, shape).view(np.uint8)
            return [lut.reshape(-1)[ia * 256 + ib]], NodeStats()
        return [_qlinear_add_full(af, bf, ra, rb, fixed, shape, qmin, qmax, out_dt)], NodeStats()
    qmin, qmax = _qrange(out_dt)
    return [np.clip(_cvtps_epi32(v), qmin, qmax).astype(out_dt)], NodeStats()


def _fixed_part(ra, za: int, rb, zb: int, zc: int) -> np.float32:
    """The kernel's ``F = f32(z_c - (r_a z_a + r_b z_b))`` as compiled: ``f32(z_c - fma(r_a, z_a, f32(r_b
    z_b)))``."""
    one = np.ones(1, np.float32)
    t = _fma_f32(one * ra, one * np.float32(za), one * np.float32(rb * np.float32(zb)))[0]
    return np.float32(np.float32(zc) - t)


def _qlinear_add_full(af, bf, ra, rb, fixed, shape, qmin, qmax, out_dt) -> np.ndarray:
    """QLinearAdd's codes where neither side is a scalar: ``sat(cvt(fma(a, r_a, fma(b, r_b, F))))``."""
    t = _fma_f32(np.broadcast_to(bf, shape), np.broadcast_to(rb, shape), np.broadcast_to(fixed, shape))
    v = _fma_f32(np.broadcast_to(af, shape), np.broadcast_to(ra, shape), t)
    return np.clip(_cvtps_epi32(v), qmin, qmax).astype(out_dt)


def _broadcast_mode(sa, sb, so) -> str:
    """Which side ORT's broadcaster passes as a scalar over the innermost span."""
    if int(np.prod(sb)) == 1 and int(np.prod(sa)) > 1:
        return "scalar_b"
    if int(np.prod(sa)) == 1 and int(np.prod(sb)) > 1:
        return "scalar_a"
    if tuple(sa) == tuple(sb):
        return "general"
    n = len(so)
    pa = (1,) * (n - len(sa)) + tuple(sa)
    pb = (1,) * (n - len(sb)) + tuple(sb)
    i = n - 1
    while i >= 0 and so[i] == 1:
        i -= 1
    if i < 0:
        return "general"
    if pb[i] == 1 and pa[i] > 1:
        return "scalar_b"
    if pa[i] == 1 and pb[i] > 1:
        return "scalar_a"
    return "general"


def _ratios(sa, sb, sc) -> tuple[np.float32, np.float32, np.float32, np.float32, np.float32]:
    """The float32 scales and the kernels' ``ScaleRatio_AC = f32(s_a / s_c)``, ``ScaleRatio_BC``."""
    fa, fb, fc = (_f32(_scalar(s, n)) for s, n in ((sa, "A_scale"), (sb, "B_scale"), (sc, "C_scale")))
    return fa, fb, fc, np.divide(fa, fc, dtype=np.float32), np.divide(fb, fc, dtype=np.float32)


def _qladd_sse2(a, b, sa, sb, sc, za: int, zb: int, zc: int) -> np.ndarray:
    """QLinearAdd as the SSE2 ``MlasQLinearAddKernelHelper`` of ``mlas/lib/qladd.cpp`` computes it: the
    ``QLinearAddS8Kernel``/``U8Kernel`` that ``platform.cpp`` keeps on an x86-64 host without AVX2 (the AVX2
    kernel replaces it only under the AVX2 + FMA check). ``qladd.cpp`` is compiled for the x86-64 baseline:
    no FMA instruction exists there, every product and sum below is rounded to float32 separately.

    ``F = f32(f32(z_c) - f32(f32(r_a z_a) + f32(r_b z_b)))`` (``VectorFixedPart``), then per element on the
    raw codes ``y = cvt(f32(f32(F + f32(a r_a)) + f32(b r_b)))``: ``_mm_add_ps(_mm_add_ps(F, a*r_a),
    b*r_b)``; a scalar side (the kernel's B, operands swapped as in the AVX2 case) is folded in once as
    ``F' = f32(F + f32(s r_s))`` and ``y = cvt(f32(F' + f32(v r_v)))``. ``cvt``: ``_mm_cvtps_epi32``
    (:func:`_cvtps_epi32`), then ``_mm_packs_epi32`` (int16 saturation) and ``_mm_packus_epi16`` (uint8) or
    ``_mm_packs_epi16`` (int8): together a clamp to the type's range.
    """
    out_dt = a.dtype
    _, _, _, ra, rb = _ratios(sa, sb, sc)
    f32 = np.float32
    shape = np.broadcast_shapes(a.shape, b.shape)
    mode = _broadcast_mode(a.shape, b.shape, shape)
    af = np.broadcast_to(a, shape).astype(f32)
    bf = np.broadcast_to(b, shape).astype(f32)
    vf, rv, zv, sf, rs, zs = (bf, rb, zb, af, ra, za) if mode == "scalar_a" else (af, ra, za, bf, rb, zb)
    prod_z = np.add(np.multiply(rv, f32(zv), dtype=f32), np.multiply(rs, f32(zs), dtype=f32), dtype=f32)
    fixed = np.subtract(f32(zc), prod_z, dtype=f32)
    if mode in ("scalar_b", "scalar_a"):
        f2 = np.add(fixed, np.multiply(sf, rs, dtype=f32), dtype=f32)
        y = np.add(f2, np.multiply(vf, rv, dtype=f32), dtype=f32)
    else:
        y = np.add(np.add(fixed, np.multiply(vf, rv, dtype=f32), dtype=f32), np.multiply(sf, rs, dtype=f32),
                   dtype=f32)
    qmin, qmax = _qrange(out_dt)
    return np.clip(_cvtps_epi32(y), qmin, qmax).astype(out_dt)


def neon_add_parameters(ratio_ac, ratio_bc) -> tuple[int, int, int] | None:
    """``MlasCalcQLinearAddParameters`` (``mlas/lib/qladd.cpp``, NEON builds): ``(Shift, MultiplierA,
    MultiplierB)`` for float32 scale ratios ``s_a/s_c``, ``s_b/s_c``, or ``None`` where it returns false.

    False when a ratio is below ``2^-14`` or ``>= 256``; ``GreaterExponent`` = the unbiased float32 exponent
    of the greater ratio, ``Shift = 21 - GreaterExponent``, false unless ``13 <= Shift <= 31`` (so a greater
    ratio below ``2^-10`` falls back too); ``Multiplier = lrintf(ratio * 2^Shift)`` (exact product, round
    half to even); false unless both multipliers are ``< 2^22`` and one is ``>= 2^21``.
    """
    ra, rb = np.float32(ratio_ac), np.float32(ratio_bc)
    lo, hi = np.float32(6.103515625e-05), np.float32(256.0)
    if ra < lo or ra >= hi or rb < lo or rb >= hi:
        return None
    greater = rb if ra < rb else ra  # std::max
    exponent = int(np.array(greater, np.float32).view(np.uint32)) >> 23
    shift = 21 - (exponent - 127)
    if shift > 31 or shift < 13:
        return None
    mult = np.array((shift + 127) << 23, np.uint32).view(np.float32)
    ma = int(np.rint(np.multiply(ra, mult, dtype=np.float32)))
    mb = int(np.rint(np.multiply(rb, mult, dtype=np.float32)))
    if ma < 0x400000 and mb < 0x400000 and (ma >= 0x200000 or mb >= 0x200000):
        return shift, ma, mb
    return None


def _wrap32(x: np.ndarray) -> np.ndarray:
    """int64 -> the int32 two's-complement value (``vmulq_s32``/``vmlaq_s32``/``vsraq_n_s32`` wrap)."""
    return ((x + 2**31) & 0xFFFFFFFF) - 2**31


def _qladd_neon(a, b, sa, sb, sc, za: int, zb: int, zc: int) -> np.ndarray:
    """QLinearAdd as the NEON ``MlasQLinearAddKernelHelper`` of ``mlas/lib/qladd.cpp`` computes it (ARM64:
    ``MlasQLinearAdd`` calls ``MlasQLinearAddKernel`` directly; the 32-, 16-element and tail loops compute
    the same per element).

    With ``(Shift, M_a, M_b)`` = :func:`neon_add_parameters` of ``f32(s_a/s_c)``, ``f32(s_b/s_c)``, all in
    integers: ``acc = wrap32((a - z_a) M_a + (b - z_b) M_b)`` (``vsubl`` to int16, ``vmulq_s32``/
    ``vmlaq_s32``; a scalar side enters as ``vscalar = (b - z_b) M_b``, the same sum);
    ``acc += acc >> 31`` (``vsraq_n_s32(acc, vbicq_s32(acc, zero_shift_mask), 31)``: minus one for a
    negative ``acc``, so the next rounding is half away from zero); ``q = (acc + 2^(Shift-1)) >> Shift``
    (``vrshlq_s32`` by ``-Shift``, exact); ``vqmovn_s32`` (int16 saturation), ``vqaddq_s16`` with ``z_c``
    (saturating), ``vqmovun_s16`` (uint8) or ``vqmovn_s16`` (int8). The result is symmetric in the two
    inputs, so ORT's operand swap for a scalar input 0 does not matter. When the parameters are out of range
    the float helper :func:`_qladd_raw` runs instead.
    """
    out_dt = a.dtype
    fa, fb, fc, ra, rb = _ratios(sa, sb, sc)
    params = neon_add_parameters(ra, rb)
    if params is None:
        return _qladd_raw(a, b, fa, fb, fc, za, zb, zc)
    shift, ma, mb = params
    shape = np.broadcast_shapes(a.shape, b.shape)
    da = np.broadcast_to(a, shape).astype(np.int64) - za
    db = np.broadcast_to(b, shape).astype(np.int64) - zb
    acc = _wrap32(_wrap32(da * ma) + db * mb)
    if shift != 0:  # zero_shift_mask is all ones only for Shift == 0 (never: Shift >= 13)
        acc = _wrap32(acc + (acc >> 31))
    q = (acc + (1 << (shift - 1))) >> shift if shift > 0 else acc
    q16 = np.clip(np.clip(q, -32768, 32767) + np.int64(np.int16(zc)), -32768, 32767)
    qmin, qmax = _qrange(out_dt)
    return np.clip(q16, qmin, qmax).astype(out_dt)


def _qladd_raw(a, b, fa, fb, fc, za: int, zb: int, zc: int) -> np.ndarray:
    """``MlasQLinearAddKernelRawHelper`` (``mlas/lib/qladd.cpp``), the NEON helper's fallback, as the
    onnxruntime 1.32 Linux aarch64 wheel (GCC) compiled it: ``ValueB = f32(s_b (b - z_b))`` (``fmul``), then
    ``ValueA + ValueB`` contracted into ``fma(s_a, a - z_a, ValueB)`` (``fmadd``; ``fmla`` in the vectorized
    loop), ``v = f32(. / s_c)``, clamped to ``[qmin - z_c, qmax - z_c]``, ``y = nearbyintf(f32(v + z_c))``
    (``frinti``: half to even). ``a`` is the kernel's A: the vector side when input 0 is a scalar (ORT's
    operand swap, :func:`_broadcast_mode`). A build that does not contract (clang's ``-ffp-contract=on``)
    rounds ``s_a (a - z_a)`` too; docs/verification.md, "QLinearAdd and QLinearMul per target"."""
    out_dt = a.dtype
    f32 = np.float32
    shape = np.broadcast_shapes(a.shape, b.shape)
    if _broadcast_mode(a.shape, b.shape, shape) == "scalar_a":
        a, b, fa, fb, za, zb = b, a, fb, fa, zb, za
    xa = (np.broadcast_to(a, shape).astype(np.int64) - za).astype(f32)
    vb = np.multiply(fb, (np.broadcast_to(b, shape).astype(np.int64) - zb).astype(f32), dtype=f32)
    v = np.divide(_fma_f32(np.broadcast_to(fa, shape), xa, vb), fc, dtype=f32)
    qmin, qmax = _qrange(out_dt)
    v = np.minimum(np.maximum(v, f32(qmin - zc)), f32(qmax - zc))
    return np.rint(np.add(v, f32(zc), dtype=f32)).astype(np.int64).astype(out_dt)


def qlinear_mul(node, ins, cfg):
    """com.microsoft QLinearMul as onnxruntime computes it (``mlas/lib/qlmul.cpp``; its SSE2 path on every
    x86-64 host, its NEON path on ARM64: :attr:`hwsim.onnxq.Target.mul_kernel`). Inputs and output as
    :func:`qlinear_add`.

    ``r = f32(f32(s_a * s_b) / s_c)``; ``p = (a - z_a)(b - z_b)`` exact (int16 x int16 -> int32:
    ``_mm_mullo_epi16``/``_mm_mulhi_epi16``, ``vmull_s16``). x86: ``v = f32(f32(f32(p) * r) + z_c)`` (the
    zero point added in float *before* rounding; ``qlmul.cpp`` is compiled for the x86-64 baseline: ``mulps``
    then ``addps``), ``y = sat(cvtps2dq(v))`` (:func:`_cvtps_epi32`: a ``v`` of 2^31 or more gives the type's
    minimum, measured). ARM64: the source's ``vaddq_f32(zc, vmulq_f32(r, f32(p)))`` is one ``fmla`` in the
    onnxruntime 1.32 Linux aarch64 wheel (GCC contracts the vector ``*`` and ``+`` of its ``arm_neon.h``):
    ``v = fma(r, f32(p), z_c)``, ``y = sat(vcvtnq_s32_f32(v))`` (:func:`_cvtn_s32`, saturating). Then int16
    and 8-bit saturation. The x86 path is checked exhaustively against onnxruntime over all 256 x 256 code
    pairs (``tests/test_onnxq_ops.py``); the ARM64 one is read from the wheel's machine code.
    """
    a, sa, za, b, sb, zb, sc, zc = ins[:8]
    out_dt = a.dtype
    r = np.divide(np.multiply(_f32(_scalar(sa, "A_scale")), _f32(_scalar(sb, "B_scale")), dtype=np.float32),
                  _f32(_scalar(sc, "C_scale")), dtype=np.float32)
    p = (a.astype(np.int64) - _zp(za)) * (b.astype(np.int64) - _zp(zb))
    pf = p.astype(np.float32)
    z = np.float32(_zp(zc))
    if _kernel(cfg, "mul_kernel", "sse2") == "neon":
        codes = _cvtn_s32(_fma_f32(pf, np.broadcast_to(r, pf.shape), np.broadcast_to(z, pf.shape)))
    else:
        codes = _cvtps_epi32(np.add(np.multiply(pf, r, dtype=np.float32), z, dtype=np.float32))
    qmin, qmax = _qrange(out_dt)
    return [np.clip(codes, qmin, qmax).astype(out_dt)], NodeStats()


def _lut(x, xs, xz, ys, yz, fn):
    """ORT ``QlinearBuildLookupTable``: ``table[v] = QuantizeLinear(fn(f32(s_x * f32(v - z_x))))`` over the
    256 codes, then ``y = table[x]``."""
    dt = x.dtype
    info = np.iinfo(dt)
    codes = np.arange(info.min, info.max + 1, dtype=np.int64)
    d = np.multiply(np.float32(_scalar(xs, "X_scale")), (codes - _zp(xz)).astype(np.float32),
                    dtype=np.float32)
    t = fn(d).astype(np.float32)
    out_dt = yz.dtype if yz is not None else dt
    qmin, qmax = _qrange(out_dt)
    z = _zp(yz)
    v = np.divide(t, np.float32(_scalar(ys, "Y_scale")), dtype=np.float32)
    v = np.rint(np.clip(v, np.float32(qmin - z), np.float32(qmax - z)))
    table = (v.astype(np.int64) + z).astype(out_dt)
    return table[x.astype(np.int64) - info.min]


def qlinear_leaky_relu(node, ins, cfg):
    """com.microsoft QLinearLeakyRelu (ORT ``qlinear_activations.cc``): a 256-entry table of
    ``Q(v >= 0 ? v : f32(alpha * v))`` over the dequantized codes."""
    x, xs, xz, ys = ins[:4]
    yz = ins[4] if len(ins) > 4 else None
    alpha = np.float32(_attr(node, "alpha", 0.01))
    return [_lut(x, xs, xz, ys, yz, lambda v: np.where(v >= 0, v,
                                                       np.multiply(alpha, v, dtype=np.float32)))], \
        NodeStats()


_LOGISTIC = [np.float32(c) for c in (4.37031012579801e-11, 1.15627324459942e-07, 6.08574864600143e-05,
                                     8.51377133304701e-03, 2.48287947061529e-01, 6.10247389755681e-13,
                                     5.76102136993427e-09, 6.29106785017040e-06, 1.70198817374094e-03,
                                     1.16817656904453e-01, 9.93151921023180e-01)]


def mlas_logistic(v: np.ndarray) -> np.ndarray:
    """``MlasComputeLogistic`` as its x86 FMA3 kernel computes it (``mlas/lib/logistic.cpp`` constants,
    Eigen's rational approximation): clamp to [-18, 18], ``p`` and ``q`` by fused multiply-adds in ``x^2``,
    ``p *= x``, ``clamp(p / q + 1/2, 0, 1)``; float32 throughout."""
    a9, a7, a5, a3, a1, b10, b8, b6, b4, b2, b0 = _LOGISTIC
    x = np.clip(v.astype(np.float32), np.float32(-18), np.float32(18))
    x2 = np.multiply(x, x, dtype=np.float32)

    def chain(c0, c1, rest):
        acc = _fma_f32(x2, np.full(x2.shape, c0, np.float32), np.full(x2.shape, c1, np.float32))
        for c in rest:
            acc = _fma_f32(acc, x2, np.full(x2.shape, c, np.float32))
        return acc

    p = np.multiply(chain(a9, a7, (a5, a3, a1)), x, dtype=np.float32)
    q = chain(b10, b8, (b6, b4, b2, b0))
    return np.clip(np.add(np.divide(p, q, dtype=np.float32), np.float32(0.5), dtype=np.float32),
                   np.float32(0), np.float32(1))


def qlinear_sigmoid(node, ins, cfg):
    """com.microsoft QLinearSigmoid (ORT ``qlinear_activations.cc``): a 256-entry table of
    ``Q(MlasComputeLogistic(DQ(v)))`` (:func:`mlas_logistic`)."""
    x, xs, xz, ys = ins[:4]
    yz = ins[4] if len(ins) > 4 else None
    return [_lut(x, xs, xz, ys, yz, mlas_logistic)], NodeStats()


def float_binary(node, ins, cfg):
    """Float32 Add/Sub/Mul with numpy broadcasting (one IEEE operation per element, as ORT's kernels)."""
    a, b = ins[0], ins[1]
    if a.dtype == b.dtype and a.dtype.kind in "iu":  # shape arithmetic (int64): wraps as ORT's Eigen kernels
        return [{"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[node.op_type](a, b)], NodeStats()
    if a.dtype != np.float32 or b.dtype != np.float32:
        raise OpError(f"{node.op_type} on {a.dtype} and {b.dtype} is not supported (float32 is)")
    f = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[node.op_type]
    return [f(a, b, dtype=np.float32)], NodeStats()


def relu(node, ins, cfg):
    """ONNX Relu: ``max(x, 0)`` elementwise (on integer codes for int8 Relu-14, as ORT)."""
    x = ins[0]
    return [np.maximum(x, np.zeros((), x.dtype))], NodeStats()


def clip(node, ins, cfg):
    """ONNX Clip with constant or omitted bounds: ``min(max(x, lo), hi)``."""
    x = ins[0]
    lo = ins[1] if len(ins) > 1 else None
    hi = ins[2] if len(ins) > 2 else None
    y = x
    if lo is not None:
        y = np.maximum(y, np.asarray(lo, x.dtype))
    if hi is not None:
        y = np.minimum(y, np.asarray(hi, x.dtype))
    return [y.astype(x.dtype)], NodeStats()


def qlinear_concat(node, ins, cfg):
    """com.microsoft QLinearConcat (ORT ``qlinear_concat.cc``): each input is copied when its scale and zero
    point equal the output's, else mapped by the 256-entry table ``QuantizeLinear(DequantizeLinear(v))``."""
    ys, yz = ins[0], ins[1]
    axis = int(_attr(node, "axis"))
    parts = []
    out_dt = yz.dtype
    qmin, qmax = _qrange(out_dt)
    for i in range(2, len(ins), 3):
        x, xs, xz = ins[i], ins[i + 1], ins[i + 2]
        if float(_scalar(xs, "x_scale")) == float(_scalar(ys, "y_scale")) and _zp(xz) == _zp(yz):
            parts.append(x)
            continue
        d = np.multiply(np.float32(_scalar(xs, "x_scale")), (x.astype(np.int64) - _zp(xz)).astype(np.float32),
                        dtype=np.float32)
        v = np.divide(d, np.float32(_scalar(ys, "y_scale")), dtype=np.float32)
        v = np.rint(np.clip(v, np.float32(qmin - _zp(yz)), np.float32(qmax - _zp(yz))))
        parts.append((v.astype(np.int64) + _zp(yz)).astype(out_dt))
    return [np.concatenate(parts, axis=axis)], NodeStats()
