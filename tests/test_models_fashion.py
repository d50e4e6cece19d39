"""The Fashion-MNIST CNN: Debian data, committed weights, integer inference on the datapath, its quality model
and workload, the measured bit-width cliff and PTQ gains, and its Hessian traces against torch autograd.

Measured numbers come from this machine (numpy 2.3.5, the committed ``hwsim/models/data/fashion_cnn.npz``);
the tolerances absorb float32 BLAS differences between CPUs, which can move a calibrated scale by an ulp and
flip a handful of the 10,000 predictions (0.1 % each way is allowed where a number is pinned).
"""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.models import fashion
from hwsim.models._base import MissingDependency
from hwsim.models._engine import PTQConfig, QuantizedNetwork

from .utils import ROOT


@pytest.fixture(scope="module")
def data():
    try:
        return fashion.load_fashion_mnist()
    except MissingDependency as e:
        pytest.skip(str(e))


def test_missing_data_raises_a_clear_error(tmp_path, monkeypatch):
    fashion.load_fashion_mnist.cache_clear()
    monkeypatch.setenv("HWSIM_FASHION_MNIST_DIR", str(tmp_path))
    try:
        with pytest.raises(MissingDependency, match="apt-get install -y dataset-fashion-mnist"):
            fashion.load_fashion_mnist()
    finally:
        fashion.load_fashion_mnist.cache_clear()


def test_data_shapes_and_balance(data):
    x_tr, y_tr, x_te, y_te = data
    assert x_tr.shape == (60000, 1, 28, 28) and x_te.shape == (10000, 1, 28, 28)
    assert x_tr.dtype == np.float32 and float(x_tr.max()) == 1.0 and float(x_tr.min()) == 0.0
    assert np.bincount(y_te).tolist() == [1000] * 10 and np.bincount(y_tr).tolist() == [6000] * 10


def test_committed_weights_reproduce_the_recorded_float_accuracy(data):
    meta = fashion.load_metadata()
    assert meta["seed"] == 0 and meta["epochs"] == 8 and meta["test_accuracy"] == 0.9021
    _, _, x_te, y_te = data
    acc = float((fashion.float_forward(x_te).argmax(axis=1) == y_te).mean())
    assert acc == pytest.approx(0.9021, abs=0.001)


def test_training_gradients_match_finite_differences(data):
    from hwsim.models import train_fashion

    rng = np.random.default_rng(1)
    p = {k: v.astype(np.float64) + (0.05 * rng.standard_normal(v.shape) if k.endswith("bias") else 0)
         for k, v in train_fashion.init_params(rng).items()}
    x, y = data[0][:3].astype(np.float64), data[1][:3]
    _, g = train_fashion._forward_backward(p, x, y)
    for k in ("conv1.weight", "conv2.bias", "fc1.bias", "fc2.weight"):
        idx = tuple(int(rng.integers(0, s)) for s in p[k].shape)
        num = []
        for e in (1e-6, -1e-6):
            q = {kk: vv.copy() for kk, vv in p.items()}
            q[k][idx] += e
            num.append(train_fashion._forward_backward(q, x, y)[0])
        assert (num[0] - num[1]) / 2e-6 == pytest.approx(float(g[k][idx]), rel=1e-4, abs=1e-7)



def test_training_conv_is_the_float_reference_conv(data):
    # the training pass's conv (im2col columns kept for the weight gradients) is hwsim.quant.float_conv2d's
    # GEMM: equal bit for bit, so training and the float reference forward share one convolution
    from hwsim.models import train_fashion
    from hwsim.quant import float_conv2d

    rng = np.random.default_rng(2)
    w = {k: v for k, v in train_fashion.init_params(rng).items()}
    x = data[0][:4].astype(np.float32)
    n = x.shape[0]
    z1 = train_fashion._im2col(x) @ w["conv1.weight"].reshape(8, -1).T + w["conv1.bias"]
    ref = float_conv2d(x, w["conv1.weight"], w["conv1.bias"], pads=(1, 1, 1, 1))
    np.testing.assert_array_equal(z1.reshape(n, 28, 28, 8).transpose(0, 3, 1, 2), ref)

def test_integer_conv_layer_equals_qlinear_conv2d(data):
    from hwsim.datapath import qlinear_conv2d
    from hwsim.quant import quantize

    x_te = data[2][:64]
    net = fashion.build_network()
    q = QuantizedNetwork(net, {n: (8, 8) for n in fashion.LAYERS}, data[0][:512], PTQConfig())
    _, codes = q.run(x_te, return_codes=True)
    w_codes, _, w_qp = q.wq["conv1"]
    ref = qlinear_conv2d(quantize(x_te, q.qparams["input"]), w_codes, x_qp=q.qparams["input"], w_qp=w_qp,
                         y_qp=q.qparams["c1"], bias=q.bias_q["conv1"], pads=(1, 1, 1, 1), relu=True)
    assert np.array_equal(codes["c1"], ref)


def test_quality_model_and_workload_agree(data):
    from hwsim.explore import QUALITY_MODELS
    from hwsim.spec import load_workload_yaml

    wl = load_workload_yaml(ROOT / "workloads" / "fashion_cnn.yaml")
    assert tuple(layer.name for layer in wl.layers) == fashion.LAYERS == QUALITY_MODELS["fashion_cnn"].layers
    assert sum(layer.gemm.macs for layer in wl.layers) == 333_056
    r = QUALITY_MODELS["fashion_cnn"].evaluate({n: (8, 8) for n in fashion.LAYERS})
    # measured: 9,026 of 10,000 at W8A8 (float: 9,021); no accumulator overflow
    assert r["n"] == 10000 and abs(r["correct"] - 9026) <= 10 and sum(r["overflow"].values()) == 0


def test_accuracy_cliff_between_4_and_2_bits(data):
    acc = {b: fashion.evaluate(b)["accuracy"] for b in [(4, 4), (3, 3), (2, 2)]}
    # measured: W4A4 86.76 %, W3A3 73.29 %, W2A2 15.15 % (chance is 10 %)
    assert acc[(4, 4)] == pytest.approx(0.8676, abs=0.003)
    assert acc[(3, 3)] == pytest.approx(0.7329, abs=0.005)
    assert acc[(2, 2)] < 0.25
    assert acc[(4, 4)] - acc[(2, 2)] > 0.6


def test_bias_correction_and_adaround_recover_w4a8(data):
    n = 2000
    base = fashion.evaluate((4, 8), n=n)["accuracy"]
    bc = fashion.evaluate((4, 8), n=n, config=PTQConfig(bias_correction=True))["accuracy"]
    ada = fashion.evaluate((4, 8), n=n, config=PTQConfig(adaround=True, adaround_iters=200))["accuracy"]
    # measured on the first 2,000 test images: nearest 89.25 %, bias correction 89.60 %, AdaRound (200 steps)
    # 90.90 % (float 90.80 % on this subset)
    assert base == pytest.approx(0.8925, abs=0.003)
    assert bc > base and ada > base + 0.01


def test_hessian_traces_match_torch_autograd(data):
    torch = pytest.importorskip("torch", reason="torch not installed (pip install torch==2.13.0)")
    from hwsim.quant import layer_sensitivity
    from hwsim.quant._sensitivity import _layer_rng

    sm = fashion.sensitivity_model(n_eval=200, n_loss=128)
    tab = layer_sensitivity(sm, [(4, 8)], n_probes=4, seed=0, sqnr=False)
    x_tr, y_tr = data[0], data[1]
    x = torch.from_numpy(x_tr[512:640].astype(np.float64))
    y = torch.from_numpy(y_tr[512:640])
    w0 = {k: torch.from_numpy(v.astype(np.float64)) for k, v in fashion.load_weights().items()}
    tf = torch.nn.functional

    def loss(wd):
        h = tf.max_pool2d(tf.relu(tf.conv2d(x, wd["conv1.weight"], wd["conv1.bias"], padding=1)), 2)
        h = tf.max_pool2d(tf.relu(tf.conv2d(h, wd["conv2.weight"], wd["conv2.bias"], padding=1)),
                          2).flatten(1)
        h = tf.relu(tf.linear(h, wd["fc1.weight"], wd["fc1.bias"]))
        return tf.cross_entropy(tf.linear(h, wd["fc2.weight"], wd["fc2.bias"]), y)

    for layer in fashion.LAYERS:
        w = w0[f"{layer}.weight"].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(loss({**w0, f"{layer}.weight": w}), w, create_graph=True)
        rng = _layer_rng(0, layer)
        vals = []
        for _ in range(4):
            v = torch.from_numpy(rng.integers(0, 2, size=tuple(w.shape)).astype(np.float64) * 2 - 1)
            (hv,) = torch.autograd.grad(g, w, grad_outputs=v, retain_graph=True)
            vals.append(float((hv * v).sum()))
        # same probes, exact Hessian-vector products by double back-propagation (HAWQ's method): the
        # forward-only Gauss-Newton estimate agrees to 1e-3 (measured: conv1 5e-4, the others 1e-5 or better)
        assert tab.lookup(layer, 4, 8)["hessian_trace"] == pytest.approx(np.mean(vals), rel=2e-3)
