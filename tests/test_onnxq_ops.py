"""Each op of hwsim.onnxq against onnxruntime, through ``verify`` (0 mismatches expected).

Models are built with ``onnx.helper``; elementwise ops are checked exhaustively over all code pairs, the
others on the layouts and attributes the ONNX spec allows (auto_pad, strides, pads, dilations, groups,
ceil_mode, count_include_pad, per-channel scales, int8 and uint8).
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper, numpy_helper

from hwsim.errors import SpecError
from hwsim.onnxq import verify

F32 = np.float32
MS = "com.microsoft"


def model(nodes, inputs, outputs, inits, opset=21):
    ins = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.dtype(dt)), shape)
           for n, dt, shape in inputs]
    outs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.dtype(dt)), None)
            for n, dt in outputs]
    g = helper.make_graph(nodes, "g", ins, outs, [numpy_helper.from_array(np.asarray(v), k)
                                                  for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(MS, 1)])


def run(tmp_path, m, feeds=None, name="m", integer_outputs=True):
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(m.SerializeToString())
    inp = None
    if feeds is not None:
        inp = tmp_path / f"{name}.npz"
        np.savez(inp, **feeds)
    rep = verify(path, inputs=inp, out=tmp_path / name)
    integer = any(t.get("session") != "default" for t in rep.data["tensors"])
    assert integer == integer_outputs and (tmp_path / name / "verify.json").is_file()
    return rep


def codes(rng, dt, shape):
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max + 1, shape).astype(dt)


# -- QLinearAdd: exhaustive over all 256 x 256 code pairs ----------------------------------------------------

ADD_SCALES = [
    (0.02, 0.03, 0.05, 3, 250, 7),
    (2**-4, 2**-4, 2**-3, 0, 0, 1),      # power-of-two scales: many exact ties
    (0.1, 0.0037, 0.011, 128, 9, 127),
    (0.5, 0.25, 0.001, 100, 20, 128),   # heavy saturation
    # scales and zero points where the kernel's fixed part, compiled f32(z_c - fma(r_a, z_a, f32(r_b z_b))),
    # differs from the separately rounded f32(z_c - f32(f32(r_a z_a) + f32(r_b z_b))) by enough to move
    # codes: 16 and 65 of the 65,536 pairs would differ (onnxruntime's wheel gives the fma's)
    (0.0646, 0.0999, 0.012, 60, 11, 250),
    (0.121, 0.1095, 0.105, 134, 26, 186),
]


@pytest.mark.parametrize("dt", [np.uint8, np.int8])
@pytest.mark.parametrize("scales", ADD_SCALES)
def test_qlinear_add_all_code_pairs(tmp_path, dt, scales):
    sa, sb, sc, za, zb, zc = scales
    off = 0 if dt == np.uint8 else -128
    za, zb, zc = za + off, zb + off, zc + off
    grid = np.arange(256) + off
    a = np.repeat(grid, 256).astype(dt).reshape(256, 256)
    b = np.tile(grid, 256).astype(dt).reshape(256, 256)
    node = helper.make_node("QLinearAdd", ["a", "as", "az", "b", "bs", "bz", "cs", "cz"], ["c"], domain=MS)
    inits = {"as": F32(sa), "az": np.array(za, dt), "bs": F32(sb), "bz": np.array(zb, dt), "cs": F32(sc),
             "cz": np.array(zc, dt)}
    m = model([node], [("a", dt, [256, 256]), ("b", dt, [256, 256])], [("c", dt)], inits)
    rep = run(tmp_path, m, {"a": a, "b": b})
    assert rep.mismatches == 0 and rep.elements == 65536


@pytest.mark.parametrize("dt", [np.uint8, np.int8])
def test_qlinear_add_table_path(tmp_path, dt):
    # 4 x 65,536 elements or more: qlinear_add computes the 256 x 256 code-pair table and looks each element
    # up; every pair occurs (four shuffled copies of the full grid), compared with onnxruntime's kernel
    sa, sb, sc, za, zb, zc = ADD_SCALES[2]
    off = 0 if dt == np.uint8 else -128
    za, zb, zc = za + off, zb + off, zc + off
    grid = np.arange(256) + off
    pairs = np.stack([np.repeat(grid, 256), np.tile(grid, 256)])
    rng = np.random.default_rng(3)
    ab = np.concatenate([pairs[:, rng.permutation(65536)] for _ in range(4)], axis=1).astype(dt)
    a, b = ab[0].reshape(4, 256, 256), ab[1].reshape(4, 256, 256)
    node = helper.make_node("QLinearAdd", ["a", "as", "az", "b", "bs", "bz", "cs", "cz"], ["c"], domain=MS)
    inits = {"as": F32(sa), "az": np.array(za, dt), "bs": F32(sb), "bz": np.array(zb, dt), "cs": F32(sc),
             "cz": np.array(zc, dt)}
    m = model([node], [("a", dt, [4, 256, 256]), ("b", dt, [4, 256, 256])], [("c", dt)], inits)
    rep = run(tmp_path, m, {"a": a, "b": b})
    assert rep.mismatches == 0 and rep.elements == 4 * 65536


@pytest.mark.parametrize("bshape", [[1], [1, 16, 1, 1], [1, 1, 1, 9]])
def test_qlinear_add_broadcast(tmp_path, bshape):
    rng = np.random.default_rng(0)
    node = helper.make_node("QLinearAdd", ["a", "as", "az", "b", "bs", "bz", "cs", "cz"], ["c"], domain=MS)
    inits = {"as": F32(0.013), "az": np.array(121, np.uint8), "b": codes(rng, np.uint8, bshape),
             "bs": F32(0.041), "bz": np.array(17, np.uint8), "cs": F32(0.029), "cz": np.array(131, np.uint8)}
    m = model([node], [("a", np.uint8, [2, 16, 7, 9])], [("c", np.uint8)], inits)
    rep = run(tmp_path, m, {"a": codes(rng, np.uint8, (2, 16, 7, 9))})
    assert rep.mismatches == 0


def test_qlinear_add_fixed_part_is_one_fused_multiply_add():
    """Host-independent values (every x86 host with AVX2 runs ``qladd_avx2.cpp``; recorded from onnxruntime
    1.32 on an AVX2 host): a = 0, b = 31 with scales (0.0646, 0.0999, 0.012), zero points (60, 11, 250).
    r_a = f32(0.0646 / 0.012), r_b = f32(0.0999 / 0.012); f32(r_b * 11) and fma(r_a, 60, .) give F, then
    fma(0, r_a, fma(31, r_b, F)) = 93.50000x rounds to 94; with F's two products rounded apart the sum falls
    just below 93.5 and rounds to 93."""
    from hwsim.onnxq._ops_elementwise import qlinear_add

    node = helper.make_node("QLinearAdd", ["a", "as", "az", "b", "bs", "bz", "cs", "cz"], ["c"], domain=MS)
    u8 = np.uint8
    ins = [np.array([0, 6, 12], u8), F32(0.0646), u8(60), np.array([31, 27, 23], u8), F32(0.0999), u8(11),
           F32(0.012), u8(250)]
    (y,), _ = qlinear_add(node, ins, None)
    assert y.tolist() == [94, 93, 92]  # onnxruntime's; the separately rounded fixed part gives 93, 92, 91
    # b a scalar (one code, 31): the kernel folds it in as F' = fma(31, r_b, F), the same three results
    (y,), _ = qlinear_add(node, [ins[0][:1], *ins[1:3], np.array([31], u8), *ins[4:]], None)
    assert y.tolist() == [94]


@pytest.mark.parametrize("scalar", ["a", "b"])
def test_qlinear_add_scalar_side_contracted(tmp_path, scalar):
    # one side a single code: onnxruntime runs the kernel with the vector side as its A (input 0 and 1
    # swapped when input 0 is the scalar) and F' = fma(s, r_s, F); random scales and zero points, each
    # compared with onnxruntime over all 256 codes of the vector side and 16 scalar codes
    rng = np.random.default_rng(7)
    for case in range(12):
        sa, sb, sc = (F32(round(float(v), 4)) for v in rng.uniform(0.002, 0.2, 3))
        za, zb, zc = (int(v) for v in rng.integers(0, 256, 3))
        node = helper.make_node("QLinearAdd", ["a", "as", "az", "b", "bs", "bz", "cs", "cz"], ["c"],
                                domain=MS)
        inits = {"as": sa, "az": np.array(za, np.uint8), "bs": sb, "bz": np.array(zb, np.uint8), "cs": sc,
                 "cz": np.array(zc, np.uint8)}
        vec = np.tile(np.arange(256, dtype=np.uint8), (16, 1))
        sca = rng.integers(0, 256, (16, 1)).astype(np.uint8)
        a, b = (sca, vec) if scalar == "a" else (vec, sca)
        m = model([node], [("a", np.uint8, list(a.shape)), ("b", np.uint8, list(b.shape))], [("c", np.uint8)],
                  inits)
        rep = run(tmp_path, m, {"a": a, "b": b}, name=f"m{case}")
        assert rep.mismatches == 0, (case, rep.lines)


# -- QLinearAdd / QLinearMul on the other targets (no such host here: hand-derived from the MLAS source) -----

def _add(target, dt, a, b, scales):
    from hwsim.onnxq import DatapathConfig
    from hwsim.onnxq._ops_elementwise import qlinear_add

    sa, sb, sc, za, zb, zc = scales
    ins = [np.array(a, dt), F32(sa), dt(za), np.array(b, dt), F32(sb), dt(zb), F32(sc), dt(zc)]
    (y,), _ = qlinear_add(None, ins, DatapathConfig(target=target) if target else None)
    assert y.dtype == dt
    return y.tolist()


def test_neon_add_parameters_by_hand():
    """``MlasCalcQLinearAddParameters`` (mlas/lib/qladd.cpp): ratios 0.5 and 0.25 -> greater 0.5 = 2^-1,
    GreaterExponent -1, Shift = 21 - (-1) = 22, multiplier 2^22, MultiplierA = 0.5 * 2^22 = 2^21,
    MultiplierB = 2^20 (MultiplierA >= 2^21: accepted). Rejected: a ratio >= 256; one below 2^-14; both
    2^-11 (passes the range check, but Shift = 21 + 11 = 32 > 31); 2 - 2^-23 (Shift 21, lrintf(2^22 - 1/4)
    = 2^22, not < 2^22)."""
    from hwsim.onnxq._ops_elementwise import neon_add_parameters

    assert neon_add_parameters(0.5, 0.25) == (22, 2**21, 2**20)
    assert neon_add_parameters(0.25, 0.5) == (22, 2**20, 2**21)
    assert neon_add_parameters(1.0, 1.0) == (21, 2**21, 2**21)
    assert neon_add_parameters(256.0, 1.0) is None
    assert neon_add_parameters(2.0**-15, 0.5) is None
    assert neon_add_parameters(2.0**-11, 2.0**-11) is None
    assert neon_add_parameters(2 - 2.0**-23, 1.0) is None
    assert neon_add_parameters(255.0, 1.0) == (14, 255 * 2**14, 2**14)


def test_qlinear_add_arm64_fixed_point_by_hand():
    """arm64: the NEON helper of qladd.cpp with Shift 22, M_a = 2^21, M_b = 2^20 (test above); s = (0.5, 0.25,
    1.0).

    uint8, z = (128, 0, 160): acc = (a - 128) 2^21 + b 2^20, acc -= 1 if negative, q = (acc + 2^21) >> 22:
    (127, 0): acc = -2^21 -> (-2^21 - 1 + 2^21) >> 22 = -1 (-0.5 away from zero) -> 159;
    (129, 0): (2^21 + 2^21) >> 22 = 1 -> 161; (125, 2): -3 * 2^21 + 2 * 2^20 = -2^22 -> (-2^22 - 1 + 2^21)
    >> 22 = -1 -> 159 (exact -1); (131, 0): 1.5 -> 2 -> 162; (255, 255): 127.25 -> 127, 127 + 160 = 287 ->
    vqmovun 255; (0, 0): -64 -> 96; (0, 6): -62.5 -> (-262,144,000 - 1 + 2^21) >> 22 = -63 -> 97.
    The AVX2 kernel rounds the float sum half to even after adding z_c: 159.5 -> 160, 160.5 -> 160,
    97.5 -> 98 (three codes differ).
    int8, z = (0, 0, -100): (-1, 0): -0.5 -> -1 -> -101 (AVX2: -100.5 -> -100); (1, 0): 0.5 -> 1 -> -99
    (AVX2 -99.5 -> -100); (-128, -128): -96 -> -196 -> vqmovn -128; (127, 127): 95.25 -> 95 -> -5;
    (1, -2): 0 -> -100."""
    u8, s8 = np.uint8, np.int8
    a, b = [127, 129, 125, 131, 255, 0, 0], [0, 0, 2, 0, 255, 0, 6]
    sc = (0.5, 0.25, 1.0, 128, 0, 160)
    assert _add("arm64", u8, a, b, sc) == [159, 161, 159, 162, 255, 96, 97]
    assert _add("x86-avx2", u8, a, b, sc) == [160, 160, 159, 162, 255, 96, 98]
    assert _add(None, u8, a, b, sc) == [160, 160, 159, 162, 255, 96, 98]
    a, b = [-1, 1, -128, 127, 1], [0, 0, -128, 127, -2]
    sc = (0.5, 0.25, 1.0, 0, 0, -100)
    assert _add("arm64", s8, a, b, sc) == [-101, -99, -128, -5, -100]
    assert _add("x86-avx2", s8, a, b, sc) == [-100, -100, -128, -5, -100]
    # a scalar side: vscalar = (b - z_b) M_b enters the same integer sum (either input)
    assert _add("arm64", u8, [127, 129, 0], [0], (0.5, 0.25, 1.0, 128, 0, 160)) == [159, 161, 96]
    assert _add("arm64", u8, [0], [127, 129, 0], (0.25, 0.5, 1.0, 0, 128, 160)) == [159, 161, 96]


def test_qlinear_add_arm64_float_fallback_by_hand():
    """arm64 with s = (512, 1, 2): ratio s_a/s_c = 256 is not < 256, MlasCalcQLinearAddParameters fails and
    MlasQLinearAddKernelRawHelper runs: v = f32(f32(512 a + b) / 2), clamped to [0 - 3, 255 - 3],
    nearbyintf(v + 3) (half to even): (0, 1): 0.5 + 3 = 3.5 -> 4; (0, 3): 1.5 + 3 = 4.5 -> 4; (0, 7): 3.5 + 3
    = 6.5 -> 6; (1, 0): 256 -> clamp 252 -> 255. (The fixed-point scheme would round 1.5 and 3.5 away from
    zero before adding z_c: 5 and 7.)"""
    assert _add("arm64", np.uint8, [0, 0, 0, 1], [1, 3, 7, 0], (512.0, 1.0, 2.0, 0, 0, 3)) == [4, 4, 6, 255]
    # the wheel's contraction (fmul of ValueB, fmadd of s_a (a - z_a) onto it; read from the machine code of
    # onnxruntime 1.32's Linux aarch64 wheel): s = (0.2, 0.0037, 0.0004) (ratio 500: fallback), z = (224, 93,
    # 223), codes (221, 247): ValueB = f32(0.0037 * 154) = 0.5698 (0x1.23bcd4p-1); separately rounded
    # f32(0.2 * -3) = -0.6 (-0x1.333334p-1), sum -0.030200005 (-0x1.eecc00p-6), / s_c = -75.500015, + 223 =
    # 147.49998 -> 147; fused fma(0.2, -3, 0.5698) = -0.03019999 (-0x1.eecbf0p-6), / s_c = -75.49998, + 223 =
    # 147.50003 -> 148
    assert _add("arm64", np.uint8, [221, 224], [247, 93], (0.2, 0.0037, 0.0004, 224, 93, 223)) == [148, 223]
    # input 0 a scalar: the operands are swapped, the vector side (input 1) is the fused one: the same 148
    # (and (247, 224): 0.5698 / 0.0004 = 1424.5 -> 255)
    assert _add("arm64", np.uint8, [247], [221, 224], (0.0037, 0.2, 0.0004, 93, 224, 223)) == [148, 255]
    # ratios 2^-12 (range check passes, Shift 33 > 31): raw helper, v = (2^-12 * 255 + 0) / 1 -> z_c
    assert _add("arm64", np.int8, [127, -128], [0, 0], (2.0**-12, 2.0**-12, 1.0, -128, 0, 5)) == [5, 5]


def test_qlinear_add_sse2_separately_rounded_by_hand():
    """x86-sse: the SSE2 helper of qladd.cpp, every operation rounded to float32 (no FMA in the x86-64
    baseline), against the AVX2 kernel's fused multiply-adds. s = (0.3, 0.8, 0.16), z = (81, 30, 38), codes
    (5, 51): the exact value (0.3 (5 - 81) + 0.8 (51 - 30)) / 0.16 + 38 = 0.5 is a tie.
    r_a = f32(0.3 / 0.16) = 1.8750001 (0x1.e00002p+0), r_b = 5.
    SSE2: f32(r_a 81) = 151.87502 (0x1.2fc002p+7), + 150 = 301.875 (the tie at 2^-16 rounds to even),
    F = 38 - 301.875 = -263.875; f32(5 r_a) = 9.375001 (0x1.2c0002p+3), F + 9.375001 = -254.5 (rounded),
    -254.5 + f32(51 * 5) = 0.5 -> cvtps2dq (half to even) 0.
    AVX2: F = f32(38 - fma(r_a, 81, 150)) = -263.875, fma(51, 5, F) = -8.875, fma(5, r_a, -8.875) =
    0.5000006 (0x1.000014p-1) -> 1."""
    sc = (0.3, 0.8, 0.16, 81, 30, 38)
    assert _add("x86-sse", np.uint8, [5, 81, 0], [51, 30, 0], sc) == [0, 38, 0]
    assert _add("x86-avx2", np.uint8, [5, 81, 0], [51, 30, 0], sc) == [1, 38, 0]
    assert _add("x86-avx512-vnni", np.uint8, [5], [51], sc) == [1]  # VNNI hosts run qladd_avx2.cpp too
    # b a scalar over a vector: F' = f32(F + f32(51 * 5)) = -8.875 exact, then f32(-8.875 + 9.375001) =
    # 0.5 + 2^-20 -> 1: the fold order gives the AVX2 code here
    assert _add("x86-sse", np.uint8, [5, 5], [51], sc) == [1, 1]
    assert _add("x86-sse", np.uint8, [51], [5, 5], (0.8, 0.3, 0.16, 30, 81, 38)) == [1, 1]  # input 0 scalar


def test_qlinear_mul_arm64_fused_by_hand():
    """arm64 QLinearMul: the Linux aarch64 wheel of onnxruntime 1.32 computes qlmul.cpp's
    vaddq_f32(zc, vmulq_f32(r, f32(p))) as one fmla (its machine code), x86 as mulps then addps.
    s = (0.4, 1.7, 0.8): r = f32(f32(0.4 * 1.7) / 0.8) = 0.85000002 (0x1.b33334p-1); z = (150, 5, 79), codes
    (80, 6): p = -70 * 1 = -70, p r = -59.5000016689 exactly. x86: f32(p r) = -59.5 (the excess is below half
    an ulp, 2^-19), + 79 = 19.5 -> half to even 20. ARM64: fma = f32(19.4999983311) = 19.4999981 -> 19."""
    from hwsim.onnxq import DatapathConfig
    from hwsim.onnxq._ops_elementwise import qlinear_mul

    u8 = np.uint8
    ins = [np.array([80, 150], u8), F32(0.4), u8(150), np.array([6, 7], u8), F32(1.7), u8(5), F32(0.8),
           u8(79)]
    assert qlinear_mul(None, ins, DatapathConfig(target="arm64"))[0][0].tolist() == [19, 79]
    assert qlinear_mul(None, ins, DatapathConfig(target="x86-sse"))[0][0].tolist() == [20, 79]
    assert qlinear_mul(None, ins, None)[0][0].tolist() == [20, 79]


def test_qlinear_add_mul_overflow_is_the_integer_indefinite(tmp_path):
    """x86 cvtps2dq gives -2^31 for a float of 2^31 or more, which the packs saturate to the type's minimum:
    QLinearAdd with s_a = 2^30 (others 1, zero points 0): (3, 2) -> 3 * 2^30 + 2 >= 2^31 -> 0, (1, 1) ->
    2^30 + 1 -> 255; QLinearMul with s_a = s_b = 1000, s_c = 1: (100, 100) -> 10^4 * 10^6 = 10^10 -> 0.
    ARM64's vcvtnq_s32_f32 saturates instead (-> 255); its QLinearAdd falls back to the raw helper (ratio
    2^30 >= 256), whose clamp gives 255. onnxruntime on this (x86) host agrees with the x86 values (live)."""
    from hwsim.onnxq import DatapathConfig
    from hwsim.onnxq._ops_elementwise import qlinear_mul

    u8 = np.uint8
    add = (2.0**30, 1.0, 1.0, 0, 0, 0)
    for t in ("x86-avx2", "x86-sse"):
        assert _add(t, u8, [3, 1, 0], [2, 1, 0], add) == [0, 255, 0], t
    assert _add("arm64", u8, [3, 1, 0], [2, 1, 0], add) == [255, 255, 0]
    ins = [np.array([100, 1, 0], u8), F32(1000), u8(0), np.array([100, 1, 0], u8), F32(1000), u8(0), F32(1),
           u8(0)]
    assert qlinear_mul(None, ins, DatapathConfig(target="x86-sse"))[0][0].tolist() == [0, 255, 0]
    assert qlinear_mul(None, ins, None)[0][0].tolist() == [0, 255, 0]
    assert qlinear_mul(None, ins, DatapathConfig(target="arm64"))[0][0].tolist() == [255, 255, 0]
    for op, sa in (("QLinearAdd", 2.0**30), ("QLinearMul", 1000.0)):
        node = helper.make_node(op, ["a", "as", "az", "b", "bs", "bz", "cs", "cz"], ["c"], domain=MS)
        inits = {"as": F32(sa), "az": u8(0), "bs": F32(1000.0 if op == "QLinearMul" else 1.0), "bz": u8(0),
                 "cs": F32(1), "cz": u8(0)}
        m = model([node], [("a", u8, [20]), ("b", u8, [20])], [("c", u8)], inits)
        feeds = {"a": np.array([100, 1, 0, 200, 3] * 4, u8), "b": np.array([100, 1, 0, 200, 2] * 4, u8)}
        rep = run(tmp_path, m, feeds, name=op)
        assert rep.mismatches == 0, (op, rep.lines)


# -- QLinearConv: attributes ---------------------------------------------------------------------------------

CONV = {
    # name: x shape, w shape, attrs, x dtype, per-channel
    "same_upper_s2": ((1, 4, 9, 10), (8, 4, 3, 3), dict(auto_pad="SAME_UPPER", strides=[2, 2]), np.uint8,
                      True),
    "same_lower_s2": ((1, 4, 9, 10), (8, 4, 3, 3), dict(auto_pad="SAME_LOWER", strides=[2, 2]), np.int8,
                      True),
    "valid_dil2": ((2, 3, 11, 11), (6, 3, 3, 3), dict(auto_pad="VALID", dilations=[2, 2]), np.uint8, False),
    "groups_pads": ((1, 8, 7, 7), (8, 2, 3, 3), dict(group=4, pads=[0, 1, 2, 1]), np.uint8, True),
    "depthwise": ((1, 8, 10, 10), (8, 1, 3, 3), dict(group=8, pads=[1, 1, 1, 1]), np.int8, True),
    "conv1d": ((2, 4, 20), (6, 4, 5), dict(pads=[2, 1], strides=[2], dilations=[2]), np.uint8, True),
}


@pytest.mark.parametrize("name", sorted(CONV))
def test_qlinear_conv_attributes(tmp_path, name):
    xs, wsh, attrs, xdt, pc = CONV[name]
    rng = np.random.default_rng(1)
    k = wsh[0]
    w = codes(rng, np.int8, wsh)
    wscale = rng.uniform(0.002, 0.02, k).astype(F32) if pc else F32(0.01)
    wz = np.zeros(k, np.int8) if pc else np.array(0, np.int8)
    zx = 3 if xdt == np.uint8 else -5
    inits = {"xs": F32(0.02), "xz": np.array(zx, xdt), "w": w, "ws": wscale, "wz": wz, "ys": F32(0.9),
             "yz": np.array(zx + 7, xdt), "B": rng.integers(-3000, 3000, k).astype(np.int32)}
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "B"], ["y"],
                            **attrs)
    m = model([node], [("x", xdt, list(xs))], [("y", xdt)], inits)
    rep = run(tmp_path, m, {"x": codes(rng, xdt, xs)})
    assert rep.mismatches == 0 and rep.elements > 0


def test_conv_integer_and_matmul_integer(tmp_path):
    rng = np.random.default_rng(2)
    nodes = [helper.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["c"], pads=[1, 1, 1, 1],
                              strides=[2, 2]),
             helper.make_node("MatMulInteger", ["a", "b", "az", "bz"], ["m"])]
    inits = {"w": codes(rng, np.uint8, (5, 3, 3, 3)), "xz": np.array(129, np.uint8),
             "wz": np.array(131, np.uint8), "b": codes(rng, np.int8, (40, 6)), "az": np.array(7, np.uint8),
             "bz": codes(rng, np.int8, (6,))}
    m = model(nodes, [("x", np.uint8, [1, 3, 9, 9]), ("a", np.uint8, [3, 5, 40])],
              [("c", np.int32), ("m", np.int32)], inits)
    rep = run(tmp_path, m, {"x": codes(rng, np.uint8, (1, 3, 9, 9)), "a": codes(rng, np.uint8, (3, 5, 40))})
    assert rep.mismatches == 0 and rep.elements == 5 * 25 + 90


@pytest.mark.parametrize("dt", [np.uint8, np.int8])
def test_qlinear_matmul_batched_per_column(tmp_path, dt):
    # a (2, 5, 24) broadcast against b (24, 7); per-column b scale and zero point of shape [1, N] (ORT's form)
    rng = np.random.default_rng(3)
    n = 7
    az, yz, bz = (125, 129, 120) if dt == np.uint8 else (-3, 1, 0)
    inits = {"as": F32(0.05), "az": np.array(az, dt), "b": codes(rng, dt, (24, n)),
             "bs": rng.uniform(0.01, 0.03, (1, n)).astype(F32), "bz": np.full((1, n), bz, dt),
             "ys": F32(0.7), "yz": np.array(yz, dt)}
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"])
    m = model([node], [("a", dt, [2, 5, 24])], [("y", dt)], inits)
    rep = run(tmp_path, m, {"a": codes(rng, dt, (2, 5, 24))})
    assert rep.mismatches == 0 and rep.elements == 70


@pytest.mark.parametrize("trans_a, trans_b, alpha, quant_out", [(0, 1, 1.0, True), (1, 0, 0.5, True),
                                                                 (0, 0, 1.0, False)])
def test_qgemm(tmp_path, trans_a, trans_b, alpha, quant_out):
    rng = np.random.default_rng(4)
    a_shape = (30, 6) if trans_a else (6, 30)
    b_shape = (9, 30) if trans_b else (30, 9)
    inits = {"as": F32(0.02), "az": np.array(100, np.uint8), "b": codes(rng, np.int8, b_shape),
             "bs": rng.uniform(0.01, 0.02, 9).astype(F32), "bz": np.zeros(9, np.int8),
             "c": rng.integers(-5000, 5000, 9).astype(np.int32)}
    ins = ["a", "as", "az", "b", "bs", "bz", "c"]
    if quant_out:
        inits.update(ys=F32(0.3), yz=np.array(128, np.uint8))
        ins += ["ys", "yz"]
    node = helper.make_node("QGemm", ins, ["y"], domain=MS, transA=trans_a, transB=trans_b, alpha=alpha)
    m = model([node], [("a", np.uint8, list(a_shape))], [("y", np.uint8 if quant_out else np.float32)], inits)
    rep = run(tmp_path, m, {"a": codes(rng, np.uint8, a_shape)}, integer_outputs=quant_out)
    assert rep.mismatches == 0
    if not quant_out:
        assert rep.data["float_outputs_equal"] == {"y": True}


# -- pooling, concat, data movement --------------------------------------------------------------------------

POOL = {
    "k3s2_pad_incl": dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1),
    "k3s2_pad_excl": dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 1, 0], count_include_pad=0),
    "k2_ceil": dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
    "same_upper": dict(kernel_shape=[3, 2], strides=[2, 1], auto_pad="SAME_UPPER"),
    "whole_image": dict(kernel_shape=[7, 9]),  # ORT falls back to the global average pool
}


@pytest.mark.parametrize("name", sorted(POOL))
@pytest.mark.parametrize("dt", [np.uint8, np.int8])
def test_qlinear_average_pool(tmp_path, name, dt):
    rng = np.random.default_rng(5)
    zx, zy = (5, 9) if dt == np.uint8 else (-5, 3)
    inits = {"xs": F32(0.031), "xz": np.array(zx, dt), "ys": F32(0.017), "yz": np.array(zy, dt)}
    node = helper.make_node("QLinearAveragePool", ["x", "xs", "xz", "ys", "yz"], ["y"], domain=MS,
                            **POOL[name])
    m = model([node], [("x", dt, [2, 3, 7, 9])], [("y", dt)], inits)
    rep = run(tmp_path, m, {"x": codes(rng, dt, (2, 3, 7, 9))})
    assert rep.mismatches == 0


def test_global_pool_concat_maxpool(tmp_path):
    rng = np.random.default_rng(6)
    nodes = [
        helper.make_node("QLinearGlobalAveragePool", ["x", "xs", "xz", "gs", "gz"], ["g"], domain=MS,
                         channels_last=0),
        helper.make_node("QLinearConcat", ["cs", "cz", "x", "xs", "xz", "x2", "x2s", "x2z"], ["c"], domain=MS,
                         axis=1),
        helper.make_node("MaxPool", ["x"], ["p1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("MaxPool", ["x"], ["p2"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1,
                         dilations=[2, 2]),
        helper.make_node("Transpose", ["p1"], ["t"], perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["t", "shape"], ["r"]),
    ]
    inits = {"xs": F32(0.05), "xz": np.array(30, np.uint8), "gs": F32(0.01), "gz": np.array(3, np.uint8),
             "cs": F32(0.07), "cz": np.array(100, np.uint8), "x2s": F32(0.02), "x2z": np.array(200, np.uint8),
             "shape": np.array([2, -1], np.int64)}
    m = model(nodes, [("x", np.uint8, [2, 4, 9, 11]), ("x2", np.uint8, [2, 3, 9, 11])],
              [("g", np.uint8), ("c", np.uint8), ("p2", np.uint8), ("r", np.uint8)], inits)
    rep = run(tmp_path, m, {"x": codes(rng, np.uint8, (2, 4, 9, 11)),
                            "x2": codes(rng, np.uint8, (2, 3, 9, 11))})
    assert rep.mismatches == 0 and rep.elements > 500


def test_quantize_dequantize_per_axis(tmp_path):
    rng = np.random.default_rng(7)
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], axis=1),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"], axis=1),
             helper.make_node("QuantizeLinear", ["d", "s1"], ["q1"])]
    inits = {"s": np.array([0.1, 1 / 3, 0.007], F32), "z": np.array([-3, 0, 100], np.int8), "s1": F32(0.02)}
    m = model(nodes, [("x", np.float32, [4, 3, 50])], [("q", np.int8), ("q1", np.uint8)], inits)
    x = (rng.standard_normal((4, 3, 50)) * 3).astype(F32)
    x[0, 0, :4] = [0.05, 0.15, -0.25, 12.75]  # exact ties of x / 0.1 in float32 are rare; include near-ties
    rep = run(tmp_path, m, {"x": x})
    assert rep.mismatches == 0 and rep.elements == 1200


# -- errors --------------------------------------------------------------------------------------------------

def test_unsupported_op_names_node_and_lists_ops(tmp_path):
    # Hardmax is neither reproduced exactly nor compared within a tolerance; a contrib op without a kernel
    node = helper.make_node("Hardmax", ["x"], ["y"], name="hm")
    m = model([node], [("x", np.float32, [2, 3])], [("y", np.float32)], {})
    with pytest.raises(SpecError, match=r"node 'hm': expected an op hwsim supports \(.*QLinearConv.*\), "
                                        r"found op ai.onnx:Hardmax \(ai.onnx:Hardmax is neither an op hwsim "
                                        r"reproduces exactly nor one it compares"):
        run(tmp_path, m)
    node = helper.make_node("QuickGelu", ["x"], ["y"], name="qg", domain=MS)
    m = model([node], [("x", np.float32, [2, 3])], [("y", np.float32)], {})
    with pytest.raises(SpecError, match=r"node 'qg': .*found op com.microsoft:QuickGelu \(com.microsoft:"
                                        r"QuickGelu is an onnxruntime contrib op with no hwsim kernel"):
        run(tmp_path, m)


def test_bad_inputs_file(tmp_path):
    node = helper.make_node("QuantizeLinear", ["x", "s"], ["y"])
    m = model([node], [("x", np.float32, [2, 3])], [("y", np.uint8)], {"s": F32(0.1)})
    with pytest.raises(SpecError, match=r"m\.npz: x: expected shape \(2, 3\), found shape \(3, 2\)"):
        run(tmp_path, m, {"x": np.zeros((3, 2), F32)})
    with pytest.raises(SpecError, match=r"m\.npz: y: expected one of the model's inputs \['x'\]"):
        run(tmp_path, m, {"x": np.zeros((2, 3), F32), "y": np.zeros(1)})


@pytest.mark.parametrize("dt", [np.uint8, np.int8])
@pytest.mark.parametrize("scales", ADD_SCALES)
def test_qlinear_mul_all_code_pairs(tmp_path, dt, scales):
    sa, sb, sc, za, zb, zc = scales
    off = 0 if dt == np.uint8 else -128
    za, zb, zc = za + off, zb + off, zc + off
    grid = np.arange(256) + off
    a = np.repeat(grid, 256).astype(dt).reshape(256, 256)
    b = np.tile(grid, 256).astype(dt).reshape(256, 256)
    node = helper.make_node("QLinearMul", ["a", "as", "az", "b", "bs", "bz", "cs", "cz"], ["c"], domain=MS)
    inits = {"as": F32(sa), "az": np.array(za, dt), "bs": F32(sb), "bz": np.array(zb, dt),
             "cs": F32(sc * 20), "cz": np.array(zc, dt)}
    m = model([node], [("a", dt, [256, 256]), ("b", dt, [256, 256])], [("c", dt)], inits)
    rep = run(tmp_path, m, {"a": a, "b": b})
    assert rep.mismatches == 0 and rep.elements == 65536


@pytest.mark.parametrize("op, attrs", [("QLinearSigmoid", {}), ("QLinearLeakyRelu", {"alpha": 0.1}),
                                       ("QLinearLeakyRelu", {"alpha": 0.37})])
@pytest.mark.parametrize("dt", [np.uint8, np.int8])
@pytest.mark.parametrize("xs", [0.01, 0.07, 0.2])  # 0.2 * 128 = 25.6: the logistic's clamp at 18 is reached
def test_lookup_table_activations_all_codes(tmp_path, op, attrs, dt, xs):
    info = np.iinfo(dt)
    x = np.arange(info.min, info.max + 1).astype(dt).reshape(1, 256)
    zx = 100 if dt == np.uint8 else -20
    ys, zy = (1 / 256, 0 if dt == np.uint8 else -128) if op == "QLinearSigmoid" else (xs * 0.8, zx + 3)
    node = helper.make_node(op, ["x", "xs", "xz", "ys", "yz"], ["y"], domain=MS, **attrs)
    inits = {"xs": F32(xs), "xz": np.array(zx, dt), "ys": F32(ys), "yz": np.array(zy, dt)}
    m = model([node], [("x", dt, [1, 256])], [("y", dt)], inits)
    rep = run(tmp_path, m, {"x": x})
    assert rep.mismatches == 0 and rep.elements == 256


def test_sigmoid_table_uses_fused_multiply_adds(tmp_path):
    # x = f32(2.2459061) is one of the few inputs where MLAS's FMA3 logistic kernel and a separate
    # multiply-then-add evaluation land on different 8-bit codes (103 vs 104 at s_y = 1/256, z_y = -128)
    xs = F32(2.245906114578247)
    node = helper.make_node("QLinearSigmoid", ["x", "xs", "xz", "ys", "yz"], ["y"], domain=MS)
    inits = {"xs": xs, "xz": np.array(0, np.int8), "ys": F32(1 / 256), "yz": np.array(-128, np.int8)}
    m = model([node], [("x", np.int8, [1, 256])], [("y", np.int8)], inits)
    rep = run(tmp_path, m, {"x": np.arange(-128, 128).astype(np.int8).reshape(1, 256)})
    assert rep.mismatches == 0
    from hwsim.onnxq._ops_elementwise import mlas_logistic

    assert int(np.rint(mlas_logistic(np.array([xs]))[0] * 256)) - 128 == 103
