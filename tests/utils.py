"""Helpers shared by the tests (Amaranth's tests/utils.py idea)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_arch(**over):
    """An arch spec in memory: 4x4 WS, 8-bit fixed PEs, 64 KiB buffers, unbounded DRAM, with dotted
    overrides."""
    from hwsim.spec import ArchSpec, validate

    data = {
        "name": "t", "clock_mhz": 100,
        "array": {"rows": 4, "cols": 4, "dataflow": "ws"},
        "pe": {"operand_bits": 8, "acc_bits": 32},
        "memory": {"ifmap_sram": {"size_kib": 64}, "filter_sram": {"size_kib": 64},
                   "ofmap_sram": {"size_kib": 64}, "dram": {"bandwidth_bytes_per_cycle": "unbounded"}},
    }
    arch = validate(ArchSpec, data, "<test>")
    return arch.replace(**over) if over else arch
