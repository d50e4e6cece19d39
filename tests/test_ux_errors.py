"""Defects a fresh-user trial found (bad option values, duplicate keys, channel mismatches, narrow
accumulators, float ONNX models in verify, bad sweep axes, huge vector dumps): each is one line naming the
file and key, exit 2, with the exact message pinned here."""

from __future__ import annotations

import subprocess
import sys

from .test_adversarial import assert_one_line, run
from .utils import ROOT

ARCH = ROOT / "arch/edge_32x32.yaml"
WL = ROOT / "workloads/digits_cnn.yaml"


# ---------------------------------------------------------------- argparse: one line, exit 2


def test_bad_option_value_is_one_line(capsys, tmp_path):
    rc, err, dt = run(["simulate", ARCH, WL, "--wbits", "abc"], capsys)
    assert_one_line(rc, err, dt)
    assert err == ["hwsim: error: command line: --wbits: expected an integer number of bits, found 'abc' "
                   "(hwsim simulate --help for usage)"]
    rc, err, dt = run(["simulate", ARCH, WL, "--reuse", "x"], capsys)
    assert err == ["hwsim: error: command line: --reuse: expected one of 'none', 'inter_layer', 'fused', "
                   "found 'x' (hwsim simulate --help for usage)"] and rc == 2
    rc, err, dt = run(["verify", "m.onnx", "--seed", "x"], capsys)
    assert err == ["hwsim: error: command line: --seed: expected a valid int value, found 'x' "
                   "(hwsim verify --help for usage)"] and rc == 2
    rc, err, dt = run(["sweep"], capsys)
    assert err == ["hwsim: error: command line: the following arguments are required: sweep "
                   "(hwsim sweep --help for usage)"] and rc == 2
    # --help keeps argparse's usage and exits 0
    r = subprocess.run([sys.executable, "-m", "hwsim", "sweep", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("usage: hwsim sweep") and "--resume" in r.stdout


# ---------------------------------------------------------------- duplicate YAML keys: one error line


def test_duplicate_key_is_one_error_naming_line_and_key(capsys, tmp_path):
    text = ARCH.read_text()
    assert text.count("\nname: ") == 1
    bad = tmp_path / "dup.yaml"
    bad.write_text(text.replace("\nname: ", "\nname: again\nname: ", 1))
    line = text[:text.index("\nname: ")].count("\n") + 2  # the first 'name:' line (1-based)
    rc, err, dt = run(["simulate", bad, WL, "--out", tmp_path / "o"], capsys)
    assert_one_line(rc, err, dt)
    assert err == [f"hwsim: error: {bad}: name: expected each key once in a mapping, found 'name' given "
                   "twice "
                   f"(lines {line} and {line + 1})"]
    nested = tmp_path / "dup2.yaml"
    nested.write_text("weight_bits: 8\nlayers:\n  conv1: {weight_bits: 4, weight_bits: 6}\n")
    rc, err, dt = run(["simulate", ARCH, WL, "--quant", nested, "--out", tmp_path / "o"], capsys)
    assert err == [f"hwsim: error: {nested}: layers.conv1.weight_bits: expected each key once in a mapping, "
                   "found 'weight_bits' given twice (lines 3 and 3)"] and rc == 2
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- workload channels


FASHION = ROOT / "workloads/fashion_cnn.yaml"


def test_channel_mismatch_names_the_layer_and_both_values(capsys, tmp_path):
    text = FASHION.read_text()
    # conv1 makes 8 channels (8x28x28); conv2 says it reads 9
    assert "name: conv2, op: conv2d, in_channels: 8," in text
    bad = tmp_path / "c.yaml"
    bad.write_text(text.replace("name: conv2, op: conv2d, in_channels: 8,", "name: conv2, op: conv2d, "
                                "in_channels: 9,"))
    rc, err, dt = run(["simulate", ARCH, bad, "--out", tmp_path / "o"], capsys)
    assert_one_line(rc, err, dt)
    assert err == [f"hwsim: error: {bad}: layers[1].in_channels: expected 8, the channels of the tensor it "
                   "reads (the output of layers[0] (conv1), 8x28x28), found 9 (layer conv2)"]
    # fc1 reads conv2's 16x14x14 = 3136 values; k 784 = 16*7*7 is legal (the 2x2 pool is left out of the
    # file), 700 is not a multiple of 16
    assert "k: 784" in text
    bad.write_text(text.replace("k: 784", "k: 700"))
    rc, err, dt = run(["simulate", ARCH, bad, "--out", tmp_path / "o"], capsys)
    assert err == [f"hwsim: error: {bad}: layers[2].k: expected 3136, the flattened output of layers[1] "
                   "(conv2) (16x14x14), or a multiple of its 16 channels below that (a pool left out), "
                   "found 700 "
                   "(layer fc1)"] and rc == 2
    assert not (tmp_path / "o").exists()


def test_every_shipped_workload_passes_the_channel_check():
    from hwsim._io import load_workload

    for f in sorted((ROOT / "workloads").glob("*.yaml")):
        load_workload(f)  # raises on a mismatch


def test_fc_after_a_gemm_must_take_its_row():
    import pytest

    from hwsim.errors import SpecError
    from hwsim.spec import Workload, validate

    data = {"name": "w", "layers": [{"name": "a", "op": "fc", "k": 64, "n": 32},
                                    {"name": "b", "op": "fc", "k": 16, "n": 10}]}
    wl = validate(Workload, data, "w.yaml")
    wl.graph("w.yaml")  # without the check (a SCALE-Sim CSV lists layers, not a chain)
    with pytest.raises(SpecError) as e:
        wl.graph("w.yaml", check_channels=True)
    assert str(e.value) == ("w.yaml: layers[1].k: expected 32, the row (N) of the output of layers[0] (a), "
                            "found 16 (layer b)")


# ---------------------------------------------------------------- accumulator width


def test_acc_narrower_than_one_product_is_an_error(capsys, tmp_path):
    bad = tmp_path / "a.yaml"
    text = ARCH.read_text()
    assert "acc_bits: 32" in text and "operand_bits: 8" in text
    bad.write_text(text.replace("acc_bits: 32", "acc_bits: 12"))
    rc, err, dt = run(["simulate", bad, WL, "--out", tmp_path / "o"], capsys)
    assert_one_line(rc, err, dt)
    assert err == [f"hwsim: error: {bad}: pe.acc_bits: expected at least 2 * operand_bits = 16 (one product "
                   "of two 8-bit operands), found 12"]


def test_acc_below_the_reduction_bound_is_a_note(tmp_path):
    from hwsim import simulate

    # digits_cnn at 8 bits: conv1 K = 1*3*3 = 9 -> 8+8+ceil(log2 9) = 20 bits, conv2 K = 8*3*3 = 72 -> 8+8+7
    # = 23, fc K = 256 -> 8+8+8 = 24: all three above a 16-bit accumulator, none above 32 bits
    arch = tmp_path / "a.yaml"
    arch.write_text(ARCH.read_text().replace("acc_bits: 32", "acc_bits: 16"))
    notes = simulate(arch, WL).result.notes
    acc = [n for n in notes if n.startswith("pe.acc_bits")]
    assert acc == ["pe.acc_bits 16 is below b_a + b_w + ceil(log2 K) for 3 of 3 layers (largest: fc, 24 "
                   "bits): "
                   "their sums may wrap; timing and energy do not depend on it, `hwsim verify --arch` counts "
                   "the events on a quantized model"]
    assert not [n for n in simulate(ARCH, WL).result.notes if n.startswith("pe.acc_bits")]


# ---------------------------------------------------------------- verify: a float model


def test_verify_refuses_a_float_model(capsys, tmp_path):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.arange(32, dtype=np.float32).reshape(8, 4)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "f",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                          [numpy_helper.from_array(w, "W")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path = tmp_path / "float.onnx"
    onnx.save(m, path)
    rc, err, dt = run(["verify", path, "--out", tmp_path / "v"], capsys)
    assert_one_line(rc, err, dt)
    assert err == [f"hwsim: error: {path}: expected a quantized ONNX model (QuantizeLinear/DequantizeLinear, "
                   "QLinear*, ConvInteger, MatMulInteger, DynamicQuantizeLinear nodes), found a float "
                   "model (1 "
                   "nodes: MatMul): no quantized node to verify (quantize it first, e.g. "
                   "onnxruntime.quantization.quantize_static)"]
    assert not (tmp_path / "v").exists()


# ---------------------------------------------------------------- sweep axes: named in the sweep file


def _sweep(tmp_path, axes: str):
    s = tmp_path / "s.yaml"
    s.write_text(f"name: s\narch: {ARCH}\nworkload: {WL}\naxes:\n{axes}precision: {{uniform: [[8, 8]]}}\n"
                 "objectives: {total_cycles: min, energy_pj: min}\n")
    return s


def test_bad_sweep_axis_value_names_the_sweep_file(capsys, tmp_path):
    s = _sweep(tmp_path, "  array.rows: [16, -4]\n")
    out = tmp_path / "o"
    rc, err, dt = run(["sweep", s, "--out", out, "--workers", "1"], capsys)
    assert_one_line(rc, err, dt)
    assert err == [f"hwsim: error: {s}: axes.array.rows[1]: expected a value greater than 0, found -4"]
    assert not out.exists()  # no sweep.json, nothing
    # each value fine alone, the combination not: 16-bit operands need a 32-bit accumulator
    s = _sweep(tmp_path, "  pe.operand_bits: [8, 16]\n  pe.acc_bits: [32, 16]\n")
    rc, err, dt = run(["sweep", s, "--out", out, "--workers", "1"], capsys)
    assert err == [f"hwsim: error: {s}: axes: expected combinations of axis values that each make a "
                   "valid arch "
                   "(pe.acc_bits: at least 2 * operand_bits = 32 (one product of two 16-bit operands)), "
                   "found "
                   "pe.operand_bits=16, pe.acc_bits=16"] and rc == 2
    assert not out.exists()


# ---------------------------------------------------------------- hwsim vectors: size limit, QGemm nodes


def test_vectors_estimate_equals_the_files_and_refuses_above_the_limit(capsys, tmp_path):
    import re

    from hwsim.rtl import hex_bytes, random_operands
    from hwsim.spec import Conv2d, Gemm

    from .utils import make_arch

    # the estimate is the hex files' exact size, per dataflow, for a tiled GEMM and a grouped strided conv
    layers = [Gemm(name="g", op="gemm", m=9, k=11, n=7),
              Conv2d(name="c", op="conv2d", in_channels=4, out_channels=6, in_h=5, in_w=6, kernel=3, stride=2,
                     padding=1, groups=2)]
    from hwsim.rtl import write_layer_vectors

    for df in ("os", "ws", "is"):
        arch = make_arch(**{"array.dataflow": df, "array.rows": 4, "array.cols": 3})
        items = [(ly, random_operands(ly, weight_bits=8, act_bits=8, asymmetric=(True, True), seed=3), 3)
                 for ly in layers]
        out = write_layer_vectors(arch, items, tmp_path / df)
        for ly, ops, _ in items:
            real = sum(f.stat().st_size for f in out.glob(f"{ly.name}.*.hex"))
            assert hex_bytes(ly, arch, ops) == real, (df, ly.name)
    # the command line: over the limit is one line, nothing written; --max-bytes above it writes
    out = tmp_path / "v"
    rc, err, dt = run(["vectors", ARCH, WL, "--out", out, "--max-bytes", "1000"], capsys)
    assert_one_line(rc, err, dt)
    assert err == ["hwsim: error: command line: --max-bytes: expected vectors of at most 1,000 bytes (give "
                   "--max-bytes N or --force to write more, --layer NAME for fewer layers), found "
                   "960,384 bytes "
                   "of hex files for 3 layer(s), the largest fc 527,360 (nothing was written)"]
    assert not out.exists()
    rc, err, _ = run(["vectors", ARCH, WL, "--out", out, "--max-bytes", "960384"], capsys)
    assert rc == 0 and sum(f.stat().st_size for f in out.glob("*.hex")) == 960384
    # ResNet-50 on the 32x32 array: 4.3 GB, refused by the default 256 MiB in well under a second of CPU
    rc, err, dt = run(["vectors", ARCH, ROOT / "workloads/resnet50.yaml", "--out", tmp_path / "r"], capsys)
    assert_one_line(rc, err, dt)
    assert re.fullmatch(r"hwsim: error: command line: --max-bytes: expected vectors of at most "
                        r"268,435,456 bytes "
                        r".*found [\d,]+ bytes of hex files for 54 layer\(s\).*", err[0])
    assert not (tmp_path / "r").exists()


def _quantized_gemm(tmp_path, fmt):
    """A float Gemm (transB=1, bias) + Relu quantized by onnxruntime.quantization.quantize_static."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 8)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    g = helper.make_graph([helper.make_node("Gemm", ["x", "W", "B"], ["h"], transB=1),
                           helper.make_node("Relu", ["h"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 6])],
                          [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    f = tmp_path / "gemm.onnx"
    onnx.save(m, f)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.d = iter([{"x": rng.standard_normal((2, 8)).astype(np.float32)} for _ in range(8)])

        def get_next(self):
            return next(self.d, None)

    q = tmp_path / f"gemm_{fmt}.onnx"
    quantize_static(str(f), str(q), Reader(), quant_format=getattr(QuantFormat, fmt),
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return q


def test_vectors_model_includes_gemm_nodes(capsys, tmp_path):
    import json

    import numpy as np
    import onnx
    from onnx import numpy_helper

    for fmt in ("QOperator", "QDQ"):
        q = _quantized_gemm(tmp_path, fmt)
        x = np.random.default_rng(5).standard_normal((2, 8)).astype(np.float32)
        np.savez(tmp_path / "x.npz", x=x)
        out = tmp_path / f"v_{fmt}"
        rc, err, _ = run(["vectors", ARCH, "--model", q, "--inputs", tmp_path / "x.npz", "--out", out],
                         capsys)
        assert rc == 0, err
        man = json.loads((out / "manifest.json").read_text())
        assert [ly["op"] for ly in man["layers"]] == ["gemm"]
        assert man["layers"][0]["gemm"] == {"m": 2, "k": 8, "n": 6, "groups": 1}
        # the operands, independently: the model's weight codes transposed (transB=1) and the input quantized
        # by its QuantizeLinear (round half to even, uint8)
        model = onnx.load(q)
        inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        wq = next(v for k, v in inits.items() if v.dtype == np.int8 and v.shape == (6, 8))
        qn = next(n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "x")
        xs, xz = float(inits[qn.input[1]]), int(inits[qn.input[2]])
        xq = np.clip(np.rint(x / np.float32(xs)) + xz, 0, 255).astype(np.int64)
        npz = np.load(out / f"{man['layers'][0]['npz']}")
        np.testing.assert_array_equal(npz["a_q"][0], xq)
        np.testing.assert_array_equal(npz["b_q"][0], wq.T)
        bq = next(v for v in inits.values() if v.dtype == np.int32)
        np.testing.assert_array_equal(npz["bias"][0], bq)
        assert man["layers"][0]["operands"]["filter"]["zero_point"] == 0  # symmetric int8 weights
        np.testing.assert_array_equal(npz["acc_biased"][0], (xq - xz) @ wq.T.astype(np.int64) + bq)
        # the output codes are onnxruntime's: its float output is DequantizeLinear of them
        import onnxruntime as ort

        y = ort.InferenceSession(str(q), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        dq = model.graph.node[-1]
        ys, yz = np.float32(inits[dq.input[1]]), int(inits[dq.input[2]])
        np.testing.assert_array_equal(npz["ofmap_codes"][0], np.rint(y / ys).astype(np.int64) + yz)
