"""Range calibration: min/max, percentile, MSE, entropy (KL) against onnxruntime's entropy calibrator, and
ACIQ against the constants published by Banner et al. (NeurIPS 2019)."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from hwsim.quant import (
    CALIBRATION_METHODS,
    aciq_alpha,
    aciq_range,
    calibrate,
    calibrate_range,
    entropy_range,
    entropy_threshold,
    minmax_range,
    mse_range,
    percentile_range,
)

F32 = np.float32


def test_minmax_and_percentile_hand_derived():
    x = np.arange(10001, dtype=F32)                  # 0, 1, ..., 10000
    assert minmax_range([x[:10], x[10:]]) == (0.0, 10000.0)
    # numpy's linear percentile of 0..10000 at p: p/100 * 10000 exactly
    assert percentile_range(x, 99.0) == (100.0, 9900.0)
    # |x - 5000| sorted is 0, 1, 1, 2, 2, ..., 5000, 5000: element 0.99 * 10000 = 9900 is 4950
    assert percentile_range(x - 5000, 99.0, symmetric=True) == (-4950.0, 4950.0)
    with pytest.raises(ValueError, match="percentile must be in"):
        percentile_range(x, 40)


def test_mse_hand_derived_grid_and_uniform_data():
    # x = {0, 1, 2, 3, 30}, unsigned 2 bits (codes 0..3), candidates t = 7.5, 15, 22.5, 30 (grid = 4):
    #   t = 7.5  (s = 2.5): errors 0, 1, .25, .25, 506.25 -> 507.75
    #   t = 15   (s = 5):   0, 1, 4, 4, 225               -> 234
    #   t = 22.5 (s = 7.5): 0, 1, 4, 9, 56.25             -> 70.25
    #   t = 30   (s = 10):  0, 1, 4, 9, 0                 -> 14      <- the minimum
    x = np.array([0, 1, 2, 3, 30], F32)
    assert mse_range(x, 2, grid=4) == (0.0, 30.0)
    # uniform data has no tails: clipping only adds error, the best ratio is within the top grid steps
    u = np.random.default_rng(0).uniform(0, 1, 100_000).astype(F32)
    assert mse_range(u, 4)[1] >= 0.97 * float(u.max())


def _ort_entropy(samples, num_bins, num_quantized_bins):
    from onnxruntime.quantization.calibrate import HistogramCollector

    hc = HistogramCollector("entropy", False, num_bins, num_quantized_bins, 99.99, "same")
    with contextlib.redirect_stdout(io.StringIO()):
        for s in samples:
            hc.collect({"t": s})
        th = hc.compute_entropy()["t"]
    return hc.histogram_dict["t"], (float(th[0]), float(th[1]))


@pytest.mark.parametrize("case", range(4))
def test_entropy_threshold_equals_onnxruntime_entropy_calibrator(case):
    rng = np.random.default_rng(case)
    x = np.concatenate([rng.laplace(0, 1, 40_000), rng.normal(3, 0.5, 2_000)]).astype(F32)
    if case == 1:
        x = np.maximum(x, 0)                                     # one-sided (post-ReLU)
    bins = (512, 512, 1024, 128)[case]
    # two collect() calls with a growing range exercise ORT's histogram merging
    hist, (lo, hi) = _ort_entropy([x[:20_000], x[20_000:] * 1.5], bins, 128)
    mine = entropy_threshold(hist[0], hist[1], 128, flavor="onnxruntime")
    # ORT finally clamps the window to the observed min/max; the caller of entropy_threshold does that
    assert (max(float(mine[0]), float(hist[2])), min(float(mine[1]), float(hist[3]))) == (lo, hi)


def test_entropy_tensorrt_flavour_hand_derived_cases():
    # a flat histogram quantizes without loss at every window, and with no outliers the full range has P = Q
    # exactly: KL = 0 at i = len(hist) -> the threshold is the last edge
    hist = np.full(2048, 10)
    edges = np.linspace(0, 2.048, 2049)
    assert entropy_threshold(hist, edges, 128) == pytest.approx(2.048)
    # Laplace(0, 1) samples (max |x| = 12.8): the KL threshold clips the tails, more so with fewer levels
    # (measured: 9.42 at 8 bits, 6.05 at 4 bits; ACIQ's analytical 4-bit clip is 5.03)
    x = np.random.default_rng(5).laplace(0, 1, 200_000).astype(F32)
    t8, t4 = entropy_range(x, 8, signed=True)[1], entropy_range(x, 4, signed=True)[1]
    assert t4 < t8 < 0.8 * float(np.abs(x).max())
    assert t8 == pytest.approx(9.417, abs=0.01) and t4 == pytest.approx(6.051, abs=0.01)
    # with the zero-bin fill and start bin of NVIDIA's calibrator, ReLU-like data with half zeros keeps a
    # useful range at 8 bits (the raw TensorRT rule collapses it near 0)
    rng = np.random.default_rng(5)
    r = np.maximum(rng.laplace(0, 1, 200_000), 0).astype(F32)
    assert entropy_range(r, 8)[1] > 3.0
    assert entropy_range(r, 8, fill_zero_bin=False, start_bin=0)[1] < entropy_range(r, 8)[1]


def test_aciq_reproduces_banner_et_al_constants():
    # Banner, Nahshan, Soudry, NeurIPS 2019, §3: Laplace(b) optimal clip 2.83b, 3.89b, 5.03b at 2, 3, 4 bits;
    # their code's Gaussian table: 1.71, 2.15, 2.55 sigma at 2, 3, 4 bits. Our golden-section minimum of the
    # same MSE expression agrees to the printed digits (their values look truncated: 3.8969 -> 3.89).
    for bits, ref in ((2, 2.83), (3, 3.89), (4, 5.03)):
        assert abs(aciq_alpha(bits, "laplace") - ref) < 0.01
    for bits, ref in ((2, 1.71), (3, 2.15), (4, 2.55)):
        assert abs(aciq_alpha(bits, "gauss") - ref) < 0.011


def test_aciq_and_mse_agree_on_laplace_data():
    # peer check: the analytical optimum (ACIQ) and the empirical MSE search land within 8 % of each other on
    # 200k Laplace(0, 1) samples at 4 bits (symmetric signed range); both far inside max|x| (~12)
    x = np.random.default_rng(6).laplace(0, 1, 200_000).astype(F32)
    a = aciq_range(x, 4, signed=True)[1]
    m = mse_range(x, 4, signed=True, symmetric=True, grid=400)[1]
    assert abs(a - m) / a < 0.08 and a < 0.5 * float(np.abs(x).max())
    assert a == pytest.approx(5.03 * np.mean(np.abs(x - x.mean())), rel=1e-3)


def test_calibrate_dispatch_returns_quantizers():
    x = np.random.default_rng(7).normal(1, 1, 5000).astype(F32)
    for m in CALIBRATION_METHODS:
        lo, hi = calibrate_range(x, m, 8)
        assert lo <= hi
        qp = calibrate(x, 8, m)
        assert qp.bits == 8 and not qp.signed
    with pytest.raises(ValueError, match="method must be one of"):
        calibrate(x, 8, "kl")
