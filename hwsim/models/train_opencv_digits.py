"""Train the OpenCV-digits CNN deterministically in torch and write
``hwsim/models/data/opencv_digits_cnn.npz``.

Usage::

    python -m hwsim.models.train_opencv_digits [--out PATH] [--epochs N]

Recipe (network: :mod:`hwsim.models.opencv_digits`): float32 torch (``torch==2.13.0``, CPU) on one thread with
``torch.use_deterministic_algorithms(True)``; He-normal initialisation from ``np.random.default_rng(SEED)``
(the same initialiser as :mod:`hwsim.models.train_fashion`), zero biases; softmax cross-entropy; Adam (lr
2e-3,
betas 0.9/0.999, eps 1e-8) with a cosine learning-rate decay to zero over all steps; mini-batches of 64
reshuffled every epoch by the same numpy generator; a fixed number of epochs over the 2,500 training digits,
no
augmentation, no early stopping (the test split is evaluated once at the end, for the record, with the numpy
float forward of the engine). The npz is written with fixed zip timestamps (byte-identical reruns on one
machine). Needs ``opencv-doc`` (``apt-get install -y --no-install-recommends opencv-doc``) and torch.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from .opencv_digits import SHAPES, WEIGHTS_PATH, float_forward, load_opencv_digits
from .train_digits import save_npz

__all__ = ["SEED", "EPOCHS", "BATCH", "LR", "init_params", "train", "main"]

SEED = 0
EPOCHS = 30
BATCH = 64
LR = 2e-3


def init_params(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """He-normal weights (std ``sqrt(2 / fan_in)``), zero biases; float32, keys and shapes of ``SHAPES``."""
    p = {}
    for k, shape in SHAPES.items():
        if k.endswith(".bias"):
            p[k] = np.zeros(shape, np.float32)
        else:
            p[k] = (rng.standard_normal(shape) * np.sqrt(2.0 / int(np.prod(shape[1:])))).astype(np.float32)
    return p


def _logits(torch, p: dict, x):
    F = torch.nn.functional
    h = F.max_pool2d(F.relu(F.conv2d(x, p["conv1.weight"], p["conv1.bias"], padding=1)), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, p["conv2.weight"], p["conv2.bias"], padding=1)), 2).flatten(1)
    h = F.relu(F.linear(h, p["fc1.weight"], p["fc1.bias"]))
    return F.linear(h, p["fc2.weight"], p["fc2.bias"])


def train(x: np.ndarray, y: np.ndarray, *, epochs: int = EPOCHS, seed: int = SEED, log=None) -> dict:
    """Train from scratch (see the module docstring); returns float32 numpy parameters.

    Raises
    ------
    MissingDependency
        torch is not installed.
    """
    from ..errors import missing_dependency

    try:
        import torch
    except ImportError as e:
        raise missing_dependency(e, needed_for="training the OpenCV-digits CNN") from e
    rng = np.random.default_rng(seed)
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        torch.manual_seed(seed)
        p = {k: torch.nn.Parameter(torch.from_numpy(v)) for k, v in init_params(rng).items()}
        opt = torch.optim.Adam(list(p.values()), lr=LR, betas=(0.9, 0.999), eps=1e-8)
        steps = -(-x.shape[0] // BATCH)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps)
        xt = torch.from_numpy(np.ascontiguousarray(x, np.float32))
        yt = torch.from_numpy(np.asarray(y, np.int64))
        for ep in range(epochs):
            order = torch.from_numpy(rng.permutation(x.shape[0]))
            total = 0.0
            for i in range(steps):
                idx = order[i * BATCH:(i + 1) * BATCH]
                loss = torch.nn.functional.cross_entropy(_logits(torch, p, xt[idx]), yt[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach()) * len(idx)
            if log:
                log(f"epoch {ep + 1}/{epochs}: mean loss {total / x.shape[0]:.4f}")
        return {k: v.detach().numpy().astype(np.float32).copy() for k, v in p.items()}
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(det)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hwsim.models.train_opencv_digits",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=WEIGHTS_PATH)
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    args = ap.parse_args(argv)
    import torch

    x_tr, y_tr, x_te, y_te = load_opencv_digits()
    t0 = time.time()
    params = train(x_tr, y_tr, epochs=args.epochs, log=lambda s: print(s, file=sys.stderr))
    seconds = time.time() - t0
    correct = int((float_forward(x_te, params).argmax(axis=1) == y_te).sum())
    meta = {"seed": SEED, "epochs": args.epochs, "batch": BATCH, "lr": LR, "optimizer": "adam+cosine",
            "framework": f"torch {torch.__version__}, one thread, deterministic algorithms",
            "train_images": int(x_tr.shape[0]), "test_correct": correct, "n_test": int(y_te.size),
            "test_accuracy": correct / y_te.size,
            "data": "OpenCV samples/data/digits.png (opencv-doc); tutorial split, first 250 per digit train",
            "numpy": np.__version__}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    import json

    save_npz(args.out, {**{k: params[k] for k in SHAPES},
                        "meta": np.asarray(json.dumps(meta, sort_keys=True))})
    print(f"wrote {args.out}: test accuracy {correct}/{y_te.size} = {correct / y_te.size:.4f} after "
          f"{args.epochs} epochs ({seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
