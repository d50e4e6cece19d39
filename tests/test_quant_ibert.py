"""I-BERT's integer-only nonlinearities (Kim et al., ICML 2021): hand-derived codes, the paper's stated GELU
error (Table 1), the exp polynomial's error bound, exact integer square roots against Python's math.isqrt."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import erf

from hwsim.quant import i_exp, i_gelu, i_layernorm, i_poly, i_softmax, i_sqrt


def test_i_exp_by_hand():
    # S = 0.01: q_ln2 = floor(0.6931/0.01) = 69; q_b = floor(1.353/0.01) = 135;
    # q_c = floor(0.344 / (0.3585 * 1e-4)) = floor(9595.54) = 9595; S_out = 0.3585e-4
    # q = 0:    z = 0, q_p = 0,   q_L = 135^2 + 9595 = 27820            -> 27820 * 3.585e-5 = 0.99735
    # q = -100: z = 1, q_p = -31, q_L = 104^2 + 9595 = 20411, >> 1 = 10205 -> 0.36585 (exp(-1) = 0.36788)
    q, s = i_exp(np.array([0, -100]), 0.01)
    assert q.tolist() == [27820, 10205] and s == pytest.approx(3.585e-5)
    with pytest.raises(ValueError, match="x <= 0"):
        i_exp(np.array([1]), 0.01)


def test_i_gelu_by_hand():
    # x = 1.0 = 100 * 0.01. erf input scale S' = 0.01/sqrt(2) = 0.00707107; q_b = floor(-1.769/S') = -251,
    # q_c = floor(1 / (-0.2888 S'^2)) = floor(-69252.08) = -69253; |q| = 100 < 251:
    # q_erf = (100 - 251)^2 - 69253 = -46452 at S_erf = -0.2888 S'^2 = -1.444e-5; q_1 = floor(1/S_erf) =
    # -69253; q_out = 100 (-46452 - 69253) = -11570500, S_out = 0.01 S_erf / 2 = -7.22e-8 -> 0.83539 (GELU(1)
    # = 0.84134)
    q, s = i_gelu(np.array([100]), 0.01)
    assert q.tolist() == [-11570500] and s == pytest.approx(-7.22e-8)
    assert float(q[0] * s) == pytest.approx(0.83539, abs=1e-5)


def test_i_gelu_meets_the_papers_error():
    # I-BERT Table 1: i-GELU against GELU on [-4, 4]: L2 distance 0.0082, L-infinity 0.018 (the float
    # polynomial's own error; the integer kernel at a fine scale adds at most a code's worth)
    S = 1e-3
    q = np.arange(-4000, 4001)
    g, sg = i_gelu(q, S)
    x = q * S
    d = g * sg - x * 0.5 * (1 + erf(x / math.sqrt(2)))
    assert np.sqrt(np.mean(d ** 2)) <= 0.0083 and np.abs(d).max() <= 0.0185
    # int8 inputs covering [-4, 4] (S = 4/127): the paper's bounds plus the floors of the constants
    S8 = 4 / 127
    q8 = np.arange(-127, 128)
    g8, s8 = i_gelu(q8, S8)
    x8 = q8 * S8
    assert np.abs(g8 * s8 - x8 * 0.5 * (1 + erf(x8 / math.sqrt(2)))).max() <= 0.018 + 2 * S8


def test_i_exp_error_bound():
    # exp(p) ~ 0.3585 (p + 1.353)^2 + 0.344 on (-ln2, 0] has a largest error of 2.13e-3 (at p = -ln2, where
    # the polynomial gives 0.50213); 2^-z only shrinks it, the floors of the constants add < 1e-4 at S = 1e-3
    q = np.arange(-20000, 1)
    e, s = i_exp(q, 1e-3)
    assert np.abs(e * s - np.exp(q * 1e-3)).max() <= 2.2e-3
    assert (np.diff(e) >= 0).all()   # monotone in x


def test_i_poly_value():
    # 2 (x + 3)^2 + 5 at x = 1.5 = 3 * 0.5: q_b = 6, q_c = floor(5 / (2 * 0.25)) = 10 -> (3 + 6)^2 + 10 = 91
    # at S_out = 0.5 -> 45.5, exactly 2 * 4.5^2 + 5
    q, s = i_poly(np.array([3]), 0.5, 2.0, 3.0, 5.0)
    assert q.tolist() == [91] and s == 0.5


def test_i_softmax_against_float():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, (64, 40))
    S = 0.01
    q = np.round(x / S).astype(np.int64)
    p, sp = i_softmax(q, S, out_bits=8)
    ref = np.exp(q * S - (q * S).max(1, keepdims=True))
    ref /= ref.sum(1, keepdims=True)
    assert sp == 2 ** -8 and p.min() >= 0 and p.max() <= 255
    # each probability: the exp error (relative <= 2.2e-3/0.5 after normalization) and one output code
    assert np.abs(p * sp - ref).max() <= 2 ** -8 + 5e-3
    assert np.abs((p * sp).sum(1) - 1).max() <= 40 * 2 ** -8


def test_i_sqrt_is_the_floor_square_root():
    n = np.arange(0, 100000)
    assert np.array_equal(i_sqrt(n), [math.isqrt(int(v)) for v in n])
    r = np.random.default_rng(1).integers(0, 2 ** 62, 2000)
    assert np.array_equal(i_sqrt(r), [math.isqrt(int(v)) for v in r])
    with pytest.raises(ValueError):
        i_sqrt(np.array([-1]))


def test_i_layernorm_by_hand_and_against_float():
    # q = [1, 2, 3, 4]: mu = (2*10 + 4) // 8 = 3; y = [-2, -1, 0, 1]; sum y^2 = 6; sigma = isqrt(6) = 2;
    # f = 2^31 // 2 = 2^30; y' = y 2^30 // 2 = y 2^29; scale sqrt(4) / 2^30 = 2^-29 -> [-2, -1, 0, 1] (gamma
    # 1)
    q, s = i_layernorm(np.array([[1, 2, 3, 4]]), 0.1, np.ones(4), np.zeros(4))
    assert (q * s).tolist() == [[-2.0, -1.0, 0.0, 1.0]]
    # int8-range rows of 384 channels: the integer mean (half a code) and the floor of sqrt bound the error:
    # |err| <= (0.5 + |y_hat|) / sigma_int per normalized unit, times |gamma|
    rng = np.random.default_rng(2)
    x = rng.normal(0.3, 1.0, (16, 384))
    S = np.abs(x).max() / 127
    qi = np.round(x / S).astype(np.int64)
    g = rng.uniform(0.5, 1.5, 384)
    b = rng.normal(0, 0.1, 384)
    qo, so = i_layernorm(qi, S, g, b)
    xf = qi.astype(np.float64)
    yh = (xf - xf.mean(1, keepdims=True)) / xf.std(1, keepdims=True)
    sig = np.floor(np.sqrt(((qi - np.round(xf.mean(1, keepdims=True))) ** 2).sum(1, keepdims=True) / 384))
    bound = (0.5 + np.abs(yh) + 1) / sig * g + np.abs(so)
    assert (np.abs(qo * so - (yh * g + b)) <= bound).all()
    assert np.abs(qo * so - (yh * g + b)).max() < 0.05
