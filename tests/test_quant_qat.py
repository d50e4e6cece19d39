"""Quantization-aware training: the trained integer network on the datapath equals its fake-quantized forward
bit for bit; LSQ/PACT gradients by hand; seeded determinism; QAT beats PTQ at W2A2; bad input named by key.

Training here is tiny (a few hundred digits images, one or two epochs) to keep the suite fast.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="QAT needs torch (pip install torch==2.13.0)")

from hwsim.errors import MissingDependency  # noqa: E402
from hwsim.models import digits  # noqa: E402
from hwsim.models._engine import QuantizedNetwork  # noqa: E402
from hwsim.quant import QATConfig, lsq_quantize, pact_quantize, qat_forward, train_qat  # noqa: E402

MIXED = {"conv1": (4, 3), "conv2": (3, 4), "fc": (2, 5)}


@pytest.fixture(scope="module")
def dig():
    x_tr, y_tr, x_te, y_te = digits.load_digits_split()
    return digits.build_network(), x_tr, y_tr, x_te, y_te


def test_digits_network_is_the_float_reference(dig):
    net, _, _, x_te, _ = dig
    assert np.array_equal(net.forward(x_te), digits.float_forward(digits.load_weights(), x_te))


def test_lsq_gradients_by_hand():
    # v/s = [-1.2, 1.04, 3.6, 8] with s = 0.25, codes in [0, 3]: clip -> [0, 1.04, 3, 3], round -> [0, 1, 3,
    # 3]
    v = torch.tensor([-0.3, 0.26, 0.9, 2.0], requires_grad=True)
    s = torch.tensor(0.25, requires_grad=True)
    q = lsq_quantize(v, s, 0, 3)
    assert q.tolist() == [0.0, 0.25, 0.75, 0.75]
    q.sum().backward()
    # dq/dv = 1 only inside the range (1.04); dq/ds (Esser et al. eq. 3) = qmin, round(v/s) - v/s, qmax, qmax
    assert v.grad.tolist() == [0.0, 1.0, 0.0, 0.0]
    assert s.grad.item() == pytest.approx(0 + (1 - 1.04) + 3 + 3, abs=1e-6)
    # gradient scale g multiplies the step's gradient only (value unchanged)
    s2 = torch.tensor(0.25, requires_grad=True)
    q2 = lsq_quantize(v.detach(), s2, 0, 3, g=0.5)
    assert q2.tolist() == q.tolist()
    q2.sum().backward()
    assert s2.grad.item() == pytest.approx(0.5 * 5.96, abs=1e-6)
    # LSQ+ offset: z = 1.4 rounds to 1; v/s + z = [-0.2, 2.04, 4.6, 9] -> codes [0, 2, 3, 3] -> (c - 1) s
    z = torch.tensor(1.4, requires_grad=True)
    q3 = lsq_quantize(v.detach(), torch.tensor(0.25), 0, 3, z=z)
    assert q3.tolist() == [-0.25, 0.25, 0.5, 0.5]
    q3.sum().backward()
    # dq/dz = 0 inside the range, -s outside (three of the four are clipped): -0.75
    assert z.grad.item() == pytest.approx(-0.75)


def test_pact_gradients_by_hand():
    # alpha = 2.5, 2 bits: s = 2.5/3; clip -> [0, 0.5, 2.0, 2.5]; /s = [0, 0.6, 2.4, 3] -> codes [0, 1, 2, 3]
    y = torch.tensor([-1.0, 0.5, 2.0, 3.0], requires_grad=True)
    a = torch.tensor(2.5, requires_grad=True)
    q = pact_quantize(y, a, 3)
    assert np.allclose(q.tolist(), [0.0, 2.5 / 3, 5.0 / 3, 2.5], atol=1e-6)
    q.sum().backward()
    assert y.grad.tolist() == [0.0, 1.0, 1.0, 0.0]      # STE inside (0, alpha)
    assert a.grad.item() == 1.0                          # only y >= alpha


@pytest.mark.parametrize("method", ["ste", "lsq", "lsq+", "pact"])
def test_trained_network_runs_bit_exactly_on_the_datapath(dig, method):
    net, x_tr, y_tr, x_te, _ = dig
    res = train_qat(net, MIXED, x_tr, y_tr, QATConfig(method=method, epochs=1, batch_size=64, max_train=256,
                                                      lr=5e-3, distill=0.5 if method == "lsq" else 0.0))
    logits, codes = res.forward(x_te, keep=True)
    q = QuantizedNetwork.from_qat(res)
    out, dp_codes = q.run(x_te, batch=450, return_codes=True)
    assert np.array_equal(logits, out)                                   # the logits, bit for bit
    for t in ("input", "c1", "c2", "p2"):
        assert np.array_equal(codes[t], dp_codes[t]), t                 # every integer tensor
    assert q.overflow == {"conv1": 0, "conv2": 0, "fc": 0}
    # the learned quantizers are the policy's: activation bits of the consumer, weight codes in range
    assert res.qparams["c1"].bits == 4 and res.qparams["c2"].bits == 5 and res.qparams["input"].bits == 3
    assert np.abs(res.weights["fc"][0]).max() <= 1 and np.abs(res.weights["conv2"][0]).max() <= 3
    # a saturating register of 32 bits does not change anything here either
    assert np.array_equal(QuantizedNetwork.from_qat(res, acc_mode="saturate").run(x_te), logits)


def test_training_is_seeded_and_deterministic(dig):
    net, x_tr, y_tr, _, _ = dig
    cfg = QATConfig(method="lsq+", epochs=1, batch_size=64, max_train=192, seed=3)
    a = train_qat(net, (3, 3), x_tr, y_tr, cfg).to_arrays()
    b = train_qat(net, (3, 3), x_tr, y_tr, cfg).to_arrays()
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    c = train_qat(net, (3, 3), x_tr, y_tr, QATConfig(method="lsq+", epochs=1, batch_size=64, max_train=192,
                                                      seed=4)).to_arrays()
    assert not all(np.array_equal(a[k], c[k]) for k in a)               # the seed matters (the shuffle)


def test_qat_beats_ptq_at_w2a2(dig):
    # PTQ (per-channel min/max) at W2A2 keeps about 59 % of the 450 test digits; two LSQ epochs on the 1,347
    # training images recover most of the float 98 % (measured 95 %); a wide margin is required
    net, x_tr, y_tr, x_te, y_te = dig
    ptq = digits.evaluate((2, 2))["accuracy"]
    res = train_qat(net, (2, 2), x_tr, y_tr, QATConfig(method="lsq", epochs=2, batch_size=64, lr=2e-3))
    acc = float((QuantizedNetwork.from_qat(res).run(x_te).argmax(1) == y_te).mean())
    assert ptq < 0.7 and acc > ptq + 0.25 and acc > 0.9
    assert len(res.history) == 2 and res.history[1]["loss"] < res.history[0]["loss"]


@pytest.mark.parametrize("kw,key", [({"lr": 5.0}, "qat.lr"), ({"lr": 0}, "qat.lr"),
                                    ({"epochs": 0}, "qat.epochs"),
                                    ({"epochs": 1.5}, "qat.epochs"), ({"method": "dorefa"}, "qat.method"),
                                    ({"distill": 2}, "qat.distill"), ({"batch_size": 0}, "qat.batch_size")])
def test_bad_config_names_the_key(kw, key):
    with pytest.raises(ValueError, match=rf"^{key}: expected "):
        QATConfig(**kw)


def test_bad_bits_name_the_layer(dig):
    net, x_tr, y_tr, _, _ = dig
    with pytest.raises(ValueError, match=r"^bits\.conv9: expected a layer of the network"):
        train_qat(net, {"conv9": (4, 4), **MIXED}, x_tr, y_tr)
    with pytest.raises(ValueError, match=r"^bits\.conv2: expected integer bits the datapath runs \(2\.\.8\), "
                                         r"found \[1, 4\]"):
        train_qat(net, {**MIXED, "conv2": (1, 4)}, x_tr, y_tr)
    with pytest.raises(ValueError, match=r"^bits\.fc: expected"):
        train_qat(net, {"conv1": (4, 4), "conv2": (4, 4)}, x_tr, y_tr)


def test_missing_torch_is_a_missing_dependency(dig, monkeypatch):
    net, x_tr, y_tr, _, _ = dig
    monkeypatch.setitem(sys.modules, "torch", None)   # "import torch" now raises ImportError
    with pytest.raises(MissingDependency, match="pip install torch==2.13.0"):
        train_qat(net, (4, 4), x_tr, y_tr, QATConfig(epochs=1, max_train=64))


def test_qat_forward_needs_no_torch(dig, monkeypatch):
    net, x_tr, y_tr, x_te, _ = dig
    res = train_qat(net, (4, 4), x_tr, y_tr, QATConfig(epochs=1, max_train=64))
    monkeypatch.setitem(sys.modules, "torch", None)
    logits = qat_forward(net, res.qparams, res.weights, res.bias_q, x_te[:50])
    assert np.array_equal(logits, res.forward(x_te[:50]))


def test_quality_table_bad_dataset_path_exits_2(tmp_path, capsys):
    from hwsim.models import quality_table

    assert quality_table.main(["--qat", "--fashion-dir", str(tmp_path / "nope"), "--out",
                               str(tmp_path / "q.md")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--fashion-dir: expected an existing folder" in err
    assert quality_table.main(["--qat", "--networks", "mobilenet_v2", "--out", str(tmp_path / "q.md")]) == 2
    assert "--networks: expected networks QAT trains" in capsys.readouterr().err
    assert not (tmp_path / "q.md").exists()
