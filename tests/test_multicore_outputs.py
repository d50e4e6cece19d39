"""What ``hwsim simulate`` writes for a multi-core arch, through the command line: the pipeline schedule's
``cores.csv`` and report (issue: the report crashed on every ``cores.schedule: pipeline`` run), the output
folder written all or nothing, and the chip's area."""

from __future__ import annotations

import csv
import json

import pytest

from hwsim.cli import main

from .utils import ROOT

# arch/multicore_4x.yaml's cores (64x64 WS, 16-bit PEs, 64 B/cycle DRAM and links), two of them, the layers
# pipelined, every tensor through DRAM and one tile per layer: a schedule small enough to derive by hand
_ARCH = """\
name: pipe2
clock_mhz: 1000
array: {rows: 64, cols: 64, dataflow: ws}
pe: {operand_bits: 16, min_bits: 4, acc_bits: 32, acc_mode: wrap, precision_mode: fixed}
memory:
  double_buffered: true
  ifmap_sram: {size_kib: 1024, word_bits: 512}
  filter_sram: {size_kib: 512, word_bits: 512}
  ofmap_sram: {size_kib: 256, word_bits: 2048}
  dram: {bandwidth_bytes_per_cycle: 64}
energy: {technology: horowitz_45nm}
timing: {reuse: none, max_tiles_per_layer: 1}
cores:
  list: [{name: c0}, {name: c1}]
  schedule: pipeline
  allocation: %s
  noc: {link_bytes_per_cycle: 64, pj_per_bit_per_hop: 0.06}
"""
_CHAIN = """\
name: chain
weight_bits: 8
act_bits: 8
layers:
  - {name: fc0, op: fc, m: 1, k: 256, n: 256}
  - {name: fc1, op: fc, m: 1, k: 256, n: 256}
"""


def _files(tmp_path, allocation: str = "{fc0: c0, fc1: c1}"):
    (tmp_path / "a.yaml").write_text(_ARCH % allocation)
    (tmp_path / "w.yaml").write_text(_CHAIN)
    return str(tmp_path / "a.yaml"), str(tmp_path / "w.yaml")


def _csv(path):
    with path.open() as f:
        return list(csv.DictReader(f))


def test_pipeline_cli_writes_cores_csv_and_report_hand_derived(tmp_path, capsys):
    # fc0 on c0, fc1 on c1, m = 1 (one computation node each), fc0's output through DRAM (reuse none).
    # Each layer: loads its 256 x 256 int8 weights and 256 B of input, 65,792 B, at the chip's full 64
    # B/cycle (a core alone on the channel): 1,028 cycles; computes 16 folds (4 K x 4 N tiles of 64) x
    # (64 + 1 + 64 + 64 - 2) = 191 cycles = 3,056 (tests/test_multicore.py's split m case); writes 256 B: 4.
    # fc0: load [0, 1,028), compute [1,028, 4,084), write [4,084, 4,088); fc1 waits for that write: load
    # [4,088, 5,116), compute [5,116, 8,172), write [8,172, 8,176): makespan 8,176.
    # cores.csv per core: 65,536 MACs, 66,048 DRAM bytes (65,792 + 256), peak 64 x 64 = 4,096 MACs/cycle,
    # share 64 / 2 = 32 B/cycle, intensity 65,536 / 66,048 = 0.992248, ridge 4,096 / 32 = 128: memory-bound,
    # roof 0.992248 x 32 = 31.752 MACs/cycle, achieved 65,536 / 8,176 = 8.01566, compute_cycles 3,056,
    # dram_cycles 1,028 + 4 = 1,032.
    arch, wl = _files(tmp_path)
    out = tmp_path / "o"
    assert main(["simulate", arch, wl, "--out", str(out)]) == 0
    assert "8,176 cycles" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["layers.csv", "energy.csv", "bandwidth.csv", "tensors.csv", "timeline.csv", "cores.csv",
         "summary.json", "report.html"])
    rows = _csv(out / "cores.csv")
    assert [r["core"] for r in rows] == ["c0", "c1"]
    for r in rows:
        assert all(v != "" for v in r.values()), r  # every column filled
        assert (int(r["macs"]), int(r["dram_bytes"])) == (65_536, 66_048)
        assert (int(r["peak_macs_per_cycle"]), float(r["dram_share_bytes_per_cycle"])) == (4_096, 32.0)
        assert float(r["intensity_macs_per_byte"]) == pytest.approx(65_536 / 66_048, rel=1e-12)
        assert float(r["ridge_macs_per_byte"]) == 128 and r["bound"] == "memory"
        assert float(r["roof_macs_per_cycle"]) == pytest.approx(31.752, rel=1e-4)
        assert float(r["achieved_macs_per_cycle"]) == pytest.approx(8.01566, rel=1e-5)
        assert (int(r["compute_cycles"]), int(r["dram_cycles"])) == (3_056, 1_032)
        assert int(r["busy_cycles"]) == 4_088  # fc0's window [0, 4,088), fc1's [4,088, 8,176)
    t = json.loads((out / "summary.json").read_text())["totals"]
    assert t["total_cycles"] == 8_176
    assert t["area_mm2"] == pytest.approx(2 * float(rows[0]["area_mm2"]), rel=1e-12)  # two equal cores
    html = (out / "report.html").read_text()
    assert "Roofline per core" in html and "Timeline per core" in html


def test_pipeline_one_core_cores_csv():
    # one core: no DRAM task in its schedule (a node lasts its one-array row); the columns are still counted
    # on the transfers as several cores have them: fc0 and fc1 both on c0 at the full 64 B/cycle, each
    # 1,028 + 4 DRAM cycles and 3,056 compute cycles (as above); share 64 (one core); the makespan is the
    # one-array sum 2 x (1,028 + 3,056 + 4) = 8,176 (one tile per layer: nothing overlaps)
    import yaml

    from hwsim import simulate
    from hwsim.spec import ArchSpec, Workload

    d = yaml.safe_load(_ARCH % "auto")
    d["cores"]["list"] = [{"name": "c0"}]
    sim = simulate(ArchSpec.model_validate(d), Workload.model_validate(yaml.safe_load(_CHAIN)))
    (r,) = sim.result.core_rows
    assert (r["compute_cycles"], r["dram_cycles"], r["dram_share_bytes_per_cycle"]) == (6_112, 2_064, 64.0)
    assert sim.totals["total_cycles"] == 8_176
    assert r["achieved_macs_per_cycle"] == pytest.approx(131_072 / 8_176, rel=1e-12)


def test_trial_pipeline_arch_report_through_the_cli(tmp_path):
    # the fresh-user trial's chip2: two heterogeneous cores (16x16 OS, 32x8 WS), pipeline, auto allocation;
    # every workload's run crashed writing report.html. Each core: peak 256 MACs/cycle, share 12 / 2 = 6
    a = tmp_path / "chip2.yaml"
    a.write_text((ROOT / "tests/data/multicore/chip2_pipeline.yaml").read_text())
    out = tmp_path / "r"
    assert main(["simulate", str(a), str(ROOT / "workloads/digits_cnn.yaml"), "--out", str(out)]) == 0
    rows = _csv(out / "cores.csv")
    assert [(int(r["peak_macs_per_cycle"]), float(r["dram_share_bytes_per_cycle"])) for r in rows] == \
        [(256, 6.0)] * 2
    t = json.loads((out / "summary.json").read_text())["totals"]
    for r in rows:  # achieved = the core's MACs over the chip's makespan
        assert float(r["achieved_macs_per_cycle"]) == pytest.approx(int(r["macs"]) / t["total_cycles"])
    assert sum(int(r["macs"]) for r in rows) == t["macs"]
    assert (out / "report.html").stat().st_size > 10_000


def test_a_failure_while_writing_leaves_no_half_written_folder(tmp_path, monkeypatch, capsys):
    import hwsim.report as report

    arch, wl = _files(tmp_path)

    def broken(res, path):
        raise RuntimeError("a bug in a figure")

    monkeypatch.setattr(report, "simulate_report", broken)
    out = tmp_path / "o"
    assert main(["simulate", arch, wl, "--out", str(out)]) == 3  # an internal error, said so
    assert "internal error" in capsys.readouterr().err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.yaml", "w.yaml"]  # no temporary folder left
    # an earlier run's folder is left as it was
    out.mkdir()
    (out / "summary.json").write_text("earlier")
    (out / "mine.txt").write_text("a user's file")
    assert main(["simulate", arch, wl, "--out", str(out)]) == 3
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt", "summary.json"]
    assert (out / "summary.json").read_text() == "earlier"
    # written whole: the run's files replace the earlier ones; a file of an earlier run that this one does
    # not write (vector.csv: this workload has no non-GEMM node) goes; a user's own file stays
    monkeypatch.undo()
    (out / "vector.csv").write_text("stale")
    assert main(["simulate", arch, wl, "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert "vector.csv" not in names and "mine.txt" in names and "report.html" in names
    assert json.loads((out / "summary.json").read_text())["totals"]["total_cycles"] == 8_176


def test_chip_area_is_the_sum_of_its_cores():
    # the trial's chip2: core a0 is the arch itself (16x16 OS), b0 a 32x8 WS array with the same PEs and
    # buffers. Same PE count (256) and SRAMs, so the cores differ only in their requantizers, one per array
    # column: 16 against 8. a0 = the arch without cores: (2.338 mm^2, as the trial's chip0), b0 = a0 - 8
    # requant units; the chip = a0 + b0, every component summed (requant: 24 units); the network not counted
    import yaml

    from hwsim import simulate
    from hwsim.spec import ArchSpec, load_workload_yaml

    d = yaml.safe_load((ROOT / "tests/data/multicore/chip2_pipeline.yaml").read_text())
    wl = load_workload_yaml(ROOT / "workloads/digits_cnn.yaml")
    one = simulate(ArchSpec.model_validate({k: v for k, v in d.items() if k != "cores"}), wl)
    chip = simulate(ArchSpec.model_validate(d), wl)
    a = one.result.area
    rq = a.unit_um2["requant"] / 1e6
    assert one.totals["area_mm2"] == pytest.approx(2.338, abs=5e-4)
    assert [r["area_mm2"] for r in chip.result.core_rows] == pytest.approx(
        [a.total_mm2, a.total_mm2 - 8 * rq], rel=1e-12)
    t = chip.totals
    assert t["area_mm2"] == pytest.approx(2 * a.total_mm2 - 8 * rq, rel=1e-12)
    assert t["area_requant_mm2"] == pytest.approx(24 * rq, rel=1e-12)
    for k in ("mac", "ifmap_sram", "filter_sram", "ofmap_sram"):
        assert t[f"area_{k}_mm2"] == pytest.approx(2 * one.totals[f"area_{k}_mm2"], rel=1e-12), k
    assert chip.result.area.units == {"mac": 512, "ifmap_sram": 2, "filter_sram": 2, "ofmap_sram": 2,
                                      "requant": 24}
    assert "not counted" in chip.summary()["area_sources"]["noc"]
    # one core in cores: (either schedule) has exactly the single array's area
    for sched in ("split", "pipeline"):
        d1 = dict(d, cores=dict(d["cores"], list=[{"name": "a0"}], schedule=sched))
        s1 = simulate(ArchSpec.model_validate(d1), wl)
        assert {k: v for k, v in s1.totals.items() if k.startswith("area_")} == \
            {k: v for k, v in one.totals.items() if k.startswith("area_")}, sched


def test_pipeline_rows_and_busy_cycles_are_the_schedules(tmp_path, capsys):
    # The trial: with `allocation: auto` the totals were the chosen schedule's but layers.csv and cores.csv
    # had the one-array rows at the equal DRAM share (64 / 2 = 32 B/cycle), so a core's busy cycles
    # exceeded the makespan. The chain above with c1 a 32x32 WS core, auto: every layer on c0 (8,176 cycles;
    # the greedy c0, c1 11,200, every layer on c1 14,224: tests/test_multicore_allocation.py, hand-derived).
    # At the full 64 B/cycle fc0: load [0, 1,028), compute [1,028, 4,084), write [4,084, 4,088); fc1 [4,088,
    # 8,176) the same. Each row: total 4,088 = its window, compute 3,056, stall 1,032 = DRAM stall (1,028 + 4
    # on the channel: dram_busy_cycles), on-chip stall 0; c0 busy 8,176 = the makespan, c1 0. Before: each
    # row 5,120 = 2,056 + 3,056 + 8 (65,792 and 256 B at 32 B/cycle), c0 busy 10,240 > 8,176. The explicit
    # map {fc0: c0, fc1: c0} is the same schedule: every file equal to the byte (summary.json: its totals).
    outs = {}
    for name, alloc in (("auto", "auto"), ("map", "{fc0: c0, fc1: c0}")):
        d = tmp_path / name
        d.mkdir()
        arch, wl = _files(d, alloc)
        path = d / "a.yaml"
        text = path.read_text().replace("  list: [{name: c0}, {name: c1}]", (
            "  arrays: {small: {array: {rows: 32, cols: 32, dataflow: ws}}}\n"
            "  list: [{name: c0}, {name: c1, array: small}]"))
        assert "small" in text
        path.write_text(text)
        assert main(["simulate", arch, wl, "--out", str(d / "o")]) == 0
        outs[name] = d / "o"
    capsys.readouterr()
    o = outs["auto"]
    rows = _csv(o / "layers.csv")
    assert [r["layer"] for r in rows] == ["c0/fc0", "c0/fc1"]
    assert [(int(r["start_cycle"]), int(r["stop_cycle"])) for r in rows] == [(0, 4_088), (4_088, 8_176)]
    for r in rows:
        assert (int(r["total_cycles"]), int(r["compute_cycles"]), int(r["stall_cycles"])) == (4_088, 3_056,
                                                                                            1_032)
        assert (int(r["dram_stall_cycles"]), int(r["onchip_stall_cycles"])) == (1_032, 0)
        assert float(r["latency_us"]) == pytest.approx(4.088, rel=1e-12)  # 1,000 MHz
        assert float(r["utilization"]) == pytest.approx(65_536 / (4_088 * 4_096), rel=1e-12)
    cores = {r["core"]: r for r in _csv(o / "cores.csv")}
    assert (int(cores["c0"]["busy_cycles"]), int(cores["c1"]["busy_cycles"])) == (8_176, 0)
    assert (int(cores["c0"]["compute_cycles"]), int(cores["c0"]["dram_cycles"])) == (6_112, 2_064)
    assert (int(cores["c0"]["node_array_cycles"]), int(cores["c0"]["node_dram_stall_cycles"])) == (8_176,
                                                                                                  2_064)
    t = json.loads((o / "summary.json").read_text())
    assert "allocation auto: every layer on c0" in " ".join(t["notes"])
    assert t["totals"]["total_cycles"] == 8_176
    assert t["totals"]["array_cycles"] == 8_176 and t["totals"]["dram_stall_cycles"] == 2_064
    for f in ("layers.csv", "cores.csv", "energy.csv", "timeline.csv", "tensors.csv", "bandwidth.csv"):
        assert (o / f).read_text() == (outs["map"] / f).read_text(), f
    m = json.loads((outs["map"] / "summary.json").read_text())
    assert {k: v for k, v in t["totals"].items() if k != "model_cpu_s"} == \
        {k: v for k, v in m["totals"].items() if k != "model_cpu_s"}
