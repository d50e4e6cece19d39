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
    # two slots: DMA-bound, the DMA never idles once started (at most one tile's compute exposed)
    assert 247808 + 50176 <= db.total_cycles < 247808 + 50176 + db.compute_cycles // 36 * 2


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
    assert str(e.value) == ("a.yaml: memory.levels[2]: expected no double_buffered on the dram level (whether "
                            "DMA transfers overlap compute is set by the on-chip levels DRAM fills: their "
                            "double_buffered), found False")
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
