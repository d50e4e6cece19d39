"""A small CNN on OpenCV's 5,000 handwritten digits (Debian ``opencv-doc``): a second labelled image set,
float and post-training-quantized integer inference on hwsim's datapath, and quantization-aware training.

Data: ``digits.png`` of OpenCV's ``samples/data``, installed by ``apt-get install -y --no-install-recommends
opencv-doc`` as ``/usr/share/doc/opencv-doc/examples/data/digits.png`` (override the file with the environment
variable ``HWSIM_OPENCV_DIGITS``): a 2000x1000 8-bit grey image holding 50 rows by 100 columns of 20x20 cells,
one handwritten digit per cell, 500 of each class; rows ``5 d .. 5 d + 4`` hold digit ``d`` (OpenCV's
``samples/python/digits.py``, ``load_digits``: ``labels = np.repeat(np.arange(10), 500)`` over the cells in
row-major order). Licence: Debian's ``/usr/share/doc/opencv-doc/copyright`` covers ``samples/data`` by its
``Files: *`` stanza, ``Apache-2.0 AND BSD-3-Clause`` (OpenCV; no stanza excludes ``digits.png``).

Split: the standard one of OpenCV's tutorial "OCR of Hand-written Data using kNN"
(``/usr/share/doc/opencv-doc/opencv4/html/d8/d4b/tutorial_py_knn_opencv.html``): "We use the first 250 samples
of each digit as training data, and the other 250 samples as test data" (columns 0..49 of the cell grid train,
columns 50..99 test; the tutorial's kNN with k = 5 on raw pixels reaches "an accuracy of 91%"). Here each
split is stored class-interleaved: sample ``i`` is the ``i // 10``-th cell (row-major within the class's 5
rows and 50 columns) of digit ``i % 10``, so that any prefix of either split is balanced (the calibration set
:data:`N_CALIB` and QAT's ``max_train`` take prefixes). Pixels 0..255 are divided by 255 (float32).

Network (NCHW; float32 weights trained in torch by :mod:`hwsim.models.train_opencv_digits`, committed as
``data/opencv_digits_cnn.npz``)::

    x (n, 1, 20, 20) in [0, 1]
    conv1  3x3, 1 -> 8,  pad 1, + ReLU   -> (n, 8, 20, 20);   maxpool 2x2/2 -> (n, 8, 10, 10)
    conv2  3x3, 8 -> 16, pad 1, + ReLU   -> (n, 16, 10, 10);  maxpool 2x2/2 -> (n, 16, 5, 5)
    flatten (C, H, W order)              -> (n, 400)
    fc1    400 -> 32, + ReLU             -> (n, 32)
    fc2    32 -> 10                      -> logits (n, 10)

157,120 MACs per image (conv1 28,800 + conv2 115,200 + fc1 12,800 + fc2 320); the layer names and shapes match
``workloads/opencv_digits_cnn.yaml``. Quality: top-1 accuracy on the 2,500 test digits; calibration uses the
first :data:`N_CALIB` training digits.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from ._base import MissingDependency
from ._two_conv_cnn import LAYERS, TwoConvTask

__all__ = ["LAYERS", "SHAPES", "WEIGHTS_PATH", "DIGITS_PNG", "N_CALIB", "load_opencv_digits", "load_weights",
           "load_metadata", "build_network", "float_forward", "evaluate", "MissingDependency"]


#: The committed trained weights (``python -m hwsim.models.train_opencv_digits`` rewrites them).
WEIGHTS_PATH = Path(__file__).resolve().parent / "data" / "opencv_digits_cnn.npz"

#: Where Debian's ``opencv-doc`` installs OpenCV's ``samples/data/digits.png``.
DIGITS_PNG = Path("/usr/share/doc/opencv-doc/examples/data/digits.png")

#: Calibration images: the first ``N_CALIB`` training digits (balanced: the split is class-interleaved).
N_CALIB = 250

SHAPES = {"conv1.weight": (8, 1, 3, 3), "conv1.bias": (8,), "conv2.weight": (16, 8, 3, 3),
          "conv2.bias": (16,), "fc1.weight": (32, 400), "fc1.bias": (32,), "fc2.weight": (10, 32),
          "fc2.bias": (10,)}

_INSTALL = ("install it with 'apt-get update && apt-get install -y --no-install-recommends opencv-doc' or "
            "set HWSIM_OPENCV_DIGITS to a copy of OpenCV's samples/data/digits.png")


def _png_path() -> Path:
    return Path(os.environ.get("HWSIM_OPENCV_DIGITS", DIGITS_PNG))


def _read_png(path: Path) -> np.ndarray:
    """The grey image ``(1000, 2000)`` uint8 (a gzipped copy ``digits.png.gz`` is read as well)."""
    import gzip
    import io

    try:
        from PIL import Image
    except ImportError as e:
        raise MissingDependency(f"reading {path} needs pillow (pip install pillow)") from e
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    with Image.open(io.BytesIO(raw)) as im:
        a = np.asarray(im.convert("L"), np.uint8)
    if a.shape != (1000, 2000):
        raise ValueError(f"{path}: expected OpenCV's 2000x1000 digits image, found {a.shape[1]}x{a.shape[0]}")
    return a


@functools.lru_cache(maxsize=1)
def load_opencv_digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The tutorial's split of OpenCV's digits, class-interleaved (see the module docstring).

    Returns
    -------
    x_train : (2500, 1, 20, 20) float32 in [0, 1]
    y_train : (2500,) int64, ``y_train[i] == i % 10``
    x_test : (2500, 1, 20, 20) float32
    y_test : (2500,) int64

    Raises
    ------
    MissingDependency
        ``digits.png`` is absent (with the apt command that installs it) or pillow is missing.
    ValueError
        The file is not a 2000x1000 image.
    """
    path = _png_path()
    if not path.is_file() and Path(f"{path}.gz").is_file():
        path = Path(f"{path}.gz")
    if not path.is_file():
        raise MissingDependency(f"OpenCV's digits.png not found at {path}; {_INSTALL}")
    img = _read_png(path)
    # (50 rows, 100 columns, 20, 20) cells; digit d in rows 5d..5d+4
    cells = img.reshape(50, 20, 100, 20).transpose(0, 2, 1, 3)
    by_class = cells.reshape(10, 5, 100, 20, 20)
    out = []
    for cols in (slice(0, 50), slice(50, 100)):
        part = by_class[:, :, cols].reshape(10, 250, 20, 20)          # (class, sample, 20, 20)
        x = part.transpose(1, 0, 2, 3).reshape(2500, 1, 20, 20)       # interleaved: i -> class i % 10
        out.append((x.astype(np.float32) / np.float32(255), np.tile(np.arange(10, dtype=np.int64), 250)))
    (x_tr, y_tr), (x_te, y_te) = out
    return x_tr, y_tr, x_te, y_te


_TASK = TwoConvTask(name="opencv_digits_cnn", weights_path=WEIGHTS_PATH, shapes=SHAPES, n_calib=N_CALIB,
                    load_data=load_opencv_digits)

#: The trained weights, the network, its float logits and the integer network's test accuracy: see
#: :class:`~hwsim.models._two_conv_cnn.TwoConvTask` for shapes, dtypes and errors.
load_weights = _TASK.load_weights
load_metadata = _TASK.load_metadata
build_network = _TASK.build_network
float_forward = _TASK.float_forward
evaluate = _TASK.evaluate
