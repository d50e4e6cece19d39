"""The engine's float forward with float64 accumulation (``Network.accumulate``)."""

import numpy as np
from threadpoolctl import threadpool_limits

from hwsim.models._engine import Conv, Network, Pool


def _net(accumulate):
    rng = np.random.default_rng(3)
    w1 = rng.standard_normal((64, 48, 1, 1)).astype(np.float32)
    w2 = rng.standard_normal((64, 1, 3, 3)).astype(np.float32)
    w3 = rng.standard_normal((10, 64)).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    ops = [Conv("pw", "input", "a", w1, b, act="relu6"),
           Conv("dw", "a", "b", w2, b, pads=(1, 1, 1, 1), groups=64, act=None, residual="a"),
           Pool("gap", "b", "p"), Pool("flatten", "p", "f"),
           Conv("fc", "f", "logits", w3, np.zeros(10, np.float32), linear=True)]
    return Network("t", ops, "logits", accumulate=accumulate), (w1, w2, w3, b)


def test_float64_accumulation_rounds_each_op_once_and_ignores_threads():
    x = np.random.default_rng(4).standard_normal((2, 48, 40, 40)).astype(np.float32)
    net, (w1, w2, w3, b) = _net(np.float64)
    # peer: the same ops written directly in float64 (einsum), each output rounded to float32
    f = np.float64
    a = np.einsum("kc,nchw->nkhw", w1[:, :, 0, 0].astype(f), x.astype(f)) + b.astype(f)[None, :, None, None]
    a = np.clip(a, 0, 6).astype(np.float32)
    ap = np.pad(a.astype(f), ((0, 0), (0, 0), (1, 1), (1, 1)))
    y = sum(ap[:, :, r:r + 40, s:s + 40] * w2[:, 0, r, s].astype(f)[None, :, None, None]
            for r in range(3) for s in range(3))
    bb = (y + b.astype(f)[None, :, None, None] + a.astype(f)).astype(np.float32)
    p = bb.astype(f).mean(axis=(2, 3)).astype(np.float32)
    logits = (p.astype(f) @ w3.T.astype(f)).astype(np.float32)
    with threadpool_limits(1):
        t1 = net.forward(x, keep=True)
    with threadpool_limits(2):
        t2 = net.forward(x, keep=True)
    for k in ("a", "b", "logits"):
        assert t1[k].dtype == np.float32 and np.array_equal(t1[k], t2[k]), k
    # equal to the float64 peer up to a tie in the float64 rounding (a last-bit step of float32 at most)
    assert np.array_equal(t1["a"], a)
    assert np.abs(t1["b"] - bb).max() <= np.spacing(np.abs(bb).max())
    assert np.abs(t1["logits"] - logits).max() <= 4 * np.spacing(np.abs(logits).max())
    # plain float32 accumulation rounds otherwise on some elements (the attribute has an effect)
    t32 = _net(None)[0].forward(x, keep=True)
    assert not np.array_equal(t32["b"], t1["b"])
    assert net.copy().accumulate is np.float64


def test_sequential_mse_adaround_ptq_is_bit_exact_on_the_datapath():
    from hwsim.models._engine import PTQConfig, QuantizedNetwork
    from hwsim.models.mobilenet_qat import integer_forward

    net, _ = _net(np.float64)
    rng = np.random.default_rng(6)
    calib = rng.standard_normal((4, 48, 12, 12)).astype(np.float32)
    x = rng.standard_normal((3, 48, 12, 12)).astype(np.float32)
    cfg = PTQConfig("seq", bias_correction=True, adaround=True, adaround_iters=40, weight_range="mse",
                    sequential=True)
    q = QuantizedNetwork(net, {n: (4, 8) for n in net.layers}, calib, cfg)
    y, codes = q.run(x, return_codes=True)
    y_ref, codes_ref = integer_forward(q, x, keep=True)
    assert np.array_equal(y.view(np.uint32), y_ref.view(np.uint32))
    assert all(np.array_equal(c, codes[k]) for k, c in codes_ref.items())
    # the MSE range clipped some channel below max|w| (4-bit steps of Gaussian weights)
    w = net.layer("pw").weight
    assert np.any(q.wq["pw"][2].scale * 7 < np.abs(w).reshape(64, -1).max(axis=1) * 0.99)


def test_sequential_bias_correction_removes_the_quantized_networks_mean_shift():
    from hwsim.models._engine import PTQConfig, QuantizedNetwork

    # one linear layer on skewed inputs quantized to 2 bits: rounding the input shifts its mean, which the
    # float-input bias correction cannot see and the sequential one removes. The integer logits are
    # acc * s_x * s_w with acc = sum((x_q - z) w_q) + round(b / (s_x s_w)), so after the sequential correction
    # the calibration mean of every logit equals the float mean up to the bias rounding, s_x s_w / 2.
    rng = np.random.default_rng(7)
    w = rng.standard_normal((5, 16)).astype(np.float32)
    net = Network("lin", [Conv("fc", "input", "logits", w, np.zeros(5, np.float32), linear=True)], "logits")
    calib = rng.exponential(1.0, (2000, 16)).astype(np.float32)
    ref = net.forward(calib).mean(axis=0)
    err = {}
    for seq in (False, True):
        cfg = PTQConfig("bc", bias_correction=True, sequential=seq)
        q = QuantizedNetwork(net, {"fc": (8, 2)}, calib, cfg)
        err[seq] = np.abs(q.run(calib).mean(axis=0) - ref)
        bound = q.qparams["input"].scale * q.wq["fc"][2].scale / 2
    assert np.all(err[True] <= bound * 1.001 + 1e-5), (err[True], bound)
    assert err[False].max() > 20 * err[True].max()


def test_ptq_config_refuses_an_adaround_learning_rate_out_of_range():
    import pytest

    from hwsim.models._engine import PTQConfig

    with pytest.raises(ValueError, match=r"^adaround_lr must be a number in \(0, 1\], not 0\.0$"):
        PTQConfig(adaround_lr=0.0)
    for bad in (True, "0.1", None, float("nan")):
        with pytest.raises(ValueError, match=r"^adaround_lr must be a number in \(0, 1\], not "):
            PTQConfig(adaround_lr=bad)
    # numpy floats are numbers
    assert PTQConfig(adaround_lr=np.float32(0.05)).adaround_lr == np.float32(0.05)
    with pytest.raises(ValueError, match=r"^adaround_rows must be an integer >= 1, not 0$"):
        PTQConfig(adaround_rows=0)   # it gave NaN Gram matrices
    with pytest.raises(ValueError, match=r"^adaround_iters must be an integer >= 1, not -5$"):
        PTQConfig(adaround_iters=-5)
    with pytest.raises(ValueError, match=r"^sequential must be True or False, not 'yes'$"):
        PTQConfig(sequential="yes")
    with pytest.raises(ValueError, match=r"^weight_range must be 'max' or 'mse', not 'p99'$"):
        PTQConfig(weight_range="p99")
    assert PTQConfig(adaround_lr=0.05).adaround_lr == 0.05
