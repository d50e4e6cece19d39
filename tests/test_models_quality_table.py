"""The docs/quality.md generator: the mixed-precision rule, the rendering, and the digits CNN's bit-width
cliff (the Fashion-MNIST one is in tests/test_models_fashion.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwsim.models import quality_table
from hwsim.quant import SensitivityTable


def test_mixed_point_keeps_the_least_robust_quarter_at_8_bits():
    layers = ("a", "b", "c", "d", "e")
    rows = [{"layer": n, "weight_bits": 4, "act_bits": 8, "sqnr_db": s} for n, s in
            zip(layers, (30.0, 12.0, 25.0, 9.0, 40.0), strict=True)]
    mixed = quality_table.mixed_point(SensitivityTable(rows, {}), layers)
    # ceil(5 / 4) = 2 layers stay W8A8: the two lowest SQNRs, d (9 dB) and b (12 dB)
    assert mixed == {"a": (4, 8), "b": (8, 8), "c": (4, 8), "d": (8, 8), "e": (4, 8)}


def test_render_reports_skipped_networks_and_the_table():
    res = {"rows": [("per-channel, min/max", {"W8A8": "90.26", "W6A6": "90.34", "W4A8": "88.11",
                                              "W4A4": "86.76",
                                               "mixed": "89.65"})],
           "mixed": {"conv1": (8, 8), "conv2": (4, 8)}, "n_w8": 1, "mean_weight_bits": 5.0,
           "extreme": [("ternary weights (TWN)", "80.00")]}
    text = quality_table.render({"fashion_cnn": res, "minilm_l6": "package missing (pip install ...)"}, 60.0)
    assert "| per-channel, min/max | 90.26 | 90.34 | 88.11 | 86.76 | 89.65 |" in text
    assert "Skipped: package missing (pip install ...)" in text
    assert "`conv1`" in text and "mean weight bits 5.00" in text


def test_unknown_network_is_a_usage_error(capsys):
    assert quality_table.main(["--networks", "resnet", "--out", "/dev/null"]) == 2
    assert "unknown network 'resnet'" in capsys.readouterr().err


def test_digits_accuracy_cliff_between_4_and_2_bits():
    from hwsim.models import digits

    acc = {b: digits.evaluate(b)["correct"] for b in [(4, 4), (2, 2)]}
    # of 450 held-out digits; measured: W4A4 440 (97.8 %), W2A2 265 (58.9 %)
    assert acc[(4, 4)] == pytest.approx(440, abs=2) and acc[(2, 2)] == pytest.approx(265, abs=5)


@pytest.mark.parametrize("name,workload", [("fashion_cnn", "fashion_cnn"), ("mobilenet_v2", "mobilenet_v2"),
                                           ("minilm_l6", "minilm_l6")])
def test_sweeps_accept_each_real_network_with_its_workload(tmp_path, name, workload):
    # the sweep loader checks that the workload's layer names are the quality model's (no network is run here)
    from hwsim.explore._spec import load_sweep

    from .utils import ROOT

    p = tmp_path / "s.yaml"
    p.write_text(f"name: s\narch: {ROOT}/arch/edge_32x32.yaml\nworkload: {ROOT}/workloads/{workload}.yaml\n"
                 f"quality: {name}\naxes: {{array.rows: [16]}}\nprecision: {{uniform: [[8, 8], [4, 8]]}}\n"
                 "objectives: {total_cycles: min}\n")
    rs = load_sweep(p)
    names = tuple(layer.name for layer in rs.workload.layers)
    assert {pt.policy for pt in rs.points} >= {"W8A8", "W4A8"}
    assert all(tuple(pt.bits) == names for pt in rs.points)


def test_qat_accuracy_table_layout():
    # the rows docs/quality.md's QAT sections are made of: accuracies in % with two decimals, QAT cells bold
    # with their training seconds, "-" where a run skipped a point
    from hwsim.models._qat_table import accuracy_table

    res = {"ptq": [("PTQ a", {"W4A4": 0.5, "W3A3": 0.25, "W2A2": 0.125, "mixed": 0.9876})],
           "qat": [("QAT b", {"W4A4": (0.9, 12.4)})]}
    assert accuracy_table(res) == ["| method | W4A4 | W3A3 | W2A2 | mixed |", "|---|---:|---:|---:|---:|",
                                   "| PTQ a | 50.00 | 25.00 | 12.50 | 98.76 |",
                                   "| QAT b | **90.00** (12 s) | - | - | - |"]


def test_mobilenet_w4a8_ptq_section_layout():
    from hwsim.models import _mnv2_ptq_table as t
    from hwsim.models._qat_table import splice

    runs = t.RUNS()
    all4, ends8 = (c for c, _ in t.CONVENTIONS)
    # the all-4-bit group: 3 baselines, the saturating-lr sequential recipe on the crop pool at 3 seeds, the
    # same with the 27 wallpaper photos at 3 seeds, and block reconstruction on top of seed 0; the 8-bit-ends
    # group: the 3 baselines and seed 0
    got = [(r.pool_aug, r.seed, r.recon is not None, r.wallpapers) for r in runs if r.convention == all4]
    assert got == [(0, 0, False, False)] * 3 + [(54, s, False, False) for s in (0, 1, 2)] + \
        [(54, s, False, True) for s in (0, 1, 2)] + [(54, 0, True, False)]
    assert not any(r.wallpapers for r in runs if r.convention == ends8)
    assert [r.config.sequential for r in runs if r.convention == ends8] == [False, False, True, True]
    assert [r.config.adaround_lr for r in runs if r.convention == ends8] == [1e-2, 1e-2, 1e-2, 5e-2]

    def cell(a, sqnr):
        d = {"top1_agreement": a / 30, "logit_sqnr_db": sqnr, "top5_agreement": 25 / 30, "bit_exact": True}
        return {"centre": d, "views": {**d, "top1_agreement": a / 30 - 0.01}, "build_s": 310.4,
                "eval_s": 30.0, "n_pool": 64}

    rows = [(r, cell(17 + i % 4, 7.866 + i % 4)) for i, r in enumerate(runs)]
    text = t.render_mobilenet_ptq({"rows": rows, "n_eval": 30, "n_calib": 10, "n_views": 300}, 960.0)
    assert text.startswith(t.BEGIN) and text.endswith(t.END)
    assert "(16 min on this machine" in text
    # one row group per convention, the 8-bit-ends one labelled as such, never merged with the all-4-bit one
    assert text.count("| method |") == 2 and "**first conv and classifier W8A8, the other 51 W4A8**" in text
    assert f"| {runs[0].label} | 10 photos | 56.7 / 7.87 / 83.3 | 55.7 / 7.87 / 83.3 | 310 s |" in text
    assert "| 10 photos + 54 crops (seed 1) |" in text
    assert "| 10 photos + 27 wallpaper photos + 54 crops (seed 2) |" in text
    # the mean rows: rows 3, 4, 5 (i % 4 = 3, 0, 1) are the seeds: agreement (20 + 17 + 18) / 3 / 30 = 61.1 %,
    # SQNR 7.866 + (3 + 0 + 1) / 3 = 9.20 dB, views 1 point lower; the wallpaper seeds, rows 6, 7, 8
    # (i % 4 = 2, 3, 0): (19 + 20 + 17) / 90 = 62.2 %, 7.866 + 5 / 3 = 9.53 dB
    assert "| mean of the 3 seeds above | | 61.1 / 9.20 / 83.3 | 60.1 / 9.20 / 83.3 | |" in text
    assert "| mean of the 3 seeds above | | 62.2 / 9.53 / 83.3 | 61.2 / 9.53 / 83.3 | |" in text
    assert text.count("| mean of the") == 2 and "40-photo library (one photo is 3.3 points)" in text
    # each mean sits right under the last seed it averages; the second above the block-reconstruction row
    lines = text.splitlines()
    i, j = (k for k, ln in enumerate(lines) if ln.startswith("| mean of the"))
    assert "10 photos + 54 crops (seed 2) |" in lines[i - 1]
    assert "wallpaper photos + 54 crops (seed 0)" in lines[i + 1]
    assert "wallpaper photos + 54 crops (seed 2) |" in lines[j - 1] and "block reconstruction" in lines[j + 1]
    doc = splice("# head\n\n" + t.BEGIN + "\nold\n" + t.END + "\ntail\n", text, t.BEGIN, t.END)
    assert "old" not in doc and doc.endswith("tail\n") and doc.count(t.BEGIN) == 1


def test_the_default_command_keeps_every_section_other_commands_wrote_and_the_zeroq_one():
    from hwsim.models import quality_table as qt

    markers = qt.section_markers()
    assert (qt.ZEROQ_BEGIN, qt.ZEROQ_END) in markers
    old = "# old tables\n\nstale\n\n" + "\n\n".join(f"{b}\nbody {i}\n{e}" for i, (b, e) in enumerate(markers))
    new = qt.keep_sections("# new tables\n", old)
    assert new.startswith("# new tables\n") and "stale" not in new
    for i, (b, e) in enumerate(markers):
        assert f"{b}\nbody {i}\n{e}" in new, b
    # the committed docs/quality.md has the ZeroQ section between its markers
    doc = (Path(__file__).resolve().parents[1] / "docs" / "quality.md").read_text()
    zq = doc.split(qt.ZEROQ_BEGIN, 1)[1].split(qt.ZEROQ_END, 1)[0]
    assert "ZeroQ against real-photo calibration" in zq
