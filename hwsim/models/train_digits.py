"""Train the digits CNN deterministically in pure numpy and write ``hwsim/models/data/digits_cnn.npz``.

Usage::

    python -m hwsim.models.train_digits [--out PATH] [--epochs N]

Recipe (see :mod:`hwsim.models.digits` for the network): float64 training, He-normal initialisation from
``np.random.default_rng(0)``, softmax cross-entropy, Adam (lr 3e-3, betas 0.9/0.999, eps 1e-8) with a cosine
learning rate decay to zero, mini-batches of 32 reshuffled every epoch from the same generator, a fixed number
of epochs, no augmentation, no early stopping (the test split is never looked at during training). BLAS runs
on one thread (``threadpoolctl``) so that every run on a machine gives the same bits; the npz is written with
fixed zip timestamps so that the file bytes are identical too. Weights are stored as float32.
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

from .digits import WEIGHTS_PATH, float_forward, im2col, load_digits_split

__all__ = ["SEED", "EPOCHS", "BATCH", "LR", "init_params", "train", "save_npz", "main"]

SEED = 0
EPOCHS = 40
BATCH = 32
LR = 3e-3
BETAS = (0.9, 0.999)
EPS = 1e-8

_ORDER = ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc.weight", "fc.bias")


def init_params(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """He-normal weights (std sqrt(2 / fan_in)), zero biases; float64."""
    def he(shape, fan_in):
        return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)

    return {
        "conv1.weight": he((8, 1, 3, 3), 9), "conv1.bias": np.zeros(8),
        "conv2.weight": he((16, 8, 3, 3), 72), "conv2.bias": np.zeros(16),
        "fc.weight": he((10, 256), 256), "fc.bias": np.zeros(10),
    }


def _col2im(g: np.ndarray, shape: tuple[int, int, int, int], k: int, pad: int) -> np.ndarray:
    """Adjoint of :func:`hwsim.models.digits.im2col` (stride 1): (n*h*w, c*k*k) rows -> (n, c, h, w)."""
    n, c, h, w = shape
    g = g.reshape(n, h, w, c, k, k)
    dxp = np.zeros((n, c, h + 2 * pad, w + 2 * pad))
    for i in range(k):
        for j in range(k):
            dxp[:, :, i:i + h, j:j + w] += g[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return dxp[:, :, pad:pad + h, pad:pad + w]


def _forward_backward(p: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> tuple[float, dict]:
    """Mean cross-entropy loss over the batch and its gradients (float64)."""
    n = x.shape[0]
    # conv1 + ReLU
    c1 = im2col(x, 3, 3, 1)                                          # (n*64, 9)
    z1 = c1 @ p["conv1.weight"].reshape(8, -1).T + p["conv1.bias"]   # (n*64, 8)
    a1 = np.maximum(z1, 0)
    a1_nchw = a1.reshape(n, 8, 8, 8).transpose(0, 3, 1, 2)
    # conv2 + ReLU
    c2 = im2col(a1_nchw, 3, 3, 1)                                    # (n*64, 72)
    z2 = c2 @ p["conv2.weight"].reshape(16, -1).T + p["conv2.bias"]  # (n*64, 16)
    a2 = np.maximum(z2, 0)
    a2_nchw = a2.reshape(n, 8, 8, 16).transpose(0, 3, 1, 2)          # (n, 16, 8, 8)
    # maxpool 2x2: windows as the last axis, first maximum wins
    win = a2_nchw.reshape(n, 16, 4, 2, 4, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, 16, 4, 4, 4)
    arg = win.argmax(axis=-1)
    pooled = np.take_along_axis(win, arg[..., None], axis=-1)[..., 0]
    f = pooled.reshape(n, 256)
    logits = f @ p["fc.weight"].T + p["fc.bias"]
    # softmax cross-entropy
    m = logits - logits.max(axis=1, keepdims=True)
    logp = m - np.log(np.exp(m).sum(axis=1, keepdims=True))
    loss = -logp[np.arange(n), y].mean()
    dlog = np.exp(logp)
    dlog[np.arange(n), y] -= 1.0
    dlog /= n
    g = {"fc.weight": dlog.T @ f, "fc.bias": dlog.sum(axis=0)}
    df = (dlog @ p["fc.weight"]).reshape(n, 16, 4, 4)
    dwin = np.zeros_like(win)
    np.put_along_axis(dwin, arg[..., None], df[..., None], axis=-1)
    da2_nchw = dwin.reshape(n, 16, 4, 4, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, 16, 8, 8)
    dz2 = da2_nchw.transpose(0, 2, 3, 1).reshape(n * 64, 16) * (z2 > 0)
    g["conv2.weight"] = (dz2.T @ c2).reshape(16, 8, 3, 3)
    g["conv2.bias"] = dz2.sum(axis=0)
    da1_nchw = _col2im(dz2 @ p["conv2.weight"].reshape(16, -1), (n, 8, 8, 8), 3, 1)
    dz1 = da1_nchw.transpose(0, 2, 3, 1).reshape(n * 64, 8) * (z1 > 0)
    g["conv1.weight"] = (dz1.T @ c1).reshape(8, 1, 3, 3)
    g["conv1.bias"] = dz1.sum(axis=0)
    return float(loss), g


def train(x: np.ndarray, y: np.ndarray, *, epochs: int = EPOCHS, seed: int = SEED, batch: int = BATCH,
          lr: float = LR, verbose: bool = False) -> dict[str, np.ndarray]:
    """Train the CNN with Adam and a cosine learning-rate decay; deterministic for a given seed.

    Parameters
    ----------
    x : numpy.ndarray
        (n, 1, 8, 8) training images in [0, 1].
    y : numpy.ndarray
        (n,) labels 0..9.
    epochs, seed, batch, lr
        Epoch count, seed of ``np.random.default_rng`` (initialisation and shuffling), mini-batch size,
        peak learning rate.
    verbose : bool
        Print the mean training loss per epoch.

    Returns
    -------
    dict of str to numpy.ndarray
        float64 parameters, keys as in :func:`hwsim.models.digits.load_weights`.
    """
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)
    p = init_params(rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    n = x.shape[0]
    steps_per_epoch = -(-n // batch)
    total = epochs * steps_per_epoch
    t = 0
    with threadpool_limits(limits=1):
        for ep in range(epochs):
            perm = rng.permutation(n)
            losses = []
            for s in range(0, n, batch):
                idx = perm[s:s + batch]
                loss, g = _forward_backward(p, x[idx], y[idx])
                losses.append(loss)
                lr_t = lr * 0.5 * (1.0 + np.cos(np.pi * t / total))
                t += 1
                b1, b2 = BETAS
                for k in _ORDER:
                    m[k] = b1 * m[k] + (1 - b1) * g[k]
                    v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
                    mh = m[k] / (1 - b1 ** t)
                    vh = v[k] / (1 - b2 ** t)
                    p[k] = p[k] - lr_t * mh / (np.sqrt(vh) + EPS)
            if verbose:
                print(f"epoch {ep + 1:3d}/{epochs}  loss {np.mean(losses):.4f}", file=sys.stderr)
    return p


def save_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an ``.npz`` (readable by ``np.load``) whose bytes depend only on the arrays.

    ``np.savez`` stamps each zip member with the current time; here every member gets the fixed date
    1980-01-01 and the members are written in the order given, deflate-compressed.
    """
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asanyarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    """Train, measure the float test accuracy, and write the npz (weights float32 + ``meta`` JSON string)."""
    ap = argparse.ArgumentParser(prog="python -m hwsim.models.train_digits",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(WEIGHTS_PATH), help="output .npz (default: the packaged weights)")
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)

    import sklearn

    x_tr, y_tr, x_te, y_te = load_digits_split()
    t0 = time.perf_counter()
    p = train(x_tr, y_tr, epochs=args.epochs, verbose=not args.quiet)
    dt = time.perf_counter() - t0
    w32 = {k: p[k].astype(np.float32) for k in _ORDER}
    pred = float_forward(w32, x_te).argmax(axis=1)
    correct = int((pred == y_te).sum())
    meta = {
        "float_test_correct": correct, "n_test": int(y_te.size), "float_test_accuracy": correct / y_te.size,
        "seed": SEED, "epochs": args.epochs, "batch": BATCH, "optimizer": "adam", "lr": LR,
        "lr_schedule": "cosine", "dtype_train": "float64", "dtype_stored": "float32",
        "data": "sklearn.datasets.load_digits / 16; train_test_split(test_size=0.25, stratify=y, "
                "random_state=0)",
        "numpy": np.__version__, "sklearn": sklearn.__version__,
    }
    arrays = dict(w32)
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_npz(out, arrays)
    print(f"float test accuracy {correct}/{y_te.size} = {correct / y_te.size:.4f}; "
          f"trained in {dt:.1f} s; wrote {out} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
