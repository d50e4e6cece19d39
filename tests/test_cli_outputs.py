"""``hwsim simulate``'s files beyond the contract (issue 17): bandwidth.csv (SCALE-Sim's BANDWIDTH_REPORT),
compute utilization, peak MACs/cycle and start/stop cycles in layers.csv, the roofline at each PE mode's peak;
the default output folder, the wrote line, Ctrl-C in a sweep, SCALE-Sim's bank/bandwidth rule."""

from __future__ import annotations

import pandas as pd
import pytest

from hwsim.cli import main

from .utils import ROOT

ARCH = """name: t
clock_mhz: 100
array: {rows: 4, cols: 4, dataflow: ws}
pe: {operand_bits: 8, acc_bits: 32}
memory:
  ifmap_sram: {size_kib: 64}
  filter_sram: {size_kib: 64}
  ofmap_sram: {size_kib: 64}
  dram: {bandwidth_bytes_per_cycle: 1}
"""
WL = """name: t
layers:
  - {name: g, op: gemm, m: 8, k: 4, n: 4}
  - {name: h, op: gemm, m: 4, k: 8, n: 4}
"""


@pytest.fixture
def tiny(tmp_path, capsys):
    (tmp_path / "a.yaml").write_text(ARCH)
    (tmp_path / "w.yaml").write_text(WL)
    assert main(["simulate", str(tmp_path / "a.yaml"), str(tmp_path / "w.yaml"), "--out",
                 str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    return tmp_path / "o", out


def test_bandwidth_csv_and_new_layer_columns_by_hand(tiny):
    out, printed = tiny
    lay = pd.read_csv(out / "layers.csv").set_index("layer")
    bw = pd.read_csv(out / "bandwidth.csv").set_index("layer")
    g = lay.loc["g"]
    # g: (8x4) x (4x4) on a 4x4 WS array, one fold of SCALE-Sim's 2R + C + T - 2 = 8 + 4 + 8 - 2 = 18 cycles.
    # DRAM at 1 byte/cycle, one tile: load ifmap 8*4 + filter 4*4 = 48 bytes, compute 18, write 8*4 = 32
    # bytes: 48 + 18 + 32 = 98 cycles.
    assert (g["compute_cycles"], g["total_cycles"]) == (18, 98)
    # utilization: 128 MACs / (98 cycles * 16 PEs); compute utilization (SCALE-Sim's Compute Util, no stalls):
    # 128 / (18 * 16) = 4/9
    assert g["utilization"] == pytest.approx(128 / (98 * 16))
    assert g["compute_utilization"] == pytest.approx(4 / 9) and g["peak_macs_per_cycle"] == 16
    # layers back to back: g occupies [0, 98), h [98, 98 + its cycles)
    h = lay.loc["h"]
    assert (g["start_cycle"], g["stop_cycle"], h["start_cycle"]) == (0, 98, 98)
    assert h["stop_cycle"] == 98 + h["total_cycles"]
    # bandwidth.csv: bytes / total cycles (avg, SCALE-Sim's definition) and bytes / compute cycles (peak)
    b = bw.loc["g"]
    assert b["dram_read_avg_bytes_per_cycle"] == pytest.approx(48 / 98)
    assert b["dram_read_peak_bytes_per_cycle"] == pytest.approx(48 / 18)
    assert b["dram_write_avg_bytes_per_cycle"] == pytest.approx(32 / 98)
    assert b["dram_ifmap_read_avg_bytes_per_cycle"] == pytest.approx(32 / 98)
    assert b["dram_filter_read_avg_bytes_per_cycle"] == pytest.approx(16 / 98)
    # each element of the 8x4 ifmap read once from its SRAM (WS: the weights stay, the inputs stream): 32
    # bytes
    assert b["ifmap_sram_read_avg_bytes_per_cycle"] == pytest.approx(32 / 98)
    assert b["filter_sram_read_peak_bytes_per_cycle"] == pytest.approx(16 / 18)
    # the wrote line names every file
    wrote = printed.strip().splitlines()[-1]
    for f in ("layers.csv", "energy.csv", "bandwidth.csv", "summary.json", "report.html"):
        assert str(out / f) in wrote


def test_results_readme_lists_the_new_files_and_columns():
    text = (ROOT / "results/README.md").read_text()
    for word in ("bandwidth.csv", "compute_utilization", "peak_macs_per_cycle", "start_cycle", "stop_cycle"):
        assert word in text


def test_default_out_never_replaces_an_earlier_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.yaml").write_text(ARCH)
    (tmp_path / "w.yaml").write_text(WL)
    assert main(["simulate", "a.yaml", "w.yaml"]) == 0
    first = (tmp_path / "results/simulate/layers.csv").read_text()
    (tmp_path / "w.yaml").write_text(WL.replace("m: 8", "m: 12"))
    assert main(["simulate", "a.yaml", "w.yaml"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "results/simulate/layers.csv").read_text() == first
    assert "results/simulate_2/layers.csv" in out
    assert (tmp_path / "results/simulate_2/bandwidth.csv").is_file()


def test_roofline_roof_at_the_bit_fusion_peak(tmp_path, capsys):
    from hwsim._pipeline import simulate_workload
    from hwsim.report._simulate import roofline_figure
    from hwsim.spec import load_arch, load_workload_yaml

    arch = load_arch(ROOT / "arch/bitfusion_16x16.yaml")
    res = simulate_workload(arch, load_workload_yaml(ROOT / "workloads/resnet18.yaml"), weight_bits=2,
                            act_bits=2)
    # 16x16 PEs of 8-bit operands fused from 2-bit BitBricks: (8/2) * (8/2) = 16 MACs per PE per cycle at 2x2
    # bits, 4,096 MACs/cycle for the array (Sharma et al., ISCA 2018)
    assert {r["peak_macs_per_cycle"] for r in res.rows} == {4096}
    fig = roofline_figure(arch, res.rows)
    roofs = [t for t in fig.data if t.name.startswith("roof")]
    assert len(roofs) == 1 and roofs[0].name == "roof 4,096 MACs/cycle (w2a2)" and max(roofs[0].y) == 4096
    layers = next(t for t in fig.data if t.name == "layers")
    # the 2-bit layers reach up to ~3,190 MACs/cycle: above rows x cols = 256, under the real roof
    assert 3000 < max(layers.y) <= 4096


def test_roofline_bit_serial_peak():
    from hwsim._pipeline import simulate_workload
    from hwsim.spec import Gemm, Workload

    from .utils import make_arch

    arch = make_arch(**{"pe.precision_mode": "bit_serial"})
    wl = Workload(name="w", layers=(Gemm(name="a", op="gemm", m=16, k=16, n=16, act_bits=4),
                                    Gemm(name="b", op="gemm", m=16, k=16, n=16, act_bits=8)))
    res = simulate_workload(arch, wl)
    # Stripes: serial activations, 1 bit per cycle: a MAC takes b_a cycles; 4x4 PEs -> 16/4 = 4 and 16/8 = 2
    assert [r["peak_macs_per_cycle"] for r in res.rows] == [4, 2]
    assert all(r["macs"] / r["total_cycles"] <= r["peak_macs_per_cycle"] for r in res.rows)


def test_ctrl_c_in_a_sweep_mentions_resume(tmp_path, capsys, monkeypatch):
    from hwsim.explore import _runner

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(_runner, "_run_points", interrupted)
    s = tmp_path / "s.yaml"
    s.write_text(f"name: s\narch: {ROOT}/arch/edge_32x32.yaml\nworkload: {ROOT}/workloads/digits_cnn.yaml\n"
                 "precision: {uniform: [[8, 8]]}\nobjectives: {total_cycles: min, energy_pj: min}\n")
    # before the first point: nothing to keep
    assert main(["sweep", str(s), "--out", str(tmp_path / "o")]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"hwsim: interrupted; no point was finished yet ({tmp_path / 'o' / 'points.csv'} not "
                   "written): run the same command again (--resume works too)"]

    def interrupted_after_writing(*files):
        def run_points(rs, out_dir, *a, **k):
            out_dir.mkdir(parents=True, exist_ok=True)
            for name, text in files:
                (out_dir / name).write_text(text)
            raise KeyboardInterrupt
        return run_points

    # interrupted in the quality phase: the qualities already stored are named, since --resume reuses them
    monkeypatch.setattr(_runner, "_run_points",
                        interrupted_after_writing(("quality.jsonl", '{"key": "k", "value": 0.9}\n')))
    assert main(["sweep", str(s), "--out", str(tmp_path / "o3")]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"hwsim: interrupted; no point was finished yet ({tmp_path / 'o3' / 'points.csv'} not "
                   f"written): run the same command again (--resume works too); the qualities measured so "
                   f"far are kept in {tmp_path / 'o3' / 'quality.jsonl'} and --resume reuses them"]

    monkeypatch.setattr(_runner, "_run_points", interrupted_after_writing(("points.csv", "index\n0\n")))
    assert main(["sweep", str(s), "--out", str(tmp_path / "o2")]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"hwsim: interrupted; the points written to {tmp_path / 'o2' / 'points.csv'} are kept: "
                   "run the same command with --resume to continue"]


def test_scalesim_user_bandwidth_must_divide_by_the_banks(tmp_path, capsys):
    text = (ROOT / "tests/data/scalesim/google.cfg").read_text()
    p = tmp_path / "g.cfg"
    p.write_text(text.replace("IfmapSRAMBankBandwidth: 10", "IfmapSRAMBankBandwidth: 3"))
    assert main(["import-scalesim", str(p), "--out", str(tmp_path / "g.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"hwsim: error: {p}: layout.IfmapSRAMBankBandwidth: expected a bandwidth divisible by "
                   "layout.IfmapSRAMBankNum (10), as SCALE-Sim asserts in USER mode, found 3 "
                   "(memory/read_buffer.py: the bandwidth is split evenly over the banks)"]
    assert not (tmp_path / "g.yaml").exists()
    # the peer refuses the same numbers (and takes 10 over 10 banks, google.cfg as shipped)
    rb = pytest.importorskip("scalesim.memory.read_buffer")
    with pytest.raises(AssertionError, match="divisible by total number of banks"):
        rb.read_buffer().set_params(backing_buf_obj=None, total_size_bytes=1024, backing_buf_bw=3,
                                    num_bank=10, active_buf_frac=0.5)
    rb.read_buffer().set_params(backing_buf_obj=None, total_size_bytes=1024, backing_buf_bw=10, num_bank=10,
                                active_buf_frac=0.5)
