"""Co-simulation: the reference Verilog array (hwsim/rtl/systolic_array.v on Icarus Verilog, driven by cocotb
from `hwsim vectors` files) computes hwsim's datapath integers bit for bit, and the cycle count measured at
its output port equals the stepped array's and the timing model's per-fold compute cycles (os: plus the R - 1
cycle drain, module docstring of hwsim/datapath/_systolic.py).

One RTL build per config (3 arrays x dataflows x {wrap, saturate}); each simulation runs every layer of its
config back to back: 3 random GEMM shapes with partial folds, a padded grouped conv, and two layers of extreme
operands (codes 0/255 and -128/127, zero points 0, 255 and -128).
"""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from hwsim.datapath import conv2d_acc, gemm_acc
from hwsim.mapping import map_layer
from hwsim.rtl import (
    RTL_SOURCE,
    LayerOperands,
    missing_tools,
    random_operands,
    run_cosim,
    write_layer_vectors,
)
from hwsim.spec import Conv2d, Gemm

from .utils import make_arch

MISSING = missing_tools()
needs_sim = pytest.mark.skipif(bool(MISSING), reason="RTL co-simulation needs " + " and ".join(MISSING))

CONFIGS = [("os", 4, 4), ("ws", 8, 8), ("is", 4, 12)]
ACC = {"wrap": 20, "saturate": 16}  # narrow on purpose: the extreme layers wrap (20 bits) or saturate (16)


def _extreme(name, m, k, n, a_zp, b_zp, seed):
    rng = np.random.default_rng(seed)
    a = rng.choice(np.array([0, 255]), (m, k))
    b = rng.choice(np.array([-128, 127]), (k, n))
    return (Gemm(name=name, op="gemm", m=m, k=k, n=n),
            LayerOperands(name, (a,), (b,), (np.zeros(n, np.int64),), a_zp, b_zp, 8, False, 8, True))


def _layers(R, C, seed):
    rng = np.random.default_rng(seed)
    items = []
    for i in range(3):
        while True:  # a shape with at least one partial fold along both array axes' dims
            m, k, n = (int(v) for v in rng.integers(1, 2 * max(R, C) + 4, 3))
            if m % R and k % R and n % C:
                break
        ly = Gemm(name=f"g{i}", op="gemm", m=m, k=k, n=n)
        items.append((ly, random_operands(ly, weight_bits=8, act_bits=8, asymmetric=(False, True),
                                          seed=seed + i), seed + i))
    conv = Conv2d(name="conv", op="conv2d", in_channels=4, out_channels=6, in_h=5, in_w=4, kernel=3,
                  padding=1, stride=(1, 2), groups=2)
    items.append((conv, random_operands(conv, weight_bits=8, act_bits=8, asymmetric=(True, True),
                                        seed=seed + 7), seed + 7))
    for name, zpa, zpb in (("x0", 0, 0), ("x1", 255, -128)):
        ly, ops = _extreme(name, 5, 2 * R + 3, C + 1, zpa, zpb, seed + 9)
        items.append((ly, ops, None))
    return items


@needs_sim
@pytest.mark.parametrize("mode", ["wrap", "saturate"])
@pytest.mark.parametrize("df,R,C", CONFIGS)
def test_rtl_equals_datapath_and_counts(df, R, C, mode, tmp_path_factory):
    arch = make_arch(**{"array.dataflow": df, "array.rows": R, "array.cols": C, "pe.acc_bits": ACC[mode],
                        "pe.acc_mode": mode})
    items = _layers(R, C, seed=R * 100 + C)
    out = tmp_path_factory.mktemp(f"vec_{df}_{mode}")
    write_layer_vectors(arch, items, out, edge_bits=(9, 9))
    manifest = json.loads((out / "manifest.json").read_text())
    params = {p for p in (json.dumps(m["rtl_parameters"], sort_keys=True) for m in manifest["layers"])}
    assert len(params) == 1  # one build serves the whole config
    build = tmp_path_factory.getbasetemp() / "rtl_build"
    rep = run_cosim(out, manifest["layers"][0]["rtl_parameters"], build)
    saturated = 0
    for (layer, ops, _), ml, rl in zip(items, manifest["layers"], rep["layers"], strict=False):
        # the vectors' expected outputs are the datapath's integers (recomputed here, independently)
        npz = np.load(out / ml["npz"])
        for g in range(len(ops.a_q)):
            ref, ev = gemm_acc(ops.a_q[g], ops.b_q[g], a_zp=ops.a_zp, b_zp=ops.b_zp, acc_bits=ACC[mode],
                               acc_mode=mode, fast=False)
            np.testing.assert_array_equal(npz["acc"][g], ref)
            saturated += ev if mode == "saturate" else 0
        if ops.x_q is not None:
            ref, _ = conv2d_acc(ops.x_q, ops.w_q, x_zp=ops.a_zp, w_zp=ops.b_zp, stride=layer.stride_hw,
                                pads=layer.pads, groups=layer.n_groups, acc_bits=ACC[mode], acc_mode=mode)
            assert ref.size == npz["acc"].size
        lm = map_layer(layer, arch, weight_bits=8, act_bits=8)
        drain = R - 1 if df == "os" else 0
        assert len(rl["folds"]) == len(ml["folds"]) == lm.folds
        per_out = R * C if df == "os" else (lm.m if df == "ws" else lm.n) * C
        for rf, mf in zip(rl["folds"], ml["folds"], strict=True):
            assert rf["mismatches"] == 0, (layer.name, rf)
            assert rf["outputs"] == per_out
            # RTL (measured at its port) == stepped array (measured by its loop) == timing model (+ OS drain)
            assert rf["rtl_cycles"] == mf["cycles"] == lm.cycles_per_fold + drain, (layer.name, rf, mf)
    if mode == "saturate":
        assert saturated > 0  # the narrow accumulator really saturated somewhere


def test_missing_tools_names_packages(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert any("iverilog" in m for m in missing_tools())


@pytest.mark.skipif(shutil.which("verilator") is None, reason="needs verilator (Debian package verilator)")
@pytest.mark.parametrize("df", [0, 1, 2])
def test_verilator_lint_clean(df):
    # -Wall minus the file-name rule (two modules in one file) and unused inputs (psum_in is unused in os,
    # left_last in ws/is: one port list for every dataflow)
    r = subprocess.run(["verilator", "--lint-only", "-Wall", "-Wno-DECLFILENAME", "-Wno-UNUSEDSIGNAL",
                        f"-GDATAFLOW={df}", "-GSATURATE=1", "-GACC_BITS=14", "--top-module",
                        "hwsim_systolic_array", str(RTL_SOURCE)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
