"""Reports as a reader sees them: headless Chromium renders every figure, logs nothing, and a screenshot is
saved (Debian's chromium; .ci/run installs it)."""

from __future__ import annotations

import pytest

from hwsim.cli import main
from hwsim.explore import run_sweep
from hwsim.report._browser import check_in_browser, find_chromium

from .utils import ROOT

pytestmark = pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed (apt-get install chromium)")


def test_simulate_report_renders(tmp_path):
    assert main(["simulate", str(ROOT / "arch/edge_32x32.yaml"), str(ROOT / "workloads/resnet18.yaml"),
                 "--out", str(tmp_path)]) == 0
    r = check_in_browser(tmp_path / "report.html", screenshot=tmp_path / "simulate.png")
    # cycles, energy, utilization, roofline, timeline of the units, memory occupancy over time
    assert (r.figures, r.rendered, r.console) == (6, 6, [])
    assert r.screenshot.stat().st_size > 50_000


def test_sweep_report_renders(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(f"name: s\narch: {ROOT}/arch/edge_32x32.yaml\nworkload: {ROOT}/workloads/digits_cnn.yaml\n"
                 "quality: digits_cnn\naxes: {array.rows: [8, 32], pe.precision_mode: [fixed, bit_fusion]}\n"
                 "precision: {uniform: [[8, 8], [4, 4], [2, 2]]}\n")
    run_sweep(p, out=tmp_path / "o", workers=1, progress=False)
    r = check_in_browser(tmp_path / "o/report.html", screenshot=tmp_path / "sweep.png")
    # accuracy vs cycles, accuracy vs energy, energy vs cycles, per-layer bits, cycles, energy, utilization,
    # roofline of the chosen point
    assert (r.figures, r.rendered, r.console) == (8, 8, [])
    assert r.screenshot.stat().st_size > 50_000
