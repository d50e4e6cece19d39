"""The cycle-stepped systolic array computes gemm_acc's integers, and the cycles it measures (its loop runs
until the last output has left the array) equal the timing model's per-fold compute cycles (ws, is) or those
plus the OS drain of R - 1 cycles (os)."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.datapath import gemm_acc, systolic_gemm
from hwsim.mapping import map_layer
from hwsim.spec import Gemm

from .utils import make_arch


def _random_cases(n, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        m, k, n_ = (int(v) for v in rng.integers(1, 20, 3))
        rows, cols = (int(v) for v in rng.integers(1, 9, 2))
        out.append((m, k, n_, rows, cols))
    return out


CASES = _random_cases(8, 2026) + [(4, 4, 4, 4, 4), (9, 17, 3, 4, 4), (1, 1, 1, 1, 1), (5, 13, 7, 3, 5)]


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
@pytest.mark.parametrize("case", CASES)
def test_integers_and_measured_cycles(dataflow, case):
    m, k, n, rows, cols = case
    rng = np.random.default_rng(m * 1000 + k * 100 + n * 10 + rows)
    a = rng.integers(0, 256, (m, k)).astype(np.uint8)
    b = rng.integers(-128, 128, (k, n)).astype(np.int8)
    bias = rng.integers(-1000, 1000, n).astype(np.int32)
    res = systolic_gemm(a, b, a_zp=17, b_zp=0, bias=bias, rows=rows, cols=cols, dataflow=dataflow)
    ref, ov = gemm_acc(a, b, a_zp=17, b_zp=0, bias=bias)
    np.testing.assert_array_equal(res.acc, ref)
    assert res.overflow == ov
    arch = make_arch(**{"array.dataflow": dataflow, "array.rows": rows, "array.cols": cols})
    lm = map_layer(Gemm(name="g", op="gemm", m=m, k=k, n=n), arch, weight_bits=8, act_bits=8)
    assert res.folds == lm.folds
    # ws/is: the stepped array's last output leaves with the timing model's last cycle (SCALE-Sim 3.0.0
    # convention, 2R + T + C - 2). os: SCALE-Sim stops at the last MAC (R - 1 + T + C - 1); the stepped array
    # also counts the R - 1 edges the bottom row's sum takes to climb the output chain to the port.
    drain = rows - 1 if dataflow == "os" else 0
    assert all(c == lm.cycles_per_fold + drain for c in res.fold_cycles), (res.fold_cycles,
                                                                             lm.cycles_per_fold)
    assert res.cycles == lm.compute_cycles + lm.folds * drain
    assert all(v <= c for v, c in zip(res.last_output_cycles, res.fold_cycles, strict=True))


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_saturating_accumulator_in_pe_order(dataflow):
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (7, 11)).astype(np.uint8)
    b = rng.integers(-128, 128, (11, 6)).astype(np.int8)
    for bits in (12, 16):
        res = systolic_gemm(a, b, a_zp=0, b_zp=0, rows=4, cols=3, dataflow=dataflow, acc_bits=bits,
                            acc_mode="saturate")
        ref, ev = gemm_acc(a, b, a_zp=0, b_zp=0, acc_bits=bits, acc_mode="saturate", fast=False)
        np.testing.assert_array_equal(res.acc, ref)
        assert res.overflow == ev and ev > 0


def test_exit_cycles_by_hand():
    # os, 2x3 array, M=2, K=2, N=3 (one fold), all ones: PE (i, j) takes its last product (k = T-1 = 1) in
    # cycle 1 + i + j, i.e. edge T + i + j = 2 + i + j, and its sum climbs i rows to the port: it leaves at
    # edge 2 + 2i + j. Last: (1, 2) at 2 + 2 + 2 = 6 = T + 2R + C - 3 = 2 + 4 + 3 - 3.
    res = systolic_gemm(np.ones((2, 2), np.int8), np.ones((2, 3), np.int8), a_zp=0, b_zp=0, rows=2, cols=3,
                        dataflow="os", trace=True)
    assert res.exit_cycle.tolist() == [[2, 3, 4], [4, 5, 6]]
    assert res.fold_cycles == (6,) and res.acc.tolist() == [[2, 2, 2]] * 2
    tr = res.trace[0]
    # the port after edge 4 (line 3) holds row 0's sum of column 2 and row 1's of column 0
    assert tr.out_valid[3].tolist() == [1, 0, 1] and tr.out_tag[3].tolist() == [1, -1, 0]
    # ws, 3x2 array, K=3, N=2, M=2 (one fold): 3 load cycles, then a[m, k] enters row k in cycle 3 + m + k;
    # output (m, j) is written into the bottom row's register at edge 3 + m + 2 + j + 1 = 6 + m + j.
    res = systolic_gemm(np.arange(6, dtype=np.int8).reshape(2, 3), np.ones((3, 2), np.int8), a_zp=0, b_zp=0,
                        rows=3, cols=2, dataflow="ws", trace=True)
    assert res.exit_cycle.tolist() == [[6, 7], [7, 8]] and res.fold_cycles == (8,)
    assert res.acc.tolist() == [[3, 3], [12, 12]]
    tr = res.trace[0]
    assert tr.inputs["load"][:, 0].tolist() == [1, 1, 1, 0, 0, 0, 0, 0]
    assert tr.inputs["left_data"][:, 2].tolist() == [0, 0, 0, 0, 0, 2, 5, 0]  # a[m, 2] in cycle 5 + m


def test_partial_folds_run_the_full_tile_schedule():
    # os, 4x4 array, M=5 (row folds 4 + 1), N=4, K=3: every fold lasts T + 2R + C - 3 = 3 + 8 + 4 - 3 = 12
    # edges; in the second fold only PE row 0 is valid: its column 3 sum leaves at T + 0 + 3 = 6
    res = systolic_gemm(np.ones((5, 3), np.int8), np.ones((3, 4), np.int8), a_zp=0, b_zp=0, rows=4, cols=4,
                        dataflow="os")
    assert res.fold_cycles == (12, 12) and res.last_output_cycles == (12, 6)
    # ws, 4x4, K=5 (row folds 4 + 1), N=2 (2 of 4 columns used), M=3: fold = 2R + T + C - 2 = 8+3+4-2 = 13;
    # the last output of column 1 leaves the bottom row at R + (T-1) + (R-1) + 1 + 1 = 4 + 2 + 3 + 2 = 11
    res = systolic_gemm(np.ones((3, 5), np.int8), np.ones((5, 2), np.int8), a_zp=0, b_zp=0, rows=4, cols=4,
                        dataflow="ws")
    assert res.fold_cycles == (13, 13) and res.last_output_cycles == (11, 11)
    assert res.acc.tolist() == [[5, 5]] * 3
