"""Energy per action: the table's points, the scaling rules (hand-derived), overrides and their sources."""

from __future__ import annotations

import math

import pytest

from hwsim.energy import action_energies, available_tech, layer_energy, load_tech
from hwsim.errors import SpecError
from hwsim.mapping import map_layer
from hwsim.spec import Gemm

from .utils import make_arch


def test_table_points_are_horowitz():
    # Horowitz, ISSCC 2014, 45 nm: 8-bit mult 0.2 pJ, 32-bit add 0.1 pJ, 64-bit read of an 8 KB SRAM 10 pJ
    t = load_tech("horowitz_45nm")
    assert t.mult_pj(8, 8) == pytest.approx(0.2)
    assert t.add_pj(32) == pytest.approx(0.1)
    assert t.add_pj(16) == pytest.approx(0.05)
    assert t.sram_access_pj(8, 64) == pytest.approx(10.0)
    assert t.sram_access_pj(1024, 64) == pytest.approx(100.0)
    assert t.dram_pj_per_bit == pytest.approx(1300 / 64)


def test_scaling_rules_by_hand():
    t = load_tech("horowitz_45nm")
    # multiply ~ b_a*b_w: 4x4 = 0.2 * 16/64 = 0.05 pJ; 2x8 = 0.2 * 16/64 = 0.05 pJ
    assert t.mult_pj(4, 4) == pytest.approx(0.05)
    assert t.mult_pj(2, 8) == pytest.approx(0.05)
    # add piecewise linear: 24 bits halfway between 16 (0.05) and 32 (0.1) -> 0.075
    assert t.add_pj(24) == pytest.approx(0.075)
    # SRAM log-log between 32 KiB (20 pJ) and 1024 KiB (100 pJ): 64 KiB -> 20 * 5**(1/5) = 27.59 pJ per 64 bits;
    # a 128-bit access costs twice that
    assert t.sram_access_pj(64, 64) == pytest.approx(20 * 5 ** 0.2)
    assert t.sram_access_pj(64, 128) == pytest.approx(2 * 20 * 5 ** 0.2)
    # 16 KiB: between 8 (10) and 32 (20): 10 * 2**0.5
    assert t.sram_access_pj(16, 64) == pytest.approx(10 * math.sqrt(2))


def test_overrides_replace_the_table_and_say_so():
    arch = make_arch(**{"energy.mult_8b_pj": 0.5, "memory.ifmap_sram.read_pj": 3.0,
                        "memory.dram.pj_per_bit": 10.0})
    ae = action_energies(arch)
    assert ae.mult_8b_pj == 0.5 and ae.mult_pj(4, 8) == pytest.approx(0.25)
    assert ae.read_pj["ifmap_sram"] == 3.0 and ae.write_pj["ifmap_sram"] == 3.0
    assert ae.dram_pj_per_bit == 10.0
    assert ae.sources["mult_8b_pj"] == "arch energy.mult_8b_pj"
    assert ae.sources["ifmap_sram_read_pj"] == "arch memory.ifmap_sram.read_pj"
    assert ae.sources["dram_pj_per_bit"] == "arch memory.dram.pj_per_bit"
    assert ae.sources["filter_sram_read_pj"] == "table horowitz_45nm (derived: 64 KiB bank, 64-bit access)"


def test_layer_energy_by_hand():
    # GEMM 10x6x5 on 4x4 os, 8-bit operands, 32-bit accumulator, 64 KiB buffers of 64-bit words.
    g = Gemm(name="g", op="gemm", m=10, k=6, n=5)
    arch = make_arch(**{"array.dataflow": "os", "memory.dram.pj_per_bit": 20.0})
    m = map_layer(g, arch, weight_bits=8, act_bits=8)
    e: dict[str, float] = {}
    for r in layer_energy(m, arch, action_energies(arch)):
        e[r.component] = e.get(r.component, 0.0) + r.energy_pj
    # MAC: 300 MACs x (0.2 + 0.1) = 90 pJ
    assert e["mac"] == pytest.approx(90.0)
    # DRAM: ifmap 60 B + filter 30 B + ofmap 50 B = 140 B = 1120 bits x 20 pJ = 22400 pJ
    assert e["dram"] == pytest.approx(22400.0)
    # ifmap SRAM: 120 reads of 8-bit operands = 15 accesses, plus 60 bytes written from DRAM = 8 accesses
    # (480 bits / 64, rounded up); 23 x 27.59 pJ
    assert e["ifmap_sram"] == pytest.approx(23 * 20 * 5 ** 0.2)
    # requant: 50 outputs x (3.1 + 0.1) pJ
    assert e["requant"] == pytest.approx(50 * 3.2)


def test_unknown_technology_lists_the_tables():
    assert "horowitz_45nm" in available_tech()
    with pytest.raises(SpecError, match=r"energy\.technology: expected one of the technology tables "
                                        r"\['horowitz_45nm'\], found 'tsmc7'$"):
        action_energies(make_arch(**{"energy.technology": "tsmc7"}))
