"""A small CNN on scikit-learn's handwritten digits: the real network of the default co-design job.

Data: ``sklearn.datasets.load_digits`` (1,797 real 8x8 grey-level images of handwritten digits, UCI "Optical
Recognition of Handwritten Digits", pixel values 0..16, bundled with scikit-learn, no network needed). The
split is stratified 75/25 with ``random_state=0``: 1,347 training and 450 test images. The test split is used
only for the accuracy; calibration uses training images only.

Network (NCHW, float32 weights trained by :mod:`hwsim.models.train_digits`, stored in
``data/digits_cnn.npz``)::

    x (n, 1, 8, 8) in [0, 1]
    conv1  3x3, 1 -> 8,  pad 1, stride 1, + ReLU      -> (n, 8, 8, 8)
    conv2  3x3, 8 -> 16, pad 1, stride 1, + ReLU      -> (n, 16, 8, 8)
    maxpool 2x2, stride 2                             -> (n, 16, 4, 4)
    flatten in (C, H, W) order                        -> (n, 256)
    fc     256 -> 10                                  -> logits (n, 10)

Quantized inference (:func:`quantized_forward`, :func:`evaluate`) runs the same layers on hwsim's bit-accurate
integer datapath (:mod:`hwsim.quant`, :mod:`hwsim.datapath`) with 2..8-bit weights and activations per layer.
The layer names and shapes match ``workloads/digits_cnn.yaml`` (the timing/energy view of this network).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..quant import float_conv2d
from ._base import check_layer_bits, load_npz_metadata, load_npz_weights

__all__ = [
    "LAYERS", "WEIGHTS_PATH", "load_digits_split", "load_weights", "load_metadata", "float_forward",
    "quantized_forward", "accuracy", "evaluate", "calibration_images", "check_bits", "MIN_BITS", "MAX_BITS",
    "build_network",
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
        An ``.npz`` written by :mod:`hwsim.models.train_digits`; default: the packaged
        ``data/digits_cnn.npz``.

    Returns
    -------
    dict of str to numpy.ndarray
        float32 arrays ``conv1.weight`` (8, 1, 3, 3), ``conv1.bias`` (8,), ``conv2.weight`` (16, 8, 3, 3),
        ``conv2.bias`` (16,), ``fc.weight`` (10, 256), ``fc.bias`` (10,). Weights are (out, in, kh, kw) as in
        ONNX/PyTorch; ``fc.weight`` is (out, in).
    """
    return load_npz_weights(WEIGHTS_PATH if path is None else Path(path), _SHAPES)


def load_metadata(path: str | Path | None = None) -> dict:
    """The training metadata stored in the npz (key ``meta``, a JSON string): accuracy, seed, epochs, ..."""
    return load_npz_metadata(WEIGHTS_PATH if path is None else Path(path))


# ----------------------------------------------------------------------------------------------- float
# reference

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
    n, c = x.shape[:2]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))  # (n, c, oh, ow, kh, kw)
    oh, ow = win.shape[2], win.shape[3]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)


def maxpool2x2(x: np.ndarray) -> np.ndarray:
    """2x2 max pooling with stride 2 (no padding) on (n, c, h, w) with even h, w; returns (n, c, h/2, w/2)
    (:func:`hwsim.datapath.maxpool2d`, the one max pool)."""
    from ..datapath import maxpool2d
    return maxpool2d(x, (2, 2), (2, 2))


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
    h = np.maximum(float_conv2d(x, weights["conv1.weight"], weights["conv1.bias"], pads=(1, 1, 1, 1)), 0)
    h = np.maximum(float_conv2d(h, weights["conv2.weight"], weights["conv2.bias"], pads=(1, 1, 1, 1)), 0)
    h = maxpool2x2(h).reshape(x.shape[0], -1)
    return (h @ weights["fc.weight"].T + weights["fc.bias"]).astype(np.float32)


def build_network(weights: dict[str, np.ndarray] | None = None):
    """The CNN as an engine :class:`~hwsim.models._engine.Network` (output tensor ``"logits"``); its float
    forward equals :func:`float_forward` (tested). Used by quantization-aware training."""
    from ._engine import Conv, Network, Pool

    w = load_weights() if weights is None else weights
    p1 = (1, 1, 1, 1)
    ops = [
        Conv("conv1", "input", "c1", w["conv1.weight"], w["conv1.bias"], pads=p1, act="relu"),
        Conv("conv2", "c1", "c2", w["conv2.weight"], w["conv2.bias"], pads=p1, act="relu"),
        Pool("max", "c2", "p2"),
        Pool("flatten", "p2", "flat"),
        Conv("fc", "flat", "logits", w["fc.weight"], w["fc.bias"], linear=True),
    ]
    return Network("digits_cnn", ops, "logits")


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


# ------------------------------------------------------------------------------------------- quantized
# inference

#: Allowed bit-widths of weights and activations per layer.
MIN_BITS, MAX_BITS = 2, 8


def check_bits(bits) -> dict[str, tuple[int, int]]:
    """Validate a per-layer bit assignment and return it as ``{layer: (weight_bits, act_bits)}``.

    Parameters
    ----------
    bits : dict of str to (int, int), or (int, int)
        ``bits[layer] = (weight_bits, act_bits)`` for every layer of :data:`LAYERS`, where ``act_bits`` are
        the bits of that layer's INPUT activations. A single ``(weight_bits, act_bits)`` pair applies to every
        layer.

    Returns
    -------
    dict of str to (int, int)
        In :data:`LAYERS` order.

    Raises
    ------
    ValueError
        A missing or unknown layer, a value that is not a pair of ints, or bits outside
        [``MIN_BITS``, ``MAX_BITS``], e.g. ``"bits for layer 'conv1' must be between 2 and 8, not 1"``.
    """
    return check_layer_bits(bits, LAYERS, low=MIN_BITS, high=MAX_BITS)


def _layer_inputs_float(weights: dict[str, np.ndarray], x: np.ndarray) -> dict[str, np.ndarray]:
    """Float32 input activations of each layer (for calibration): conv1 (n,1,8,8), conv2 (n,8,8,8), fc
    (n,256)."""
    x = np.asarray(x, dtype=np.float32)
    h1 = np.maximum(float_conv2d(x, weights["conv1.weight"], weights["conv1.bias"], pads=(1, 1, 1, 1)), 0)
    h2 = np.maximum(float_conv2d(h1, weights["conv2.weight"], weights["conv2.bias"], pads=(1, 1, 1, 1)), 0)
    return {"conv1": x, "conv2": h1, "fc": maxpool2x2(h2).reshape(x.shape[0], -1)}


def _quantize_bias(b: np.ndarray, s_x: np.ndarray, s_w: np.ndarray) -> np.ndarray:
    """int32 bias with scale ``f32(s_x * s_w[c])`` and zero point 0 (ONNX QLinearConv ``B``; ORT's quantizer).

    ``q = clamp(rne(f32(b / f32(s_x * s_w))), int32)``.
    """
    s_b = np.multiply(s_x, s_w, dtype=np.float32)
    q = np.rint(np.divide(b.astype(np.float32), s_b, dtype=np.float32)).astype(np.float64)
    return np.clip(q, -(2**31), 2**31 - 1).astype(np.int32)


def quantized_forward(weights: dict[str, np.ndarray], x: np.ndarray, bits, calib_x: np.ndarray, *,
                      acc_bits: int = 32, acc_mode: str = "wrap", profile: str = "ort_cpu",
                      return_tensors: bool = False) -> tuple[np.ndarray, dict]:
    """Post-training-quantized integer inference of the digits CNN on hwsim's bit-accurate datapath.

    Quantization (a first-cut PTQ; Gholami et al. 2021, "A Survey of Quantization Methods for Efficient Neural
    Network Inference", §III):

    * weights: symmetric, per output channel, restricted range ``[-(2^(b-1)-1), 2^(b-1)-1]``
      (:func:`hwsim.quant.symmetric_per_channel`);
    * activations: asymmetric per tensor, unsigned ``[0, 2^b-1]``, min/max calibrated on the float activations
      of ``calib_x`` (:func:`hwsim.quant.minmax_calibrate`, :func:`hwsim.quant.asymmetric_per_tensor`). All
      layer inputs here are images in [0, 1] or ReLU outputs, so every zero point is 0;
    * bias: int32 with scale ``s_x * s_w[c]`` and zero point 0 (the ONNX QLinearConv rule).

    Datapath: ``conv1`` and ``conv2`` are :func:`hwsim.datapath.qlinear_conv2d` (integer accumulator of
    ``acc_bits`` bits, then requantization with the named runtime's ``profile`` to the NEXT layer's input
    bits, ReLU fused as a clamp at the output zero point); max pooling runs on the integer codes
    (:func:`hwsim.datapath.maxpool2d`, exact since requantization is monotone); ``fc`` is
    :func:`hwsim.datapath.gemm_acc`, whose accumulator is dequantized to float logits
    ``f32(acc) * f32(s_x * s_w[c])``. At 8 bits, ``acc_bits=32``, ``"wrap"`` and ``"ort_cpu"`` each conv layer
    equals onnxruntime's QLinearConv bit for bit.

    Parameters
    ----------
    weights : dict of str to numpy.ndarray
        Float weights as from :func:`load_weights`.
    x : numpy.ndarray
        (n, 1, 8, 8) float images in [0, 1].
    bits : dict of str to (int, int), or (int, int)
        ``bits[layer] = (weight_bits, act_bits)`` for each of :data:`LAYERS`, each in 2..8; ``act_bits`` is
        the width of that layer's INPUT activations (so ``bits["conv1"][1]`` quantizes the image). One pair =
        uniform.
    calib_x : numpy.ndarray
        (m, 1, 8, 8) calibration images, training split only (e.g. :func:`calibration_images`).
    acc_bits : int, default 32
        Accumulator width of every layer, 2..64.
    acc_mode : {"wrap", "saturate"}, default "wrap"
        Two's-complement wrap-around or a saturating register (see :func:`hwsim.datapath.conv2d_acc`).
    profile : str, default "ort_cpu"
        Requantization semantics, one of :data:`hwsim.quant.PROFILES`.
    return_tensors : bool, default False
        Also return every integer tensor in ``info["tensors"]``.

    Returns
    -------
    logits : numpy.ndarray
        (n, 10) float32 dequantized fc accumulators (argmax = prediction).
    info : dict
        ``"bits"``: the validated bit assignment; ``"overflow"``: ``{layer: int}`` accumulator overflow counts
        (outputs out of range for ``"wrap"``, saturation events for ``"saturate"``); ``"qparams"``:
        ``{layer: {"input": QParams, "weight": QParams, "bias": int32 array}}``; ``"fc_acc"``: (n, 10) int64
        fc accumulator; with ``return_tensors``, ``"tensors"``: ``{"conv1.input", "conv1.weight",
        "conv1.output", "conv2.weight", "conv2.output", "pool.output", "fc.input", "fc.weight"}`` integer
        arrays (``conv1.output`` is ``conv2``'s input codes, and so on).

    Raises
    ------
    ValueError
        Bad ``bits`` (see :func:`check_bits`), or bad datapath arguments.
    """
    from ..datapath import gemm_acc, maxpool2d, qlinear_conv2d
    from ..quant import asymmetric_per_tensor, minmax_calibrate, quantize, symmetric_per_channel

    bits = check_bits(bits)
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 4 or x.shape[1:] != (1, 8, 8):
        raise ValueError(f"x must have shape (n, 1, 8, 8), not {x.shape}")
    calib = _layer_inputs_float(weights, calib_x)
    qp_in = {layer: asymmetric_per_tensor(*minmax_calibrate([calib[layer]]), bits[layer][1], signed=False)
             for layer in LAYERS}
    qp_w = {
        "conv1": symmetric_per_channel(weights["conv1.weight"], bits["conv1"][0], axis=0),
        "conv2": symmetric_per_channel(weights["conv2.weight"], bits["conv2"][0], axis=0),
        # B operand of the GEMM (K=256, N=10): one scale per column = per output unit
        "fc": symmetric_per_channel(weights["fc.weight"].T, bits["fc"][0], axis=1),
    }
    w_q = {
        "conv1": quantize(weights["conv1.weight"], qp_w["conv1"]),
        "conv2": quantize(weights["conv2.weight"], qp_w["conv2"]),
        "fc": quantize(weights["fc.weight"].T, qp_w["fc"]),
    }
    b_q = {layer: _quantize_bias(weights[f"{layer}.bias"], qp_in[layer].scale, qp_w[layer].scale)
           for layer in LAYERS}
    overflow = {}
    x_q = quantize(x, qp_in["conv1"])
    y1, overflow["conv1"] = qlinear_conv2d(
        x_q, w_q["conv1"], x_qp=qp_in["conv1"], w_qp=qp_w["conv1"], y_qp=qp_in["conv2"], bias=b_q["conv1"],
        pads=(1, 1, 1, 1), relu=True, acc_bits=acc_bits, acc_mode=acc_mode, profile=profile,
        return_overflow=True)
    # conv2 requantizes straight to fc's input quantizer: max pooling commutes with the monotone
    # requantization
    y2, overflow["conv2"] = qlinear_conv2d(
        y1, w_q["conv2"], x_qp=qp_in["conv2"], w_qp=qp_w["conv2"], y_qp=qp_in["fc"], bias=b_q["conv2"],
        pads=(1, 1, 1, 1), relu=True, acc_bits=acc_bits, acc_mode=acc_mode, profile=profile,
        return_overflow=True)
    pooled = maxpool2d(y2, (2, 2), (2, 2))
    a_q = pooled.reshape(x.shape[0], -1)  # flatten in (C, H, W) order
    acc, overflow["fc"] = gemm_acc(a_q, w_q["fc"], a_zp=int(qp_in["fc"].zero_point),
                                   b_zp=qp_w["fc"].zero_point,
                                   bias=b_q["fc"], acc_bits=acc_bits, acc_mode=acc_mode)
    s_out = np.multiply(qp_in["fc"].scale, qp_w["fc"].scale, dtype=np.float32)
    logits = np.multiply(acc.astype(np.float32), s_out, dtype=np.float32)
    info = {
        "bits": bits,
        "overflow": overflow,
        "qparams": {layer: {"input": qp_in[layer], "weight": qp_w[layer],
                            "bias": b_q[layer]} for layer in LAYERS},
        "fc_acc": acc,
    }
    if return_tensors:
        info["tensors"] = {
            "conv1.input": x_q, "conv1.weight": w_q["conv1"], "conv1.output": y1,
            "conv2.weight": w_q["conv2"], "conv2.output": y2, "pool.output": pooled,
            "fc.input": a_q, "fc.weight": w_q["fc"],
        }
    return logits, info


@functools.lru_cache(maxsize=1)
def _eval_context():
    x_tr, _, x_te, y_te = load_digits_split()
    return load_weights(), x_te, y_te, calibration_images(x_tr)


def evaluate(bits, acc_bits: int = 32, acc_mode: str = "wrap", *, profile: str = "ort_cpu") -> dict:
    """Test-split accuracy of the quantized network (data, weights and calibration images are cached).

    Parameters
    ----------
    bits : dict of str to (int, int), or (int, int)
        As :func:`quantized_forward`.
    acc_bits, acc_mode, profile
        As :func:`quantized_forward`.

    Returns
    -------
    dict
        ``accuracy`` (float in [0, 1]), ``correct`` (int), ``n`` (450), ``overflow`` ({layer: int}),
        ``bits`` (the validated assignment).
    """
    weights, x_te, y_te, calib = _eval_context()
    logits, info = quantized_forward(weights, x_te, bits, calib, acc_bits=acc_bits, acc_mode=acc_mode,
                                     profile=profile)
    correct = int((logits.argmax(axis=1) == y_te).sum())
    return {"accuracy": correct / y_te.size, "correct": correct, "n": int(y_te.size),
            "overflow": info["overflow"], "bits": info["bits"]}
