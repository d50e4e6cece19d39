"""Block reconstruction PTQ (``hwsim.models.block_recon``: BRECQ / QDrop) on a small inverted-residual
network. Needs torch (skips otherwise)."""

import numpy as np
import pytest

from hwsim.models._engine import Conv, Network, Pool, PTQConfig, QuantizedNetwork


def _net():
    """stem 1x1 (ReLU6) -> [expand 1x1 ReLU6 -> depthwise 3x3 ReLU6 -> project 1x1 + skip] -> 1x1 ReLU6 ->
    pool -> classifier: the shape of a MobileNetV2 in miniature."""
    rng = np.random.default_rng(11)

    def w(*shape, scale=0.5):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    ops = [Conv("stem", "input", "s", w(8, 3, 1, 1), w(8, scale=0.1), act="relu6"),
           Conv("expand", "s", "e", w(24, 8, 1, 1, scale=0.4), w(24, scale=0.1), act="relu6"),
           Conv("dw", "e", "d", w(24, 1, 3, 3), w(24, scale=0.1), pads=(1, 1, 1, 1), groups=24, act="relu6"),
           Conv("project", "d", "p", w(8, 24, 1, 1, scale=0.2), w(8, scale=0.1), act=None, residual="s"),
           Conv("head", "p", "h", w(16, 8, 1, 1), w(16, scale=0.1), act="relu6"),
           Pool("gap", "h", "g"), Pool("flatten", "g", "f"),
           Conv("fc", "f", "logits", w(5, 16, scale=0.5), np.zeros(5, np.float32), linear=True)]
    return Network("mini", ops, "logits", accumulate=np.float64)


def _start(net, pool):
    return QuantizedNetwork(net, {n: (4, 8) for n in net.layers}, pool,
                            PTQConfig("CLE + BC", equalize=True, bias_correction=True))


def _pool(n=24, seed=12):
    return np.random.default_rng(seed).standard_normal((n, 3, 10, 10)).astype(np.float32)


def test_blocks_close_after_each_linear_layer_and_at_the_output():
    from hwsim.models.block_recon import reconstruction_blocks

    blocks = reconstruction_blocks(_net())
    # "project" has no activation (a linear bottleneck): its block is stem..project; the rest ends at logits
    assert [[op.name if isinstance(op, Conv) else op.dst for op in b] for b in blocks] == \
        [["stem", "expand", "dw", "project"], ["head", "g", "f", "fc"]]


def test_a_residual_from_before_the_block_is_refused():
    from hwsim.models.block_recon import reconstruction_blocks

    net = _net()
    ops = list(net.ops)
    ops[4] = Conv("head", "p", "h", np.zeros((8, 8, 1, 1), np.float32), np.zeros(8, np.float32), act=None,
                  residual="s")
    with pytest.raises(ValueError, match=r"^layer head: residual 's' is not the input of its block \('p'\) "
                                         r"or computed inside it$"):
        reconstruction_blocks(Network("bad", ops, "logits"))


def test_bad_config_names_the_key():
    from hwsim.models.block_recon import BlockReconConfig

    with pytest.raises(ValueError, match=r"^recon.iters: expected an integer in 1..100000, found 0$"):
        BlockReconConfig(iters=0)
    with pytest.raises(ValueError, match=r"^recon.lr: expected a learning rate in \(0, 1\], found 2.0$"):
        BlockReconConfig(lr=2.0)
    with pytest.raises(ValueError, match=r"^recon.drop: expected a probability in \[0, 1\), found 1.0$"):
        BlockReconConfig(drop=1.0)
    with pytest.raises(ValueError, match=r"^recon.init: expected 'frac' or 'codes', found 'nearest'$"):
        BlockReconConfig(init="nearest")
    with pytest.raises(ValueError, match=r"^recon.batch_size: expected an integer in 1..1024, found True$"):
        BlockReconConfig(batch_size=True)
    with pytest.raises(TypeError):
        BlockReconConfig(8)   # keyword-only


def _logit_mse(q, net, x):
    return float(np.mean((q.run(x) - net.forward(x)) ** 2))


def test_reconstruction_lowers_the_error_and_runs_bit_exact_on_the_datapath():
    pytest.importorskip("torch")
    from hwsim.models.block_recon import BlockReconConfig, block_reconstruct
    from hwsim.models.mobilenet_qat import integer_forward

    net, pool = _net(), _pool()
    q0 = _start(net, pool)
    q1 = block_reconstruct(q0, pool, BlockReconConfig())
    # the learned rounding differs from nearest somewhere, and every code is floor(w/s) or floor(w/s) + 1
    changed = 0
    for name in net.layers:
        c0, c1, wqp = q0.wq[name][0], q1.wq[name][0], q0.wq[name][2]
        op = q0.net.layer(name)   # the equalized network the codes approximate
        s = np.asarray(wqp.scale, np.float64)
        w = (op.weight.T if op.linear else op.weight).astype(np.float64)
        s = s.reshape((1, -1) if op.linear else (-1, 1, 1, 1))
        fl = np.floor(w / s)
        assert np.all((c1 == np.clip(fl, -7, 7)) | (c1 == np.clip(fl + 1, -7, 7))), name
        changed += int(np.sum(c0 != c1))
    assert changed > 0
    # the reconstruction's objective: the network's output error on its own pool images falls
    assert _logit_mse(q1, net, pool) < 0.8 * _logit_mse(q0, net, pool)
    # and the result is an integer network like any other: the datapath equals the ONNX-exact reference
    x = _pool(5, seed=13)
    y, codes = q1.run(x, return_codes=True)
    y_ref, codes_ref = integer_forward(q1, x, keep=True)
    assert np.array_equal(y.view(np.uint32), y_ref.view(np.uint32))
    assert all(np.array_equal(c, codes[k]) for k, c in codes_ref.items())
    assert q1.config.name == "CLE + BC + block reconstruction"


def test_codes_init_without_steps_reproduces_the_start_and_runs_are_deterministic():
    pytest.importorskip("torch")
    from hwsim.models.block_recon import BlockReconConfig, block_reconstruct

    net, pool = _net(), _pool()
    q0 = _start(net, pool)
    # init="codes" puts h(V) at 0.25 / 0.75 on the start's side; one step of lr 1e-6 cannot cross 0.5, so
    # the export must give the start's codes and int32 biases exactly (a check of the init and the export)
    q1 = block_reconstruct(q0, pool, BlockReconConfig(iters=1, lr=1e-6, init="codes"))
    for name in net.layers:
        assert np.array_equal(q1.wq[name][0], q0.wq[name][0]), name
        assert np.array_equal(q1.bias_q[name], q0.bias_q[name]), name
    x = _pool(4, seed=14)
    assert np.array_equal(q1.run(x), q0.run(x))
    # QDrop and learned biases: two runs with one seed give the same network
    cfg = BlockReconConfig(iters=100, drop=0.5, seed=3)
    logs = []
    a, b = block_reconstruct(q0, pool, cfg, log=logs.append), block_reconstruct(q0, pool, cfg)
    for name in net.layers:
        assert np.array_equal(a.wq[name][0], b.wq[name][0]) and np.array_equal(a.bias_q[name], b.bias_q[name])
    # one log line per block; the first block's learned rounding beat the start (not the guard's copy)
    assert len(logs) == 2 and "start kept" not in logs[0], logs
    assert any(not np.array_equal(a.wq[n][0], q0.wq[n][0]) for n in ("stem", "expand", "dw", "project"))


def test_an_empty_pool_is_refused():
    from hwsim.models.block_recon import block_reconstruct

    net = _net()
    q0 = _start(net, _pool())
    with pytest.raises(ValueError,
                       match=r"^block_reconstruct: pool: expected at least one image, found none$"):
        block_reconstruct(q0, _pool()[:0])


def test_frozen_layers_keep_the_start_and_unknown_ones_are_refused():
    pytest.importorskip("torch")
    from hwsim.models.block_recon import BlockReconConfig, block_reconstruct

    net, pool = _net(), _pool()
    q0 = _start(net, pool)
    q1 = block_reconstruct(q0, pool, BlockReconConfig(iters=60, freeze=("fc", "dw")))
    for name in ("fc", "dw"):
        assert np.array_equal(q1.wq[name][0], q0.wq[name][0])
        assert np.array_equal(q1.bias_q[name], q0.bias_q[name])
    assert any(not np.array_equal(q1.wq[n][0], q0.wq[n][0]) for n in ("stem", "expand", "project", "head"))
    with pytest.raises(ValueError, match=r"^recon.freeze: expected layers of the network, found \['fc9'\]$"):
        block_reconstruct(q0, pool, BlockReconConfig(freeze=("fc9",)))
    with pytest.raises(ValueError, match=r"^recon.freeze: expected a tuple of layer names, found \['fc'\]$"):
        BlockReconConfig(freeze=["fc"])
