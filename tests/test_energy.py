"""Energy per action and area per unit: the table's points, the scaling rules (values derived by hand in the
comments), the precision modes, zero points and requantization, overrides and their sources, bad tables."""

from __future__ import annotations

import copy
import math

import pytest
import yaml

from hwsim.energy import (
    action_energies,
    area_breakdown,
    available_tech,
    layer_energy,
    load_tech,
    mac_energy,
    parse_tech,
)
from hwsim.errors import SpecError
from hwsim.mapping import map_layer
from hwsim.spec import Gemm, Workload, validate

from .utils import ROOT, make_arch

G = Gemm(name="g", op="gemm", m=10, k=6, n=5)
# log-log slope of the multiply between the table's 8x8 (0.2 pJ) and 32x32 (3.1 pJ) points, in b_a*b_w
SLOPE = math.log(3.1 / 0.2) / math.log(1024 / 64)  # = 0.98855


def _by_component(recs):
    e: dict[str, float] = {}
    for r in recs:
        e[r.component] = e.get(r.component, 0.0) + r.energy_pj
    return e


# ---------------------------------------------------------------------------------------------------- table


def test_table_points_are_the_sources():
    # Horowitz, ISSCC 2014, 45 nm: 8-bit mult 0.2 pJ, 32-bit mult 3.1, adds 0.03/0.05/0.1, 64-bit reads of
    # 8 KB / 32 KB / 1 MB SRAM 10 / 20 / 100 pJ, 64-bit DRAM read 1300 pJ; areas 282 / 3495 um^2 (mult),
    # 36 / 67 / 137 (add)
    t = load_tech("horowitz_45nm")
    assert (t.mult_pj(8, 8), t.mult_pj(32, 32)) == (pytest.approx(0.2), pytest.approx(3.1))
    assert [t.add_pj(b) for b in (8, 16, 32)] == pytest.approx([0.03, 0.05, 0.1])
    assert [t.sram_read_pj(s, 64) for s in (8, 32, 1024)] == pytest.approx([10.0, 20.0, 100.0])
    assert t.dram_pj_per_bit == t.dram_write_pj_per_bit == pytest.approx(1300 / 64)
    assert (t.mult_um2(8, 8), t.mult_um2(32, 32)) == (pytest.approx(282), pytest.approx(3495))
    assert [t.add_um2(b) for b in (8, 16, 32)] == pytest.approx([36, 67, 137])
    # NanGate 45 nm DFF_X1; CACTI 7 at 45 nm: 8 KiB array 0.06014 mm^2 / 65,536 bits = 0.9177 um^2 per bit
    assert t.dff_bit_um2 == pytest.approx(4.522)
    assert t.sram_bit_um2(8) == pytest.approx(0.9177)
    # Bit Fusion synthesis (hsharma35/bitfusion results/systolic_array_synth.csv, 500 MHz): a fusion unit
    # dissipates 279,960 nW, a fixed 8-bit PE 148,845 nW -> (0.5599 - 0.2977) pJ / 15 tree adders = 0.0175
    assert t.fusion_tree_add_pj == pytest.approx((279960 - 148845) / 500e6 / 15 * 1e3, rel=2e-3)
    assert t.fusion_tree_add_um2 == pytest.approx((1733.13 - 687.61) / 15, rel=1e-3)


def test_every_entry_cites_a_source_or_states_its_rule():
    t = load_tech("horowitz_45nm")
    derived = {e.key for sec in (t.energy, t.area) for e in sec.values() if e.derived}
    # what Horowitz's table lacks is marked derived: write energies, the fusion tree, SRAM area per bit
    assert derived == {"energy.sram_write_over_read", "energy.dram_write_64b", "energy.fusion_tree_add",
                       "area.sram_bit", "area.fusion_tree_add"}
    for sec in (t.energy, t.area):
        for e in sec.values():
            assert e.source.strip()
    assert "Horowitz, ISSCC 2014" in t.energy["int_mult"].provenance(t.name)
    assert set(t.rules) >= {"mult", "add", "sram", "dram", "requant", "zero_point", "bit_fusion",
                            "bit_serial"}


# -------------------------------------------------------------------------------------------- scaling rules


def test_multiplier_scales_with_the_product_of_the_bits():
    t = load_tech("horowitz_45nm")
    # up to 8x8: E8 * b_a*b_w / 64: 4x4 = 0.2*16/64 = 0.05, 2x8 = 0.05, 4x8 = 0.1, 1x1 = 0.003125
    assert [t.mult_pj(4, 4), t.mult_pj(2, 8), t.mult_pj(4, 8), t.mult_pj(1, 1)] == \
        pytest.approx([0.05, 0.05, 0.1, 0.003125])
    # 16x16 (product 256) between the points, log-log: 0.2 * 4**0.98855 = 0.7874 pJ; 8x32 the same product
    assert t.mult_pj(16, 16) == pytest.approx(0.2 * 4 ** SLOPE) == pytest.approx(0.7874, abs=1e-4)
    assert t.mult_pj(8, 32) == pytest.approx(t.mult_pj(16, 16))
    # beyond the last point proportional again: 64x64 = 3.1 * 4096/1024 = 12.4
    assert t.mult_pj(64, 64) == pytest.approx(12.4)
    # area alike: 4x4 = 282 * 16/64 = 70.5 um^2; 2x2 (a BitBrick) = 17.625
    assert (t.mult_um2(4, 4), t.mult_um2(2, 2)) == (pytest.approx(70.5), pytest.approx(17.625))


def test_adder_scales_with_bits():
    t = load_tech("horowitz_45nm")
    # below 8 bits proportional: 4 -> 0.03*4/8 = 0.015; between points linear: 12 -> 0.04, 24 -> 0.075;
    # beyond 32 the last slope (0.05/16 per bit): 48 -> 0.15
    assert [t.add_pj(b) for b in (4, 12, 24, 48)] == pytest.approx([0.015, 0.04, 0.075, 0.15])
    # area: 4 -> 36*4/8 = 18 um^2, 24 -> 67 + 70*8/16 = 102
    assert (t.add_um2(4), t.add_um2(24)) == (pytest.approx(18), pytest.approx(102))


def test_sram_energy_per_access_from_size_and_word():
    t = load_tech("horowitz_45nm")
    # log-log between 32 KiB (20 pJ) and 1024 KiB (100 pJ): 64 KiB -> 20 * 5**(1/5) = 27.59 pJ per 64 bits;
    # a 128-bit access costs twice that, a 16-bit one a quarter
    assert t.sram_read_pj(64, 64) == pytest.approx(20 * 5 ** 0.2)
    assert t.sram_read_pj(64, 128) == pytest.approx(2 * 20 * 5 ** 0.2)
    assert t.sram_read_pj(64, 16) == pytest.approx(20 * 5 ** 0.2 / 4)
    # 16 KiB: between 8 (10) and 32 (20): 10 * 2**0.5
    assert t.sram_read_pj(16, 64) == pytest.approx(10 * math.sqrt(2))
    # a 2-byte register file extrapolates the 8..32 KiB slope (energy ~ sqrt(size)):
    # 10 * (2/8192)**0.5 = 10/64 per 64 bits, a 16-bit access a quarter: 0.0390625 pJ (ZigZag's tpu_like
    # charges 0.021 for its 2 B register)
    assert t.sram_read_pj(2 / 1024, 16) == pytest.approx(0.0390625)
    # writes: read x CACTI's write/read ratio: 1.236 at 8 KiB; 64 KiB halfway (in log size) between 32 KiB
    # (0.853) and 128 KiB (0.783): 0.818
    assert t.sram_write_pj(8, 64) == pytest.approx(12.36)
    assert t.sram_write_pj(64, 64) == pytest.approx(20 * 5 ** 0.2 * 0.818)
    # area per bit log-log in size: 64 KiB between 32 (0.8118) and 128 (0.9168): 0.8118*(0.9168/0.8118)**0.5
    assert t.sram_bit_um2(64) == pytest.approx(0.8118 * (0.9168 / 0.8118) ** 0.5)


def test_reads_and_writes_are_charged_apart():
    arch = make_arch()
    ae = action_energies(arch)
    # 64 KiB buffers: read 27.59 pJ, write 27.59 * 0.818 = 22.57 pJ per 64-bit access; DRAM 1300/64 per bit
    assert ae.read_pj["ifmap_sram"] == pytest.approx(20 * 5 ** 0.2)
    assert ae.write_pj["ifmap_sram"] == pytest.approx(20 * 5 ** 0.2 * 0.818)
    dram = make_arch(**{"memory.dram.pj_per_bit": 10.0})
    assert action_energies(dram).read_pj["dram"] == action_energies(dram).write_pj["dram"] == 10.0
    m = map_layer(G, arch, weight_bits=8, act_bits=8)
    recs = [r for r in layer_energy(m, arch, ae) if r.component == "ifmap_sram"]
    assert {r.action: r.pj_each for r in recs} == {"read": ae.read_pj["ifmap_sram"],
                                                  "write": ae.write_pj["ifmap_sram"]}


def test_per_access_and_per_word_are_explicit():
    # ifmap buffer of 64-bit words, os on 4x4: 120 ifmap reads. 8-bit operands: 8 per access -> 15 accesses;
    # 4-bit: 16 per access -> 7.5 -> 8 accesses
    arch = make_arch(**{"array.dataflow": "os"})
    for bits, count, unit in ((8, 15, "8 x 8-bit words"), (4, 8, "16 x 4-bit words")):
        m = map_layer(G, arch, weight_bits=8, act_bits=bits)
        r = next(r for r in layer_energy(m, arch, action_energies(arch))
                 if (r.component, r.operand, r.action) == ("ifmap_sram", "ifmap", "read"))
        assert (r.count, r.unit) == (count, f"64-bit access, packed ({unit})")
    # a per-PE register file serves one operand per access: 4-bit weights in an 8-bit register are not packed
    rf = _rf_arch(word_bits=8)
    for wbits in (8, 4):
        m = map_layer(G, rf, weight_bits=wbits, act_bits=8)
        r = next(r for r in layer_energy(m, rf, action_energies(rf))
                 if (r.component, r.action) == ("wrf", "read"))
        # ws: each PE holds its one weight for all the MACs it serves (300 MACs, 30 weights): one read per
        # load, 30 accesses at either width
        assert (r.count, r.unit) == (30, f"8-bit access, one {wbits}-bit operand per access")


def _rf_arch(word_bits=8, **over):
    data = make_arch().model_dump(mode="python")
    data["memory"] = {"levels": [
        {"name": "wrf", "kind": "rf", "instances": "per_pe", "operands": ["filter"], "size_bytes": 16,
         "word_bits": word_bits, "double_buffered": False},
        {"name": "buf", "kind": "sram", "operands": ["ifmap", "filter", "ofmap"], "size_kib": 64},
        {"name": "dram", "kind": "dram", "operands": ["ifmap", "filter", "ofmap"],
         "bandwidth_bytes_per_cycle": "unbounded"}]}
    arch = validate(type(make_arch()), data, "<t>")
    return arch.replace(**over) if over else arch


# ------------------------------------------------------------------------------------------ precision modes


def test_fixed_pe_mac_energy():
    arch = make_arch()
    ae = action_energies(arch)
    # 8x8 + 32-bit accumulate: 0.2 + 0.1; 4x4: 0.05 + 0.1 (the accumulator stays at its own 32 bits)
    assert mac_energy(arch, ae, a_bits=8, w_bits=8)[0] == pytest.approx(0.3)
    assert mac_energy(arch, ae, a_bits=4, w_bits=4)[0] == pytest.approx(0.15)
    # a 16-bit accumulator: 0.2 + 0.05
    a16 = make_arch(**{"pe.acc_bits": 16})
    assert mac_energy(a16, action_energies(a16), a_bits=8, w_bits=8)[0] == pytest.approx(0.25)


def test_bit_fusion_mac_energy():
    # 8-bit unit of 16 2-bit BitBricks, 32-bit accumulator. Per cycle the shift-add tree (15 adders x
    # 0.0175 pJ) and one accumulator add (0.1 pJ) are shared by the f fused MACs:
    #   8x8 (f=1): 0.2 + 0.2625 + 0.1 = 0.5625 pJ (Bit Fusion's synthesis: 0.5599 pJ per cycle)
    #   4x4 (f=4): 0.2*16/64 + 0.3625/4 = 0.05 + 0.090625 = 0.140625 pJ (16/64 of 8x8 plus the tree share)
    #   2x2 (f=16): 0.0125 + 0.3625/16 = 0.03515625 pJ;  3x3 runs as 4x4
    arch = make_arch(**{"pe.precision_mode": "bit_fusion", "pe.brick_bits": 2, "array.dataflow": "os"})
    ae = action_energies(arch)
    want = {8: 0.5625, 4: 0.140625, 3: 0.140625, 2: 0.03515625}
    for b, pj in want.items():
        m = map_layer(G, arch, weight_bits=b, act_bits=b)
        mac = next(r for r in layer_energy(m, arch, ae) if r.component == "mac")
        assert mac.pj_each == pytest.approx(pj), b
        assert mac.count == 300
    # the 8x8 fused MAC costs more than a fixed 8-bit PE's 0.3 pJ; at 2 bits less than fixed 2x2 (0.1125)
    assert want[8] > 0.3 and want[2] < 0.2 * 4 / 64 + 0.1


def test_bit_serial_mac_energy():
    # Stripes (activations serial, 1 bit per cycle): the same 8x8 partial-product bits + 8 accumulator adds:
    # 0.2 + 8*0.1 = 1.0 pJ; 4-bit activations: 0.1 + 4*0.1 = 0.5
    stripes = make_arch(**{"pe.precision_mode": "bit_serial", "pe.serial_operands": ["act"],
                           "pe.bits_per_cycle": 1})
    ae = action_energies(stripes)
    for a, pj in ((8, 1.0), (4, 0.5)):
        m = map_layer(G, stripes, weight_bits=8, act_bits=a)
        mac = next(r for r in layer_energy(m, stripes, ae) if r.component == "mac")
        assert mac.pj_each == pytest.approx(pj)
    # Loom (both serial, 2 bits per cycle), 4x4: ceil(4/2)*ceil(4/2) = 4 steps: 0.05 + 4*0.1 = 0.45
    loom = stripes.replace(**{"pe.serial_operands": ["act", "weight"], "pe.bits_per_cycle": 2})
    m = map_layer(G, loom, weight_bits=4, act_bits=4)
    assert next(r for r in layer_energy(m, loom, action_energies(loom))
                if r.component == "mac").pj_each == pytest.approx(0.45)


def test_zero_point_cross_terms_and_requant():
    # GEMM 10x6x5 (50 outputs), 8-bit, 32-bit accumulator.
    #   asymmetric weights: the window sum of x for each of the 10 output pixels over K=6: 60 adds x 0.1 =
    #     6 pJ;
    #     per output z_w * sum(x): one 8x32 multiply (product 256: 0.7874 pJ) + one add (0.1): 50 x 0.8874
    #   asymmetric activations: z_x*sum(w) - K*z_x*z_w folded into the bias: 50 adds x 0.1 = 5 pJ
    #   requant: one 32x32 multiply (3.1) + one 32-bit add (0.1) per output: 50 x 3.2 = 160 pJ
    arch = make_arch()
    ae = action_energies(arch)
    m = map_layer(G, arch, weight_bits=8, act_bits=8)
    sym = _by_component(layer_energy(m, arch, ae))
    assert sym.get("zero_point", 0.0) == 0.0 and sym["requant"] == pytest.approx(160.0)
    w = _by_component(layer_energy(m, arch, ae, weight_zero_point=True))
    assert w["zero_point"] == pytest.approx(6.0 + 50 * (0.2 * 4 ** SLOPE + 0.1))
    a = _by_component(layer_energy(m, arch, ae, act_zero_point=True))
    assert a["zero_point"] == pytest.approx(5.0)
    both = _by_component(layer_energy(m, arch, ae, weight_zero_point=True, act_zero_point=True))
    assert both["zero_point"] == pytest.approx(w["zero_point"] + 5.0)
    # a 16-bit accumulator requantizes with a 16x32 multiply (product 512: 0.2 * 8**0.98855) and a 16-bit add
    ae16 = action_energies(make_arch(**{"pe.acc_bits": 16}))
    assert ae16.requant_pj == pytest.approx(0.2 * 8 ** SLOPE + 0.05)


def test_pipeline_charges_zero_points_of_asymmetric_layers():
    from hwsim._pipeline import simulate_workload

    base = {"name": "w", "layers": [{"name": "a", "op": "fc", "m": 10, "k": 6, "n": 5}]}
    arch = make_arch()
    sym = simulate_workload(arch, validate(Workload, base, "<t>"))
    asym = simulate_workload(arch, validate(Workload, {**base, "act_symmetric": False}, "<t>"))
    assert sym.totals["energy_zero_point_pj"] == 0.0
    assert asym.totals["energy_zero_point_pj"] == pytest.approx(5.0)
    assert asym.totals["energy_pj"] == pytest.approx(sym.totals["energy_pj"] + 5.0)


def test_layer_energy_by_hand():
    # GEMM 10x6x5 on 4x4 os, 8-bit operands, 32-bit accumulator, 64 KiB buffers of 64-bit words.
    arch = make_arch(**{"array.dataflow": "os", "memory.dram.pj_per_bit": 20.0})
    m = map_layer(G, arch, weight_bits=8, act_bits=8)
    e = _by_component(layer_energy(m, arch, action_energies(arch)))
    # MAC: 300 MACs x (0.2 + 0.1) = 90 pJ
    assert e["mac"] == pytest.approx(90.0)
    # DRAM: ifmap 60 B + filter 30 B + ofmap 50 B = 140 B = 1120 bits x 20 pJ = 22400 pJ
    assert e["dram"] == pytest.approx(22400.0)
    # ifmap SRAM: 120 reads of 8-bit operands = 15 accesses x 27.59 pJ, plus 60 bytes written from DRAM = 8
    # accesses (480 bits / 64, rounded up) x 27.59 * 0.818 pJ
    assert e["ifmap_sram"] == pytest.approx(15 * 20 * 5 ** 0.2 + 8 * 20 * 5 ** 0.2 * 0.818)
    assert e["requant"] == pytest.approx(50 * 3.2)


# ---------------------------------------------------------------------------------------- overrides, area


def test_energy_overrides_replace_the_table_and_say_so():
    arch = make_arch(**{"energy.mult_8b_pj": 0.5, "energy.add_32b_pj": 0.2, "memory.ifmap_sram.read_pj": 3.0,
                        "memory.filter_sram.write_pj": 7.0, "memory.dram.pj_per_bit": 10.0})
    ae = action_energies(arch)
    # the multiplier curve scaled to 0.5 pJ at 8x8: 4x8 = 0.25; the adder curve to 0.2 at 32 bits: 16 -> 0.1
    assert ae.mult_8b_pj == 0.5 and ae.mult_pj(4, 8) == pytest.approx(0.25)
    assert ae.add_pj(16) == pytest.approx(0.1) and ae.add_acc_pj == pytest.approx(0.2)
    # requant follows: 32x32 multiply 3.1 * 2.5 + 32-bit add 0.2 = 7.95
    assert ae.requant_pj == pytest.approx(3.1 * 2.5 + 0.2)
    assert ae.read_pj["ifmap_sram"] == 3.0 and ae.write_pj["ifmap_sram"] == 3.0
    assert ae.write_pj["filter_sram"] == 7.0 and ae.read_pj["filter_sram"] == pytest.approx(20 * 5 ** 0.2)
    assert ae.read_pj["dram"] == ae.write_pj["dram"] == 10.0
    src = ae.sources
    assert src["mult_8b_pj"] == "arch energy.mult_8b_pj"
    assert src["add_acc_pj"].startswith("arch energy.add_32b_pj")
    assert src["ifmap_sram_read_pj"] == "arch memory.ifmap_sram.read_pj"
    assert src["ifmap_sram_write_pj"] == "arch memory.ifmap_sram.read_pj (a write costs the given read)"
    assert src["filter_sram_write_pj"] == "arch memory.filter_sram.write_pj"
    assert src["dram_read_pj"] == src["dram_write_pj"] == "arch memory.dram.pj_per_bit"
    assert src["ofmap_sram_read_pj"] == ("table horowitz_45nm sram_read_64b (derived: 64 KiB bank, 64-bit "
                                         "access, log-log in size, x word_bits/64)")
    assert make_arch(**{"energy.requant_pj": 1.5}).energy.requant_pj == 1.5
    rq = action_energies(make_arch(**{"energy.requant_pj": 1.5}))
    assert rq.sources["requant_pj"] == "arch energy.requant_pj"


def test_dram_read_and_write_per_access_on_a_level():
    # a dram level with read_pj/write_pj per 64-bit access (ZigZag's 700 / 750 pJ): per bit 10.9375 / 11.71875
    data = yaml.safe_load((ROOT / "arch/zigzag_tpu_like.yaml").read_text())
    arch = validate(type(make_arch()), data, "<t>")
    ae = action_energies(arch)
    assert (ae.read_pj["dram"], ae.write_pj["dram"]) == (700 / 64, 750 / 64)
    assert ae.sources["dram_write_pj"] == "arch memory.levels[3].write_pj / word_bits (64), per bit"


def test_area_by_hand():
    # 4x4 fixed 8-bit PEs, 32-bit accumulator: 282 (8x8 mult) + 137 (32-bit add) + 48 flip-flops x 4.522
    # = 636.056 um^2 per PE, x 16; three 64 KiB buffers: 524,288 bits x 0.8627 um^2; requant: one unit per
    # column, 3495 (32x32 mult) + 137 = 3632 um^2, x 4
    a = area_breakdown(make_arch())
    pe = 282 + 137 + 48 * 4.522
    sram = 524288 * 0.8118 * (0.9168 / 0.8118) ** 0.5
    assert a.unit_um2["mac"] == pytest.approx(pe)
    assert a.um2 == pytest.approx({"mac": 16 * pe, "ifmap_sram": sram, "filter_sram": sram,
                                   "ofmap_sram": sram, "requant": 4 * 3632})
    assert a.total_mm2 == pytest.approx((16 * pe + 3 * sram + 4 * 3632) / 1e6)
    assert a.sources["dram"] == "off chip: no die area counted" and "dram" not in a.um2
    # Bit Fusion PE: 16 bricks x 17.625 + 15 tree adders x 69.70 + 137 + 48 x 4.522 = 1681.6 um^2 (the
    # authors' synthesis: 1733.1); a fixed 8-bit PE 636.1 (theirs: 687.6)
    bf = area_breakdown(make_arch(**{"pe.precision_mode": "bit_fusion", "pe.brick_bits": 2}))
    assert bf.unit_um2["mac"] == pytest.approx(16 * 17.625 + 15 * 69.70 + 137 + 48 * 4.522)
    # a per-PE register file of 16 bytes: 128 flip-flops = 578.8 um^2, x 16 PEs
    rf = area_breakdown(_rf_arch())
    assert rf.unit_um2["wrf"] == pytest.approx(128 * 4.522) and rf.units["wrf"] == 16


def test_area_overrides_replace_the_table_and_say_so():
    arch = make_arch(**{"area.pe_um2": 700.0, "memory.ifmap_sram.area_mm2": 0.5, "area.requant_um2": 1000.0,
                        "area.mult_8b_um2": 564.0})
    a = area_breakdown(arch)
    assert a.um2["mac"] == 16 * 700.0 and a.sources["mac"] == "arch area.pe_um2, per PE"
    assert a.um2["ifmap_sram"] == pytest.approx(0.5e6)
    assert a.sources["ifmap_sram"] == "arch memory.ifmap_sram.area_mm2, per instance"
    assert a.um2["requant"] == 4 * 1000.0
    # the multiplier curve scaled x2 (564 / 282): a PE without pe_um2 = 2*282 + 137 + 48*4.522
    b = area_breakdown(make_arch(**{"area.mult_8b_um2": 564.0}))
    assert b.unit_um2["mac"] == pytest.approx(564 + 137 + 48 * 4.522)
    assert "scaled to arch area.mult_8b_um2" in b.sources["mac"]


def test_summary_totals_area_pj_per_mac_and_tops_per_w(tmp_path):
    import json

    from hwsim._io import write_summary_json
    from hwsim._pipeline import simulate_workload

    arch = make_arch(**{"clock_mhz": 500})
    res = simulate_workload(arch, validate(Workload, {"name": "w", "layers": [
        {"name": "a", "op": "fc", "m": 64, "k": 64, "n": 64}]}, "<t>"))
    t = res.totals
    assert t["pj_per_mac"] == pytest.approx(t["energy_pj"] / 64 ** 3)
    assert t["tops_per_w"] == pytest.approx(2 / t["pj_per_mac"])
    # at 500 MHz: latency_us = cycles / 500; TOPS = 2 MACs / latency; power = energy / latency;
    # TOPS/W = TOPS / W
    assert t["tops"] == pytest.approx(2 * 64 ** 3 / (t["total_cycles"] / 500e6) / 1e12)
    assert t["power_mw"] == pytest.approx(t["energy_pj"] * 1e-12 / (t["total_cycles"] / 500e6) * 1e3)
    assert t["tops"] / (t["power_mw"] / 1e3) == pytest.approx(t["tops_per_w"])
    assert t["peak_tops"] == pytest.approx(2 * 16 * 500e6 / 1e12)
    assert t["area_mm2"] == pytest.approx(area_breakdown(arch).total_mm2)
    s = json.loads(write_summary_json(res, tmp_path / "s.json").read_text())
    assert s["area_mm2"]["total"] == pytest.approx(sum(v for k, v in s["area_mm2"].items() if k != "total"))
    assert set(s["area_sources"]) == {"mac", "ifmap_sram", "filter_sram", "ofmap_sram", "dram", "requant"}
    assert s["energy_sources"]["mult_8b_pj"].startswith("table horowitz_45nm energy.int_mult: [H: Horowitz")


# ------------------------------------------------------------------------------------------------ bad input


def _table():
    return yaml.safe_load((ROOT / "hwsim/tech/horowitz_45nm.yaml").read_text())


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["energy"]["int_add"]["values"].__setitem__(8, -0.03),
     r"x\.yaml: energy\.int_add\.values\.8: expected a non-negative number, found -0\.03$"),
    (lambda d: d["energy"].pop("int_mult"),
     r"x\.yaml: energy\.int_mult: expected an entry with unit, values and source or derived, found nothing$"),
    (lambda d: d["energy"]["dram_read_64b"].__setitem__("unit", "pJoules"),
     r"x\.yaml: energy\.dram_read_64b\.unit: expected one of the energy units \['fj', 'nj', 'pj', 'uj'\], "
     r"found 'pJoules'$"),
    (lambda d: d["area"]["dff_bit"].__setitem__("unit", "pJ"),
     r"x\.yaml: area\.dff_bit\.unit: expected one of the area units"),
    (lambda d: d["energy"]["int_mult"].__setitem__("derived", "a rule"),
     r"x\.yaml: energy\.int_mult: expected exactly one of source \(a citation\) or derived"),
    (lambda d: d["energy"]["dram_read_64b"].__setitem__("value", "1300 pJ"),
     r"x\.yaml: energy\.dram_read_64b\.value: expected a non-negative number, found '1300 pJ'$"),
    (lambda d: d["energy"]["int_mult"]["values"].pop(8),
     r"x\.yaml: energy\.int_mult\.values: expected a point at 8 bits"),
    (lambda d: d["area"]["sram_bit"].__setitem__("colour", 1),
     r"x\.yaml: area\.sram_bit\.colour: expected one of the known keys"),
])
def test_bad_tables_name_the_file_and_key(edit, message):
    d = copy.deepcopy(_table())
    edit(d)
    with pytest.raises(SpecError, match=message):
        parse_tech(d, "x.yaml")


def test_units_convert_to_pj_and_um2():
    d = copy.deepcopy(_table())
    d["energy"]["dram_read_64b"].update(unit="nJ", value=1.3)
    d["area"]["dff_bit"].update(unit="mm2", value=4.522e-6)
    t = parse_tech(d, "x.yaml")
    assert t.dram_pj_per_bit == pytest.approx(1300 / 64) and t.dff_bit_um2 == pytest.approx(4.522)


def test_unknown_technology_names_the_arch_file_and_key():
    assert "horowitz_45nm" in available_tech()
    with pytest.raises(SpecError, match=r"^a\.yaml: energy\.technology: expected one of the technology "
                                        r"tables \['horowitz_45nm'\], found 'tsmc7'$"):
        action_energies(make_arch(**{"energy.technology": "tsmc7"}), source="a.yaml")
    with pytest.raises(SpecError, match=r"energy\.mult_8b_pj: expected a value greater than or equal to 0"):
        make_arch(**{"energy.mult_8b_pj": -0.2})


def test_word_narrower_than_an_operand_costs_several_accesses():
    # Not an error: a memory whose word is narrower than an operand delivers it in ceil(b / word_bits)
    # accesses (an 8-bit weight from a 4-bit-wide register file: two reads; SCALE-Sim-imported archs keep
    # 8-bit words for 32-bit partial sums). Same layer as test_per_access_and_per_word_are_explicit.
    # Per-PE register file of 4-bit words, 8-bit weights: the 30 weight loads take 2 accesses each = 60.
    rf = _rf_arch(word_bits=4)
    m = map_layer(G, rf, weight_bits=8, act_bits=8)
    r = next(r for r in layer_energy(m, rf, action_energies(rf))
             if (r.component, r.action) == ("wrf", "read"))
    assert (r.count, r.unit) == (60, "4-bit access, one 8-bit operand per 2 accesses")
    # a shared buffer of 7-bit words moves the packed stream: os on 4x4 reads 120 8-bit ifmap operands =
    # 960 bits = ceil(960 / 7) = 138 accesses
    arch = make_arch(**{"array.dataflow": "os", "memory.ifmap_sram.word_bits": 7})
    m = map_layer(G, arch, weight_bits=8, act_bits=8)
    r = next(r for r in layer_energy(m, arch, action_energies(arch))
             if (r.component, r.operand, r.action) == ("ifmap_sram", "ifmap", "read"))
    assert r.count == 138 and r.unit.startswith("7-bit access, packed")
