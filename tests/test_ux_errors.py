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
    assert err == [f"hwsim: error: {bad}: name: expected each key once in a mapping, found 'name' given twice "
                   f"(lines {line} and {line + 1})"]
    nested = tmp_path / "dup2.yaml"
    nested.write_text("weight_bits: 8\nlayers:\n  conv1: {weight_bits: 4, weight_bits: 6}\n")
    rc, err, dt = run(["simulate", ARCH, WL, "--quant", nested, "--out", tmp_path / "o"], capsys)
    assert err == [f"hwsim: error: {nested}: layers.conv1.weight_bits: expected each key once in a mapping, "
                   "found 'weight_bits' given twice (lines 3 and 3)"] and rc == 2
    assert not (tmp_path / "o").exists()
