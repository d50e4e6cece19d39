"""Bad input for QAT (issue 12, "Bad input"): a sweep's qat block out of range, a policy naming an unknown
layer, bits the QAT datapath cannot run (2..8), a data set path that does not exist: one line naming the key,
exit 2, before any training."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hwsim.errors import SpecError
from hwsim.explore import load_sweep

from .utils import ROOT

BODY = (f"name: s\narch: {ROOT}/arch/edge_32x32.yaml\nworkload: {ROOT}/workloads/digits_cnn.yaml\n"
        "quality: digits_cnn\n")


@pytest.mark.parametrize("text,key,found", [
    ("qat: {batch_size: 0}\n", "qat.batch_size", "found 0"),
    ("qat: {max_train: 0}\n", "qat.max_train", "found 0"),
    ("qat: {lr: -1}\n", "qat.lr", "found -1"),
    ("qat: {distill: 2}\n", "qat.distill", "found 2"),
    ("qat: {temperature: 0}\n", "qat.temperature", "found 0"),
    ("qat: {epochs: 1}\nprecision: {uniform: [[1, 1]]}\n", r"precision\.uniform\[0\]",
     r"expected bits the QAT datapath runs \(2\.\.8\), found 1"),
    ("qat: {epochs: 1}\nprecision: {uniform: [[4, 4]]}\nbaselines: [[8, 9]]\n", r"baselines\[0\]",
     "found 9"),
    ("qat: {epochs: 1}\nprecision: {per_layer: [{conv1: [4, 4], conv2: [4, 12]}]}\n",
     r"precision\.per_layer\[0\]\.conv2", "found 12"),
    ("qat: {epochs: 1}\nprecision: {random: {count: 2, bits: [4, 1]}}\n", r"precision\.random\.bits\[1\]",
     "found 1"),
    ("qat: {epochs: 1}\nprecision: {ilp: {options: [[8, 8], [2, 2]], reference: [16, 16], "
     "budgets: {energy_pj: [0.5]}}}\n", r"precision\.ilp\.reference", "found 16"),
    ("qat: {epochs: 1}\nprecision: {per_layer: [{conv1: [4, 4], conv9: [4, 4]}]}\n",
     r"precision\.per_layer\[0\]\.conv9", "expected a layer of digits_cnn"),
])
def test_sweep_qat_errors_name_the_key(tmp_path, text, key, found):
    p = tmp_path / "s.yaml"
    p.write_text(BODY + text)
    with pytest.raises(SpecError, match=rf"s\.yaml: {key}: .*{found}"):
        load_sweep(p)


def test_bits_outside_the_quality_models_range_are_refused_without_qat(tmp_path):
    # a PTQ sweep's quality model runs 2..8 bits too (QualityModel.min_bits/max_bits): 1 bit is refused when
    # the sweep is loaded (it was accepted, and every point of the policy failed when the model ran it);
    # tests/test_explore_load_bits.py has the rest
    p = tmp_path / "s.yaml"
    p.write_text(BODY + "precision: {uniform: [[1, 1]]}\nobjectives: {total_cycles: min}\n")
    with pytest.raises(SpecError, match=r"s\.yaml: precision\.uniform\[0\]: expected bits the quality model "
                                        r"digits_cnn runs \(2\.\.8\), found 1$"):
        load_sweep(p)


def test_command_line_bits_error_is_one_line_exit_2(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(BODY + "qat: {epochs: 1}\nprecision: {uniform: [[4, 4], [1, 4]]}\n")
    r = subprocess.run([sys.executable, "-m", "hwsim", "sweep", str(p), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "s.yaml: precision.uniform[1]: expected bits the QAT datapath runs (2..8), found 1" in r.stderr
    assert not (tmp_path / "o" / "qat").exists()                       # nothing was trained


def test_quality_table_missing_opencv_digits_exits_2(tmp_path, capsys):
    from hwsim.models import quality_table

    out = tmp_path / "q.md"
    assert quality_table.main(["--qat", "--networks", "opencv_digits_cnn", "--opencv-digits",
                               str(tmp_path / "digits.png"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--opencv-digits: expected an existing file" in err and not out.exists()


def test_quality_table_threads_out_of_range_exits_2(tmp_path, capsys):
    from hwsim.models import quality_table

    out = tmp_path / "q.md"
    assert quality_table.main(["--qat-mobilenet", "--threads", "0", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == "quality_table: error: --threads: expected an integer in 1..64, found 0\n"
    assert not out.exists()
