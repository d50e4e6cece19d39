"""The cycle-stepped systolic array computes gemm_acc's integers and takes map_layer's compute cycles."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.datapath import gemm_acc
from hwsim.datapath import systolic_gemm
from hwsim.mapping import map_layer
from hwsim.spec import Gemm

from .utils import make_arch

SHAPES = [(4, 4, 4), (8, 8, 8), (10, 6, 5), (5, 13, 7), (1, 1, 1), (9, 17, 3)]


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
@pytest.mark.parametrize("mkn", SHAPES)
@pytest.mark.parametrize("array", [(4, 4), (3, 5)])
def test_integers_and_cycles(dataflow, mkn, array):
    m, k, n = mkn
    rows, cols = array
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    a = rng.integers(0, 256, (m, k)).astype(np.uint8)
    b = rng.integers(-128, 128, (k, n)).astype(np.int8)
    bias = rng.integers(-1000, 1000, n).astype(np.int32)
    res = systolic_gemm(a, b, a_zp=17, b_zp=0, bias=bias, rows=rows, cols=cols, dataflow=dataflow)
    ref, ov = gemm_acc(a, b, a_zp=17, b_zp=0, bias=bias)
    np.testing.assert_array_equal(res.acc, ref)
    assert res.overflow == ov
    arch = make_arch(**{"array.dataflow": dataflow, "array.rows": rows, "array.cols": cols})
    lm = map_layer(Gemm(name="g", op="gemm", m=m, k=k, n=n), arch, weight_bits=8, act_bits=8)
    assert res.cycles == lm.compute_cycles and res.folds == lm.folds
    assert all(c == lm.cycles_per_fold for c in res.fold_cycles)
    # the last valid output never comes after the fold's end; full folds end exactly with it
    assert all(lo <= c for lo, c in zip(res.last_output_cycles, res.fold_cycles))


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


def test_partial_folds_run_the_full_tile_schedule():
    # os, 4x4 array, M=5 (row folds 4 + 1), N=4, K=3: every fold costs (R-1) + T + (C-1) = 3 + 3 + 3 = 9
    # cycles as map_layer charges it; the second fold's only valid row is done at cycle (3-1) + 0 + 3 + 1 = 6
    a = np.ones((5, 3), np.int8)
    b = np.ones((3, 4), np.int8)
    res = systolic_gemm(a, b, a_zp=0, b_zp=0, rows=4, cols=4, dataflow="os")
    assert res.fold_cycles == (9, 9) and res.last_output_cycles == (9, 6)
    # ws, 4x4, K=5 (row folds 4 + 1), N=2 (2 of 4 columns used), M=3: fold = (2R-1) + T + (C-1) = 7+3+3 = 13;
    # the last output of column 1 leaves the bottom row at R + (T-1) + (R-1) + 1 + 1 = 4 + 2 + 3 + 2 = 11
    res = systolic_gemm(np.ones((3, 5), np.int8), np.ones((5, 2), np.int8), a_zp=0, b_zp=0, rows=4, cols=4,
                        dataflow="ws")
    assert res.fold_cycles == (13, 13) and res.last_output_cycles == (11, 11)
    assert res.acc.tolist() == [[5, 5]] * 3
