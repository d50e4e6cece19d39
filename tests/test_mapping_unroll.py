"""``array.unroll``: which loop dimensions each array axis unrolls (hwsim/mapping/_unroll.py).

* The GEMM view written out as an unroll (ws and is rows C, FY, FX; os rows B, OY, OX; columns K, or B, OY,
  OX for is) gives exactly the default's cycles, SRAM accesses and traffic on random layers: the default is
  unchanged, so SCALE-Sim equality stays (tests/test_mapping_scalesim.py).
* ZigZag's tpu_like mapping (rows C, columns K) on MobileNetV2's first depthwise conv and edge_tpu_like's
  factors (rows C 8 x OX 4 x OY 4, columns K 8), derived by hand.
* Bad unrolls: one line, exit 2.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from hwsim.errors import InfeasibleError
from hwsim.mapping import map_layer
from hwsim.spec import Conv2d, Gemm

from .utils import ROOT, make_arch

IM2COL = {"ws": {"rows": ["C", "FY", "FX"], "cols": ["K"]}, "os": {"rows": ["B", "OY", "OX"], "cols": ["K"]},
          "is": {"rows": ["C", "FY", "FX"], "cols": ["B", "OY", "OX"]}}


def _random_layers(rng, n):
    out = []
    for i in range(n):
        if rng.random() < 0.25:
            out.append(Gemm(name=f"g{i}", op="gemm", m=int(rng.integers(1, 70)), k=int(rng.integers(1, 90)),
                            n=int(rng.integers(1, 70)), count=int(rng.integers(1, 3))))
            continue
        g = int(rng.choice([1, 1, 2, 4]))
        k = int(rng.choice([1, 3, 5]))
        c = g * int(rng.integers(1, 9))
        out.append(Conv2d(name=f"c{i}", op="conv2d", in_channels=c, out_channels=g * int(rng.integers(1, 9)),
                          in_h=int(rng.integers(k, 20)), in_w=int(rng.integers(k, 20)), kernel=k,
                          stride=int(rng.choice([1, 2])), padding=int(rng.integers(0, 2)), groups=g,
                          batch=int(rng.integers(1, 3))))
    return out


FIELDS = ("compute_cycles", "fill_cycles", "steady_cycles", "drain_cycles", "folds", "mapping_efficiency",
          "sram_ifmap_reads", "sram_filter_reads", "sram_ofmap_writes", "sram_ofmap_reads", "m_tiles",
          "n_tiles")


@pytest.mark.parametrize("df", ["ws", "os", "is"])
def test_im2col_written_out_equals_the_default(df):
    rng = np.random.default_rng(7)
    for rows, cols in ((4, 4), (7, 3), (16, 5)):
        for bufs in (64, 0.25):
            over = {"array.dataflow": df, "array.rows": rows, "array.cols": cols,
                    "memory.ifmap_sram.size_kib": bufs, "memory.filter_sram.size_kib": bufs,
                    "memory.ofmap_sram.size_kib": 64, "memory.dram.bandwidth_bytes_per_cycle": 4}
            base = make_arch(**over)
            expl = make_arch(**over, **{"array.unroll": IM2COL[df]})
            assert base.array.unroll is None and expl.array.unroll is not None
            for layer in _random_layers(rng, 40):
                a = map_layer(layer, base, weight_bits=8, act_bits=8)
                b = map_layer(layer, expl, weight_bits=8, act_bits=8)
                want = [getattr(b, f) for f in FIELDS]
                assert [getattr(a, f) for f in FIELDS] == pytest.approx(want), layer
                assert (a.traffic.reads, a.traffic.writes) == (b.traffic.reads, b.traffic.writes), layer


def _dw1():
    # MobileNetV2's first depthwise conv: 32 channels of 112 x 112, 3 x 3, stride 1, padding 1
    return Conv2d(name="dw1", op="depthwise", in_channels=32, out_channels=32, in_h=112, in_w=112, kernel=3,
                  stride=1, padding=1, groups=32)


def test_tpu_like_unroll_puts_a_depthwise_conv_on_one_pe():
    # 32 x 32 ws. Per group C = 1, K = 1, OY = OX = 112, FY = FX = 3.
    # im2col (default): rows take C*FY*FX = 9, columns K = 1: one fold per group streaming T = 12,544 pixels:
    #   32 x (2*32 - 1 + 12,544 + 32 - 1) = 32 x 12,638 = 404,416 cycles; 9 of 1,024 PEs busy.
    # rows [C], cols [K] (ZigZag's tpu_like, D2 = C, D1 = K): FY and FX are temporal, so 9 folds per group
    #   of one weight each: 32 x 9 x 12,638 = 3,639,744 cycles; 1 of 1,024 PEs busy. The 9 folds' partial sums
    #   of one pixel column (12,544 x 32 bits) must stay in the ofmap buffer's 32 KiB half, which holds 8,192:
    #   2 M tiles, so every fold fills and drains twice: + 288 x (63 + 31) = 3,666,816 cycles.
    arch = make_arch(**{"array.rows": 32, "array.cols": 32})
    a = map_layer(_dw1(), arch, weight_bits=8, act_bits=8)
    assert (a.folds, a.compute_cycles) == (32, 404_416)
    assert a.mapping_efficiency == pytest.approx(9 / 1024)
    z = map_layer(_dw1(), arch.replace(**{"array.unroll": {"rows": ["C"], "cols": ["K"]}}), weight_bits=8,
                  act_bits=8)
    assert (z.folds, z.t, z.m_tiles, z.compute_cycles) == (288, 12_544, 2, 3_666_816)
    assert z.mapping_efficiency == pytest.approx(1 / 1024)
    # each weight is loaded once per M tile (2 x 288); each partial sum leaves the array once per (fy, fx)
    # fold: 9 x 12,544 x 32
    assert (z.sram_filter_reads, z.sram_ofmap_writes) == (2 * 288, 9 * 12_544 * 32)


def test_edge_tpu_like_factors_by_hand():
    # 128 x 8 ws, rows {C: 8, OX: 4, OY: 4}, cols {K: 8}; conv C 16 -> K 16, 8 x 8 outputs, 3 x 3, pad 1.
    # steps: C 16/8 = 2, OX 8/4 = 2, OY 2, K 16/8 = 2, FY 3, FX 3, B 1. Streamed (ws): B x OY x OX = 4 steps;
    # folds: C 2 x K 2 x FY 3 x FX 3 = 36. Systolic depth: rows 8 (C; the OX x OY replicas share each
    # weight and add none), columns 8 (K): each fold 2*8 - 1 + 4 + 8 - 1 = 26 cycles: 936 cycles (a 128-deep
    # chain would fill for 2*128 - 1 = 255 cycles per fold).
    # PEs: all 128 x 8 busy in every step: mapping efficiency 16*16*9*64 MACs / (36 x 4 x 1,024) = 1.
    arch = make_arch(**{"array.rows": 128, "array.cols": 8,
                        "array.unroll": {"rows": {"C": 8, "OX": 4, "OY": 4}, "cols": {"K": 8}}})
    layer = Conv2d(name="c", op="conv2d", in_channels=16, out_channels=16, in_h=8, in_w=8, kernel=3,
                   padding=1)
    m = map_layer(layer, arch, weight_bits=8, act_bits=8)
    assert (m.folds, m.t, m.cycles_per_fold, m.compute_cycles) == (36, 4, 26, 936)
    assert m.mapping_efficiency == pytest.approx(1.0)


def test_gemm_dims():
    # a GEMM (M, K) x (K, N) has B = M, C = K, K = N: rows [C], cols [K] on ws is its GEMM view exactly
    arch = make_arch(**{"array.unroll": {"rows": ["C"], "cols": ["K"]}})
    g = Gemm(name="g", op="gemm", m=10, k=6, n=5)
    assert map_layer(g, arch, weight_bits=8, act_bits=8).compute_cycles == \
        map_layer(g, make_arch(), weight_bits=8, act_bits=8).compute_cycles == 80


def test_flattening_mixed_kinds_is_infeasible():
    arch = make_arch(**{"array.unroll": {"rows": ["C", "OX"], "cols": ["K"]}})
    layer = Conv2d(name="c", op="conv2d", in_channels=4, out_channels=4, in_h=6, in_w=6, kernel=3)
    with pytest.raises(InfeasibleError, match=r"array\.unroll\.rows: expected listed \(flattened\) dims of "
                                              r"one kind.*found C, OX"):
        map_layer(layer, arch, weight_bits=8, act_bits=8)


BAD_UNROLL = [
    ("{rows: [C, Q], cols: [K]}", "array.unroll.rows: expected loop dimensions among B, K, C, OY, OX, FY, "
                                  "FX, found 'Q'"),
    ("{rows: [C, FY], cols: [K, C]}", "array.unroll: expected each loop dimension on at most one axis, once, "
                                      "found C twice"),
    ("{rows: {C: 8, OX: 8}, cols: [K]}", "array: expected unroll factors on rows multiplying to at most rows "
                                         "(32), found C 8 x OX 8 = 64"),
    ("im2cl", "array.unroll: expected 'im2col' or a mapping with rows and cols, found 'im2cl'"),
]


def _with_array_key(tmp_path, key, value):
    bad = tmp_path / "a.yaml"
    text = (ROOT / "arch/edge_32x32.yaml").read_text()
    assert "\n  dataflow: ws" in text
    bad.write_text(text.replace("\n  dataflow: ws", f"\n  {key}: {value}\n  dataflow: ws", 1))
    return bad


@pytest.mark.parametrize("unroll,msg", BAD_UNROLL)
def test_bad_unroll_is_one_line(tmp_path, unroll, msg):
    from hwsim.errors import SpecError
    from hwsim.spec import load_arch
    bad = _with_array_key(tmp_path, "unroll", unroll)
    with pytest.raises(SpecError) as e:
        load_arch(bad)
    assert str(e.value) == f"{bad}: {msg}"


def test_bad_unroll_exits_2_with_one_line(tmp_path):
    unroll, msg = BAD_UNROLL[0]
    bad = _with_array_key(tmp_path, "unroll", unroll)
    r = subprocess.run([sys.executable, "-m", "hwsim", "simulate", str(bad),
                        str(ROOT / "workloads/resnet18.yaml"), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip() == f"hwsim: error: {bad}: {msg}"


def test_broadcast_axes_have_no_fill_or_drain():
    # G = (M 10, K 6, N 5) on 4x4 ws: 2 x 2 folds streaming T = M = 10. Systolic (default): (2*4 - 1) + 10 +
    # (4 - 1) = 20 per fold, 80 cycles. Rows broadcast (systolic: [cols]): fill 2*1 - 1 = 1 (all rows take
    # their weights in one cycle, no input skew): 1 + 10 + 3 = 14, 56. Both broadcast: 1 + 10 + 0 = 11, 44.
    g = Gemm(name="g", op="gemm", m=10, k=6, n=5)
    got = [map_layer(g, make_arch(**({"array.systolic": s} if s is not None else {})), weight_bits=8,
                     act_bits=8).compute_cycles for s in (None, ["cols"], [])]
    assert got == [80, 56, 44]


@pytest.mark.parametrize("systolic,msg", [
    ("[rows, rows]", "array: expected each axis listed once in systolic, found ['rows', 'rows']"),
    ("[diag]", "array.systolic[0]: expected 'rows' or 'cols', found 'diag'"),
])
def test_bad_systolic_is_one_line(tmp_path, systolic, msg):
    from hwsim.errors import SpecError
    from hwsim.spec import load_arch
    bad = _with_array_key(tmp_path, "systolic", systolic)
    with pytest.raises(SpecError) as e:
        load_arch(bad)
    assert str(e.value) == f"{bad}: {msg}"
