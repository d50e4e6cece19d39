"""A sweep refuses, when it is loaded, every policy bit-width that cannot run: outside the quality model's
declared range (:attr:`hwsim.explore.QualityModel.min_bits`..``max_bits``) or outside
``pe.min_bits..pe.operand_bits`` of every PE of the sweep's arches. Before the fix such a policy ran the
whole sweep and marked its points failed ("error"), one per hardware point (a fresh-user trial: 1,296 of
1,944 points for ``random: {bits: [2, 4, 9]}``)."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from hwsim.errors import SpecError
from hwsim.explore import QUALITY_MODELS, load_sweep, run_sweep

from .utils import ROOT

DIGITS = (f"name: s\narch: {ROOT}/arch/edge_32x32.yaml\nworkload: {ROOT}/workloads/digits_cnn.yaml\n"
          "quality: digits_cnn\naxes: {array.rows: [8, 16]}\n")
NO_QUALITY = (f"name: s\narch: {ROOT}/arch/edge_32x32.yaml\nworkload: {ROOT}/workloads/digits_cnn.yaml\n"
              "objectives: {total_cycles: min}\n")


def _load_error(tmp_path, text: str) -> str:
    p = tmp_path / "s.yaml"
    p.write_text(text)
    with pytest.raises(SpecError) as e:
        load_sweep(p)
    return str(e.value).replace(str(p), "s.yaml")


def test_declared_ranges_are_the_models_own_checks():
    # every registered model declares 2..8, and the checks its evaluate runs refuse 1 and 9 and take 2 and 8
    from hwsim.models import digits
    from hwsim.models._base import check_layer_bits

    assert {(q.min_bits, q.max_bits) for q in QUALITY_MODELS.values()} == {(2, 8)}
    assert (digits.MIN_BITS, digits.MAX_BITS) == (2, 8)
    for b in (2, 8):
        assert digits.check_bits((b, b))["conv1"] == (b, b)
        assert check_layer_bits((b, b), ("x",)) == {"x": (b, b)}
    for b in (1, 9):
        with pytest.raises(ValueError, match=f"must be between 2 and 8, not {b}"):
            digits.check_bits((b, 8))
        with pytest.raises(ValueError, match=f"must be between 2 and 8, not {b}"):
            check_layer_bits((8, b), ("x",))


@pytest.mark.parametrize("policy,message", [
    ("precision: {random: {count: 6, bits: [2, 4, 9], seed: 3}}\n",
     "s.yaml: precision.random.bits[2]: expected bits the quality model digits_cnn runs (2..8), found 9"),
    ("precision: {uniform: [[8, 8], [1, 1]]}\n",
     "s.yaml: precision.uniform[1]: expected bits the quality model digits_cnn runs (2..8), found 1"),
    ("precision: {per_layer: [{conv2: [4, 12]}]}\n",
     "s.yaml: precision.per_layer[0].conv2: expected bits the quality model digits_cnn runs (2..8), "
     "found 12"),
    # a baseline is named as a baseline (it was "precision.uniform[1]", an index past the uniform list)
    ("precision: {uniform: [[4, 4]]}\nbaselines: [[8, 8], [8, 9]]\n",
     "s.yaml: baselines[1]: expected bits the quality model digits_cnn runs (2..8), found 9"),
    ("precision: {ilp: {options: [[8, 8], [2, 2]], reference: [16, 16], budgets: {energy_pj: [0.5]}}}\n",
     "s.yaml: precision.ilp.reference: expected bits the quality model digits_cnn runs (2..8), found 16"),
])
def test_bits_the_quality_model_cannot_run_are_refused(tmp_path, policy, message):
    assert _load_error(tmp_path, DIGITS + policy) == message


def test_bits_no_pe_of_the_sweep_takes_are_refused(tmp_path):
    # edge_32x32: pe.min_bits 2, operand_bits 8, on every point (the axes do not touch pe)
    assert _load_error(tmp_path, NO_QUALITY + "axes: {array.rows: [8, 16]}\n"
                                              "precision: {uniform: [[1, 1]]}\n") \
        == ("s.yaml: precision.uniform[0]: expected bits a PE of the sweep's arch takes (pe.min_bits.."
            "pe.operand_bits: 2..8), found 1")
    # wider than any PE of the sweep: pe.operand_bits 4 or 8 (min_bits 2)
    assert _load_error(tmp_path, NO_QUALITY + "axes: {pe.operand_bits: [4, 8]}\n"
                                              "precision: {random: {count: 2, bits: [4, 16]}}\n") \
        == ("s.yaml: precision.random.bits[1]: expected bits a PE of the sweep's arch takes (pe.min_bits.."
            "pe.operand_bits: 2..4 or 2..8), found 16")


def test_default_baselines_are_not_refused_on_the_pe(tmp_path):
    # tpu_v1's PEs take 8 bits only; the default baselines (8, 8) and (4, 4) are not the user's: kept, and
    # the W4A4 points are infeasible as before
    p = tmp_path / "s.yaml"
    p.write_text(f"name: s\narch: {ROOT}/arch/tpu_v1.yaml\nworkload: {ROOT}/workloads/digits_cnn.yaml\n")
    assert [pt.policy for pt in load_sweep(p).points] == ["W8A8", "W4A4"]
    # given by the user, it is refused
    p.write_text(p.read_text() + "baselines: [[8, 8], [4, 4]]\n")
    with pytest.raises(SpecError, match=r"^.*s\.yaml: baselines\[1\]: expected bits a PE of the sweep's arch "
                                        r"takes \(pe\.min_bits\.\.pe\.operand_bits: 8\.\.8\), found 4$"):
        load_sweep(p)


def test_bits_some_pe_takes_make_infeasible_points_with_the_reason(tmp_path):
    # pe.min_bits 1 or 2: W1A1 runs on the first and is infeasible (not "error") on the second, which says why
    p = tmp_path / "s.yaml"
    p.write_text(NO_QUALITY + "axes: {pe.min_bits: [1, 2]}\nprecision: {uniform: [[8, 8], [1, 1]]}\n"
                              "baselines: []\n")
    run_sweep(p, out=tmp_path / "o", progress=False, workers=1)
    df = pd.read_csv(tmp_path / "o/points.csv")
    assert list(zip(df["pe.min_bits"], df.policy, df.status, strict=True)) == [
        (1, "W8A8", "ok"), (1, "W1A1", "ok"), (2, "W8A8", "ok"), (2, "W1A1", "infeasible")]
    assert df.loc[3, "error"] == (f"{p}: pe: expected operands of 2..8 bits (min_bits..operand_bits, "
                                  "precision_mode fixed), found act_bits 1 in layer conv1")


def test_command_line_refuses_before_any_work(tmp_path):
    p = tmp_path / "p_bits9.yaml"
    p.write_text(DIGITS + "precision:\n  uniform: [[8, 8], [4, 4]]\n  random: {count: 6, bits: [2, 4, 9], "
                          "seed: 3}\n")
    r = subprocess.run([sys.executable, "-m", "hwsim", "sweep", str(p), "--out", str(tmp_path / "o"),
                        "--workers", "1"], capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == (f"hwsim: error: {p}: precision.random.bits[2]: expected bits the quality model "
                        "digits_cnn runs (2..8), found 9\n")
    assert not (tmp_path / "o").exists()
