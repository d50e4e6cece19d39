"""Resuming a sweep whose spec, arch or workload changed is refused with the first value that differs (it said
only "found 'a different spec'"), one line, exit 2, nothing computed."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from hwsim.errors import SpecError
from hwsim.explore import run_sweep

from .utils import ROOT


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    # a 2-point sweep of its own copies of the arch and workload, run once
    d = tmp_path_factory.mktemp("changed")
    shutil.copy(ROOT / "arch/edge_32x32.yaml", d / "arch.yaml")
    shutil.copy(ROOT / "workloads/digits_cnn.yaml", d / "wl.yaml")
    (d / "s.yaml").write_text("name: s\narch: arch.yaml\nworkload: wl.yaml\naxes: {array.rows: [16, 32]}\n"
                              "precision: {uniform: [[8, 8]]}\nbaselines: []\n"
                              "objectives: {total_cycles: min, energy_pj: min}\n")
    run_sweep(d / "s.yaml", out=d / "o", progress=False, workers=1)
    return d


def _resume_error(d, file: str, old: str, new: str) -> str:
    text = (d / file).read_text()
    assert text.count(old) == 1
    (d / file).write_text(text.replace(old, new))
    try:
        with pytest.raises(SpecError) as e:
            run_sweep(d / "s.yaml", out=d / "o", progress=False, workers=1, resume=True)
    finally:
        (d / file).write_text(text)
    return str(e.value).replace(str(d) + "/", "")


def test_the_first_changed_key_is_named(finished):
    d = finished
    tail = "expected the same sweep, arch and workload as the run being resumed, found"
    assert _resume_error(d, "s.yaml", "[16, 32]", "[16, 64]") == (
        f"o/sweep.json: axes.array.rows: {tail} [16, 32] in sweep.json, [16, 64] in s.yaml (use a new --out "
        "for a changed sweep)")
    # edge_32x32.yaml's ifmap buffer: 64 KiB
    assert _resume_error(d, "arch.yaml", "ifmap_sram: {size_kib: 64", "ifmap_sram: {size_kib: 32") == (
        f"o/sweep.json: memory.ifmap_sram.size_kib: {tail} 64.0 in sweep.json, 32.0 in arch.yaml (use a new "
        "--out for a changed sweep)")
    # a layer is named by its index
    assert _resume_error(d, "wl.yaml", "- name: conv2", "- name: conv_b") == (
        f"o/sweep.json: layers[1].name: {tail} 'conv2' in sweep.json, 'conv_b' in wl.yaml (use a new --out "
        "for a changed sweep)")
    # a key the old run did not have
    assert _resume_error(d, "s.yaml", "baselines: []", "baselines: []\ndescription: new") == (
        f"o/sweep.json: description: {tail} '' in sweep.json, 'new' in s.yaml (use a new --out for a "
        "changed sweep)")


def test_command_line_one_line_exit_2(finished):
    d = finished
    text = (d / "s.yaml").read_text()
    (d / "s.yaml").write_text(text.replace("[16, 32]", "[16, 64]"))
    try:
        r = subprocess.run([sys.executable, "-m", "hwsim", "sweep", "s.yaml", "--out", "o", "--resume"],
                           capture_output=True, text=True, timeout=120, cwd=d)
    finally:
        (d / "s.yaml").write_text(text)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == ("hwsim: error: o/sweep.json: axes.array.rows: expected the same sweep, arch and "
                        "workload as the run being resumed, found [16, 32] in sweep.json, [16, 64] in s.yaml "
                        "(use a new --out for a changed sweep)\n")
