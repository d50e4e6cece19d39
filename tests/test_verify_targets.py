"""Targets: each machine's onnxruntime integer kernels, pinned by values that do not depend on this host.

* the one-node probe (MatMulInteger a = [[255, 255]], z_a = 144, b = [[113], [113]]): exact
  (255 - 144) * 113 * 2 = 25,086; with int16 pairs sat16(255 * 113 * 2 = 57,630) = 32,767 minus the zero-point
  correction 144 * 226 = 32,544 gives 223;
* the 69 cases recorded by onnxruntime 1.32 on an AVX2 host without VNNI (``tests/data/ort_avx2``): 0
  mismatches under ``--target x86-avx2 --expected`` on any host; the exact target misses the u8 x s8 ones;
* the same 69 models and inputs recorded on an AVX-512 VNNI host (``tests/data/ort_vnni``, AMD EPYC Zen 4):
  0 mismatches under ``--target x86-avx512-vnni --expected`` on any host, and the two recordings differ in
  exactly the elements where the two targets differ;
* QLinearAdd codes derived by hand from ``mlas/lib/qladd.cpp`` for arm64 (NEON fixed point) and x86-sse
  (SSE2, separately rounded float32).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hwsim.cli import main
from hwsim.datapath import conv2d_acc, gemm_acc
from hwsim.onnxq import PROBE_EXACT, PROBE_PAIRS16, TARGETS, host_info, probe_onnxruntime, verify

DATA = Path(__file__).parent / "data" / "ort_avx2"
VNNI_DATA = Path(__file__).parent / "data" / "ort_vnni"


def test_probe_values_by_hand_and_on_this_host():
    a = np.array([[255, 255]], np.uint8)
    b = np.array([[113], [113]], np.int8)
    assert gemm_acc(a, b, a_zp=144, b_zp=0)[0].item() == PROBE_EXACT == 25086
    assert gemm_acc(a, b, a_zp=144, b_zp=0, int16_pairs=True)[0].item() == PROBE_PAIRS16 == 223
    # live: this host's onnxruntime gives one of the two, and the host target says which
    host = host_info()
    assert probe_onnxruntime() == (PROBE_PAIRS16 if TARGETS[host.target].u8s8_int16_pairs else PROBE_EXACT)
    assert host.probe_note == ""


def test_int16_pairs_conv_order_is_nhwc():
    # C = 3, 1x2 kernel, x = 255: the reduction (r, s, c) = taps of channels 0,1,2 at s=0 then s=1; weights
    # w[c, s]: s=0 -> (127, 127, 1), s=1 -> (127, -128, -128). Pairs in (s, c) order: (127, 127) -> 32767,
    # (1, 127) -> 255 * 128 = 32640, (-128, -128) -> -32768. A (c, r, s) order would pair (127, 127),
    # (127, 1), (127, -128), (1, -128)... and give another value.
    x = np.full((1, 3, 1, 2), 255, np.uint8)
    w = np.array([[127, 127], [127, -128], [1, -128]], np.int8).reshape(1, 3, 1, 2)
    acc, _ = conv2d_acc(x, w, x_zp=0, w_zp=0, int16_pairs=True)
    assert acc.item() == 32767 + 32640 - 32768
    # exact: 255 * (127 + 127 + 1 + 127 - 128 - 128)
    assert conv2d_acc(x, w, x_zp=0, w_zp=0)[0].item() == 255 * 126


def _cases():
    meta = json.loads((DATA / "ort_avx2_cases.json").read_text())
    return meta


def _write_cases(d, npz, meta):
    z = np.load(npz)
    paths = {}
    for name in meta["cases"]:
        (d / f"{name}.onnx").write_bytes(z[f"{name}/model"].tobytes())
        ins = {k.split("/")[-1]: z[k] for k in z.files if k.startswith(f"{name}/in/")}
        np.savez(d / f"{name}_in.npz", **ins)
        np.savez(d / f"{name}_y.npz", y=z[f"{name}/y"])
        paths[name] = (d / f"{name}.onnx", d / f"{name}_in.npz", d / f"{name}_y.npz")
    return paths


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    meta = _cases()
    return meta, _write_cases(tmp_path_factory.mktemp("rec"), DATA / "ort_avx2_cases.npz", meta)


def test_recorded_avx2_cases(recorded):
    meta, paths = recorded
    assert meta["cpu_flags"] == ["avx2", "fma"] and meta["onnxruntime"] == "1.32.0" and len(paths) == 69
    vnni = {}
    for name, (m, x, y) in paths.items():
        rep = verify(m, inputs=x, expected=y, target="x86-avx2")
        assert rep.mismatches == 0, (name, rep.lines)
        vnni[name] = verify(m, inputs=x, expected=y, target="x86-avx512-vnni").mismatches
    kinds = {n: meta["cases"][n]["kind"] for n in paths}
    # the exact target differs on u8 x s8 GEMMs and non-depthwise convs only (cases 16-19 are depthwise)
    assert {n for n, v in vnni.items() if v} == {
        n for n, k in kinds.items() if ("u8s8" in k or k == "matmulinteger")
        and n not in ("conv_u8s8_16", "conv_u8s8_17", "conv_u8s8_18", "conv_u8s8_19", "conv_u8s8_39",
                      "matmul_u8s8_04")}
    assert sum(vnni.values()) == 35291
    near = [vnni[n] for n, k in kinds.items() if k == "conv u8s8 near-255"]
    assert sum(near) == 17860 and vnni["conv_u8s8_31"] == 2924 and vnni["matmul_u8s8_05"] == 2764


def test_recorded_vnni_cases(recorded, tmp_path):
    # The same generator and seed on an AVX-512 VNNI host (tests/data/ort_vnni/README.md): identical models
    # and inputs, outputs from MLAS's VNNI kernels (exact int32 sums of u8 x s8 products).
    meta, paths = recorded
    vmeta = json.loads((VNNI_DATA / "ort_vnni_cases.json").read_text())
    assert "avx512_vnni" in vmeta["cpu_flags"] and vmeta["onnxruntime"] == "1.32.0"
    assert vmeta["cases"] == meta["cases"]
    a, v = np.load(DATA / "ort_avx2_cases.npz"), np.load(VNNI_DATA / "ort_vnni_cases.npz")
    assert sorted(a.files) == sorted(v.files)
    assert all(np.array_equal(a[k], v[k]) for k in a.files if not k.endswith("/y"))
    # peer against peer: the two hosts' onnxruntime outputs differ in 35,291 elements over 43 cases
    differ = {n: int((a[f"{n}/y"] != v[f"{n}/y"]).sum()) for n in paths}
    assert sum(differ.values()) == 35291 and sum(1 for n in differ.values() if n) == 43
    vpaths = _write_cases(tmp_path, VNNI_DATA / "ort_vnni_cases.npz", vmeta)
    for name, (m, x, y) in vpaths.items():
        rep = verify(m, inputs=x, expected=y, target="x86-avx512-vnni")
        assert rep.mismatches == 0, (name, rep.lines)
        # and the AVX2 target, which reproduces the AVX2 host, misses exactly where the hosts differ
        assert verify(m, inputs=x, expected=y, target="x86-avx2").mismatches == differ[name], name


def test_cli_recorded_and_bad_input(recorded, tmp_path, capsys):
    meta, paths = recorded
    m, x, y = paths["conv_u8s8_01"]
    assert main(["verify", str(m), "--inputs", str(x), "--expected", str(y), "--target", "x86-avx2",
                 "--out", str(tmp_path / "a")]) == 0
    data = json.loads((tmp_path / "a" / "verify.json").read_text())
    assert data["target"]["name"] == "x86-avx2"
    assert data["target"]["host"]["cpu_flags"] == list(host_info().flags)
    assert data["onnxruntime_version"] and data["reference"].startswith("recorded")
    assert main(["verify", str(m), "--inputs", str(x), "--expected", str(y), "--target", "x86-avx512-vnni",
                 "--out", str(tmp_path / "b")]) == 1
    assert capsys.readouterr().out.rstrip().splitlines()[-1] == "mismatches: 151 of 192"
    other = "x86-avx512-vnni" if host_info().target == "x86-avx2" else "x86-avx2"
    bad = tmp_path / "bad.npz"
    for args, msg in [
        (["--target", "x86-avx3"], "--target: expected one of host, x86-avx2"),
        (["--target", other], "--target: expected this host's target"),
    ]:
        assert main(["verify", str(m), "--inputs", str(x), "--out", str(tmp_path / "c")] + args) == 2
        err = capsys.readouterr().err
        assert msg in err and len(err.strip().splitlines()) == 1, err
    z = np.load(y)["y"]
    for arrays, msg in [({"z": z}, ": y: expected an array for every model output"),
                        ({"y": z[..., :2]}, ": y: expected shape (1, 8, 6, 4)"),
                        ({"y": z.astype(np.int8)}, ": y: expected dtype uint8"),
                        ({"y": z, "w": z}, ": w: expected the name of a model output or tensor")]:
        np.savez(bad, **arrays)
        assert main(["verify", str(m), "--inputs", str(x), "--expected", str(bad), "--target", "x86-avx2",
                     "--out", str(tmp_path / "c")]) == 2
        err = capsys.readouterr().err
        assert msg in err and len(err.strip().splitlines()) == 1, err


def test_live_verify_json_records_target_and_session(recorded, tmp_path):
    meta, paths = recorded
    m, x, _ = paths["matmul_u8s8_00"]
    rep = verify(m, inputs=x, out=tmp_path)
    assert rep.mismatches == 0  # the host target reproduces this host's onnxruntime
    data = json.loads((tmp_path / "verify.json").read_text())
    host = host_info()
    assert data["target"]["name"] == host.target and data["target"]["host"]["onnxruntime_probe"] == host.probe
    assert data["session_options"]["providers"] == ["CPUExecutionProvider"]


def _qdq_probe_model(path):
    """The probe as an int8 QDQ MatMul: x = 111.0 -> code 127 (z = 16), w = [[113], [113]], y scale 256.

    With session.qdqisint8allowed=1 (or on ARM, or with VNNI) the s8 kernels give the exact 25,086 -> y code
    round(25,086 / 256) = 98 -> 25,088.0. A default x86 session rewrites the int8 pairs to uint8 (codes 255,
    zero point 144), so the u8 x s8 kernel runs: on AVX2 without VNNI its pair sum saturates and it computes
    223 -> round(223 / 256) = 1 -> 256.0."""
    from onnx import TensorProto, helper, numpy_helper

    c = numpy_helper.from_array
    nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wd"]),
             helper.make_node("MatMul", ["xd", "wd"], ["m"]),
             helper.make_node("QuantizeLinear", ["m", "sy", "zy"], ["yq"]),
             helper.make_node("DequantizeLinear", ["yq", "sy", "zy"], ["y"])]
    inits = [c(np.float32(1), "sx"), c(np.int8(16), "zx"), c(np.array([[113], [113]], np.int8), "w"),
             c(np.float32(1), "sw"), c(np.int8(0), "zw"), c(np.float32(256), "sy"), c(np.int8(0), "zy")]
    g = helper.make_graph(nodes, "probe_qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    path.write_bytes(m.SerializeToString())


def test_default_session_int8_qdq_runs_u8_kernels(tmp_path):
    m, x = tmp_path / "p.onnx", tmp_path / "x.npz"
    _qdq_probe_model(m)
    np.savez(x, x=np.full((1, 2), 111.0, np.float32))
    for value, target, bad in [(256.0, "x86-avx2", 0), (25088.0, "x86-avx2", 1),
                               (25088.0, "x86-avx512-vnni", 0), (256.0, "x86-avx512-vnni", 1),
                               (25088.0, "arm64", 0)]:
        y = tmp_path / "y.npz"
        np.savez(y, y=np.full((1, 1), value, np.float32))
        assert verify(m, inputs=x, expected=y, target=target).mismatches == bad, (value, target)
    # live: the default session on this host gives the value of its own target, and hwsim agrees
    rep = verify(m, inputs=x, out=tmp_path / "v")
    assert rep.mismatches == 0, rep.lines
    assert rep.data["default_session_outputs_equal"] == {"y": True}


def test_qgemm_probe_per_target(tmp_path):
    # com.microsoft QGemm (not among the recorded cases) on the probe's operands, float output
    # y = acc * 1 * 1: 25,086.0 on exact targets, 223.0 where u8 x s8 pairs saturate (the same MlasGemm kernel
    # as MatMulInteger)
    from onnx import TensorProto, helper, numpy_helper

    c = numpy_helper.from_array
    node = helper.make_node("QGemm", ["a", "sa", "za", "b", "sb", "zb"], ["y"], domain="com.microsoft")
    inits = [c(np.float32(1), "sa"), c(np.uint8(144), "za"), c(np.array([[113], [113]], np.int8), "b"),
             c(np.float32(1), "sb"), c(np.int8(0), "zb")]
    g = helper.make_graph([node], "qgemm", [helper.make_tensor_value_info("a", TensorProto.UINT8, [1, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 8
    (tmp_path / "g.onnx").write_bytes(m.SerializeToString())
    np.savez(tmp_path / "a.npz", a=np.array([[255, 255]], np.uint8))
    for target, value in [("x86-avx2", 223.0), ("x86-avx512-core", 223.0), ("x86-avx512-vnni", 25086.0),
                          ("x86-avx-vnni", 25086.0), ("arm64", 25086.0)]:
        np.savez(tmp_path / "y.npz", y=np.full((1, 1), value, np.float32))
        rep = verify(tmp_path / "g.onnx", inputs=tmp_path / "a.npz", expected=tmp_path / "y.npz",
                     target=target)
        assert rep.mismatches == 0, (target, rep.lines)
    assert verify(tmp_path / "g.onnx", inputs=tmp_path / "a.npz").mismatches == 0  # live, host target


def test_expected_that_is_not_an_npz_is_named(recorded, tmp_path, capsys):
    # the recorded-outputs file goes through the same checks as --inputs (it was called "pickled data")
    from hwsim.cli import main

    _, paths = recorded
    m, x, _ = paths["conv_u8s8_01"]
    bad = tmp_path / "y.npz"
    bad.write_text("not an archive")
    assert main(["verify", str(m), "--inputs", str(x), "--expected", str(bad), "--target", "x86-avx2",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"hwsim: error: {bad}: expected an .npz file of recorded outputs (a zip archive of .npy "
                   "arrays, numpy.savez), found a file that is not a zip archive (starts with b'not an a')"]


def test_arch_mismatches_are_split_between_the_arch_and_the_pair_saturating_reference(recorded, tmp_path,
                                                                                      capsys):
    # conv_u8s8_01 recorded on an AVX2 host: exact integer arithmetic (the VNNI target) differs from the
    # recorded codes in 151 of 192 (test_cli_recorded_and_bad_input). An arch whose accumulator is 32 bits
    # but saturating is not onnxruntime's datapath, so the int16 pair emulation is off: the 151 are all the
    # reference's saturation, none the arch's (the conv needs 21 bits by the rule), exit 0. With 16 bits that
    # wrap, the arch's own differences are exactly its 60 overflowing outputs (a wrap moves the accumulator by
    # 2^16, far beyond one code) and the other 100 are codes the arch computes exactly where the reference
    # saturated; exit 1. Host-independent: --expected, --target x86-avx2.
    import yaml

    from .utils import ROOT

    m, x, y = recorded[1]["conv_u8s8_01"]
    for bits, mode, code, last in [(32, "saturate", 0, "mismatches: 151 of 192 (0 caused by the datapath)"),
                                   (16, "wrap", 1, "mismatches: 160 of 192 (60 caused by the datapath)")]:
        a = yaml.safe_load((ROOT / "arch/edge_32x32.yaml").read_text())
        a["pe"].update(acc_bits=bits, acc_mode=mode)
        arch = tmp_path / f"a{bits}.yaml"
        arch.write_text(yaml.safe_dump(a))
        assert main(["verify", str(m), "--inputs", str(x), "--expected", str(y), "--target", "x86-avx2",
                     "--arch", str(arch), "--out", str(tmp_path / f"v{bits}")]) == code
        out = capsys.readouterr().out.rstrip().splitlines()
        assert out[-1] == last
        t = json.loads((tmp_path / f"v{bits}" / "verify.json").read_text())
        tt = t["tensors"][0]
        # every mismatch is one or the other: where the arch equals exact arithmetic, the reference saturated
        split = (tt["datapath_mismatches"], tt["reference_pair_saturation_mismatches"])
        assert split == {32: (0, 151), 16: (60, 100)}[bits]
        assert t["datapath_mismatches"] == t["layers"][0]["acc_overflow"] == {32: 0, 16: 60}[bits]


def _qladd_model(path, scales, op="QLinearAdd", n=7):
    from onnx import TensorProto, helper, numpy_helper

    sa, sb, sc, za, zb, zc = scales
    c = numpy_helper.from_array
    node = helper.make_node(op, ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"], ["y"],
                            domain="com.microsoft")
    inits = [c(np.float32(sa), "sa"), c(np.uint8(za), "za"), c(np.float32(sb), "sb"), c(np.uint8(zb), "zb"),
             c(np.float32(sc), "sc"), c(np.uint8(zc), "zc")]
    io = [helper.make_tensor_value_info(k, TensorProto.UINT8, [1, n]) for k in ("a", "b")]
    out = helper.make_tensor_value_info("y", TensorProto.UINT8, [1, n])
    g = helper.make_graph([node], "qladd", io, [out], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 8
    path.write_bytes(m.SerializeToString())


def test_qlinear_add_mul_per_target_cli(tmp_path, capsys):
    # The codes derived by hand from mlas/lib/qladd.cpp in tests/test_onnxq_ops.py, recorded as expected
    # outputs of a one-node QLinearAdd model: arm64 (NEON fixed point, s = (0.5, 0.25, 1), z = (128, 0, 160):
    # half away from zero) and x86-sse (SSE2, separately rounded; s = (0.3, 0.8, 0.16), z = (81, 30, 38),
    # codes (5, 51) -> 0 where AVX2's fmas give 1), and a QLinearMul for arm64 (one fma: s = (0.4, 1.7, 0.8),
    # z = (150, 5, 79), codes (80, 6) -> 19 where x86 gives 20). Each file verifies with 0 mismatches on its
    # target and misses the differing codes on x86-avx2 (exit 1), on any host.
    cases = [("arm64", (0.5, 0.25, 1.0, 128, 0, 160), [127, 129, 125, 131, 255, 0, 0],
              [0, 0, 2, 0, 255, 0, 6], [159, 161, 159, 162, 255, 96, 97], 3),
             ("x86-sse", (0.3, 0.8, 0.16, 81, 30, 38), [5, 81, 0, 5, 5, 5, 5], [51, 30, 0, 51, 51, 51, 51],
              [0, 38, 0, 0, 0, 0, 0], 5),
             ("arm64", (0.4, 1.7, 0.8, 150, 5, 79), [80, 150], [6, 7], [19, 79], 1)]
    for i, (target, scales, a, b, y, avx2_misses) in enumerate(cases):
        m, x, e = tmp_path / f"{i}.onnx", tmp_path / f"{i}_x.npz", tmp_path / f"{i}_y.npz"
        _qladd_model(m, scales, "QLinearMul" if i == 2 else "QLinearAdd", len(a))
        np.savez(x, a=np.array([a], np.uint8), b=np.array([b], np.uint8))
        np.savez(e, y=np.array([y], np.uint8))
        assert main(["verify", str(m), "--inputs", str(x), "--expected", str(e), "--target", target,
                     "--out", str(tmp_path / f"{i}")]) == 0, capsys.readouterr()
        assert verify(m, inputs=x, expected=e, target=target).mismatches == 0
        assert verify(m, inputs=x, expected=e, target="x86-avx2").mismatches == avx2_misses, target
        assert main(["verify", str(m), "--inputs", str(x), "--expected", str(e), "--target", "x86-avx2",
                     "--out", str(tmp_path / f"{i}_avx2")]) == 1


@pytest.mark.parametrize("flags, probe, target", [
    # the flags hide VNNI (a VM) but onnxruntime's kernel is exact: a VNNI target, which keeps the AVX2
    # QLinearAdd kernel (the trial's x86-sse pick switched QLinearAdd to SSE2 and missed 2 of 4 codes)
    (("avx2", "avx512bw", "avx512f", "fma"), PROBE_EXACT, "x86-avx512-vnni"),
    (("avx2", "fma"), PROBE_EXACT, "x86-avx-vnni"),
    # the flags name VNNI but the kernel saturates pairs: the AVX2 target
    (("avx2", "avx512_vnni", "avx512bw", "fma"), PROBE_PAIRS16, "x86-avx2"),
    # no AVX2 and exact: SSE2, as the flags say (no note)
    (("sse4_2",), PROBE_EXACT, "x86-sse"),
])
def test_probe_overrides_flags_to_a_target_of_that_kind(monkeypatch, flags, probe, target):
    from hwsim.onnxq import _targets

    monkeypatch.setattr(_targets, "_cpu_flags", lambda: (flags, "x86_64"))
    monkeypatch.setattr(_targets, "probe_onnxruntime", lambda: probe)
    _targets.host_info.cache_clear()
    try:
        h = _targets.host_info()
        assert h.target == target and h.probe == probe
        assert ("the probe is followed" in h.probe_note) == (flags != ("sse4_2",))
        avx2_add = TARGETS["x86-avx2"].add_kernel
        assert TARGETS[h.target].add_kernel == ("sse2" if target == "x86-sse" else avx2_add)
    finally:
        _targets.host_info.cache_clear()


def test_observed_bits_are_the_exact_sums_on_every_target(recorded, tmp_path):
    # conv_u8s8_25 (near-255 inputs): the largest exact |sum| is 275,327, which needs 20 bits (2^18 = 262,144
    # <= 275,327 < 2^19, plus the sign). Under a 16-bit arch both a live run (this host's target) and the
    # AVX2 target against its recording must say 20; the AVX2 target's pair-saturated sums are smaller (the
    # trial read 19 there)
    import hwsim

    meta, paths = recorded
    m, x, y = paths["conv_u8s8_25"]
    arch = tmp_path / "wrap16.yaml"
    arch.write_text((Path(__file__).resolve().parents[1] / "arch/edge_32x32.yaml").read_text()
                    .replace("acc_bits: 32", "acc_bits: 16"))
    live = hwsim.verify(m, inputs=x, arch=arch)
    rec = hwsim.verify(m, inputs=x, expected=y, target="x86-avx2", arch=arch)
    for rep in (live, rec):
        (row,) = rep.data["layers"]
        assert row["observed_bits"] == 20 and row["acc_bits"] == 16 and row["observed_bits_exact"], row
        assert any("these inputs needed 20 bits" in w for w in rep.data["warnings"]), rep.data["warnings"]
    # onnxruntime's own semantics on the AVX2 target (no arch) and a 16-bit bound exceeded: the warned node
    # is run again with exact sums (the review read 19 here); without a warning the row says its bits are
    # the target's (saturated) sums
    from hwsim.onnxq import DatapathConfig
    from hwsim.onnxq import verify as verify_q

    rep = verify_q(m, inputs=x, expected=y, target="x86-avx2", config=DatapathConfig(acc_bits=16))
    (row,) = rep.data["layers"]
    assert row["observed_bits"] == 20 and row["observed_bits_exact"], row
    (row,) = hwsim.verify(m, inputs=x, expected=y, target="x86-avx2").data["layers"]
    assert row["observed_bits"] == 19 and row["observed_bits_exact"] is False, row


def test_observed_bits_exact_for_a_warned_node_under_onnxruntimes_own_semantics(tmp_path):
    # MatMulInteger, K = 70,000, a = 255, b = 127, no zero points: the bound 8 + 8 + ceil(log2 70,000) = 33
    # bits exceeds onnxruntime's 32-bit accumulator, so verify warns and names what the inputs needed: the
    # exact sum 255 * 127 * 70,000 = 2,266,950,000 needs 33 bits (2^31 < it < 2^32, plus the sign); the AVX2
    # target's int16 pairs give 32,767 * 35,000 = 1,146,845,000 (32 bits), which must not be reported
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    k = 70_000
    node = helper.make_node("MatMulInteger", ["a", "b"], ["y"])
    g = helper.make_graph([node], "long", [helper.make_tensor_value_info("a", TensorProto.UINT8, [1, k])],
                          [helper.make_tensor_value_info("y", TensorProto.INT32, [1, 1])],
                          [numpy_helper.from_array(np.full((k, 1), 127, np.int8), "b")])
    m = tmp_path / "long.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), str(m))
    np.savez(tmp_path / "x.npz", a=np.full((1, k), 255, np.uint8))
    # the recorded value: onnxruntime's AVX2 kernel wraps nothing here (1,146,845,000 fits int32)
    np.savez(tmp_path / "y.npz", y=np.array([[1_146_845_000]], np.int32))
    rep = verify(m, inputs=tmp_path / "x.npz", expected=tmp_path / "y.npz", target="x86-avx2")
    assert rep.mismatches == 0
    (row,) = rep.data["layers"]
    assert row["rule_bits"] == 33 and row["observed_bits"] == 33 and row["observed_bits_exact"], row
    assert any("these inputs needed 33 bits" in w for w in rep.data["warnings"]), rep.data["warnings"]
