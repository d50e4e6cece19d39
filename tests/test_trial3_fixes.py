"""Defects a third fresh-user trial found: ``double_buffered: false`` that changed the buffer size but not
the timing, a uniform bit override that also replaced the KV cache's bits, YAML 1.1 scalars (``yes``,
``1e-9``), sweep keys into ``memory.levels``, an unbounded ``--workers`` and three messages."""

from __future__ import annotations

import pytest

import hwsim
from hwsim.errors import SpecError
from hwsim.spec import ArchSpec, Workload, load_arch, validate
from tests.utils import ROOT

ONE_CONV = {"name": "one_conv", "weight_bits": 8, "act_bits": 8,
            "layers": [{"name": "c", "op": "conv2d", "in_channels": 64, "out_channels": 64, "kernel": 3,
                        "in_h": 28, "in_w": 28, "stride": 1, "padding": 1}]}


def _edge(db: bool, bw: float):
    return load_arch(ROOT / "arch/edge_32x32.yaml").replace(
        **{"memory.double_buffered": db, "memory.dram.bandwidth_bytes_per_cycle": bw})


def test_single_buffering_serializes_loads_compute_and_writes():
    # edge_32x32 (32x32 ws, 64 KiB per operand), conv 64->64 3x3 on 28x28: GEMM M 784, K 576, N 64.
    # Tensors: filter 576 x 64 = 36,864 B, ifmap 64 x 28 x 28 = 50,176 B, ofmap 784 x 64 = 50,176 B.
    # Single buffered, each operand has all 64 KiB = 65,536 B: every tensor fits, so DRAM reads each once,
    # 36,864 + 50,176 = 87,040 B, and writes 50,176 B. Double buffered, half (32,768 B) holds a tile: the
    # filter does not fit and is read once per M tile (4 x 36,864 = 147,456 B), the ifmap twice (100,352 B):
    # 247,808 B. Compute, single: 36 folds (18 row x 2 col) x (784 steady + 2 M tiles x (63 fill + 31
    # drain)) = 36 x 972 = 34,992 cycles.
    # One slot: load i waits until tile i-1 is computed and written, so at 1 B/cycle the layer takes
    # compute + every DMA byte = 34,992 + 87,040 + 50,176 = 172,208 cycles (before the fix the flag was
    # ignored by the timing and loads overlapped compute: 87,040 + 50,176 = 137,216 + a little).
    sb = hwsim.simulate(_edge(False, 1), Workload.model_validate(ONE_CONV)).layers.iloc[0]
    assert (sb.dram_read_bytes, sb.dram_write_bytes, sb.compute_cycles) == (87040, 50176, 34992)
    assert sb.total_cycles == 34992 + 87040 + 50176
    db = hwsim.simulate(_edge(True, 1), Workload.model_validate(ONE_CONV)).layers.iloc[0]
    assert (db.dram_read_bytes, db.dram_write_bytes) == (247808, 50176)
    # two slots: 36 tiles (one per fold), each computing 41,760 / 36 = 1,160 cycles while the next tile's
    # 247,808 / 36 = 6,884 B load at 1 B/cycle: the DMA never waits for the array, from the first load to
    # the last write, and the layer takes exactly its DMA time, 247,808 + 50,176 = 297,984 cycles
    assert (db.compute_cycles, db.folds) == (41760, 36)
    assert db.total_cycles == 247808 + 50176


def test_double_buffered_flag_per_level_and_never_ignored():
    base = {"name": "t", "clock_mhz": 100, "array": {"rows": 4, "cols": 4, "dataflow": "ws"},
            "pe": {"operand_bits": 8, "acc_bits": 32}}

    def levels(db_outer, db_inner=True, dram_extra=None):
        return {**base, "memory": {"levels": [
            {"name": "rf", "kind": "rf", "instances": "per_pe", "operands": ["filter"], "size_bytes": 4,
             "double_buffered": db_inner},
            {"name": "buf", "kind": "sram", "operands": ["ifmap", "filter", "ofmap"], "size_kib": 64,
             "double_buffered": db_outer},
            {"name": "dram", "kind": "dram", "operands": ["ifmap", "filter", "ofmap"],
             "bandwidth_bytes_per_cycle": 8, **(dram_extra or {})}]}}

    # the level DRAM fills governs the DMA overlap; a register file inside it does not
    for outer, inner, want in ((True, False, True), (False, True, False)):
        mem = validate(ArchSpec, levels(outer, inner), "<t>").memory
        assert [lv.name for lv in mem.dma_levels] == ["buf"]
        assert mem.dma_double_buffered is want
    with pytest.raises(SpecError) as e:
        validate(ArchSpec, levels(True, dram_extra={"double_buffered": False}), "a.yaml")
    assert str(e.value) == ("a.yaml: memory.levels[2]: expected no double_buffered on the dram level "
                            "(whether DMA transfers overlap compute is set by the on-chip levels DRAM fills: "
                            "their double_buffered), found False")
    bad = levels(True)
    bad["memory"]["double_buffered"] = False
    with pytest.raises(SpecError) as e:
        validate(ArchSpec, bad, "a.yaml")
    assert str(e.value).startswith("a.yaml: memory: expected double_buffered on each on-chip level with "
                                   "levels")
    # round trips (replace() dumps every field) keep validating
    a = validate(ArchSpec, levels(False), "<t>").replace(**{"array.rows": 8})
    assert a.memory.dma_double_buffered is False and a.memory.double_buffered is None
    assert _edge(False, 2).memory.dma_double_buffered is False
    assert load_arch(ROOT / "arch/edge_32x32.yaml").memory.dma_double_buffered is True


def _kv_reads(res) -> int:
    rows = res.layers.set_index("layer")
    return int(rows.loc[["h.0.attn.scores", "h.0.attn.context"], "dram_filter_read_bytes"].sum())


@pytest.mark.parametrize("kv", [8, 2])
def test_uniform_override_keeps_kv_bits_and_equals_the_file(kv):
    from hwsim.spec import transformer_workload

    arch = load_arch(ROOT / "arch/tpu_v1.yaml").replace(**{"pe.min_bits": 2})
    block = dict(model="gpt2_small", phase="decode", context=256, kv_bits=kv, n_layer=1, lm_head=False)
    base = transformer_workload(weight_bits=8, act_bits=8, **block)
    over = hwsim.simulate(arch, base, weight_bits=4, act_bits=4)
    in_file = hwsim.simulate(arch, transformer_workload(weight_bits=4, act_bits=4, **block))
    # one policy, one answer: the override is what the same bits written in the file give
    drop = {"model_cpu_s"}
    assert {k: v for k, v in over.totals.items() if k not in drop} == \
        {k: v for k, v in in_file.totals.items() if k not in drop}
    # the KV cache of one decoder block: K and V, 256 tokens x 12 heads x 64 = 196,608 elements each, read
    # at kv_bits whatever the weights' bits: 393,216 x kv / 8 B (8 bits: 393,216 B; 2 bits: 98,304 B)
    assert _kv_reads(over) == 393216 * kv // 8
    # the weights do follow the override: q, k, v, o 768 x 768 and fc1/fc2 768 x 3072 = 7,077,888 weights,
    # 4 bits each = 3,538,944 B (8 bits without the override: 7,077,888 B)
    fcs = [f"h.0.{n}" for n in ("attn.q", "attn.k", "attn.v", "attn.o", "mlp.fc1", "mlp.fc2")]
    for res, wb in ((over, 4), (hwsim.simulate(arch, base), 8)):
        got = int(res.layers.set_index("layer").loc[fcs, "dram_filter_read_bytes"].sum())
        assert got == 7077888 * wb // 8
    assert base.transformer["kv_bits"] == kv


def test_sweep_uniform_policy_keeps_the_kv_axis(tmp_path):
    # a uniform W4A4 policy against a workload.transformer.kv_bits axis: the KV cache of one GPT-2 block
    # (393,216 elements, see above) is read at 8 and at 4 bits, 393,216 x 4 / 8 = 196,608 B apart, and the
    # new token's K and V (2 x 768 elements) are written to it at kv_bits, 768 B apart: 197,376 B. Before
    # the fix the policy's table set the KV GEMMs to 4 bits too and only the writes differed
    from hwsim.explore import load_sweep
    from hwsim.explore._runner import evaluate_hardware

    (tmp_path / "w.yaml").write_text("name: g\ntransformer: {model: gpt2_small, phase: decode, context: 256, "
                                     "n_layer: 1, lm_head: false, kv_bits: 8}\n")
    (tmp_path / "s.yaml").write_text(
        f"name: s\narch: {ROOT / 'arch/multicore_4x.yaml'}\nworkload: w.yaml\naxes:\n"
        "  workload.transformer.kv_bits: [8, 4]\nprecision: {uniform: [[4, 4]]}\nbaselines: [[4, 4]]\n")
    rs = load_sweep(tmp_path / "s.yaml")
    # the policy's table (and the budgets' pre-check on it) already has the file's 8-bit KV cache
    assert (rs.points[0].bits["h.0.attn.scores"], rs.points[0].bits["h.0.attn.q"]) == ((8, 4), (4, 4))
    rows = {r["workload.transformer.kv_bits"]: r for r in (evaluate_hardware(rs, p) for p in rs.points)}
    assert rows[8]["dram_bytes"] - rows[4]["dram_bytes"] == 196608 + 768
    assert (rows[8]["w_h.0.attn.scores"], rows[4]["w_h.0.attn.scores"], rows[4]["w_h.0.attn.q"]) == (8, 4, 4)


@pytest.mark.parametrize(("text", "message"), [
    ("yes", "memory.double_buffered: expected true or false, found 'yes' (a string)"),
    ("off", "memory.double_buffered: expected true or false, found 'off' (a string)"),
])
def test_yaml_booleans_are_only_true_and_false(tmp_path, text, message):
    src = (ROOT / "arch/edge_32x32.yaml").read_text()
    src = src.replace("double_buffered: true", f"double_buffered: {text}")
    (tmp_path / "a.yaml").write_text(src)
    with pytest.raises(SpecError) as e:
        load_arch(tmp_path / "a.yaml")
    assert str(e.value) == f"{tmp_path / 'a.yaml'}: {message}"


def test_yaml_1_2_floats_without_a_dot(tmp_path):
    # YAML 1.2 floats: 1e-9, -2E+3, 1.5e5 are numbers (PyYAML's YAML 1.1 regex wanted a dot and a signed
    # exponent: strings); a quoted
    # one stays a string; then the range checks apply: 1e300 KiB is above 2**53
    from hwsim.spec import load_yaml

    (tmp_path / "x.yaml").write_text("a: 1e-9\nb: -2E+3\nc: 1_000\nd: '1e-9'\ne: TRUE\nf: 1.5e5\ng: 12e\n")
    assert load_yaml(tmp_path / "x.yaml") == {"a": 1e-9, "b": -2000.0, "c": "1_000", "d": "1e-9", "e": True,
                                              "f": 150000.0, "g": "12e"}  # 1_000: a string in YAML 1.2
    src = (ROOT / "arch/edge_32x32.yaml").read_text()
    (tmp_path / "a.yaml").write_text(src.replace("per_cycle: 16", "per_cycle: 5e-1"))
    assert load_arch(tmp_path / "a.yaml").memory.dram_level.read_bw == 4.0
    (tmp_path / "b.yaml").write_text(src.replace("ifmap_sram: {size_kib: 64", "ifmap_sram: {size_kib: 1e300"))
    with pytest.raises(SpecError) as e:
        load_arch(tmp_path / "b.yaml")
    assert str(e.value) == (f"{tmp_path / 'b.yaml'}: memory.ifmap_sram.size_kib: expected a number of "
                            "magnitude at most 2**53 (9,007,199,254,740,992), found 1e300 (line 20)")
    # 1e-9 B/cycle is now a number and meets the bandwidth's bound (before: one conv took 3e14 cycles at
    # 1e-9, and 1e-13 overflowed the 64-bit cycle counts in summary.json: an internal error)
    (tmp_path / "c.yaml").write_text(src.replace("per_cycle: 16", "per_cycle: 1e-9"))
    with pytest.raises(SpecError) as e:
        load_arch(tmp_path / "c.yaml")
    assert str(e.value) == (f"{tmp_path / 'c.yaml'}: memory.dram.bandwidth_bytes_per_cycle: expected a "
                            "bandwidth of at least 2**-10 bytes/cycle (one byte per 1,024 cycles) or "
                            "'unbounded', found 1e-09")


def test_sweep_keys_into_memory_levels(tmp_path):
    # zigzag_tpu_like is written with levels (rf_128b, rf_2b, sram_2mb, dram): its DRAM is levels[3] or
    # levels.dram. One fc 1024 x 1024 at M 1: 1,048,576 weight bytes dominate the DRAM traffic, so halving the
    # bandwidth (8 -> 4 B/cycle) must change the cycles; the two spellings give the same arch
    from hwsim.explore import load_sweep
    from hwsim.explore._runner import evaluate_hardware

    a = load_arch(ROOT / "arch/zigzag_tpu_like.yaml")
    assert a.replace(**{"memory.levels[3].bandwidth_bytes_per_cycle": 4}) == \
        a.replace(**{"memory.levels.dram.bandwidth_bytes_per_cycle": 4})
    assert a.replace(**{"memory.levels.sram_2mb.size_kib": 1024}).memory.levels[2].size_kib == 1024
    for bad in ("memory.levels[4].size_kib", "memory.levels.nope.size_kib", "memory.levels[2].nokey"):
        with pytest.raises(SpecError) as e:
            a.replace(**{bad: 1})
        assert str(e.value) == f"<arch>: {bad}: expected an existing arch key, found '{bad}'"
    (tmp_path / "w.yaml").write_text("name: f\nlayers:\n  - {name: fc, op: fc, m: 1, k: 1024, n: 1024}\n")
    (tmp_path / "s.yaml").write_text(
        f"name: s\narch: {ROOT / 'arch/zigzag_tpu_like.yaml'}\nworkload: w.yaml\naxes:\n"
        "  memory.levels[3].bandwidth_bytes_per_cycle: [8, 4]\nprecision: {uniform: [[8, 8]]}\n"
        "baselines: [[8, 8]]\n")
    rs = load_sweep(tmp_path / "s.yaml")
    rows = [evaluate_hardware(rs, p) for p in rs.points]
    assert [r["memory.levels[3].bandwidth_bytes_per_cycle"] for r in rows] == [8, 4]
    assert rows[0]["dram_bytes"] == rows[1]["dram_bytes"]
    assert rows[1]["total_cycles"] > rows[0]["total_cycles"] >= rows[0]["dram_bytes"] // 8
    # one level by index and by name on two axes: the second silently won before (both points ran at 50)
    assert a.key_path("memory.levels.sram_2mb.size_kib") == "memory.levels[2].size_kib"
    (tmp_path / "d.yaml").write_text(
        f"name: d\narch: {ROOT / 'arch/zigzag_tpu_like.yaml'}\nworkload: w.yaml\naxes:\n"
        "  memory.levels[2].size_kib: [100, 300]\n  memory.levels.sram_2mb.size_kib: [50]\n"
        "precision: {uniform: [[8, 8]]}\nbaselines: [[8, 8]]\n")
    with pytest.raises(SpecError) as e:
        load_sweep(tmp_path / "d.yaml")
    assert str(e.value) == (f"{tmp_path / 'd.yaml'}: axes: expected each arch key once, found "
                            "'memory.levels[2].size_kib and memory.levels.sram_2mb.size_kib' (both are "
                            "memory.levels[2].size_kib)")


def test_workers_bounded_and_the_pool_capped_at_the_points(tmp_path, capsys, monkeypatch):
    import os

    from hwsim.cli import main
    from hwsim.explore import _runner

    limit = 8 * (os.cpu_count() or 1)
    (tmp_path / "w.yaml").write_text("name: f\nlayers:\n  - {name: fc, op: fc, m: 1, k: 64, n: 64}\n")
    (tmp_path / "s.yaml").write_text(f"name: s\narch: {ROOT / 'arch/edge_32x32.yaml'}\nworkload: w.yaml\n"
                                     "axes:\n  array.rows: [16, 32]\nprecision: {uniform: [[8, 8]]}\n"
                                     "baselines: [[8, 8]]\n")
    with pytest.raises(SystemExit) as ex:
        main(["sweep", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "o"), "--workers", str(limit + 1)])
    assert ex.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"hwsim: error: command line: --workers: expected at most {limit} worker processes (8 x the "
        f"{os.cpu_count() or 1} cores; a cluster: --scheduler), found {limit + 1} (hwsim sweep --help for "
        "usage)")
    with pytest.raises(SpecError) as e:
        hwsim.sweep(tmp_path / "s.yaml", out=tmp_path / "o", workers=100000)
    assert str(e.value) == (f"hwsim.sweep(): workers: expected a whole number of worker processes from 1 to "
                            f"{limit} (8 x the {os.cpu_count() or 1} cores), found 100000")
    started = []

    class Recording(_runner._LocalPool):
        def __init__(self, workers, rs):
            started.append(workers)
            super().__init__(workers, rs)

    monkeypatch.setattr(_runner, "_LocalPool", Recording)
    hwsim.sweep(tmp_path / "s.yaml", out=tmp_path / "o", workers=limit)
    assert started == [2]  # two points: two processes, not 8 per core


def test_small_messages(tmp_path, capsys):
    from hwsim.cli import main

    arch = ROOT / "arch/edge_32x32.yaml"
    wl = Workload.model_validate(ONE_CONV)
    for key, v in (("weight_bits", 0), ("act_bits", 17)):
        with pytest.raises(SpecError) as e:
            hwsim.simulate(arch, wl, **{key: v})
        assert str(e.value) == (f"hwsim.simulate(): {key}: expected bits between 1 and 16 (the arch's PEs "
                                f"then take pe.min_bits..pe.operand_bits), found {v}")
    # in range for a workload but not for edge_32x32's PEs (min_bits 2, operand_bits 8): the arch says so
    assert main(["simulate", str(arch), str(ROOT / "workloads/resnet18.yaml"), "--wbits", "1", "--out",
                 str(tmp_path / "o")]) == 2
    assert "edge_32x32.yaml: pe: expected operands of 2..8 bits (min_bits..operand_bits, precision_mode " \
           "fixed), found weight_bits 1 in layer conv1" in capsys.readouterr().err
    # a key named 'list' is a key, not one of pydantic's union-branch labels
    (tmp_path / "c.yaml").write_text(arch.read_text() + "cores:\n  list: []\n")
    with pytest.raises(SpecError) as e:
        load_arch(tmp_path / "c.yaml")
    assert str(e.value) == f"{tmp_path / 'c.yaml'}: cores.list: expected at least one item, found []"


def test_yaml_1_2_integers(tmp_path):
    # YAML 1.2 core schema: leading zeros are decimal (040 = 40; YAML 1.1 read octal 32 and ran a 32-row
    # array for rows: 040), 0o764 = 7*64 + 6*8 + 4 = 500 octal, 0x1F = 31; YAML 1.1's 0b100000, 1_000 and
    # sexagesimal 8:20 (= 8*60 + 20 = 500 for YAML 1.1) are strings, which an integer key refuses
    from hwsim.spec import load_yaml

    (tmp_path / "x.yaml").write_text("a: 040\nb: 0o764\nc: 0x1F\nd: 0b100000\ne: 8:20\nf: -007\n")
    assert load_yaml(tmp_path / "x.yaml") == {"a": 40, "b": 500, "c": 31, "d": "0b100000", "e": "8:20",
                                              "f": -7}
    src = (ROOT / "arch/edge_32x32.yaml").read_text()
    assert "rows: 32" in src and "clock_mhz: 500" in src
    (tmp_path / "r.yaml").write_text(src.replace("rows: 32", "rows: 040"))
    assert load_arch(tmp_path / "r.yaml").array.rows == 40
    (tmp_path / "c.yaml").write_text(src.replace("clock_mhz: 500", "clock_mhz: 8:20"))
    with pytest.raises(SpecError) as e:
        load_arch(tmp_path / "c.yaml")
    assert str(e.value).startswith(f"{tmp_path / 'c.yaml'}: clock_mhz: expected a number, found '8:20' "
                                   "(a string)")
