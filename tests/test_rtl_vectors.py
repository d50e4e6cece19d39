"""`hwsim vectors`: the files a testbench reads (format pinned by a hand-derived case), bad input exits 2."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from hwsim.cli import main
from hwsim.rtl import RTL_SOURCE, LayerOperands, write_layer_vectors
from hwsim.spec import Gemm

from .utils import ROOT, make_arch

ARCH = """name: tiny
clock_mhz: 100
array: {rows: 2, cols: 3, dataflow: DF}
pe: {operand_bits: 8, acc_bits: 16, acc_mode: wrap}
memory:
  ifmap_sram: {size_kib: 4}
  filter_sram: {size_kib: 4}
  ofmap_sram: {size_kib: 4}
"""
WORKLOAD = """name: two
layers:
  - {name: fc1, op: fc, m: 3, k: 5, n: 4}
  - {name: c1, op: conv2d, in_channels: 2, out_channels: 3, in_h: 4, in_w: 4, kernel: 3, padding: 1}
"""


def _files(tmp_path, df="ws"):
    a = tmp_path / "arch.yaml"
    a.write_text(ARCH.replace("DF", df))
    w = tmp_path / "wl.yaml"
    w.write_text(WORKLOAD)
    return str(a), str(w)


def test_hex_files_by_hand(tmp_path):
    # ws on a 2x3 array, GEMM M=1, K=2, N=2: a = [[3, 255]] (u8, zp 0), b = [[-1, 2], [5, -128]] (s8)
    # load: cycle 0 drives the bottom weight row first (b[1] = 5, -128, pad 0), cycle 1 the top row b[0];
    #   T_BITS = 8: lanes "00" (pad) "80" (-128) "05" -> 008005, then "00" "02" "ff" -> 0002ff
    # stream: a[0, k] enters row k in cycle R + 0 + k = 2 + k: cycle 2 row 0 = 3 -> 9-bit lanes 0, 3 = 0x003;
    #   cycle 3 row 1 = 255 -> 255 << 9 = 0x1fe00
    # outputs (16-bit wrap): (0, j) leaves the bottom row at edge R + 0 + (R-1) + j + 1 = 4 + j: column 0
    #   3*-1 + 255*5 = 1272 = 0x04f8 on line 3; column 1: 3*2 + 255*-128 = -32634 = 0x8086 on line 4;
    #   padded column 2 (0) on line 5; the fold lasts 2R + T + C - 2 = 4 + 1 + 3 - 2 = 6 lines.
    arch = make_arch(**{"array.rows": 2, "array.cols": 3, "pe.acc_bits": 16})
    ly = Gemm(name="g", op="gemm", m=1, k=2, n=2)
    ops = LayerOperands("g", (np.array([[3, 255]]),), (np.array([[-1, 2], [5, -128]]),), (np.zeros(2, int),),
                        0, 0, 8, False, 8, True)
    write_layer_vectors(arch, [(ly, ops, None)], tmp_path)
    m = json.loads((tmp_path / "manifest.json").read_text())["layers"][0]
    assert m["rtl_parameters"] == {"ROWS": 2, "COLS": 3, "DATAFLOW": 1, "L_BITS": 9, "T_BITS": 8,
                                   "ACC_BITS": 16, "SATURATE": 0}
    lines = {k: (tmp_path / f).read_text().split() for k, f in m["files"].items()}
    assert lines["top_data"][:3] == ["008005", "0002ff", "000000"]
    assert lines["load"] == ["1", "1", "0", "0", "0", "0"]
    assert lines["left_data"][2:4] == ["00003", "1fe00"]
    assert lines["out_valid"] == ["0", "0", "0", "1", "2", "4"]
    assert lines["out_data"][3] == "00000000" + "04f8"
    assert lines["out_data"][4] == "0000" + "8086" + "0000"
    assert lines["stationary"] == ["0002ff", "008005"]  # PE row 0 holds b[0], row 1 b[1]
    assert m["folds"][0]["cycles"] == 6 == m["cycles"]["timing_model_per_fold"]


@pytest.mark.parametrize("df", ["os", "is"])
def test_cli_writes_manifest_hex_npz(tmp_path, df, capsys):
    a, w = _files(tmp_path, df)
    out = tmp_path / "v"
    assert main(["vectors", a, w, "--layer", "c1", "--out", str(out), "--seed", "3"]) == 0
    man = json.loads((out / "manifest.json").read_text())
    assert man["format"] == "hwsim-vectors/1" and "seed 3" in man["operands_from"]
    (lay,) = man["layers"]
    assert lay["layer"] == "c1" and lay["seed"] == 4 and lay["dataflow"] == df
    for f in lay["files"].values():
        assert (out / f).stat().st_size > 0
    npz = np.load(out / lay["npz"])
    # the ofmap codes: (groups, M, N) = (1, 16, 3) unsigned 8-bit
    assert npz["ofmap_codes"].shape == (1, 16, 3) and npz["ofmap_codes"].max() <= 255
    # os: 2x3 array, M=16 (8 row folds), N=3: per fold T + 2R + C - 3 = 18 + 4 + 3 - 3 = 22
    # is: Sr = K = 18 (9 row folds of 2), Sc = M = 16 (6 col folds of 3), T = N = 3: 2R + T + C - 2 = 8
    per = 22 if df == "os" else 8
    assert all(f["cycles"] == per for f in lay["folds"])
    assert len(lay["folds"]) == (8 if df == "os" else 54)
    assert "c1: " in capsys.readouterr().out


def test_cli_bad_input_exits_2(tmp_path, capsys, monkeypatch):
    a, w = _files(tmp_path)
    assert main(["vectors", a, w, "--layer", "nope", "--out", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--layer" in err and "'nope'" in err
    bitfusion = str(ROOT / "arch" / "bitfusion_16x16.yaml")
    assert main(["vectors", bitfusion, w, "--out", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pe.precision_mode" in err and "bit_fusion" in err
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["vectors", a, w, "--cosim", "--out", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--cosim" in err and "iverilog" in err


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs iverilog (Debian package iverilog)")
@pytest.mark.parametrize("df", ["os", "ws"])
def test_plain_verilog_bench_reads_the_hex_files(tmp_path, df):
    # hwsim/rtl/tb_readmemh.v (docs/rtl.md) runs the reference array on one layer's files, back to back folds
    a, w = _files(tmp_path, df)
    out = tmp_path / "v"
    assert main(["vectors", a, w, "--layer", "c1", "--out", str(out)]) == 0
    lay = json.loads((out / "manifest.json").read_text())["layers"][0]
    p = dict(lay["rtl_parameters"], CYCLES=lay["cycles"]["total"])
    vvp = tmp_path / "tb.vvp"
    subprocess.run(["iverilog", "-g2005", "-o", str(vvp)] + [f"-Ptb_readmemh.{k}={v}" for k, v in p.items()]
                   + [str(RTL_SOURCE), str(RTL_SOURCE.with_name("tb_readmemh.v"))], check=True, timeout=120)
    r = subprocess.run(["vvp", "-n", str(vvp), f"+prefix={out}/c1."], capture_output=True, text=True,
                       timeout=120)
    # os: 8 folds x 2x3 PEs = 48 outputs; ws: M=16 rows x 3 columns per fold, 9 K folds x 1 column fold
    outputs = 48 if df == "os" else 16 * 3 * 9
    assert f"cycles={lay['cycles']['total']} outputs={outputs} mismatches=0" in r.stdout, r.stdout + r.stderr


def _qmodel(tmp_path):
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(4)
    f32 = np.float32
    # weights within +-20: no u8 x s8 pair sum reaches int16 (2 x 255 x 20 < 32767), so onnxruntime computes
    # the same integers on AVX2 hosts (vpmaddubsw) and on VNNI hosts (docs/verification.md): host-independent
    w = rng.integers(-20, 21, (4, 2, 3, 3)).astype(np.int8)
    inits = {"xs": f32(0.02), "xz": np.array(3, np.uint8), "w": w,
             "ws": f32(0.01), "wz": np.array(0, np.int8), "ys": f32(0.7), "yz": np.array(9, np.uint8),
             "B": rng.integers(-3000, 3000, 4).astype(np.int32),
             "b": rng.integers(0, 256, (6, 5)).astype(np.uint8), "az": np.array(7, np.uint8),
             "bz": np.array(131, np.uint8)}
    nodes = [helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "B"], ["y"],
                              name="conv", pads=[1, 0, 1, 2], strides=[1, 2]),
             helper.make_node("MatMulInteger", ["a", "b", "az", "bz"], ["m"], name="mm")]
    u8, i32 = (helper.np_dtype_to_tensor_dtype(np.dtype(t)) for t in (np.uint8, np.int32))
    ins = [helper.make_tensor_value_info("x", u8, [1, 2, 5, 6]),
           helper.make_tensor_value_info("a", u8, [3, 6])]
    outs = [helper.make_tensor_value_info("y", u8, None), helper.make_tensor_value_info("m", i32, None)]
    g = helper.make_graph(nodes, "g", ins, outs, [numpy_helper.from_array(np.asarray(v), k)
                                                  for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    path = tmp_path / "m.onnx"
    path.write_bytes(m.SerializeToString())
    x = rng.integers(0, 256, (1, 2, 5, 6)).astype(np.uint8)
    a = rng.integers(0, 256, (3, 6)).astype(np.uint8)
    np.savez(tmp_path / "in.npz", x=x, a=a)
    return path, x, a, inits


def test_cli_model_nodes_real_operands(tmp_path, capsys):
    import onnxruntime as ort

    path, x, a, inits = _qmodel(tmp_path)
    arch = tmp_path / "arch.yaml"
    arch.write_text(ARCH.replace("DF", "ws").replace("acc_bits: 16", "acc_bits: 32"))  # onnxruntime's int32
    out = tmp_path / "v"
    assert main(["vectors", str(arch), "--model", str(path), "--inputs", str(tmp_path / "in.npz"),
                 "--out", str(out)]) == 0
    man = json.loads((out / "manifest.json").read_text())
    assert [m["layer"] for m in man["layers"]] == ["conv", "mm"]
    conv, mm = man["layers"]
    assert conv["operands"]["ifmap"]["zero_point"] == 3 and mm["operands"]["filter"]["zero_point"] == 131
    assert mm["operands"]["filter"]["signed"] is False and mm["operands"]["filter"]["edge_bits"] == 9
    # the vectors' operands are the node's inputs, and its accumulators and output codes are onnxruntime's
    y_ort, m_ort = ort.InferenceSession(str(path)).run(["y", "m"], {"x": x, "a": a})
    nz = np.load(out / mm["npz"])
    np.testing.assert_array_equal(nz["a_q"][0], a)
    np.testing.assert_array_equal(nz["acc"][0], m_ort)
    nz = np.load(out / conv["npz"])
    np.testing.assert_array_equal(nz["x_q"], x)
    # conv output (1, 4, Ho, Wo): Ho = 5 + 2 - 3 + 1 = 5, Wo = (6 + 2 - 3) // 2 + 1 = 3; GEMM rows (oh, ow)
    assert conv["gemm"] == {"m": 15, "k": 18, "n": 4, "groups": 1}
    np.testing.assert_array_equal(nz["ofmap_codes"][0], y_ort.reshape(4, 15).T)
    # bad node names exit 2 naming --layer
    assert main(["vectors", str(arch), "--model", str(path), "--layer", "nope", "--out", str(out)]) == 2
    assert "--layer" in capsys.readouterr().err


def test_verify_dump_vectors(tmp_path, capsys):
    path, x, a, _ = _qmodel(tmp_path)
    arch = tmp_path / "arch.yaml"
    arch.write_text(ARCH.replace("DF", "is").replace("acc_bits: 16", "acc_bits: 32"))
    out = tmp_path / "ver"
    rc = main(["verify", str(path), "--inputs", str(tmp_path / "in.npz"), "--arch", str(arch), "--out",
               str(out), "--dump-vectors", "conv"])
    assert rc in (0, 1)  # the comparison's verdict is verify's business; the vectors are written either way
    man = json.loads((out / "vectors" / "manifest.json").read_text())
    assert [m["layer"] for m in man["layers"]] == ["conv"] and man["layers"][0]["dataflow"] == "is"
    np.testing.assert_array_equal(np.load(out / "vectors" / man["layers"][0]["npz"])["x_q"], x)
    capsys.readouterr()
    assert main(["verify", str(path), "--out", str(out), "--dump-vectors", "conv"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--dump-vectors" in err and "--arch" in err


def test_cli_quant_sets_operand_bits(tmp_path):
    a, w = _files(tmp_path, "ws")
    q = tmp_path / "q.yaml"
    q.write_text("weight_bits: 4\nact_bits: 4\nlayers:\n  fc1: {act_bits: 8}\n")
    out = tmp_path / "v"
    assert main(["vectors", a, w, "--quant", str(q), "--out", str(out)]) == 0
    fc1, c1 = json.loads((out / "manifest.json").read_text())["layers"]
    # fc1: u8 activations (9-bit zero-shifted lanes), s4 weights; c1: u4 (5-bit lanes) x s4
    assert (fc1["operands"]["ifmap"]["bits"], fc1["operands"]["filter"]["bits"]) == (8, 4)
    assert (c1["rtl_parameters"]["L_BITS"], c1["rtl_parameters"]["T_BITS"]) == (5, 4)
    codes = np.load(out / c1["npz"])["x_q"]
    assert codes.min() >= 0 and codes.max() <= 15
