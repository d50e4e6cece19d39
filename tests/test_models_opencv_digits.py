"""OpenCV's 5,000 handwritten digits (Debian opencv-doc): the tutorial's split read independently, committed
weights trained in torch (seeded and deterministic), integer inference and QAT on the datapath, the quality
model and workload for sweeps.

Measured numbers come from this machine (numpy 2.3.5, torch 2.13.0, the committed
``hwsim/models/data/opencv_digits_cnn.npz``); the tolerances absorb float32 BLAS differences between CPUs.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.models import opencv_digits
from hwsim.models._base import MissingDependency

from .utils import ROOT


@pytest.fixture(scope="module")
def data():
    try:
        return opencv_digits.load_opencv_digits()
    except MissingDependency as e:
        pytest.skip(str(e))


def test_missing_file_raises_a_clear_error(tmp_path, monkeypatch):
    opencv_digits.load_opencv_digits.cache_clear()
    monkeypatch.setenv("HWSIM_OPENCV_DIGITS", str(tmp_path / "digits.png"))
    try:
        with pytest.raises(MissingDependency, match="apt-get install -y --no-install-recommends opencv-doc"):
            opencv_digits.load_opencv_digits()
    finally:
        opencv_digits.load_opencv_digits.cache_clear()


def test_split_is_the_tutorials(data):
    # the tutorial (tutorial_py_knn_opencv.html):
    # cells = [np.hsplit(row, 100) for row in np.vsplit(gray, 50)]; train = x[:, :50], test = x[:, 50:100];
    # labels np.repeat(arange(10), 250) -- read here with PIL alone
    from PIL import Image

    gray = np.asarray(Image.open(opencv_digits.DIGITS_PNG).convert("L"))
    x = np.array([np.hsplit(row, 100) for row in np.vsplit(gray, 50)])      # (50, 100, 20, 20)
    train = x[:, :50].reshape(-1, 20, 20)
    test = x[:, 50:100].reshape(-1, 20, 20)
    labels = np.repeat(np.arange(10), 250)
    x_tr, y_tr, x_te, y_te = data
    assert x_tr.shape == x_te.shape == (2500, 1, 20, 20) and x_tr.dtype == np.float32
    # ours is class-interleaved: sample i is the (i // 10)-th tutorial sample of digit i % 10
    tut_idx = (np.arange(2500) % 10) * 250 + np.arange(2500) // 10
    assert np.array_equal(np.rint(x_tr[:, 0] * 255).astype(np.uint8), train[tut_idx])
    assert np.array_equal(np.rint(x_te[:, 0] * 255).astype(np.uint8), test[tut_idx])
    assert np.array_equal(y_tr, labels[tut_idx]) and np.array_equal(y_te, y_tr)
    assert np.bincount(y_tr[:opencv_digits.N_CALIB]).tolist() == [25] * 10     # balanced prefixes


def test_committed_weights_reproduce_the_recorded_float_accuracy(data):
    meta = opencv_digits.load_metadata()
    assert meta["seed"] == 0 and meta["epochs"] == 30 and meta["test_correct"] == 2369
    _, _, x_te, y_te = data
    correct = int((opencv_digits.float_forward(x_te).argmax(axis=1) == y_te).sum())
    assert abs(correct - 2369) <= 3     # 94.76 %; the tutorial's kNN on raw pixels reports 91 %


def test_torch_training_is_seeded_deterministic_and_its_forward_is_the_engines(data):
    torch = pytest.importorskip("torch", reason="training needs torch (pip install torch==2.13.0)")
    from hwsim.models import train_opencv_digits as tr

    x_tr, y_tr = data[0][:128], data[1][:128]
    a = tr.train(x_tr, y_tr, epochs=1)
    b = tr.train(x_tr, y_tr, epochs=1)
    c = tr.train(x_tr, y_tr, epochs=1, seed=1)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["conv1.weight"], c["conv1.weight"])
    # the torch training graph computes the engine's float network (float32 kernels differ by rounding only)
    with torch.no_grad():
        t = tr._logits(torch, {k: torch.from_numpy(v) for k, v in a.items()}, torch.from_numpy(data[2][:64]))
    np.testing.assert_allclose(t.numpy(), opencv_digits.float_forward(data[2][:64], a), rtol=1e-4, atol=1e-4)


def test_ptq_cliff_between_4_and_2_bits(data):
    acc = {b: opencv_digits.evaluate(b)["correct"] for b in [(4, 4), (2, 2)]}
    # of 2,500 test digits; measured: W4A4 2322 (92.88 %), W2A2 594 (23.76 %); W8A8 in the quality model test
    assert abs(acc[(4, 4)] - 2322) <= 8 and acc[(2, 2)] < 900


def test_qat_runs_bit_exactly_on_the_datapath_and_beats_ptq_at_w2a2(data):
    pytest.importorskip("torch", reason="QAT needs torch (pip install torch==2.13.0)")
    from hwsim.models._engine import QuantizedNetwork
    from hwsim.quant import QATConfig, train_qat

    x_tr, y_tr, x_te, y_te = data
    net = opencv_digits.build_network()
    res = train_qat(net, (2, 2), x_tr, y_tr, QATConfig(method="lsq", epochs=1, lr=2e-3, batch_size=64,
                                                       max_train=1000), calib_x=x_tr[:250])
    q = QuantizedNetwork.from_qat(res)
    logits = q.run(x_te, batch=500)
    assert np.array_equal(logits, res.forward(x_te))                   # bit for bit
    assert sum(q.overflow.values()) == 0
    acc = float((logits.argmax(1) == y_te).mean())
    ptq = opencv_digits.evaluate((2, 2))["accuracy"]
    # one LSQ epoch on 1,000 digits: measured 74.4 % against PTQ's 23.8 %
    assert acc > ptq + 0.4


def test_quality_model_workload_and_sweep_agree(data, tmp_path):
    from hwsim.explore import QUALITY_MODELS, load_sweep
    from hwsim.explore._quality import QAT_MODELS
    from hwsim.spec import load_workload_yaml

    wl = load_workload_yaml(ROOT / "workloads" / "opencv_digits_cnn.yaml")
    assert tuple(layer.name for layer in wl.layers) == opencv_digits.LAYERS == \
        QUALITY_MODELS["opencv_digits_cnn"].layers
    # conv1 20*20*8*9 + conv2 10*10*16*72 + fc1 400*32 + fc2 32*10
    assert sum(layer.gemm.macs for layer in wl.layers) == 28_800 + 115_200 + 12_800 + 320
    assert "opencv_digits_cnn" in QAT_MODELS
    r = QUALITY_MODELS["opencv_digits_cnn"].evaluate({n: (8, 8) for n in opencv_digits.LAYERS})
    assert r["n"] == 2500 and abs(r["correct"] - 2368) <= 5 and sum(r["overflow"].values()) == 0
    p = tmp_path / "s.yaml"
    p.write_text(f"name: s\narch: {ROOT}/arch/edge_32x32.yaml\n"
                 f"workload: {ROOT}/workloads/opencv_digits_cnn.yaml\nquality: opencv_digits_cnn\n"
                 "qat: {epochs: 1}\naxes: {array.rows: [16]}\n"
                 "precision: {uniform: [[4, 4], [2, 2]]}\n")
    rs = load_sweep(p)
    assert {pt.policy for pt in rs.points} >= {"W4A4", "W2A2"}
