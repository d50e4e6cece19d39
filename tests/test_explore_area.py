"""Die area as a sweep column and objective (``area_mm2``: hwsim.energy.area_breakdown of a point's arch)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import hwsim
from hwsim.energy import area_breakdown
from hwsim.errors import SpecError
from hwsim.explore import load_sweep, run_sweep

ROOT = Path(__file__).resolve().parents[1]

SWEEP = f"""\
name: area_grid
arch: {ROOT / "arch/edge_32x32.yaml"}
workload: {ROOT / "workloads/digits_cnn.yaml"}
axes:
  array.rows: [8, 16]
  array.cols: [8, 16]
precision:
  uniform: [[8, 8]]
baselines: [[8, 8]]
objectives: {{energy_pj: min, area_mm2: min}}
"""


def test_area_column_and_objective(tmp_path):
    (tmp_path / "s.yaml").write_text(SWEEP)
    out = run_sweep(tmp_path / "s.yaml", out=tmp_path / "o", workers=1, progress=False)
    df = pd.read_parquet(out / "points.parquet").set_index(["array.rows", "array.cols"])
    assert (df["status"] == "ok").all() and len(df) == 4
    # the column is the area model's value for each point's arch, computed here directly
    base = hwsim.load_arch(ROOT / "arch/edge_32x32.yaml")
    for (r, c), area in df["area_mm2"].items():
        arch = base.replace(**{"array.rows": int(r), "array.cols": int(c)})
        assert area == pytest.approx(area_breakdown(arch).total_mm2, rel=1e-12)
    # By hand (hwsim/energy/_area.py with hwsim/tech/horowitz_45nm.yaml, 45 nm): area(R, C) = R*C*P + C*Q + S.
    # P, one fixed 8-bit PE with a 32-bit accumulator: 8x8 multiplier 282 + 32-bit adder 137 + (2*8 + 32) = 48
    # flip-flops x 4.522 = 217.056 -> 636.056 um^2. Q, one requantizer per column: a 32 x 32 multiplier
    # 3,495 (the table's 32-bit point) + a 32-bit adder 137 = 3,632 um^2. S, three 64 KiB SRAMs of one bank:
    # 524,288 bits x sram_bit(64 KiB) each, log-log halfway between the 32 KiB (0.8118) and 128 KiB (0.9168)
    # points: sqrt(0.8118 * 0.9168) = 0.862704 um^2/bit -> 3 x 452,305.37 = 1,356,916.1 um^2.
    # area(8, 8) = 64 * 636.056 + 8 * 3,632 + 1,356,916.1 = 1,426,679.7 um^2 = 1.4266797 mm^2.
    a = df["area_mm2"]
    assert a[(8, 8)] == pytest.approx(1.4266797, rel=1e-7)
    # growth with the array: doubling the rows adds 64 PEs (64 P = 0.040708 mm^2, no requantizer);
    # doubling the columns adds 64 PEs and 8 requantizers (64 P + 8 Q = 0.069764 mm^2); 16x16 over 8x8 adds
    # 192 P + 8 Q: the ratio of the growths (16x16 - 8x8) / (16x8 - 8x8) = 3 + Q / (8 P) = 3 + 3632 / 5088.448
    # = 3.713773
    assert a[(16, 8)] - a[(8, 8)] == pytest.approx(64 * 636.056e-6, rel=1e-9)
    assert a[(8, 16)] - a[(8, 8)] == pytest.approx((64 * 636.056 + 8 * 3632) * 1e-6, rel=1e-9)
    assert (a[(16, 16)] - a[(8, 8)]) / (a[(16, 8)] - a[(8, 8)]) == pytest.approx(3.713773, rel=1e-6)
    # as an objective: the front is the points no other beats on both energy and area (8x8, the smallest
    # die, is on it though it has not the least energy; with energy alone only the least-energy point is)
    e = df["energy_pj"]
    front = {k for k in df.index
             if not any(e[o] <= e[k] and a[o] <= a[k] and (e[o], a[o]) != (e[k], a[k]) for o in df.index)}
    assert {k for k in df.index if df.loc[k, "pareto"]} == front
    assert (8, 8) in front and e[(8, 8)] > e.min()
    assert set(pd.read_csv(out / "pareto.csv")["area_mm2"]) == {a[k] for k in front}
    html = (out / "report.html").read_text()
    assert "Energy vs area" in html and "area_mm2 the die area in mm^2" in html


def test_unknown_objective_lists_area_mm2(tmp_path):
    (tmp_path / "s.yaml").write_text(SWEEP.replace("area_mm2: min", "area_mm3: min"))
    with pytest.raises(SpecError, match=r"objectives\.area_mm3: expected one of \[.*'area_mm2'\]"):
        load_sweep(tmp_path / "s.yaml")


def test_resume_maps_an_older_points_header(tmp_path, capsys):
    """``--resume`` on a points.csv written with other columns: rows are rewritten under this version's
    columns by name (a reordered header keeps every value), and a file without ``area_mm2`` (an older hwsim)
    has its rows run again with a warning, instead of new rows appended under the old header."""
    (tmp_path / "s.yaml").write_text(SWEEP)
    out = run_sweep(tmp_path / "s.yaml", out=tmp_path / "o", workers=1, progress=False)
    full = pd.read_csv(out / "points.csv")
    # two points done, columns in reverse order: resumed, the other two run, every value as in the full run
    full.iloc[:2][list(reversed(full.columns))].to_csv(out / "points.csv", index=False)
    run_sweep(tmp_path / "s.yaml", out=out, resume=True, workers=1, progress=False)
    pd.testing.assert_frame_equal(pd.read_csv(out / "points.csv"), full)
    # no area_mm2 column: both rows dropped and run again
    full.iloc[:2].drop(columns="area_mm2").to_csv(out / "points.csv", index=False)
    capsys.readouterr()
    run_sweep(tmp_path / "s.yaml", out=out, resume=True, workers=1, progress=False)
    assert "written without the column(s) area_mm2 (an older hwsim?): its 2 row(s) dropped" in \
        capsys.readouterr().out
    pd.testing.assert_frame_equal(pd.read_csv(out / "points.csv"), full)
