"""Sweeps: Pareto fronts by hand, spec errors before any work, points written as they go, resume."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hwsim.errors import SpecError
from hwsim.explore import load_sweep, pareto_mask, run_sweep

from .utils import ROOT


def test_pareto_mask_by_hand():
    # objectives: accuracy (max), cycles (min)
    v = np.array([[0.9, 100], [0.8, 50], [0.85, 120], [0.9, 100], [0.7, 50], [np.nan, 1]])
    # [0.85,120] is dominated by [0.9,100]; [0.7,50] by [0.8,50]; duplicates of a front point stay; NaN never
    assert pareto_mask(v, [True, False]).tolist() == [True, True, False, True, False, False]
    with pytest.raises(ValueError, match=r"^values must have shape \(n, 3\), not \(6, 2\)$"):
        pareto_mask(v, [True, False, True])


def _sweep(tmp_path, body: str):
    p = tmp_path / "s.yaml"
    p.write_text(f"arch: {ROOT}/arch/edge_32x32.yaml\nworkload: {ROOT}/workloads/resnet18.yaml\n" + body)
    return p


def test_spec_errors_name_the_key(tmp_path):
    p = _sweep(tmp_path, "name: s\naxes: {array.rowz: [4, 8]}\n")
    with pytest.raises(SpecError, match=r"s\.yaml: axes\.array\.rowz: expected an existing arch key"):
        load_sweep(p)
    p = _sweep(tmp_path, "name: s\naxes: {array.rows: []}\n")
    with pytest.raises(SpecError, match=r"axes: expected a non-empty list of values for every axis; "
                                        r"found axis 'array.rows' empty$|axes: expected a non-empty list"):
        load_sweep(p)
    p = _sweep(tmp_path, "name: s\naxes: {array.rows: [0]}\n")
    with pytest.raises(SpecError, match=r"axes\.array\.rows: expected a value greater than 0, found 0$"):
        load_sweep(p)
    p = _sweep(tmp_path, "name: s\nprecision: {per_layer: [{conv9: [4, 4]}]}\n")
    with pytest.raises(SpecError, match=r"precision\.per_layer\[0\]\.conv9: expected a layer of resnet18"):
        load_sweep(p)
    p = _sweep(tmp_path, "name: s\nprecison: {}\n")
    with pytest.raises(SpecError, match=r"precison: expected one of the known keys .*found unknown key"):
        load_sweep(p)


def test_points_resume_and_infeasible(tmp_path):
    # 2 hw points x (W8A8, W4A4) = 4 points; with pe.min_bits 8, W4A4 is infeasible and recorded with its reason
    p = _sweep(tmp_path, "name: s\naxes: {pe.min_bits: [2, 8]}\nprecision: {uniform: [[8, 8], [4, 4]]}\n"
                         "objectives: {total_cycles: min, energy_pj: min}\n")
    out = tmp_path / "out"
    run_sweep(p, out=out, progress=False)
    df = pd.read_csv(out / "points.csv")
    assert df["index"].tolist() == [0, 1, 2, 3]
    assert df["status"].tolist() == ["ok", "ok", "ok", "infeasible"]
    assert "act_bits: expected 8..8 bits" in df.loc[3, "error"]
    # W4A4 moves half the bytes of W8A8 through DRAM or less, and costs no more cycles here
    assert df.loc[1, "dram_bytes"] < df.loc[0, "dram_bytes"]
    assert (out / "pareto.csv").is_file() and (out / "report.html").is_file()
    assert (out / "points.parquet").is_file() and (out / "chosen" / "layers.csv").is_file()
    # a second run into the same folder refuses to overwrite; --resume computes nothing new
    with pytest.raises(SpecError, match=r"--out: expected an output folder without a sweep in it, or --resume"):
        run_sweep(p, out=out, progress=False)
    # simulate a crash: keep the first two rows only, resume, and get the same four points back
    full = pd.read_csv(out / "points.csv")
    full.head(2).drop(columns=["pareto"]).assign(pareto="").to_csv(out / "points.csv", index=False)
    run_sweep(p, out=out, resume=True, progress=False)
    again = pd.read_csv(out / "points.csv")
    pd.testing.assert_frame_equal(again, full)
