"""Defects a fresh-user trial found: a quantize_static Gemm (QGemm) in ``hwsim vectors``/``verify
--dump-vectors``, ``hwsim verify``'s input checks (NaN/inf, dtypes, ``--expected`` keys), the Python API's
bit-width arguments, and SIGTERM on a sweep with workers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwsim.cli import main

ARCH = """name: tiny
clock_mhz: 100
array: {rows: 2, cols: 3, dataflow: ws}
pe: {operand_bits: 8, acc_bits: 32, acc_mode: wrap}
memory:
  ifmap_sram: {size_kib: 16}
  filter_sram: {size_kib: 16}
  ofmap_sram: {size_kib: 16}
"""


def _float_model(path):
    """Conv(1->2, 3x3) + Flatten + Gemm(32->3): what torch exports for a conv and an nn.Linear."""
    rng = np.random.default_rng(1)
    f32 = np.float32
    inits = [numpy_helper.from_array(rng.standard_normal((2, 1, 3, 3)).astype(f32), "cw"),
             numpy_helper.from_array(rng.standard_normal(2).astype(f32), "cb"),
             numpy_helper.from_array(rng.standard_normal((3, 32)).astype(f32) * 0.3, "fw"),
             numpy_helper.from_array(rng.standard_normal(3).astype(f32), "fb")]
    nodes = [helper.make_node("Conv", ["x", "cw", "cb"], ["c"], name="/conv/Conv", pads=[0, 0, 0, 0]),
             helper.make_node("Flatten", ["c"], ["f"], name="/Flatten", axis=1),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="/fc/Gemm", alpha=1.0, beta=1.0,
                              transB=1)]
    g = helper.make_graph(nodes, "cfg", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 6, 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)


@pytest.fixture(scope="module")
def qgemm_models(tmp_path_factory):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    d = tmp_path_factory.mktemp("qgemm")
    _float_model(d / "f.onnx")
    rng = np.random.default_rng(2)
    cal = [rng.standard_normal((1, 1, 6, 6)).astype(np.float32) for _ in range(4)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"x": c} for c in cal])

        def get_next(self):
            return next(self.it, None)

    out = {}
    for fmt in ("QOperator", "QDQ"):
        q = d / f"q_{fmt}.onnx"
        quantize_static(str(d / "f.onnx"), str(q), Reader(), quant_format=getattr(QuantFormat, fmt),
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        out[fmt] = q
    np.savez(d / "x.npz", x=cal[0])
    (d / "arch.yaml").write_text(ARCH)
    return d, out


def test_qgemm_vectors_and_dump_vectors(qgemm_models, capsys):
    d, models = qgemm_models
    q = models["QOperator"]
    ops = {n.name: n for n in onnx.load(q).graph.node}
    qg = [n for n in ops.values() if n.op_type == "QGemm"]
    assert len(qg) == 1 and any(a.name == "alpha" and a.type == a.FLOAT for a in qg[0].attribute)
    name = qg[0].name
    out = d / "v"
    assert main(["vectors", str(d / "arch.yaml"), "--model", str(q), "--inputs", str(d / "x.npz"),
                 "--out", str(out)]) == 0, capsys.readouterr().err
    man = json.loads((out / "manifest.json").read_text())
    by = {m["layer"]: m for m in man["layers"]}
    # Gemm f(1x32) x fw^T(32x3): transB=1 applied, so the array runs M=1, K=32, N=3; alpha 1.0 read as float
    assert by[name]["gemm"] == {"m": 1, "k": 32, "n": 3, "groups": 1}
    assert by[name]["requant"]["alpha"] == 1.0
    capsys.readouterr()
    for fmt, qm in models.items():
        ver = d / f"ver_{fmt}"
        node = name if fmt == "QOperator" else None
        if node is None:  # the QDQ Gemm lowers to a QGemm; its name as verify gives it
            from hwsim.onnxq import load_model, lower_qdq

            g = lower_qdq(load_model(qm))
            node = next(nm for nm, n in zip(g.names, g.nodes, strict=False) if n.op_type == "QGemm")
        rc = main(["verify", str(qm), "--arch", str(d / "arch.yaml"), "--inputs", str(d / "x.npz"),
                   "--out", str(ver), "--dump-vectors", node])
        assert rc in (0, 1), capsys.readouterr().err
        assert (ver / "verify.json").is_file() and (ver / "vectors" / "manifest.json").is_file()


def test_verify_failure_in_dump_vectors_writes_no_verify_json(qgemm_models, capsys):
    d, models = qgemm_models
    ver = d / "ver_bad"
    # a node that is not a GEMM-like node: bad input, exit 2, and no half-written output
    rc = main(["verify", str(models["QOperator"]), "--arch", str(d / "arch.yaml"), "--inputs",
               str(d / "x.npz"), "--out", str(ver), "--dump-vectors", "nope"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err == (
        f"hwsim: error: command line: --dump-vectors: expected a QLinearConv/ConvInteger/QLinearMatMul/"
        f"MatMulInteger/QGemm node of {models['QOperator']} (/conv/Conv_quant, /fc/Gemm_quant), found 'nope'")
    assert not (ver / "verify.json").exists()


def test_verify_input_checks(qgemm_models, capsys):
    """NaN/inf, another dtype (onnxruntime refuses it: INVALID_ARGUMENT, "Unexpected input data type") and an
    ``--expected`` file without the output: exit 2, one line each; the API raises the same SpecError."""
    import hwsim
    from hwsim.errors import SpecError

    d, models = qgemm_models
    q = models["QOperator"]
    x = np.load(d / "x.npz")["x"]
    nan = x.copy()
    nan[0, 0, 0, :3] = np.nan
    inf = x.copy()
    inf[0, 0, 1, 0], inf[0, 0, 1, 1] = np.inf, -np.inf
    cases = {"nan.npz": ({"x": nan}, "x: expected finite values, found 3 NaN"),
             "inf.npz": ({"x": inf}, "x: expected finite values, found 2 inf"),
             "i32.npz": ({"x": x.astype(np.int32)},
                         "x: expected float32 (the model's input 'x'), found int32"),
             "f64.npz": ({"x": x.astype(np.float64)},
                         "x: expected float32 (the model's input 'x'), found float64")}
    for name, (arrays, msg) in cases.items():
        np.savez(d / name, **arrays)
        out = d / f"o_{name}"
        assert main(["verify", str(q), "--inputs", str(d / name), "--out", str(out)]) == 2
        assert capsys.readouterr().err.strip() == f"hwsim: error: {d / name}: {msg}"
        assert not out.exists()
        with pytest.raises(SpecError) as e:
            hwsim.verify(q, inputs=d / name)
        assert str(e.value) == f"{d / name}: {msg}"
    # --expected with the wrong key: the keys found are named
    np.savez(d / "exp.npz", out=np.zeros((1, 3), np.float32), z=np.zeros(1))
    assert main(["verify", str(q), "--inputs", str(d / "x.npz"), "--expected", str(d / "exp.npz"),
                 "--out", str(d / "o_exp")]) == 2
    assert capsys.readouterr().err.strip() == (f"hwsim: error: {d / 'exp.npz'}: y: expected an array for "
                                               "every model output (y), found keys 'out', 'z'")
    # an inputs file without the input names what it has
    np.savez(d / "k.npz")
    with pytest.raises(SpecError) as e:
        hwsim.verify(q, inputs=d / "k.npz")
    assert str(e.value) == f"{d / 'k.npz'}: x: expected an array for every model input, found no arrays"


def test_api_bit_widths_must_be_ints():
    """hwsim.simulate refuses a float, bool or string bit-width (int() would truncate 4.5 to 4 and take True
    as 1) naming the argument, and its errors name the function, not "command line"."""
    import hwsim
    from hwsim.errors import SpecError

    root = Path(__file__).resolve().parent.parent
    arch, wl = root / "arch/edge_32x32.yaml", root / "workloads/digits_cnn.yaml"
    layer = hwsim.load_workload(wl).layers[0].name
    cases = [({"weight_bits": 4.5}, "weight_bits: expected an integer number of bits, found 4.5"),
             ({"weight_bits": True}, "weight_bits: expected an integer number of bits, found True"),
             ({"act_bits": "8"}, "act_bits: expected an integer number of bits, found '8'"),
             ({"bits": {layer: (4.7, "8")}},
              f"bits[{layer!r}]: expected integer numbers of bits (weight_bits, act_bits[, out_bits]), "
              "found (4.7, '8')"),
             ({"bits": {layer: 8}},
              f"bits[{layer!r}]: expected (weight_bits, act_bits) or (weight_bits, act_bits, out_bits), "
              "found 8"),
             ({"bits": {layer: (8, 8)}, "quant": root / "workloads/quant/resnet18_mixed.yaml"},
              "quant: expected either quant or bits, not both, found 'both'")]
    for kw, msg in cases:
        with pytest.raises(SpecError) as e:
            hwsim.simulate(arch, wl, **kw)
        assert str(e.value) == f"hwsim.simulate(): {msg}"
    # ints (numpy's too) still run, with the same result as Python ints
    import numpy as np

    a = hwsim.simulate(arch, wl, weight_bits=np.int64(4), act_bits=8, bits={layer: (np.int32(8), 4)})
    b = hwsim.simulate(arch, wl, weight_bits=4, act_bits=8, bits={layer: (8, 4)})
    assert {k: v for k, v in a.totals.items() if k != "model_cpu_s"} == \
        {k: v for k, v in b.totals.items() if k != "model_cpu_s"}
    assert a.layers["weight_bits"].tolist()[:2] == [8, 4] and a.layers["act_bits"].tolist()[:2] == [4, 8]
    with pytest.raises(SpecError) as e:
        hwsim.verify(root / "tests/data/nope.onnx", profile="nope")
    assert str(e.value).startswith("hwsim.verify(): profile: expected one of ort_cpu")


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (psutil if installed, else a /proc scan by PPID)."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    import os

    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            parent[int(d)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        todo += kids
    return out


def _alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped by a PID 1 that does not reap, is not)."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
        except psutil.NoSuchProcess:
            return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _sweep_with_workers_running(tmp_path, name: str):
    """Start ``hwsim sweep --workers 2`` on 4 x 2 x 3 x 3 hardware points x 3 policies = 216 points on
    ResNet-18 (this process evaluates the first points while the workers start, then they take the rest:
    several seconds) and return once points are written and the workers are up: (process, command, env,
    points.csv, its descendants)."""
    import os
    import subprocess
    import sys
    import time
    root = Path(__file__).resolve().parent.parent
    spec = tmp_path / "s.yaml"
    spec.write_text(f"name: {name}\narch: {root}/arch/edge_32x32.yaml\n"
                    f"workload: {root}/workloads/resnet18.yaml\n"
                    "axes:\n  array.rows: [8, 16, 32, 64]\n  array.cols: [16, 64]\n"
                    "  array.dataflow: [ws, os, is]\n"
                    "  memory.ifmap_sram.size_kib: [32, 128, 512]\n"
                    "precision:\n  uniform: [[8, 8], [6, 6], [4, 4]]\n"
                    "objectives: {total_cycles: min, energy_pj: min}\n")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(root)}
    cmd = [sys.executable, "-m", "hwsim", "sweep", str(spec), "--workers", "2", "--out", str(out)]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pts = out / "points.csv"
    t0 = time.monotonic()
    while not (pts.is_file() and len(pts.read_text().splitlines()) > 1 and len(_descendants(p.pid)) >= 4):
        assert p.poll() is None, p.communicate()
        assert time.monotonic() - t0 < 120
        time.sleep(0.05)
    kids = _descendants(p.pid)
    assert len(kids) >= 4  # the forkserver, the resource tracker and the 2 workers
    return p, cmd, env, pts, kids


def _none_left(kids, after: str, wait_s: float) -> None:
    import os
    import signal
    import time
    t0 = time.monotonic()
    while any(_alive(k) for k in kids) and time.monotonic() - t0 < wait_s:
        time.sleep(0.1)
    left = [k for k in kids if _alive(k)]
    for k in left:  # clean up before failing
        os.kill(k, signal.SIGKILL)
    assert not left, f"processes left running after {after}: {left}"


def test_sigterm_on_a_sweep_with_workers(tmp_path):
    """kill -TERM on ``hwsim sweep --workers 2``: handled as Ctrl-C (pool shut down, the points written kept),
    exit 143 (128 + SIGTERM) with one line; no forkserver, resource tracker or worker outlives it; --resume
    completes the sweep."""
    import signal
    import subprocess

    p, cmd, env, pts, kids = _sweep_with_workers_running(tmp_path, "term")
    p.send_signal(signal.SIGTERM)
    try:
        _, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        raise
    assert p.returncode == 143
    assert err.strip().splitlines()[-1] == (f"hwsim: terminated (SIGTERM); the points written to {pts} are "
                                            "kept: run the same command with --resume to continue")
    assert "Traceback" not in err
    _none_left(kids, "SIGTERM", 10)
    kept = len(pts.read_text().splitlines()) - 1
    assert 0 < kept < 216
    r = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    import pandas as pd

    assert sorted(pd.read_csv(pts)["index"]) == list(range(216))


def test_sigkill_on_a_sweep_leaves_no_process(tmp_path):
    """kill -9 on ``hwsim sweep --workers 2`` (nothing can run in the killed process): its workers notice and
    end, and with them the forkserver and the resource tracker (before, all four waited forever)."""
    import signal

    p, _, _, _, kids = _sweep_with_workers_running(tmp_path, "kill")
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=10)
    _none_left(kids, "SIGKILL", 20)
