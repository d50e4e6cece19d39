"""A small CNN on scikit-learn's handwritten digits: the real network of the default co-design job.

Data: ``sklearn.datasets.load_digits`` (1,797 real 8x8 grey-level images of handwritten digits, UCI "Optical
Recognition of Handwritten Digits", pixel values 0..16, bundled with scikit-learn, no network needed). The split is
stratified 75/25 with ``random_state=0``: 1,347 training and 450 test images. The test split is used only for the
accuracy; calibration uses training images only.

Network (NCHW, float32 weights trained by :mod:`hwsim.models.train_digits`, stored in ``data/digits_cnn.npz``)::

    x (n, 1, 8, 8) in [0, 1]
    conv1  3x3, 1 -> 8,  pad 1, stride 1, + ReLU      -> (n, 8, 8, 8)
    conv2  3x3, 8 -> 16, pad 1, stride 1, + ReLU      -> (n, 16, 8, 8)
    maxpool 2x2, stride 2                             -> (n, 16, 4, 4)
    flatten in (C, H, W) order                        -> (n, 256)
    fc     256 -> 10                                  -> logits (n, 10)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = [
    "LAYERS", "WEIGHTS_PATH", "load_digits_split", "load_weights", "load_metadata", "float_forward",
    "accuracy", "calibration_images",
]

#: The GEMM layers of the network, in order (the names used in ``bits`` and in ``workloads/digits_cnn.yaml``).
LAYERS = ("conv1", "conv2", "fc")

#: The committed trained weights (written by ``python -m hwsim.models.train_digits``).
WEIGHTS_PATH = Path(__file__).resolve().parent / "data" / "digits_cnn.npz"

#: Split of ``load_digits`` (``train_test_split`` arguments).
TEST_SIZE = 0.25
SPLIT_SEED = 0

#: Number of training images used to calibrate activation ranges (the first ones of the training split).
N_CALIB = 256

_SHAPES = {
    "conv1.weight": (8, 1, 3, 3), "conv1.bias": (8,),
    "conv2.weight": (16, 8, 3, 3), "conv2.bias": (16,),
    "fc.weight": (10, 256), "fc.bias": (10,),
}


def load_digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load scikit-learn's bundled digits and split them the fixed way.

    ``train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)``; pixels 0..16 are divided by 16
    (exact in float32).

    Returns
    -------
    x_train : numpy.ndarray
        (1347, 1, 8, 8) float32 in [0, 1], NCHW.
    y_train : numpy.ndarray
        (1347,) int64 class labels 0..9.
    x_test : numpy.ndarray
        (450, 1, 8, 8) float32 in [0, 1].
    y_test : numpy.ndarray
        (450,) int64.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = y.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=TEST_SIZE, stratify=y, random_state=SPLIT_SEED)
    return x_tr, y_tr, x_te, y_te


def calibration_images(x_train: np.ndarray, n: int = N_CALIB) -> np.ndarray:
    """The fixed calibration set: the first ``n`` images of the training split, (n, 1, 8, 8) float32."""
    return np.ascontiguousarray(x_train[:n])


def load_weights(path: str | Path | None = None) -> dict[str, np.ndarray]:
    """Load the trained float weights.

    Parameters
    ----------
    path : str or Path, optional
        An ``.npz`` written by :mod:`hwsim.models.train_digits`; default: the packaged ``data/digits_cnn.npz``.

    Returns
    -------
    dict of str to numpy.ndarray
        float32 arrays ``conv1.weight`` (8, 1, 3, 3), ``conv1.bias`` (8,), ``conv2.weight`` (16, 8, 3, 3),
        ``conv2.bias`` (16,), ``fc.weight`` (10, 256), ``fc.bias`` (10,). Weights are (out, in, kh, kw) as in
        ONNX/PyTorch; ``fc.weight`` is (out, in).
    """
    p = WEIGHTS_PATH if path is None else Path(path)
    with np.load(p, allow_pickle=False) as z:
        w = {k: np.asarray(z[k], dtype=np.float32) for k in _SHAPES}
    for k, shape in _SHAPES.items():
        if w[k].shape != shape:
            raise ValueError(f"{p}: {k} must have shape {shape}, not {w[k].shape}")
    return w


def load_metadata(path: str | Path | None = None) -> dict:
    """The training metadata stored in the npz (key ``meta``, a JSON string): accuracy, seed, epochs, ..."""
    p = WEIGHTS_PATH if path is None else Path(path)
    with np.load(p, allow_pickle=False) as z:
        return json.loads(str(z["meta"]))


# ----------------------------------------------------------------------------------------------- float reference

def im2col(x: np.ndarray, kh: int, kw: int, pad: int) -> np.ndarray:
    """Unfold 3x3-style windows (stride 1, equal padding on all sides) into rows.

    Parameters
    ----------
    x : numpy.ndarray
        (n, c, h, w) NCHW, any float dtype.
    kh, kw : int
        Kernel height and width.
    pad : int
        Zero padding on every side, pixels.

    Returns
    -------
    numpy.ndarray
        (n * oh * ow, c * kh * kw), rows in (n, oh, ow) order, columns in (c, kh, kw) order (the order of
        ``weight.reshape(out, -1)``), same dtype as ``x``.
    """
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))  # (n, c, oh, ow, kh, kw)
    oh, ow = win.shape[2], win.shape[3]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)


def conv2d_float(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, pad: int) -> np.ndarray:
    """Stride-1 2-D convolution (cross-correlation, as ONNX Conv) via im2col.

    Parameters
    ----------
    x : numpy.ndarray
        (n, c, h, w).
    weight : numpy.ndarray
        (o, c, kh, kw).
    bias : numpy.ndarray
        (o,).
    pad : int
        Zero padding on every side.

    Returns
    -------
    numpy.ndarray
        (n, o, oh, ow) in the dtype of ``x`` and ``weight`` combined.
    """
    n = x.shape[0]
    o, _, kh, kw = weight.shape
    cols = im2col(x, kh, kw, pad)
    oh = x.shape[2] + 2 * pad - kh + 1
    ow = x.shape[3] + 2 * pad - kw + 1
    y = cols @ weight.reshape(o, -1).T + bias
    return y.reshape(n, oh, ow, o).transpose(0, 3, 1, 2)


def maxpool2x2(x: np.ndarray) -> np.ndarray:
    """2x2 max pooling with stride 2 (no padding) on (n, c, h, w) with even h, w; returns (n, c, h/2, w/2)."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def float_forward(weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The float32 reference forward pass.

    Parameters
    ----------
    weights : dict of str to numpy.ndarray
        As returned by :func:`load_weights`.
    x : numpy.ndarray
        (n, 1, 8, 8) images in [0, 1].

    Returns
    -------
    numpy.ndarray
        (n, 10) float32 logits.
    """
    x = np.asarray(x, dtype=np.float32)
    h = np.maximum(conv2d_float(x, weights["conv1.weight"], weights["conv1.bias"], 1), 0)
    h = np.maximum(conv2d_float(h, weights["conv2.weight"], weights["conv2.bias"], 1), 0)
    h = maxpool2x2(h).reshape(x.shape[0], -1)
    return (h @ weights["fc.weight"].T + weights["fc.bias"]).astype(np.float32)


def accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    """Fraction of correct predictions.

    Parameters
    ----------
    pred : numpy.ndarray
        (n,) predicted labels, or (n, 10) logits/scores (argmax is taken).
    y : numpy.ndarray
        (n,) true labels.

    Returns
    -------
    float
        In [0, 1].
    """
    pred = np.asarray(pred)
    if pred.ndim == 2:
        pred = pred.argmax(axis=1)
    y = np.asarray(y)
    if pred.shape != y.shape:
        raise ValueError(f"pred and y must have the same length, not {pred.shape} and {y.shape}")
    return float(np.mean(pred == y))
