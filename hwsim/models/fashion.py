"""A small CNN on Fashion-MNIST (Debian ``dataset-fashion-mnist``), float and post-training-quantized integer
inference on hwsim's datapath.

Data: Zalando's Fashion-MNIST (Xiao, Rasul, Vollgraf 2017, MIT licence): 60,000 training and 10,000 test
grey-level 28x28 images of 10 clothing classes, installed by ``apt-get install -y dataset-fashion-mnist`` as
IDX gz files under ``/usr/share/datasets/fashion-mnist/`` (override the directory with the environment
variable ``HWSIM_FASHION_MNIST_DIR``). Pixels 0..255 are divided by 255 (float32).

Network (NCHW; float32 weights trained by :mod:`hwsim.models.train_fashion`, committed as
``data/fashion_cnn.npz``)::

    x (n, 1, 28, 28) in [0, 1]
    conv1  3x3, 1 -> 8,  pad 1, + ReLU   -> (n, 8, 28, 28);   maxpool 2x2/2 -> (n, 8, 14, 14)
    conv2  3x3, 8 -> 16, pad 1, + ReLU   -> (n, 16, 14, 14);  maxpool 2x2/2 -> (n, 16, 7, 7)
    flatten (C, H, W order)              -> (n, 784)
    fc1    784 -> 64, + ReLU             -> (n, 64)
    fc2    64 -> 10                      -> logits (n, 10)

333,056 MACs per image. The layer names and shapes match ``workloads/fashion_cnn.yaml``. Calibration uses the
first :data:`N_CALIB` training images; quality is top-1 accuracy on the 10,000 test images.
"""

from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path

import numpy as np

from ._base import (
    CNNSensitivityModel,
    MissingDependency,
)
from ._engine import PTQConfig
from ._two_conv_cnn import LAYERS, TwoConvTask

__all__ = ["LAYERS", "WEIGHTS_PATH", "DATA_DIR", "N_CALIB", "load_fashion_mnist", "load_weights",
           "load_metadata",
           "build_network", "float_forward", "evaluate", "sensitivity_model", "MissingDependency"]


#: The committed trained weights (``python -m hwsim.models.train_fashion`` rewrites them).
WEIGHTS_PATH = Path(__file__).resolve().parent / "data" / "fashion_cnn.npz"

#: Where Debian's ``dataset-fashion-mnist`` puts the IDX files.
DATA_DIR = Path("/usr/share/datasets/fashion-mnist")

#: Calibration images: the first ``N_CALIB`` of the training split.
N_CALIB = 512

_FILES = {"train_x": "train-images-idx3-ubyte.gz", "train_y": "train-labels-idx1-ubyte.gz",
          "test_x": "t10k-images-idx3-ubyte.gz", "test_y": "t10k-labels-idx1-ubyte.gz"}

SHAPES = {"conv1.weight": (8, 1, 3, 3), "conv1.bias": (8,), "conv2.weight": (16, 8, 3, 3),
          "conv2.bias": (16,),
          "fc1.weight": (64, 784), "fc1.bias": (64,), "fc2.weight": (10, 64), "fc2.bias": (10,)}


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip): magic ``0x0000 08 nd`` (uint8 data, ``nd`` dimensions), big-endian int32 sizes."""
    raw = gzip.decompress(path.read_bytes())
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 8:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes (magic {raw[:4].hex()})")
    nd = raw[3]
    dims = np.frombuffer(raw, ">i4", count=nd, offset=4)
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * nd)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} bytes of data, the header says {dims.tolist()}")
    return data.reshape(tuple(int(d) for d in dims))


@functools.lru_cache(maxsize=1)
def load_fashion_mnist() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The four Fashion-MNIST arrays.

    Returns
    -------
    x_train : (60000, 1, 28, 28) float32 in [0, 1]
    y_train : (60000,) int64
    x_test : (10000, 1, 28, 28) float32
    y_test : (10000,) int64

    Raises
    ------
    MissingDependency
        The IDX files are absent (with the apt command that installs them).
    """
    d = Path(os.environ.get("HWSIM_FASHION_MNIST_DIR", DATA_DIR))
    missing = [f for f in _FILES.values() if not (d / f).is_file()]
    if missing:
        raise MissingDependency(f"Fashion-MNIST not found in {d} (missing {', '.join(missing)}); install it "
                                f"with 'apt-get update && apt-get install -y dataset-fashion-mnist' or set "
                                f"HWSIM_FASHION_MNIST_DIR")
    a = {k: _read_idx(d / f) for k, f in _FILES.items()}
    x_tr = (a["train_x"].astype(np.float32) / np.float32(255)).reshape(-1, 1, 28, 28)
    x_te = (a["test_x"].astype(np.float32) / np.float32(255)).reshape(-1, 1, 28, 28)
    return x_tr, a["train_y"].astype(np.int64), x_te, a["test_y"].astype(np.int64)


_TASK = TwoConvTask(name="fashion_cnn", weights_path=WEIGHTS_PATH, shapes=SHAPES, n_calib=N_CALIB,
                    load_data=load_fashion_mnist)

#: The trained weights, the network, its float logits and the integer network's test accuracy: see
#: :class:`~hwsim.models._two_conv_cnn.TwoConvTask` for shapes, dtypes and errors.
load_weights = _TASK.load_weights
load_metadata = _TASK.load_metadata
build_network = _TASK.build_network
float_forward = _TASK.float_forward
evaluate = _TASK.evaluate


def sensitivity_model(*, n_eval: int = 1000, n_loss: int = 512, config: PTQConfig | None = None):
    """The network as a :func:`hwsim.quant.layer_sensitivity` model: output SQNR on the first ``n_eval`` test
    images; Hessian of the softmax cross-entropy on training images ``[N_CALIB, N_CALIB + n_loss)``."""
    net, calib, _, x_te, _ = _TASK.context
    x_tr = load_fashion_mnist()[0]
    return CNNSensitivityModel(net, x_te[:n_eval], calib, x_tr[N_CALIB:N_CALIB + n_loss], config=config,
                               name="fashion_cnn")
