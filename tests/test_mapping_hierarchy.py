"""The general memory hierarchy (memory.levels): traffic per level by hand, RF accounting, spec errors,
and the guarantees over random hierarchies."""

from __future__ import annotations

import re

import numpy as np
import pytest

from hwsim.errors import InfeasibleError, SpecError
from hwsim.mapping import map_layer
from hwsim.spec import ArchSpec, Conv2d, Gemm, validate

from .utils import make_arch

G = Gemm(name="g", op="gemm", m=10, k=6, n=5)


def _arch(levels, dataflow="ws"):
    return validate(ArchSpec, {"name": "h", "clock_mhz": 100,
                               "array": {"rows": 4, "cols": 4, "dataflow": dataflow},
                               "pe": {"operand_bits": 8, "acc_bits": 32}, "memory": {"levels": levels}},
                               "<h>")


GB = {"name": "gb", "kind": "sram", "operands": ["ifmap", "filter", "ofmap"], "size_kib": 64}
DRAM = {"name": "dram", "kind": "dram", "operands": ["ifmap", "filter", "ofmap"],
        "bandwidth_bytes_per_cycle": 8}
RF_W = {"name": "rf_w", "kind": "rf", "instances": "per_pe", "operands": ["filter"], "size_bytes": 2,
        "word_bits": 8}


def test_global_buffer_and_weight_rf_by_hand():
    # ws on 4x4, GEMM 10x6x5, 8-bit operands, 32-bit partial sums. Array demand (see test_mapping_plan):
    # ifmap 120 reads, filter 30 reads, ofmap 100 writes (50 partial sums + 50 outputs) and 50 psum reads.
    m = map_layer(G, _arch([RF_W, GB, DRAM]), weight_bits=8, act_bits=8)
    r, w = m.traffic.reads, m.traffic.writes
    # global buffer: serves the array (120*8 ifmap, 30*8 filter bits), filled once each from DRAM (everything
    # fits its third of 64 KiB): ifmap 10*6*8 = 480, filter 6*5*8 = 240 bits
    assert (r["gb"]["ifmap"], r["gb"]["filter"], w["gb"]["ifmap"], w["gb"]["filter"]) == (960, 240, 480, 240)
    # ofmap in the global buffer: 50 psums at 32 + 50 outputs at 8 written, 50 psums read back and the 50
    # outputs read out to DRAM: 2000 bits each way
    assert (w["gb"]["ofmap"], r["gb"]["ofmap"]) == (50 * 32 + 50 * 8, 50 * 32 + 50 * 8)
    # DRAM: the fills, and the outputs once
    assert (r["dram"]["ifmap"], r["dram"]["filter"], w["dram"]["ofmap"]) == (480, 240, 400)
    assert (m.dram_read_bytes, m.dram_write_bytes) == (90, 50)
    # weight register file (ws: weights stationary): written once per weight loaded into the array (30 x 8);
    # each PE holds one weight for all 10 MACs it serves (the partial sums leave the PE), so it is read once
    # per load, not per MAC (300 x 8)
    assert (r["rf_w"]["filter"], w["rf_w"]["filter"]) == (240, 240)


def test_bypass_reads_dram_at_the_array_demand():
    # a hierarchy whose buffer holds no ifmap: the array's 120 ifmap reads come from DRAM, no reuse: 960 bits
    gb = dict(GB, operands=["filter", "ofmap"])
    m = map_layer(G, _arch([gb, DRAM]), weight_bits=8, act_bits=8)
    assert m.traffic.reads["dram"]["ifmap"] == 120 * 8


def test_rf_too_small_is_infeasible():
    rf_o = {"name": "acc", "kind": "rf", "instances": "per_pe", "operands": ["ofmap"], "size_bytes": 2,
            "word_bits": 16}
    with pytest.raises(InfeasibleError,
                       match=re.escape("<arch>: memory.levels[0].size_bytes: expected room for "
                                                        "one 32-bit ofmap operand per PE, found 16 bits "
                                                        "(layer g)")):
        map_layer(G, _arch([rf_o, GB, DRAM], dataflow="os"), weight_bits=8, act_bits=8)


@pytest.mark.parametrize("levels, message", [
    ([GB], r"memory: expected exactly one dram level, listed last, found kinds \['sram'\]$"),
    ([DRAM, GB], r"memory: expected exactly one dram level, listed last, found kinds \['dram', 'sram'\]$"),
    ([dict(GB, share={"ifmap": 0.7, "filter": 0.5}), DRAM],
     r"memory\.levels\[0\]: expected share fractions > 0 for operands the level holds, summing to at most 1"),
    ([dict(RF_W, instances="shared"), DRAM], r"memory\.levels\[0\]: expected instances: per_pe for rf level"),
    ([dict(GB, size_kib=None), DRAM],
     r"memory\.levels\[0\]: expected exactly one of size_kib, size_bytes for "
                                      r"sram level 'gb', found neither$"),
    ([GB, dict(DRAM, name="ddr")], r"memory\.levels\[1\]: expected the dram level named 'dram'"),
    ([dict(GB, operands=["ifmap", "ifmap"]), DRAM],
     r"memory\.levels\[0\]: expected each operand listed once"),
])
def test_level_errors(levels, message):
    with pytest.raises(SpecError, match=message):
        _arch(levels)


def test_shorthand_and_levels_exclude_each_other():
    with pytest.raises(SpecError,
                       match=r"memory: expected either levels or the ifmap_sram/filter_sram/ofmap_sram/"
                                        r"dram shorthand, found both"):
        make_arch(**{"memory.levels": [GB, DRAM]})


def test_shorthand_is_three_levels_and_dram():
    names = [(lv.name, lv.kind, lv.operands) for lv in make_arch().memory.hierarchy()]
    assert names == [("ifmap_sram", "sram", ("ifmap",)), ("filter_sram", "sram", ("filter",)),
                     ("ofmap_sram", "sram", ("ofmap",)), ("dram", "dram", ("ifmap", "filter", "ofmap"))]


def test_bigger_levels_never_add_dram_traffic():
    rng = np.random.default_rng(3)
    checked = 0
    for _ in range(150):
        layer = Gemm(name="g", op="gemm", m=int(rng.integers(1, 400)), k=int(rng.integers(1, 700)),
                     n=int(rng.integers(1, 300)))
        l1 = {"name": "l1", "kind": "sram", "operands": ["ifmap", "filter", "ofmap"],
              "size_kib": float(rng.choice([0.5, 1, 4, 16]))}
        l2 = {"name": "l2", "kind": "sram", "operands": ["ifmap", "filter"],
              "size_kib": float(rng.choice([8, 64, 512]))}
        df = str(rng.choice(["ws", "os", "is"]))
        try:
            base = map_layer(layer, _arch([l1, l2, DRAM], df), weight_bits=8, act_bits=8)
        except InfeasibleError:
            continue
        tile = -(-layer.m // base.m_tiles) if df == "ws" else -(-layer.n // base.n_tiles)
        for lv in (l1, l2):
            big = [dict(x, size_kib=x["size_kib"] * 4) if x is lv else x for x in (l1, l2)]
            # a fixed mapping (the same tile): never more DRAM bytes, the same compute cycles
            mb = map_layer(layer, _arch([*big, DRAM], df), weight_bits=8, act_bits=8, tile=tile)
            assert mb.dram_read_bytes + mb.dram_write_bytes <= base.dram_read_bytes + base.dram_write_bytes
            assert mb.compute_cycles == base.compute_cycles
            # the mapper's own choice: never worse by its objective, fewer DRAM bytes first, then the estimate
            # max(compute, DRAM bits / 64 bits per cycle) (lexicographically)
            mm = map_layer(layer, _arch([*big, DRAM], df), weight_bits=8, act_bits=8)
            est = [(x.dram_read_bytes + x.dram_write_bytes,
                    max(x.compute_cycles, (x.dram_read_bytes + x.dram_write_bytes) * 8 / 64)) for x in (mm,
                                                                                                        base)]
            assert est[0] <= (est[1][0], est[1][1] + 1e-9)
        checked += 1
    assert checked > 100


def test_banks_must_hold_a_word():
    # 1,000,000 banks of 64-bit words need 64 Mbit; a 128 KiB buffer has 1 Mbit
    with pytest.raises(SpecError,
                       match=r"memory\.levels\[0\]: expected banks of at least one word each \(banks x "
                                        r"word_bits <= size\), found 1000000 banks of 64-bit words in "
                                        r"1,048,576 bits$"):
        _arch([dict(GB, size_kib=128, banks=1_000_000), DRAM])


def _random_hierarchy(rng):
    """Random levels: per-PE register files (weights / inputs / partial sums, some absent), an optional
    ifmap+ofmap or shared global buffer, an optional separate weight buffer, DRAM."""
    levels = []
    for ops in (["filter"], ["ifmap"], ["ofmap"]):
        if rng.random() < 0.5:
            levels.append({"name": f"rf_{ops[0]}", "kind": "rf", "instances": "per_pe", "operands": ops,
                           "size_bytes": int(rng.choice([1, 2, 4, 16, 128])), "word_bits": 8,
                           "double_buffered": False})
    gb_ops = ["ifmap", "filter", "ofmap"] if rng.random() < 0.5 else ["ifmap", "ofmap"]
    levels.append({"name": "gb", "kind": "sram", "operands": gb_ops,
                   "size_kib": float(rng.choice([0.5, 2, 8, 64, 512]))})
    if "filter" not in gb_ops and rng.random() < 0.5:
        levels.append({"name": "wb", "kind": "sram", "operands": ["filter"],
                       "size_kib": float(rng.choice([0.5, 4, 32]))})
    if rng.random() < 0.3:  # an outer buffer in front of DRAM
        levels.append({"name": "l2", "kind": "sram", "operands": ["ifmap", "filter"],
                       "size_kib": float(rng.choice([16, 256]))})
    return levels


def test_growing_any_level_never_adds_dram_bytes_random():
    # The metamorphic property of the mapper's own choice (not a fixed tile): growing any on-chip level,
    # register files included, never increases the layer's DRAM bytes (reads + writes). It failed before the
    # ws mapper tried M tiles when partial sums leave the array once (a 128-byte weight register on ZigZag's
    # tpu_like read ResNet-50 layer1.1.conv1's input 4x, a 1-byte one 1x).
    rng = np.random.default_rng(11)
    checked = grown = 0
    for _ in range(400):
        if rng.random() < 0.5:
            layer = Gemm(name="g", op="gemm", m=int(rng.integers(1, 3000)), k=int(rng.integers(1, 700)),
                         n=int(rng.integers(1, 300)))
        else:
            c, h = int(rng.integers(1, 128)), int(rng.integers(3, 40))
            layer = Conv2d(name="c", op="conv2d", in_channels=c, out_channels=int(rng.integers(1, 128)),
                           in_h=h, in_w=h, kernel=int(rng.choice([1, 3])), stride=int(rng.choice([1, 2])),
                           padding=1)
        levels = _random_hierarchy(rng)
        dram = dict(DRAM, bandwidth_bytes_per_cycle=int(rng.choice([1, 8, 64])))
        df = str(rng.choice(["ws", "os", "is"]))
        rows, cols = int(rng.choice([2, 4, 8, 16, 32])), int(rng.choice([2, 4, 8, 16, 32]))
        wb, ab = (8, 8) if rng.random() < 0.7 else (4, 8)

        def arch(lv_list, rows=rows, cols=cols, df=df, dram=dram):
            return validate(ArchSpec, {"name": "h", "clock_mhz": 100,
                                       "array": {"rows": rows, "cols": cols, "dataflow": df},
                                       "pe": {"operand_bits": 8, "acc_bits": 32, "min_bits": 2},
                                       "memory": {"levels": [*lv_list, dram]}}, "<h>")

        try:
            base = map_layer(layer, arch(levels), weight_bits=wb, act_bits=ab)
        except InfeasibleError:
            continue
        checked += 1
        d0 = base.dram_read_bytes + base.dram_write_bytes
        for i, lv in enumerate(levels):
            key = "size_bytes" if "size_bytes" in lv else "size_kib"
            for f in (2, 8):
                big = [dict(x, **{key: x[key] * f}) if j == i else x for j, x in enumerate(levels)]
                mb = map_layer(layer, arch(big), weight_bits=wb, act_bits=ab)
                d1 = mb.dram_read_bytes + mb.dram_write_bytes
                assert d1 <= d0, (layer, df, rows, cols, levels, lv["name"], f, d0, d1)
                grown += d1 < d0
    # enough feasible cases, and growth that really cuts DRAM bytes in many of them (the test can fail)
    assert checked >= 250 and grown >= 100, (checked, grown)


def test_tpu_like_weight_register_does_not_refetch_inputs():
    # ZigZag's tpu_like (arch/zigzag_tpu_like.yaml), ResNet-50 layer1.1.conv1: 1x1 conv 256 -> 64 channels on
    # 56x56, GEMM M = 3136, K = 256, N = 64, 8-bit. The ifmap is 3136 x 256 = 802,816 B; it sits in the 2 MB
    # ifmap+ofmap buffer, whose ifmap half of a double buffer is 2 MiB / 2 operands / 2 = 524,288 B: it does
    # not fit whole, but the rows of an M tile of 524,288 // 256 = 2048 do, so two M tiles read it once:
    # 802,816 B. Untiled it is read once per column fold (64 / 32 = 2): 1,605,632 B. With a 128-byte weight
    # register the partial sums leave the array once, and the mapper must still tile; weights come from DRAM
    # for each of the 2 tiles: 2 x 256 x 64 = 32,768 B.
    from hwsim.spec import load_arch

    from .utils import ROOT

    arch = load_arch(ROOT / "arch/zigzag_tpu_like.yaml")
    conv = Conv2d(name="layer1.1.conv1", op="conv2d", in_channels=256, out_channels=64, in_h=56, in_w=56,
                  kernel=1, stride=1, padding=0)
    for reg in (1, 128):
        levels = [lv.model_dump(exclude_none=True) for lv in arch.memory.levels]
        levels[0]["size_bytes"] = reg
        a = arch.replace(**{"memory.levels": levels}) if reg != 128 else arch
        m = map_layer(conv, a, weight_bits=8, act_bits=8)
        assert (m.m_tiles, m.traffic.dram_read_bytes("ifmap"), m.traffic.dram_read_bytes("filter")) == (
            2, 802_816, 32_768), reg
