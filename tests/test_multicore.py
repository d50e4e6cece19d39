"""Several cores (arch `cores:`, hwsim/_multicore.py): one core equals one array, hand-derived splits and
network traffic, bad input, decode memory-bound."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hwsim._pipeline import simulate_workload
from hwsim.spec import Workload, load_arch, load_workload_yaml, transformer_workload

ROOT = Path(__file__).resolve().parents[1]
ARCH = load_arch(ROOT / "arch/multicore_4x.yaml")


def _cores(arch, names, **noc):
    cores = arch.cores.model_dump()
    cores["list"] = [{"name": n} for n in names]
    cores["noc"] = {**cores["noc"], "links": [["hub", n] for n in names], **noc}
    return arch.replace(cores=cores)


def _fc_chain(n_layers=1):
    layers = [{"name": f"fc{i}", "op": "fc", "m": 1, "k": 256, "n": 256} for i in range(n_layers)]
    return Workload.model_validate({"name": "chain", "layers": layers})


@pytest.mark.parametrize("workload", ["resnet18", "gpt2_2layers"])
def test_one_core_equals_one_array(workload):
    wl = (transformer_workload(model="gpt2_small", phase="decode", context=512, n_layer=2)
          if workload == "gpt2_2layers" else load_workload_yaml(ROOT / f"workloads/{workload}.yaml"))
    single = simulate_workload(ARCH.replace(cores=None), wl)
    one = simulate_workload(_cores(ARCH, ["c0"], pj_per_bit_per_hop=0.0), wl)
    for k in ("total_cycles", "dram_read_bytes", "dram_write_bytes", "energy_pj", "macs", "stall_cycles"):
        assert one.totals[k] == single.totals[k], k
    assert [r["total_cycles"] for r in one.rows] == [r["total_cycles"] for r in single.rows]
    assert [r["start_cycle"] for r in one.rows] == [r["start_cycle"] for r in single.rows]
    # with the network priced: every DRAM bit crosses one hop (hub -> c0) at 0.06 pJ
    priced = simulate_workload(_cores(ARCH, ["c0"]), wl)
    dram = single.totals["dram_read_bytes"] + single.totals["dram_write_bytes"]
    assert priced.totals["energy_noc_pj"] == pytest.approx(dram * 8 * 0.06, rel=1e-12)
    assert priced.totals["energy_pj"] == pytest.approx(single.totals["energy_pj"] + dram * 8 * 0.06,
                                                       rel=1e-12)


def test_split_n_over_two_cores_hand_derived():
    # fc 1x256 x 256x256, int8, reuse none, split n over 2 cores: each core reads its half of the weights
    # (256*128 = 32,768 B), the whole input (256 B) and writes its half of the output (128 B): 33,152 B per
    # core, 66,304 B in all (one core: 65,536 + 256 + 256 = 66,048; the input is fetched by both).
    # Network: that traffic over one hop each, 66,304 * 8 * 0.06 = 31,825.92 pJ. The two cores share the
    # 64 B/cycle channel: at least 66,304 / 64 = 1,036 cycles.
    arch = _cores(ARCH.replace(**{"timing.reuse": "none"}), ["c0", "c1"])
    res = simulate_workload(arch, _fc_chain())
    assert res.totals["dram_read_bytes"] + res.totals["dram_write_bytes"] == 66_304
    assert [c["dram_bytes"] for c in res.core_rows] == [33_152, 33_152]
    assert res.totals["noc_bytes"] == 66_304
    assert res.totals["energy_noc_pj"] == pytest.approx(31_825.92)
    assert res.totals["total_cycles"] >= 1_036
    assert [r["n"] for r in res.rows] == [128, 128]


def test_all_gather_when_the_input_stays_on_chip():
    # two chained fcs, inter_layer, 2 cores: fc0's output (256 B at 8 bits) stays on chip, split over the
    # cores; fc1 on each core needs the other core's 128 B: 2 x 128 = 256 B of network traffic beyond DRAM
    arch = _cores(ARCH, ["c0", "c1"])
    res = simulate_workload(arch, _fc_chain(2))
    dram = res.totals["dram_read_bytes"] + res.totals["dram_write_bytes"]
    assert res.totals["noc_bytes"] - dram == 256


def test_gpt2_decode_memory_bound_on_every_core():
    res = simulate_workload(ARCH, load_workload_yaml(ROOT / "workloads/gpt2_small_decode.yaml"))
    assert [c["bound"] for c in res.core_rows] == ["memory"] * 4
    # the DRAM time (all bytes over the 64 B/cycle channel) is within 10% of the makespan
    dram = res.totals["dram_read_bytes"] + res.totals["dram_write_bytes"]
    assert dram / 64 <= res.totals["total_cycles"] <= 1.1 * dram / 64


@pytest.mark.parametrize("edit, key", [
    ("  list: [{name: c0, array: big}]",
     "cores: expected core 'c0' with array 'main' or one of cores.arrays"),
    ("  list: [{name: c0}]\n  noc: {links: [[hub, c0], [c0, c9]]}", "to 'c9', which is no core"),
    ("  list: [{name: c0}, {name: c1}, {name: c2}]", "cores.split: expected a dimension the 3 cores divide"),
    ("  list: [{name: c0}]\n  arrays: {small: {array: {rows: 0}}}", "cores.arrays.small.array.rows"),
])
def test_bad_cores(tmp_path, edit, key):
    text = (ROOT / "arch/multicore_4x.yaml").read_text()
    head = text[:text.index("cores:")]
    p = tmp_path / "a.yaml"
    p.write_text(head + "cores:\n" + edit + "\n")
    r = subprocess.run([sys.executable, "-m", "hwsim", "simulate", str(p),
                        str(ROOT / "workloads/resnet18.yaml"),
                        "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0], r.stderr


def test_sweep_over_cores_and_context(tmp_path):
    # workload.transformer.KEY axes regenerate the workload per point; cores.list is an arch axis. One GPT-2
    # layer without LM head: its KV-cache read grows by 2 (K, V) x 768 B per token of context (8-bit cache),
    # so 512 - 256 more tokens add 393,216 B, on 1 core and on 2 alike (the split does not change the cache
    # bytes: each core reads its heads' share)
    from hwsim.explore import load_sweep
    from hwsim.explore._runner import evaluate_hardware

    (tmp_path / "w.yaml").write_text("name: g\ntransformer: {model: gpt2_small, phase: decode, context: 256, "
                                     "n_layer: 1, lm_head: false}\n")
    (tmp_path / "s.yaml").write_text(
        f"name: s\narch: {ROOT / 'arch/multicore_4x.yaml'}\nworkload: w.yaml\naxes:\n"
        "  cores.list: [[{name: c0}], [{name: c0}, {name: c1}]]\n  workload.transformer.context: [256, 512]\n"
        "precision: {uniform: [[8, 8]]}\nbaselines: [[8, 8]]\n")
    rs = load_sweep(tmp_path / "s.yaml")
    rows = [evaluate_hardware(rs, p) for p in rs.points]
    assert [r["status"] for r in rows] == ["ok"] * 4
    by = {(len(r["cores.list"]), r["workload.transformer.context"]): r for r in rows}
    for n in (1, 2):
        assert by[(n, 512)]["dram_bytes"] - by[(n, 256)]["dram_bytes"] == 2 * 768 * 256
    assert by[(2, 512)]["total_cycles"] < by[(1, 512)]["total_cycles"]
    (tmp_path / "bad.yaml").write_text(
        f"name: s\narch: {ROOT / 'arch/multicore_4x.yaml'}\nworkload: w.yaml\naxes:\n"
        "  workload.transformer.context: [256, 4096]\n")
    from hwsim.errors import SpecError

    with pytest.raises(SpecError,
                       match=r"axes.workload.transformer.context: expected at most the model's 1024"):
        load_sweep(tmp_path / "bad.yaml")


def test_heterogeneous_cores_each_run_their_own_array():
    # c0: the arch's 64x64, c1: a 32x32 type, one tile per layer (timing.max_tiles_per_layer: 1), reuse none.
    # split n: each takes n = 128 of the 256 outputs and reads 128 x 256 weights + the 256 B input = 33,024 B
    # (516 cycles on the shared 64 B/cycle channel) and writes 128 B (2 cycles). Compute (WS, m = 1): a fold
    # fills R weight rows then streams m + R + C - 2 cycles: c0 8 folds x (64 + 127) = 1,528; c1 32 folds x
    # (32 + 63) = 3,040. The channel serves first come (ties: core order): c0 loads [0, 516), c1 waits,
    # [516, 1,032); c0 computes [516, 2,044), writes [2,044, 2,046); c1 computes [1,032, 4,072), writes
    # [4,072, 4,074): the makespan. Alone on half the channel (32 B/cycle) each would take 1,032 + compute
    # + 4: 2,564 and 4,076 cycles (the old equal-share model): sharing lets c0 use the whole channel first.
    cores = ARCH.cores.model_dump()
    cores.update(arrays={"small": {"array": {"rows": 32, "cols": 32}}}, list=[{"name": "c0"},
                 {"name": "c1", "array": "small"}])
    one_tile = {"timing.reuse": "none", "timing.max_tiles_per_layer": 1}
    arch = ARCH.replace(cores=cores, **one_tile)
    res = simulate_workload(arch, _fc_chain())
    assert [r["compute_cycles"] for r in res.rows] == [1_528, 3_040]
    assert [c["busy_cycles"] for c in res.core_rows] == [2_046, 4_074]
    assert [(r["start_cycle"], r["stop_cycle"]) for r in res.rows] == [(0, 2_046), (0, 4_074)]
    assert res.totals["total_cycles"] == 4_074
    half = Workload.model_validate({"name": "h", "layers": [{"name": "fc0", "op": "fc", "m": 1, "k": 256,
                                                             "n": 128}]})
    base = ARCH.replace(cores=None, **one_tile, **{"memory.dram.bandwidth_bytes_per_cycle": 32})
    alone = [simulate_workload(base, half).totals["total_cycles"],
             simulate_workload(base.replace(**{"array.rows": 32, "array.cols": 32}),
                               half).totals["total_cycles"]]
    assert alone == [2_564, 4_076]
    assert [(c["rows"], c["cols"]) for c in res.core_rows] == [(64, 64), (32, 32)]


@pytest.mark.parametrize("split", ["n", "m"])
def test_shared_dram_channel_hand_derived(split):
    # 2 cores, fc0 -> fc1 (int8, k = n = 256), reuse none, one tile per layer, DRAM 64 B/cycle shared, links
    # 64 B/cycle (a transfer holds the channel and its core's link: max(bytes/64, bytes/64) cycles).
    # split n (m = 1): a core's part is n = 128: loads 128 x 256 + 256 = 33,024 B (516 cycles), computes
    # 8 folds x (64 + 1 + 64 + 64 - 2) = 1,528 cycles, writes 128 B (2 cycles). The loads serialize on the
    # channel: c0 [0, 516), c1 [516, 1,032); computes c0 [516, 2,044), c1 [1,032, 2,560); writes c0
    # [2,044, 2,046), c1 [2,560, 2,562). fc1 reads the whole fc0 output, so on both cores it starts when the
    # last core's fc0 ends, 2,562; then the same pattern: loads c0 [2,562, 3,078), c1 [3,078, 3,594), computes
    # to 4,606 and 5,122, writes end 4,608 and 5,124: the makespan. (Old model, bandwidth / 2 and a barrier:
    # 2 x (1,032 + 1,528 + 4) = 5,128.)
    # split m (m = 2): a core's part is m = 1 with all the weights: 65,536 + 256 = 65,792 B (1,028 cycles),
    # 16 folds x 191 = 3,056 cycles, a 256 B write (4 cycles). Loads c0 [0, 1,028), c1 [1,028, 2,056);
    # computes c0 [1,028, 4,084), c1 [2,056, 5,112); c0 writes [4,084, 4,088) and, its rows needing only its
    # own fc0 (no barrier), loads fc1 [4,088, 5,116); c1's write, ready at 5,112, waits: [5,116, 5,120), its
    # load [5,120, 6,148); computes c0 [5,116, 8,172), c1 [6,148, 9,204); writes end 8,176 and 9,208.
    m = 1 if split == "n" else 2
    layers = [{"name": f"fc{i}", "op": "fc", "m": m, "k": 256, "n": 256} for i in range(2)]
    arch = _cores(ARCH.replace(**{"timing.reuse": "none", "timing.max_tiles_per_layer": 1}), ["c0", "c1"])
    c = arch.cores.model_dump()
    c["split"] = split
    res = simulate_workload(arch.replace(cores=c), Workload.model_validate({"name": "w", "layers": layers}))
    spans = {r["layer"]: (r["start_cycle"], r["stop_cycle"]) for r in res.rows}
    if split == "n":
        assert spans == {"c0/fc0": (0, 2_046), "c1/fc0": (0, 2_562), "c0/fc1": (2_562, 4_608),
                         "c1/fc1": (2_562, 5_124)}
        assert res.totals["total_cycles"] == 5_124
    else:
        assert spans == {"c0/fc0": (0, 4_088), "c1/fc0": (0, 5_120), "c0/fc1": (4_088, 8_176),
                         "c1/fc1": (5_120, 9_208)}
        assert res.totals["total_cycles"] == 9_208
    # the SimPy reference gives the same schedule
    ref = simulate_workload(arch.replace(cores=c, **{"timing.engine": "simpy"}),
                            Workload.model_validate({"name": "w", "layers": layers}))
    assert {r["layer"]: (r["start_cycle"], r["stop_cycle"]) for r in ref.rows} == spans


def _values(v):
    """A plotly JSON array: a list, or numpy's bytes in base64 (``{"dtype": ..., "bdata": ...}``)."""
    import base64

    import numpy as np

    return list(np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])) if isinstance(v, dict) else v


def _figures(html):
    """The plotly figures of a report page: {title text: (traces, layout)}, read from its JSON."""
    import json
    import re

    dec, out = json.JSONDecoder(), {}
    for m in re.finditer(r'Plotly\.newPlot\(\s*"fig\d+",\s*', html):
        traces, end = dec.raw_decode(html, m.end())
        layout, _ = dec.raw_decode(html, end + html[end:].index("{"))
        out[layout.get("title", {}).get("text", "")] = (traces, layout)
    return out


def test_report_has_the_roofline_and_timeline_per_core(tmp_path):
    # the split-n chain of test_shared_dram_channel_hand_derived: each core does 2 x 128 x 256 = 65,536 MACs
    # and moves 2 x (33,024 + 128) = 66,304 DRAM bytes: 0.98842 MACs/byte, far left of its ridge 4,096 MACs
    # per cycle / 32 B/cycle (its share of the 64 B/cycle channel) = 128: memory-bound, roof 0.98842 x 32 =
    # 31.63 MACs/cycle; achieved 65,536 / 5,124 cycles (the makespan) = 12.79 MACs/cycle
    from hwsim.report import simulate_report

    layers = [{"name": f"fc{i}", "op": "fc", "m": 1, "k": 256, "n": 256} for i in range(2)]
    arch = _cores(ARCH.replace(**{"timing.reuse": "none", "timing.max_tiles_per_layer": 1}), ["c0", "c1"])
    res = simulate_workload(arch, Workload.model_validate({"name": "w", "layers": layers}))
    figs = _figures(simulate_report(res, tmp_path / "report.html").read_text())
    traces, layout = next(v for k, v in figs.items() if k.startswith("Roofline per core"))
    cores = next(t for t in traces if t["name"] == "cores")
    assert cores["text"] == ["c0", "c1"]
    assert cores["x"] == pytest.approx([65_536 / 66_304] * 2)
    assert cores["y"] == pytest.approx([65_536 / 5_124] * 2)
    roof = next(t for t in traces if t["name"].startswith("roof c0, c1"))
    assert "4,096 MACs/cycle, 32 B/cycle, ridge 128" in roof["name"]
    assert max(_values(roof["y"])) == 4096 and layout["xaxis"]["type"] == "log"
    assert [c["bound"] for c in res.core_rows] == ["memory"] * 2
    assert [c["roof_macs_per_cycle"] for c in res.core_rows] == pytest.approx([65_536 / 66_304 * 32] * 2)
    # the timeline: one row per core and unit, the DRAM rows at the hand-derived transfers (c1 fc0's load
    # [516, 1,032) and write [2,560, 2,562); fc1's load [3,078, 3,594) and write [5,122, 5,124))
    traces, _ = next(v for k, v in figs.items() if k.startswith("Timeline per core"))
    by = {t["name"]: t for t in traces}
    assert list(by) == ["c0.array", "c0.dram", "c1.array", "c1.dram"]
    assert list(zip(by["c1.dram"]["base"], by["c1.dram"]["x"], strict=True)) == [(516, 2_046), (3_078, 2_046)]
    assert list(zip(by["c1.array"]["base"], by["c1.array"]["x"], strict=True)) == [(0, 2_562), (2_562, 2_562)]


@pytest.mark.parametrize("split", ["n", "m"])
def test_simpy_and_analytic_chip_engines_agree_on_a_transformer_block(split):
    # one GPT-2 block (prefill of 8 tokens: split m divides the rows) on the 4 cores, 8 tiles per layer: the
    # SimPy processes and the recurrence give every part the same start and stop cycles
    wl = transformer_workload(model="gpt2_small", phase="prefill", seq_len=8, n_layer=1, lm_head=False)
    c = ARCH.cores.model_dump()
    c["split"] = split
    arch = ARCH.replace(cores=c, **{"timing.max_tiles_per_layer": 8})
    fast = simulate_workload(arch, wl)
    ref = simulate_workload(arch.replace(**{"timing.engine": "simpy"}), wl)
    spans = [(r["start_cycle"], r["stop_cycle"]) for r in fast.rows + fast.vector_rows]
    assert spans == [(r["start_cycle"], r["stop_cycle"]) for r in ref.rows + ref.vector_rows]
    assert fast.totals["total_cycles"] == ref.totals["total_cycles"] > 0
    assert fast.timeline == ref.timeline


def test_noc_paths_by_hand():
    # hub - c0 - c1 - c2 (a chain) plus hub - c2: c2 is one hop from hub, c1 two (via c0 or c2: breadth
    # first with neighbours by name reaches c1 first from c0), c0 one; c0 -> c2 goes through hub or c1, both
    # two links: the name order takes c1 (visited from c0 before hub's other neighbours are expanded)
    from hwsim.spec import CoresConfig

    cfg = CoresConfig.model_validate({"list": [{"name": "c0"}, {"name": "c1"}, {"name": "c2"}],
                                      "noc": {"links": [["hub", "c0"], ["c0", "c1"], ["c1", "c2"],
                                                        ["hub", "c2"]]}})
    assert cfg.hops() == {"c0": 1, "c2": 1, "c1": 2}
    assert cfg.path("hub", "c1") == [("hub", "c0"), ("c0", "c1")]
    assert cfg.path("c0", "c2") == [("c0", "c1"), ("c1", "c2")]
    assert cfg.path("c2", "c2") == []


@pytest.mark.parametrize("split", ["n", "m"])
def test_decode_batch_over_cores_reads_each_sequence_cache_once(split):
    # One GPT-2 block, decode at context 256, batch 4, 8-bit KV, on the 4 cores. The attention GEMMs are
    # (1, 64) x (64, 256) per KV head and sequence: count = 12 heads * 4 sequences = 48, which the 4 cores
    # divide (split n: by heads x sequences; split m: m = 1 does not divide, so by the same copies, i.e.
    # each core its sequence). Each core: 12 copies, K read 12 * 64 * 256 B = 196,608; the chip reads
    # 4 * 196,608 = 786,432 B = 4 sequences * 256 tokens * 768 B, each sequence's K exactly once.
    wl = transformer_workload(model="gpt2_small", phase="decode", context=256, batch=4, kv_bits=8,
                              n_layer=1, lm_head=False)
    c = ARCH.cores.model_dump()
    c["split"] = split
    res = simulate_workload(ARCH.replace(cores=c), wl)
    parts = [r for r in res.rows if r["layer"].endswith("/h.0.attn.scores")]
    assert [(r["m"], r["groups"]) for r in parts] == [(1, 12)] * 4
    assert [r["dram_filter_read_bytes"] for r in parts] == [196_608] * 4
    ctx = [r for r in res.rows if r["layer"].endswith("/h.0.attn.context")]
    assert sum(r["dram_filter_read_bytes"] for r in ctx) == 786_432
