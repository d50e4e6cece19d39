"""Train the Fashion-MNIST CNN deterministically in numpy and write ``hwsim/models/data/fashion_cnn.npz``.

Usage::

    python -m hwsim.models.train_fashion [--out PATH] [--epochs N]

Recipe (network: :mod:`hwsim.models.fashion`): float32 arithmetic, He-normal initialisation from
``np.random.default_rng(SEED)``, softmax cross-entropy, Adam (lr 2e-3, betas 0.9/0.999, eps 1e-8) with a
cosine learning-rate decay to zero over all steps, mini-batches of 128 reshuffled every epoch from the same
generator, a fixed number of epochs over the 60,000 training images, no augmentation, no early stopping (the
test set is only evaluated once at the end, for the record). BLAS runs on one thread (``threadpoolctl``) so
that a run on a machine gives the same bits every time; the npz is written with fixed zip timestamps
(byte-identical files). Needs Fashion-MNIST (``apt-get install -y dataset-fashion-mnist``).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

from .digits import im2col
from .fashion import SHAPES, WEIGHTS_PATH, float_forward, load_fashion_mnist

__all__ = ["SEED", "EPOCHS", "BATCH", "LR", "init_params", "train", "save_npz", "main"]

SEED = 0
EPOCHS = 8
BATCH = 128
LR = 2e-3
BETAS = (0.9, 0.999)
EPS = 1e-8

_ORDER = tuple(SHAPES)


def init_params(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """He-normal weights (std ``sqrt(2 / fan_in)``), zero biases; float32."""
    p = {}
    for k, shape in SHAPES.items():
        if k.endswith(".bias"):
            p[k] = np.zeros(shape, np.float32)
        else:
            fan_in = int(np.prod(shape[1:]))
            p[k] = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    return p


def _im2col(x: np.ndarray) -> np.ndarray:
    """3x3, pad 1, stride 1: (n, c, h, w) -> (n*h*w, c*9), columns in (c, kh, kw) order
    (:func:`hwsim.models.digits.im2col`; the training pass keeps the columns for the weight gradients, and
    ``columns @ weight.reshape(out, -1).T`` is the GEMM :func:`hwsim.quant.float_conv2d` runs)."""
    return im2col(x, 3, 3, 1)


def _col2im(g: np.ndarray, shape: tuple[int, int, int, int]) -> np.ndarray:
    """Adjoint of :func:`_im2col`."""
    n, c, h, w = shape
    g = g.reshape(n, h, w, c, 3, 3)
    dxp = np.zeros((n, c, h + 2, w + 2), g.dtype)
    for i in range(3):
        for j in range(3):
            dxp[:, :, i:i + h, j:j + w] += g[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return dxp[:, :, 1:h + 1, 1:w + 1]


def _pool(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2x2/2 max pooling of (n, c, h, w) and the one-hot mask of the (first) maxima."""
    n, c, h, w = a.shape
    win = a.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
    arg = win.argmax(axis=-1)
    mask = np.zeros_like(win)
    np.put_along_axis(mask, arg[..., None], 1.0, axis=-1)
    return np.take_along_axis(win, arg[..., None], axis=-1)[..., 0], mask


def _unpool(g: np.ndarray, mask: np.ndarray) -> np.ndarray:
    n, c, h2, w2 = g.shape
    d = mask * g[..., None]
    return d.reshape(n, c, h2, w2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, 2 * h2, 2 * w2)


def _forward_backward(p: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> tuple[float, dict]:
    """Mean cross-entropy over the batch and its gradients (float32)."""
    n = x.shape[0]
    c1 = _im2col(x)                                                         # (n*784, 9)
    z1 = c1 @ p["conv1.weight"].reshape(8, -1).T + p["conv1.bias"]
    a1 = np.maximum(z1, 0).reshape(n, 28, 28, 8).transpose(0, 3, 1, 2)
    p1, m1 = _pool(a1)                                                      # (n, 8, 14, 14)
    c2 = _im2col(p1)                                                        # (n*196, 72)
    z2 = c2 @ p["conv2.weight"].reshape(16, -1).T + p["conv2.bias"]
    a2 = np.maximum(z2, 0).reshape(n, 14, 14, 16).transpose(0, 3, 1, 2)
    p2, m2 = _pool(a2)                                                      # (n, 16, 7, 7)
    f = p2.reshape(n, -1)
    z3 = f @ p["fc1.weight"].T + p["fc1.bias"]
    h = np.maximum(z3, 0)
    logits = h @ p["fc2.weight"].T + p["fc2.bias"]
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    prob = e / e.sum(axis=1, keepdims=True)
    loss = float(-np.log(prob[np.arange(n), y] + 1e-30).mean())
    g = prob
    g[np.arange(n), y] -= 1.0
    g /= n
    grads = {"fc2.weight": g.T @ h, "fc2.bias": g.sum(axis=0)}
    gh = (g @ p["fc2.weight"]) * (z3 > 0)
    grads["fc1.weight"] = gh.T @ f
    grads["fc1.bias"] = gh.sum(axis=0)
    gp2 = (gh @ p["fc1.weight"]).reshape(p2.shape)
    ga2 = _unpool(gp2, m2)                                                  # (n, 16, 14, 14)
    gz2 = ga2.transpose(0, 2, 3, 1).reshape(-1, 16) * (z2 > 0)
    grads["conv2.weight"] = (gz2.T @ c2).reshape(16, 8, 3, 3)
    grads["conv2.bias"] = gz2.sum(axis=0)
    gp1 = _col2im(gz2 @ p["conv2.weight"].reshape(16, -1), p1.shape)
    ga1 = _unpool(gp1, m1)
    gz1 = ga1.transpose(0, 2, 3, 1).reshape(-1, 8) * (z1 > 0)
    grads["conv1.weight"] = (gz1.T @ c1).reshape(8, 1, 3, 3)
    grads["conv1.bias"] = gz1.sum(axis=0)
    return loss, {k: v.astype(np.float32) for k, v in grads.items()}


def train(x: np.ndarray, y: np.ndarray, *, epochs: int = EPOCHS, seed: int = SEED, log=None) -> dict:
    """Train from scratch (see the module docstring); returns float32 parameters."""
    rng = np.random.default_rng(seed)
    p = init_params(rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    steps_per_epoch = -(-x.shape[0] // BATCH)
    total = epochs * steps_per_epoch
    t = 0
    for ep in range(epochs):
        order = rng.permutation(x.shape[0])
        losses = []
        for i in range(steps_per_epoch):
            idx = order[i * BATCH:(i + 1) * BATCH]
            loss, g = _forward_backward(p, x[idx], y[idx])
            losses.append(loss)
            lr = LR * 0.5 * (1.0 + np.cos(np.pi * t / total))
            t += 1
            for k in p:
                m[k] = BETAS[0] * m[k] + (1 - BETAS[0]) * g[k]
                v[k] = BETAS[1] * v[k] + (1 - BETAS[1]) * g[k] * g[k]
                mh = m[k] / (1 - BETAS[0] ** t)
                vh = v[k] / (1 - BETAS[1] ** t)
                p[k] = (p[k] - np.float32(lr) * mh / (np.sqrt(vh) + np.float32(EPS))).astype(np.float32)
        if log:
            log(f"epoch {ep + 1}/{epochs}: mean loss {np.mean(losses):.4f}")
    return p


def save_npz(path: Path, params: dict, meta: dict) -> None:
    """Write ``params`` (float32) and ``meta`` (JSON) with fixed zip timestamps (byte-identical reruns)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for k in (*_ORDER, "meta"):
            arr = np.asarray(json.dumps(meta,
                                        sort_keys=True)) if k == "meta" else params[k].astype(np.float32)
            b = io.BytesIO()
            np.lib.format.write_array(b, arr, allow_pickle=False)
            info = zipfile.ZipInfo(f"{k}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, b.getvalue())
    Path(path).write_bytes(buf.getvalue())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=WEIGHTS_PATH)
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    x_tr, y_tr, x_te, y_te = load_fashion_mnist()
    t0 = time.time()
    with threadpool_limits(1):
        params = train(x_tr, y_tr, epochs=args.epochs, log=lambda s: print(s, file=sys.stderr))
    seconds = time.time() - t0
    acc = float((float_forward(x_te, params).argmax(axis=1) == y_te).mean())
    meta = {"seed": SEED, "epochs": args.epochs, "batch": BATCH, "lr": LR, "optimizer": "adam+cosine",
            "train_images": int(x_tr.shape[0]), "test_accuracy": acc, "numpy": np.__version__}
    save_npz(args.out, params, meta)
    print(f"wrote {args.out}: test accuracy {acc:.4f} after {args.epochs} epochs ({seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
