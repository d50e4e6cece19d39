"""Folds, fill/steady/drain cycles and SRAM accesses per dataflow, derived by hand (formulas in
hwsim/mapping/_plan.py, after SCALE-Sim's systolic_compute_{os,ws,is}.py)."""

from __future__ import annotations

import re

import pytest

from hwsim.errors import InfeasibleError
from hwsim.mapping import map_layer, precision_factors
from hwsim.spec import Gemm

from .utils import make_arch

G = Gemm(name="g", op="gemm", m=10, k=6, n=5)


def test_os_by_hand():
    # os on 4x4: Sr=M=10, Sc=N=5, T=K=6 -> row folds ceil(10/4)=3, col folds ceil(5/4)=2, 6 folds;
    # per fold (R-1) + T + (C-1) = 3 + 6 + 3 = 12 -> 72 cycles; scalesim convention: 72 - 1 = 71
    m = map_layer(G, make_arch(**{"array.dataflow": "os"}), weight_bits=8, act_bits=8)
    assert (m.row_folds, m.col_folds, m.folds, m.cycles_per_fold) == (3, 2, 6, 12)
    assert (m.fill_cycles, m.steady_cycles, m.drain_cycles, m.compute_cycles) == (18, 36, 18, 72)
    # ifmap streamed once per column fold: 10*6*2; filter once per row fold: 6*5*3; outputs once: 10*5
    assert (m.sram_ifmap_reads, m.sram_filter_reads, m.sram_ofmap_writes, m.sram_ofmap_reads) == (120, 90, 50,
                                                                                                  0)
    # mapping efficiency: 50 used (Sr*Sc) over 6 folds x 16 PEs
    assert m.mapping_efficiency == pytest.approx(50 / 96)
    s = map_layer(G, make_arch(**{"array.dataflow": "os", "timing.convention": "scalesim"}), weight_bits=8,
                  act_bits=8)
    assert s.compute_cycles == 71


def test_ws_by_hand():
    # ws: Sr=K=6, Sc=N=5, T=M=10 -> 2 x 2 folds; per fold (2R-1) + T + (C-1) = 7 + 10 + 3 = 20 -> 80
    m = map_layer(G, make_arch(), weight_bits=8, act_bits=8)
    assert (m.folds, m.cycles_per_fold, m.compute_cycles) == (4, 20, 80)
    assert (m.fill_cycles, m.steady_cycles, m.drain_cycles) == (28, 40, 12)
    # ifmap per column fold 10*6*2=120; each weight once 30; partial sums written per row fold 50*2=100,
    # read back for accumulation on every fold but the first: 50*(2-1)=50
    assert (m.sram_ifmap_reads, m.sram_filter_reads, m.sram_ofmap_writes, m.sram_ofmap_reads) == (120, 30,
                                                                                                  100, 50)


def test_is_by_hand():
    # is: Sr=K=6, Sc=M=10, T=N=5 -> 2 x 3 folds; per fold 7 + 5 + 3 = 15 -> 90
    m = map_layer(G, make_arch(**{"array.dataflow": "is"}), weight_bits=8, act_bits=8)
    assert (m.folds, m.cycles_per_fold, m.compute_cycles) == (6, 15, 90)
    # each input once 60; filter per column fold 30*3=90; partial sums per row fold 100
    assert (m.sram_ifmap_reads, m.sram_filter_reads, m.sram_ofmap_writes) == (60, 90, 100)


def test_groups_multiply_folds_and_accesses():
    # a depthwise 3x3 on 8 channels of 6x6, padding 1: 8 groups of M=36, K=9, N=1 on 4x4 ws:
    # per group Sr=9 -> 3 row folds, Sc=1 -> 1 col fold; per fold 7 + 36 + 3 = 46 -> 8*3*46 = 1104
    from hwsim.spec import Conv2d

    dw = Conv2d(name="dw", op="depthwise", in_channels=8, out_channels=8, in_h=6, in_w=6, kernel=3, padding=1)
    m = map_layer(dw, make_arch(), weight_bits=8, act_bits=8)
    assert (m.groups, m.folds, m.compute_cycles, m.macs) == (8, 24, 1104, 8 * 36 * 9)
    # mapping efficiency: 9*1 used of 3 folds x 16 PEs = 9/48, reported not hidden
    assert m.mapping_efficiency == pytest.approx(9 / 48)


def test_packing_counts_accesses_of_the_word():
    # 120 ifmap reads of 8-bit operands in 64-bit words: 120/8 = 15 accesses; 4-bit: 120/16 = 7.5 -> 8
    from hwsim.energy import action_energies, layer_energy

    def ifmap_read_accesses(act_bits):
        arch = make_arch(**{"array.dataflow": "os"})
        m = map_layer(G, arch, weight_bits=8, act_bits=act_bits)
        assert m.traffic.reads["ifmap_sram"]["ifmap"] == 120 * act_bits
        recs = layer_energy(m, arch, action_energies(arch))
        return next(r.count for r in recs if (r.component, r.operand, r.action) == ("ifmap_sram", "ifmap",
                                                                                    "read"))

    assert (ifmap_read_accesses(8), ifmap_read_accesses(4)) == (15, 8)


def test_bit_fusion_fuses_macs_along_k():
    arch = make_arch(**{"array.dataflow": "os", "pe.precision_mode": "bit_fusion", "pe.brick_bits": 2})
    pe = arch.pe
    # 4b x 4b: (8/4)*(8/4) = 4 MACs per PE per cycle; 3 bits round up to 4; 5 bits to 8 (2-bit bricks fuse
    # in powers of two: 1, 2, 4 bricks)
    assert precision_factors(pe, 4, 4).macs_per_pe_cycle == 4
    assert precision_factors(pe, 3, 3).macs_per_pe_cycle == 4
    assert precision_factors(pe, 5, 2).macs_per_pe_cycle == 4  # (8/8)*(8/2)
    assert precision_factors(pe, 2, 2).macs_per_pe_cycle == 16
    # K=6 fused by 4 -> 2 steps: os per fold 3 + 2 + 3 = 8, 6 folds -> 48
    m = map_layer(G, arch, weight_bits=4, act_bits=4)
    assert (m.t, m.compute_cycles) == (2, 48)


def test_bit_serial_stretches_the_streaming_phase():
    # Stripes: activations serial, 1 bit per cycle: 4-bit activations take 4 cycles per step;
    # os per fold 3 + 6*4 + 3 = 30, 6 folds -> 180. Loom (both serial): 4*4 = 16 cycles per step.
    arch = make_arch(**{"array.dataflow": "os", "pe.precision_mode": "bit_serial"})
    m = map_layer(G, arch, weight_bits=8, act_bits=4)
    assert (m.cycles_per_fold, m.compute_cycles) == (30, 180)
    loom = make_arch(**{"pe.precision_mode": "bit_serial", "pe.serial_operands": ["act", "weight"]})
    assert precision_factors(loom.pe, 4, 4).cycles_per_step == 16


def test_operands_wider_than_the_pe_are_infeasible():
    with pytest.raises(InfeasibleError, match=re.escape(
            "<arch>: pe: expected operands of 1..8 bits (min_bits..operand_bits, precision_mode fixed), "
            "found act_bits 12 in layer g")):
        map_layer(G, make_arch(), weight_bits=8, act_bits=12)
    with pytest.raises(InfeasibleError,
                       match=r"pe: expected operands of 4\.\.8 bits .*found weight_bits 2 in "
                                              r"layer g$"):
        map_layer(G, make_arch(**{"pe.min_bits": 4}), weight_bits=2, act_bits=8)
