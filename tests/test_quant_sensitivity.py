"""Per-layer sensitivity: output SQNR, Hutchinson Hessian traces against an analytic Hessian, reproducibility
and the file formats that feed the mixed-precision ILP."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hwsim.quant import (
    SensitivityTable,
    fake_quantize,
    hutchinson_trace,
    layer_sensitivity,
    output_sqnr_db,
    read_sensitivity,
    symmetric_qparams,
)
from hwsim.quant._sensitivity import COLUMNS, _layer_rng

F32 = np.float32


def test_output_sqnr_hand_derived():
    # signal power 1 + 1 = 2, noise power 1: 10 log10(2) = 3.0103 dB
    assert output_sqnr_db([1.0, 1.0], [1.0, 0.0]) == pytest.approx(3.0103, abs=1e-4)
    assert output_sqnr_db([1.0, 2.0], [1.0, 2.0]) == math.inf
    with pytest.raises(ValueError, match="same shape"):
        output_sqnr_db([1.0], [1.0, 2.0])


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def test_hutchinson_samples_equal_the_analytic_hessian_of_softmax_regression():
    # L(W) = mean_n CE(softmax(W x_n), y_n): H = mean_n (diag(p_n) - p_n p_n^T) (x) x_n x_n^T, so for a probe
    # V v^T H v = mean_n [ sum_k p_nk (V x_n)_k^2 - (sum_k p_nk (V x_n)_k)^2 ]   (hand-derived, exact)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 12))
    w = rng.standard_normal((5, 12)) * 0.5
    p = _softmax(x @ w.T)

    def curvature(du):
        return float(np.mean(np.sum(p * du * du, axis=1) - np.sum(p * du, axis=1) ** 2))

    est, err, samples = hutchinson_trace(lambda ww: x @ ww.T, curvature, w, n_probes=6,
                                         rng=np.random.default_rng(1))
    rng_v = np.random.default_rng(1)
    for s in samples:
        v = rng_v.integers(0, 2, size=w.shape) * 2.0 - 1.0
        u = x @ v.T
        exact = np.mean(np.sum(p * u * u, axis=1) - np.sum(p * u, axis=1) ** 2)
        assert s == pytest.approx(exact, rel=1e-8)
    # and the estimator is unbiased for the exact trace mean_n sum_k p_nk (1 - p_nk) ||x_n||^2
    trace = float(np.mean(np.sum(p * (1 - p), axis=1) * np.sum(x * x, axis=1)))
    est_many = hutchinson_trace(lambda ww: x @ ww.T, curvature, w, n_probes=2000,
                                rng=np.random.default_rng(2))
    assert abs(est_many[0] - trace) < 4 * est_many[1]
    assert est_many[1] < 0.05 * trace


class _ToyMLP:
    """A 2-layer ReLU MLP with fake-quantized weights and activations: just enough for layer_sensitivity."""

    name = "toy"
    layers = ("fc1", "fc2")

    def __init__(self):
        rng = np.random.default_rng(3)
        self.w = {"fc1": rng.standard_normal((16, 8)).astype(F32),
                  "fc2": rng.standard_normal((4, 16)).astype(F32)}
        self.x = rng.standard_normal((200, 8)).astype(F32)
        self.p = _softmax(self._fwd(self.w).astype(np.float64))

    def _fwd(self, w, bits=None):
        h = self.x
        for name in self.layers:
            if bits is not None:
                wb, ab = bits[name]
                h = fake_quantize(h, symmetric_qparams(np.abs(h).max(), ab))
                w = dict(w, **{name: self.quantized_weight(name, wb)})
            h = h @ w[name].T
            if name == "fc1":
                h = np.maximum(h, 0)
        return h

    def float_output(self):
        return self._fwd(self.w)

    def quantized_output(self, bits):
        return self._fwd(self.w, bits)

    def layer_weight(self, layer):
        return self.w[layer]

    def quantized_weight(self, layer, wb):
        w = self.w[layer]
        return fake_quantize(w, symmetric_qparams(np.abs(w).max(axis=1), wb, axis=0))

    def layer_output(self, layer):
        return lambda ww: self._fwd({**{k: v.astype(np.float64) for k, v in self.w.items()}, layer: ww})

    def output_curvature(self, du):
        return float(np.mean(np.sum(self.p * du * du, axis=1) - np.sum(self.p * du, axis=1) ** 2))


def test_layer_sensitivity_table_is_reproducible_and_round_trips(tmp_path):
    m = _ToyMLP()
    opts = [(8, 8), (4, 8), (2, 8)]
    t = layer_sensitivity(m, opts, n_probes=8, seed=7)
    assert [(r["layer"], r["weight_bits"]) for r in t.rows] == [(n, b) for n in m.layers for b in (8, 4, 2)]
    # fewer bits -> lower SQNR and larger perturbation, per layer
    for n in m.layers:
        rows = [t.lookup(n, b, 8) for b in (8, 4, 2)]
        assert rows[0]["sqnr_db"] > rows[1]["sqnr_db"] > rows[2]["sqnr_db"]
        assert (rows[0]["weight_perturbation"] < rows[1]["weight_perturbation"]
                < rows[2]["weight_perturbation"])
        for r in rows:
            assert r["omega"] == pytest.approx(r["hessian_trace"] / r["n_params"] * r["weight_perturbation"])
    # same seed -> identical numbers; a subset of layers gives the same rows (per-layer probe streams)
    again = layer_sensitivity(m, opts, n_probes=8, seed=7)
    assert again.rows == t.rows
    sub = layer_sensitivity(m, opts, layers=["fc2"], n_probes=8, seed=7)
    assert sub.rows == [r for r in t.rows if r["layer"] == "fc2"]
    assert layer_sensitivity(m, opts, n_probes=8,
                             seed=8).rows[0]["hessian_trace"] != t.rows[0]["hessian_trace"]
    # files
    for name in ("s.csv", "s.json"):
        p = t.to_csv(tmp_path / name) if name.endswith(".csv") else t.to_json(tmp_path / name)
        back = read_sensitivity(p)
        assert [list(r) for r in back.rows] == [list(COLUMNS)] * len(t.rows)
        for a, b in zip(back.rows, t.rows, strict=True):
            for k in COLUMNS:
                assert a[k] == b[k] or (isinstance(b[k], float) and a[k] == pytest.approx(b[k], rel=1e-12,
                                                                                          nan_ok=True))
    assert read_sensitivity(tmp_path / "s.json").meta["seed"] == 7
    assert (tmp_path / "s.csv").read_text().splitlines()[0] == ",".join(COLUMNS)


def test_layer_rng_streams_depend_on_seed_and_layer():
    a = _layer_rng(0, "x").integers(0, 1 << 30, 4)
    assert np.array_equal(a, _layer_rng(0, "x").integers(0, 1 << 30, 4))
    assert not np.array_equal(a, _layer_rng(0, "y").integers(0, 1 << 30, 4))


def test_layer_sensitivity_rejects_bad_arguments():
    m = _ToyMLP()
    with pytest.raises(ValueError, match="not layers of toy"):
        layer_sensitivity(m, [(8, 8)], layers=["fc3"])
    with pytest.raises(ValueError, match="pairs"):
        layer_sensitivity(m, [8])
    assert isinstance(layer_sensitivity(m, [(8, 8)], hessian=False), SensitivityTable)


def test_hessian_top_eigenvalue_power_iteration_by_hand():
    # diag(5, 2, -1) rotated: the dominant eigenvalue 5 (power iteration on Hv, HAWQ-v1)
    from hwsim.quant import hessian_top_eigenvalue

    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    h = q @ np.diag([5.0, 2.0, -1.0]) @ q.T
    lam, it = hessian_top_eigenvalue(lambda v: h @ v, (3,), tol=1e-10, iters=200)
    assert lam == pytest.approx(5.0, rel=1e-8) and it < 200


def test_cnn_layer_top_eigenvalue_matches_torch_dense_hessian():
    # digits conv1 (72 weights): the dense Hessian of the KL loss by torch.autograd.functional.hessian, its
    # largest eigenvalue by numpy.linalg.eigvalsh, against the power iteration over layer_hvp
    torch = pytest.importorskip("torch")
    from hwsim.models import digits
    from hwsim.models._base import CNNSensitivityModel, torch_forward
    from hwsim.quant import hessian_top_eigenvalue, layer_sensitivity

    x_tr, _, x_te, _ = digits.load_digits_split()
    net = digits.build_network()
    sm = CNNSensitivityModel(net, x_te[:64], x_tr[:64], x_tr[64:192], name="digits")
    w0 = torch.from_numpy(net.layer("conv1").weight.astype(np.float64))
    tens = {k: torch.from_numpy(np.asarray(v, np.float64)) for k, v in sm._loss_t.items()}
    p0 = torch.softmax(tens["logits"], 1)

    def loss(w):
        z = torch_forward(torch, net, tens, {"conv1": w.reshape(w0.shape)}, 0)
        return (p0 * (torch.log_softmax(tens["logits"], 1) - torch.log_softmax(z, 1))).sum(1).mean()

    dense = torch.autograd.functional.hessian(loss, w0.reshape(-1)).numpy()
    top = float(np.linalg.eigvalsh((dense + dense.T) / 2).max())
    lam, _ = hessian_top_eigenvalue(sm.layer_hvp("conv1"), w0.shape, tol=1e-8, iters=300)
    assert top > 0 and lam == pytest.approx(top, rel=1e-4)
    # in the table beside the trace: the top eigenvalue is at most the trace (H is PSD here) and at least
    # trace/n
    tab = layer_sensitivity(sm, [(4, 8)], layers=["conv1"], sqnr=False, n_probes=32, eigen=True)
    r = tab.lookup("conv1", 4, 8)
    assert r["hessian_top_eigenvalue"] == pytest.approx(top, rel=1e-3)
    assert r["hessian_trace"] / 72 < r["hessian_top_eigenvalue"] < 1.5 * np.trace(dense)
