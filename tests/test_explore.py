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
    with pytest.raises(SpecError, match=r"axes\.array\.rows\[0\]: expected a value greater than 0, found 0$"):
        load_sweep(p)
    p = _sweep(tmp_path, "name: s\nprecision: {per_layer: [{conv9: [4, 4]}]}\n")
    with pytest.raises(SpecError, match=r"precision\.per_layer\[0\]\.conv9: expected a layer of resnet18"):
        load_sweep(p)
    p = _sweep(tmp_path, "name: s\nprecison: {}\n")
    with pytest.raises(SpecError, match=r"precison: expected one of the known keys .*found unknown key"):
        load_sweep(p)


def test_points_resume_and_infeasible(tmp_path):
    # 2 hw points x (W8A8, W4A4) = 4 points; with pe.min_bits 8, W4A4 is infeasible and recorded with its
    # reason
    p = _sweep(tmp_path, "name: s\naxes: {pe.min_bits: [2, 8]}\nprecision: {uniform: [[8, 8], [4, 4]]}\n"
                         "objectives: {total_cycles: min, energy_pj: min}\n")
    out = tmp_path / "out"
    run_sweep(p, out=out, progress=False)
    df = pd.read_csv(out / "points.csv")
    assert df["index"].tolist() == [0, 1, 2, 3]
    assert df["status"].tolist() == ["ok", "ok", "ok", "infeasible"]
    assert "pe: expected operands of 8..8 bits" in df.loc[3, "error"] and "act_bits 4" in df.loc[3, "error"]
    # W4A4 moves half the bytes of W8A8 through DRAM or less, and costs no more cycles here
    assert df.loc[1, "dram_bytes"] < df.loc[0, "dram_bytes"]
    assert (out / "pareto.csv").is_file() and (out / "report.html").is_file()
    assert (out / "points.parquet").is_file() and (out / "chosen" / "layers.csv").is_file()
    # a second run into the same folder refuses to overwrite; --resume computes nothing new
    with pytest.raises(SpecError,
                       match=r"--out: expected an output folder without a sweep in it, or --resume"):
        run_sweep(p, out=out, progress=False)
    # simulate a crash: keep the first two rows only, resume, and get the same four points back
    full = pd.read_csv(out / "points.csv")
    full.head(2).drop(columns=["pareto"]).assign(pareto="").to_csv(out / "points.csv", index=False)
    run_sweep(p, out=out, resume=True, progress=False)
    again = pd.read_csv(out / "points.csv")
    pd.testing.assert_frame_equal(again, full)


def test_budget_no_point_can_meet_is_rejected_before_work(tmp_path):
    # W8A8 ResNet-18 weights: 11,678,912 parameters = 11,678,912 bytes at 8 bits; 4 bits halves it. A budget
    # of 1 MB cannot be met by either policy: rejected, naming the key and the smallest possible value
    p = _sweep(tmp_path,
               "name: s\nprecision: {uniform: [[8, 8], [4, 4]]}\nbudgets: {weight_bytes: 1000000}\n")
    with pytest.raises(SpecError,
                       match=r"s\.yaml: budgets\.weight_bytes: expected a budget some design point "
                                        r"can meet \(the smallest possible weight_bytes is 5,839,456\), "
                                        r"found 1,000,000"):
        load_sweep(p)
    # cycles: 1.81 GMAC on a 32x32 array is at least 1,771,556 cycles
    p = _sweep(tmp_path, "name: s\nprecision: {uniform: [[8, 8]]}\nbudgets: {total_cycles: 1000}\n")
    with pytest.raises(SpecError,
                       match=r"budgets\.total_cycles: expected a budget some design point can meet"):
        load_sweep(p)


def test_over_budget_points_are_kept_but_off_the_front(tmp_path):
    p = _sweep(tmp_path, "name: s\nprecision: {uniform: [[8, 8], [4, 4]]}\nbudgets: {weight_bytes: 6000000}\n"
                         "objectives: {total_cycles: min, energy_pj: min}\n")
    run_sweep(p, out=tmp_path / "o", progress=False, workers=1)
    df = pd.read_csv(tmp_path / "o/points.csv").set_index("policy")
    assert df.loc["W8A8", "weight_bytes"] == 11_678_912 and not df.loc["W8A8", "within_budget"]
    assert df.loc["W4A4", "within_budget"] and df.loc["W4A4", "pareto"] and not df.loc["W8A8", "pareto"]
    # the front's configurations are written for re-running with simulate
    assert (tmp_path / "o/configs/point_1/arch.yaml").is_file()
    assert "weight_bits: 4" in (tmp_path / "o/configs/point_1/quant.yaml").read_text()


def test_ilp_policies_per_hardware_point(tmp_path, monkeypatch):
    # digits CNN on a fixed-precision and a bit-fusion array: cutting cycles by 30% is impossible on fixed PEs
    # (cycles do not fall with bits) and possible with bit fusion, so the ILP gives a point only for the
    # latter
    p = tmp_path / "s.yaml"
    p.write_text(f"name: s\narch: {ROOT}/arch/edge_32x32.yaml\nworkload: {ROOT}/workloads/digits_cnn.yaml\n"
                 "quality: digits_cnn\naxes: {pe.precision_mode: [fixed, bit_fusion]}\n"
                 "precision:\n  uniform: [[8, 8]]\n  ilp: {options: [[8, 8], [4, 8], [4, 4], [2, 2]], "
                 "budgets: {total_cycles: [0.7]}}\nbaselines: [[8, 8]]\n")
    out = tmp_path / "o"
    import json

    from hwsim.explore import QualityModel

    calls: list = []
    real = QualityModel.evaluate
    monkeypatch.setattr(QualityModel, "evaluate", lambda self, bits, **kw: calls.append(bits) or real(
        self, bits, **kw))
    run_sweep(p, out=out, progress=False, workers=1)
    # every bit-accurate run is stored once (quality.jsonl) and run once: the sensitivity runs (the reference
    # W8A8 and one layer at each of the 3 other options: 1 + 3 x 3) and the ILP's policy; the W8A8 policy's
    # points take the stored reference run
    keys = [json.dumps(r["key"], sort_keys=True) for r in map(json.loads, (out / "quality.jsonl").open())]
    assert len(calls) == len(keys) == len(set(keys)) and 10 <= len(keys) <= 11
    ilp = pd.read_csv(out / "ilp.csv")
    assert ilp["status"].tolist() == ["Infeasible", "Optimal"]
    df = pd.read_csv(out / "points.csv")
    row = df[df.policy.str.startswith("ilp:")].iloc[0]
    w8 = df[(df.policy == "W8A8") & (df["pe.precision_mode"] == "bit_fusion")].iloc[0]
    # the chosen policy meets its budget when simulated exactly (no margin: the ILP prices each layer at the
    # width its outputs are written at, the next layer's act_bits) and was run bit-accurately for its accuracy
    assert row["pe.precision_mode"] == "bit_fusion" and row["total_cycles"] <= 0.7 * w8["total_cycles"]
    solved = ilp[ilp.status == "Optimal"].iloc[0]
    assert (solved["predicted_cost"] == solved["simulated_cost"] == row["total_cycles"]
            <= solved["budget_value"])
    assert 0.9 < row["accuracy"] <= 1.0
    sens = pd.read_csv(out / "sensitivity.csv")
    assert len(sens) == 3 * 4 and (sens.loc[(sens.weight_bits == 8) & (sens.act_bits == 8),
                                            "sensitivity"] == 0).all()
    # resuming the finished sweep keeps the ILP point's row (it was dropped as "incomplete" and run again) and
    # rewrites the same files
    before = (out / "points.csv").read_text()
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        run_sweep(p, out=out, progress=False, workers=1, resume=True)
    assert "incomplete" not in buf.getvalue()
    assert (out / "points.csv").read_text() == before
    assert len(calls) == len(keys)  # nothing run again


def test_guided_chunks_by_hand():
    from hwsim.explore._runner import guided_chunks

    # 1,296 points on 2 workers, at most 64 a chunk: ceil(left / 4) >= 64 while left >= 253, i.e. for the
    # first 17 chunks (1,088 points); then ceil(208/4) = 52, ceil(156/4) = 39, ceil(117/4) = 30,
    # ceil(87/4) = 22, ceil(65/4) = 17, ceil(48/4) = 12, ceil(36/4) = 9, ceil(27/4) = 7, ceil(20/4) = 5;
    # then the floor of 4 (15, 11 and 7 left) and the last 3
    assert guided_chunks(1296, 2, 64) == [64] * 17 + [52, 39, 30, 22, 17, 12, 9, 7, 5, 4, 4, 4, 3]
    assert guided_chunks(0, 2, 64) == [] and guided_chunks(3, 1, 64) == [3]
    assert guided_chunks(10, 4, 2) == [2] * 5  # a largest below the floor wins
    with pytest.raises(ValueError, match=r"^guided_chunks: slots, largest and smallest must be >= 1, found "
                                         r"0, 64, 4$"):
        guided_chunks(5, 0, 64)


def test_two_workers_write_the_points_of_one(tmp_path):
    """With a local pool this process evaluates the first points while the workers start, the workers the
    rest, in guided chunks: the final files hold exactly the points of a run in this process alone."""
    # 4 x 3 hardware points x 2 policies = 24 points, chunks of at most 2
    p = _sweep(tmp_path, "name: s\naxes: {array.rows: [8, 16, 32, 64], array.dataflow: [ws, os, is]}\n"
                         "precision: {uniform: [[8, 8], [4, 4]]}\n"
                         "objectives: {total_cycles: min, energy_pj: min}\n")
    run_sweep(p, out=tmp_path / "one", progress=False, workers=1)
    run_sweep(p, out=tmp_path / "two", progress=False, workers=2, chunk=2)
    one = pd.read_parquet(tmp_path / "one/points.parquet")
    two = pd.read_parquet(tmp_path / "two/points.parquet")
    assert len(one) == 24 and one["index"].tolist() == list(range(24))
    pd.testing.assert_frame_equal(two, one)


def test_one_objective_sweep_finishes(tmp_path):
    # one float objective: pandas 3's to_numpy gave a read-only view of the column and marking the points off
    # the front (NaN) raised "assignment destination is read-only" after every point was computed. A single
    # objective's front is its minimum: 16 rows halve the folds of 8 on digits_cnn's layers, so fewer cycles
    p = tmp_path / "s.yaml"
    p.write_text(f"name: s\narch: {ROOT}/arch/edge_32x32.yaml\nworkload: {ROOT}/workloads/digits_cnn.yaml\n"
                 "axes: {array.rows: [8, 16]}\nprecision: {uniform: [[8, 8]]}\nbaselines: []\n"
                 "objectives: {total_cycles: min}\n")
    run_sweep(p, out=tmp_path / "o", progress=False, workers=1)
    df = pd.read_csv(tmp_path / "o/points.csv")
    assert df["total_cycles"].iloc[1] < df["total_cycles"].iloc[0]
    assert df["pareto"].tolist() == [False, True]
