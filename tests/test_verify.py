"""``hwsim verify`` end to end: the digits CNN (hwsim/models weights) exported to float ONNX with onnx.helper,
quantized by onnxruntime's own ``quantize_static`` (QOperator and QDQ, uint8/int8 activations, per-tensor
and per-channel weights) with a CalibrationDataReader over real digits images, verified bit for bit; and the
command's exit codes, including a failing run on hardware whose narrow accumulator overflows."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwsim.cli import main
from hwsim.models.digits import calibration_images, load_digits_split, load_weights
from hwsim.onnxq import host_info

quantization = pytest.importorskip("onnxruntime.quantization")


def digits_float_onnx(path):
    """conv1 3x3 1->8 + ReLU, conv2 3x3 8->16 + ReLU, 2x2 max pool, flatten, fc 256->10 (Gemm)."""
    w = load_weights()
    inits = [numpy_helper.from_array(w[k], k) for k in w]
    nodes = [
        helper.make_node("Conv", ["x", "conv1.weight", "conv1.bias"], ["c1"], pads=[1, 1, 1, 1],
                         name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "conv2.weight", "conv2.bias"], ["c2"], pads=[1, 1, 1, 1],
                         name="conv2"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("MaxPool", ["r2"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["logits"], transB=1, name="fc"),
    ]
    g = helper.make_graph(nodes, "digits", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                          ["n", 1, 8, 8])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    onnx.save(m, path)


class DigitsReader(quantization.CalibrationDataReader):
    """The first 256 training images (hwsim.models.digits.calibration_images), in batches of 32."""

    def __init__(self):
        x_tr = load_digits_split()[0]
        calib = calibration_images(x_tr)
        self._it = iter([{"x": calib[i:i + 32]} for i in range(0, len(calib), 32)])

    def get_next(self):
        return next(self._it, None)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    d = tmp_path_factory.mktemp("digits")
    f = d / "digits_f32.onnx"
    digits_float_onnx(f)
    x_te = load_digits_split()[2]
    np.savez(d / "test_images.npz", x=x_te[:64])
    return d


@pytest.mark.parametrize("fmt", ["QOperator", "QDQ"])
@pytest.mark.parametrize("act", ["QUInt8", "QInt8"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_quantize_static_models_verify_with_zero_mismatches(digits, tmp_path, fmt, act, per_channel, capsys):
    out = tmp_path / "q.onnx"
    quantization.quantize_static(str(digits / "digits_f32.onnx"), str(out), DigitsReader(),
                                 quant_format=getattr(quantization.QuantFormat, fmt), per_channel=per_channel,
                                 activation_type=getattr(quantization.QuantType, act),
                                 weight_type=quantization.QuantType.QInt8)
    rc = main(["verify", str(out), "--inputs", str(digits / "test_images.npz"), "--out", str(tmp_path / "v")])
    text = capsys.readouterr().out
    data = json.loads((tmp_path / "v" / "verify.json").read_text())
    assert rc == 0, text
    assert text.rstrip().splitlines()[-1] == f"mismatches: 0 of {data['elements']}"
    assert data["elements"] >= 64 * (64 + 8 * 64 + 16 * 64 + 256 + 256 + 10)
    assert {t["op"] for t in data["tensors"]} >= {"QuantizeLinear", "QLinearConv", "MaxPool", "Flatten",
                                                  "QGemm"}
    assert data["float_outputs_equal"] == {"logits": True}
    # every QDQ group is fused by default onnxruntime as well (no shared int8 tensors in this chain)
    assert data["onnxruntime_x86_float_groups"] == {}
    assert data["default_session_outputs_equal"] == {"logits": True}


def test_narrow_accumulator_arch_fails_with_a_count(digits, tmp_path, capsys, root):
    out = tmp_path / "q.onnx"
    quantization.quantize_static(str(digits / "digits_f32.onnx"), str(out), DigitsReader(),
                                 quant_format=quantization.QuantFormat.QOperator, per_channel=True)
    arch = tmp_path / "acc16.yaml"
    arch.write_text((root / "arch" / "edge_32x32.yaml").read_text().replace("acc_bits: 32", "acc_bits: 16"))
    rc = main(["verify", str(out), "--inputs", str(digits / "test_images.npz"), "--arch", str(arch),
               "--out", str(tmp_path / "v")])
    lines = capsys.readouterr().out.rstrip().splitlines()
    data = json.loads((tmp_path / "v" / "verify.json").read_text())
    assert rc == 1
    n, m = data["mismatches"], data["elements"]
    assert 0 < n < m and lines[-1] == f"mismatches: {n} of {m}"
    conv1 = next(t for t in data["tensors"] if t["op"] == "QLinearConv")
    assert conv1["acc_overflow"] > 0 and conv1["local_mismatches"] > 0
    assert conv1["reference_datapath_mismatches"] == 0
    assert all(layer["acc_bits"] == 16 and layer["rule_bits"] > 16 for layer in data["layers"])
    assert sum(layer["acc_overflow"] for layer in data["layers"]) > 0
    assert any(line.startswith("warning: node") and "16-bit accumulator" in line for line in lines)
    # the same hardware with a 32-bit accumulator passes
    arch.write_text((root / "arch" / "edge_32x32.yaml").read_text())
    assert main(["verify", str(out), "--inputs", str(digits / "test_images.npz"), "--arch", str(arch),
                 "--out", str(tmp_path / "v32")]) == 0


def test_profiles_other_than_ort_differ_and_say_where(digits, tmp_path, capsys):
    out = tmp_path / "q.onnx"
    quantization.quantize_static(str(digits / "digits_f32.onnx"), str(out), DigitsReader(),
                                 quant_format=quantization.QuantFormat.QDQ, per_channel=True)
    rc = main(["verify", str(out), "--inputs", str(digits / "test_images.npz"), "--profile", "tflite_double",
               "--out", str(tmp_path / "v")])
    data = json.loads((tmp_path / "v" / "verify.json").read_text())
    capsys.readouterr()
    # TFLite's double rounding is off by one on a few outputs per thousand (docs/verification.md §2)
    assert rc == 1 and 0 < data["mismatches"] < data["elements"] // 50
    bad = [t for t in data["tensors"] if t["mismatches"]]
    assert bad[0]["op"] == "QLinearConv" and bad[0]["local_mismatches"] > 0
    assert bad[0]["first_mismatch"]["hwsim"] - bad[0]["first_mismatch"]["onnxruntime"] in (-1, 1)


def test_cli_bad_input_exit_2(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "missing.onnx")]) == 2
    assert "missing.onnx: expected an existing ONNX model file" in capsys.readouterr().err
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    assert main(["verify", str(tmp_path / "bad.onnx")]) == 2
    assert "bad.onnx: expected a valid ONNX model" in capsys.readouterr().err
    assert main(["verify", str(tmp_path / "bad.onnx"), "--profile", "nope"]) == 2
    assert "--profile: expected one of ort_cpu" in capsys.readouterr().err


def test_arch_mult_bits_narrow_multiplier(digits, tmp_path, root, capsys):
    from hwsim.errors import SpecError
    from hwsim.spec import load_arch

    base = (root / "arch" / "edge_32x32.yaml").read_text()
    arch = tmp_path / "m8.yaml"
    arch.write_text(base.replace("  acc_mode: wrap", "  acc_mode: wrap\n  mult_bits: 8"))
    assert load_arch(arch).pe.mult_bits == 8
    assert load_arch(root / "arch" / "edge_32x32.yaml").pe.mult_bits is None
    bad = tmp_path / "m1.yaml"
    bad.write_text(base.replace("  acc_mode: wrap", "  acc_mode: wrap\n  mult_bits: 1"))
    with pytest.raises(SpecError, match=r"pe\.mult_bits"):
        load_arch(bad)
    out = tmp_path / "q.onnx"
    quantization.quantize_static(str(digits / "digits_f32.onnx"), str(out), DigitsReader(),
                                 quant_format=quantization.QuantFormat.QOperator, per_channel=True)
    # uint8 activations (zero point 0) reach 255 - 0 = 255: an 8-bit signed multiplier wraps them
    rc = main(["verify", str(out), "--inputs", str(digits / "test_images.npz"), "--arch", str(arch),
               "--out", str(tmp_path / "v")])
    data = json.loads((tmp_path / "v" / "verify.json").read_text())
    capsys.readouterr()
    assert rc == 1 and data["datapath"]["mult_bits"] == 8
    assert data["layers"][0]["mult_overflow"] > 0  # conv1 sees the real images: pixels above 127 wrap
    assert any("do not fit the 8-bit multiplier" in w for w in data["warnings"])
    arch.write_text(base.replace("  acc_mode: wrap", "  acc_mode: wrap\n  mult_bits: 9"))
    assert main(["verify", str(out), "--inputs", str(digits / "test_images.npz"), "--arch", str(arch),
                 "--out", str(tmp_path / "v9")]) == 0


def test_cli_rounding_and_pair_saturation_options(digits, tmp_path, capsys):
    out = tmp_path / "q.onnx"
    quantization.quantize_static(str(digits / "digits_f32.onnx"), str(out), DigitsReader(),
                                 quant_format=quantization.QuantFormat.QOperator, per_channel=True,
                                 activation_type=quantization.QuantType.QUInt8)
    inp = str(digits / "test_images.npz")
    # floor instead of round-half-even: about half of the requantized outputs move down by one
    assert main(["verify", str(out), "--inputs", inp, "--rounding", "floor", "--out",
                 str(tmp_path / "f")]) == 1
    data = json.loads((tmp_path / "f" / "verify.json").read_text())
    conv1 = next(t for t in data["tensors"] if t["op"] == "QLinearConv")
    assert data["datapath"]["rounding"] == "floor" and conv1["first_mismatch"]["hwsim"] < conv1[
        "first_mismatch"]["onnxruntime"]
    # int16 pair sums on every node: uint8 pixels up to 255 times int8 weights up to 127 overflow 32767 in
    # conv1. That is what onnxruntime computes on a pair-saturating host (AVX2 without VNNI: every node
    # here is u8 x s8 and none is depthwise), so the PE option matches it there and differs on an exact
    # (VNNI) host
    rc = main(["verify", str(out), "--int16-pairs", "--out", str(tmp_path / "p")])
    data = json.loads((tmp_path / "p" / "verify.json").read_text())
    assert data["datapath"]["int16_pairs"]
    if host_info().int16_pairs:
        assert rc == 0 and data["mismatches"] == 0
    else:
        assert rc == 1 and data["tensors"][1]["local_mismatches"] > 0
    assert main(["verify", str(out), "--rounding", "up"]) == 2
    assert "--rounding: expected one of half_even" in capsys.readouterr().err


def test_cli_cross_term_zero_points(digits, tmp_path, capsys, root):
    # int8 activations: ReLU outputs have the zero point -128, so raw codes and shifted operands differ
    out = tmp_path / "q.onnx"
    quantization.quantize_static(str(digits / "digits_f32.onnx"), str(out), DigitsReader(),
                                 quant_format=quantization.QuantFormat.QOperator, per_channel=True,
                                 activation_type=quantization.QuantType.QInt8)
    inp = str(digits / "test_images.npz")
    # a 32-bit wrapping accumulator gives the same codes either way
    assert main(["verify", str(out), "--inputs", inp, "--zero-point-mode", "cross_term",
                 "--out", str(tmp_path / "c")]) == 0
    data = json.loads((tmp_path / "c" / "verify.json").read_text())
    assert data["datapath"]["zero_point_mode"] == "cross_term"
    # a narrow saturating one sees the larger raw sums: more clamping than with shifted operands
    arch = tmp_path / "sat16.yaml"
    arch.write_text((root / "arch" / "edge_32x32.yaml").read_text().replace("acc_bits: 32", "acc_bits: 16")
                    .replace("acc_mode: wrap", "acc_mode: saturate"))
    ev = {}
    for mode in ("shift", "cross_term"):
        main(["verify", str(out), "--inputs", inp, "--arch", str(arch), "--zero-point-mode", mode,
              "--out", str(tmp_path / mode)])
        data = json.loads((tmp_path / mode / "verify.json").read_text())
        ev[mode] = sum(layer["acc_overflow"] for layer in data["layers"])
    assert ev["cross_term"] != ev["shift"]
    assert main(["verify", str(out), "--zero-point-mode", "nope"]) == 2
    assert "--zero-point-mode: expected one of shift, cross_term" in capsys.readouterr().err
