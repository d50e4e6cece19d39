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
