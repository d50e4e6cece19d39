"""Quantization-aware fine-tuning of MobileNetV2 by distillation from the float teacher, without labels.

There is no ImageNet training set offline, so the student (the quantized network) learns from the float
network's outputs on *unlabelled* images (the survey's "quantization with distillation", Gholami et al. 2021
§IV-D; Hinton et al. 2015): the library's 10 calibration photos (:func:`hwsim.models.mobilenet_v2.
library_sets`, never its 30 evaluation photos) under heavy augmentation, plus ZeroQ images distilled from the
batch-norm statistics (:func:`hwsim.models.mobilenet_v2.zeroq_calibration_images`, Cai et al., CVPR 2020).

Recipe (:class:`MobileNetQATConfig`):

* Start (``init``) from a PTQ calibrated on the 10 calibration photos (the engine's
  :class:`~hwsim.models._engine.QuantizedNetwork`): per-channel weights, cross-layer equalization and bias
  correction (Nagel et al., ICCV 2019), optionally AdaRound-ed weights (Nagel et al., ICML 2020;
  :func:`init_ptq`). Its equalized, BN-folded float weights (with AdaRound: halfway between them and
  AdaRound's codes, so that they round to those codes), corrected biases, per-channel weight steps and
  per-tensor activation steps and zero points initialize the student.
* Fake quantization with learned step sizes (LSQ, Esser et al., ICLR 2020, :func:`hwsim.quant.lsq_quantize`):
  weights symmetric per output channel (restricted range), activations per tensor asymmetric unsigned with the
  PTQ's integer zero point kept fixed (only the step is learned). Residual adds in float on the dequantized
  skip tensor, ReLU6 (per-channel clip after equalization) before the output quantizer, global average pooling
  then its own quantizer. Weights, biases and steps are trained by Adam (three learning rates),
  cosine-annealed;
  weights are parametrized in units of their initial step, biases in units of their output's step and step
  sizes by their logarithms, so that one learning rate suits layers of very different scales (with raw
  parameters, Adam's per-parameter step of ``lr`` was a large relative change for the tensors of small
  scale, and the integer network's KL to the teacher rose).
* Loss: ``T^2 KL(softmax(z_t / T) || softmax(z_s / T)) + mse * mean((z_s - z_t)^2) + feature * F`` with
  the float teacher's logits ``z_t`` and ``F`` the mean over :func:`feature_tensors` (the linear bottlenecks)
  of ``sum((a_s - a_t)^2) / sum(a_t^2)``. The teacher is the torch float forward of the start's *equalized*
  network (the same function as :func:`~hwsim.models.mobilenet_v2.build_network`, logits equal to float
  rounding), so that every student tensor has its float counterpart channel for channel. With
  ``freeze_weights`` only biases and step sizes are learned.
* Augmentation (numpy and PIL only: torchvision is not installed): random resized crops (area 8-100 %,
  aspect 3/4..4/3, as torchvision's RandomResizedCrop), horizontal flips, brightness/contrast/saturation
  jitter (factors in [0.6, 1.4]) on the photos; random crops resized to the training side and flips on the
  ZeroQ images. Training runs at a side of ``train_size`` pixels (the network is convolutional up to the
  global pooling); evaluation at 224.

The trained network is exported as integer codes (:func:`export`): a
:class:`~hwsim.models._engine.QuantizedNetwork` run on hwsim's datapath (numba kernels, 32-bit accumulators,
onnxruntime's requantization). :func:`integer_forward` is the same integer network computed with
:mod:`hwsim.quant`'s ONNX-exact reference functions (float64-exact accumulators,
:func:`hwsim.quant.requantize`);
:func:`qat_evaluate` asserts the two equal bit for bit (every code and every logit) before reporting quality.

Assumptions: the training forward is the textbook fake quantization in float32 (not the exact integer network
step by step, unlike :func:`hwsim.quant.train_qat`); it differs from the exported integer network by rounding
of the requantization multipliers, the int32 bias and the residual rescale (at most a code here and there), so
the reported quality is that of the exported integer network, never of the float surrogate. Seeded and
deterministic on one machine (``torch.use_deterministic_algorithms``, ``threads`` torch threads, seeded numpy
generator); another CPU's float kernels may round otherwise.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from ..quant import config_error, is_config_int, is_config_number
from ._base import check_layer_bits
from ._engine import Conv, Pool, PTQConfig, QuantizedNetwork

__all__ = ["MobileNetQATConfig", "MobileNetQATResult", "augment_photos", "augment_tensors",
           "train_mobilenet_qat", "export", "integer_forward", "qat_evaluate", "INIT_PTQ",
           "lsq_act_function", "INITS", "init_ptq", "feature_tensors"]

#: The PTQ the student starts from by default (``init="cle_bc"``; the 30-photo table's best W4A8 PTQ
#: without AdaRound).
INIT_PTQ = PTQConfig(name="per-channel + CLE + bias correction", equalize=True, bias_correction=True)

#: The PTQ starts a :class:`MobileNetQATConfig` can name (``init``).
INITS = ("cle_bc", "adaround")


def init_ptq(config) -> PTQConfig:
    """The :class:`PTQConfig` a :class:`MobileNetQATConfig` starts from: :data:`INIT_PTQ`, or for
    ``init="adaround"`` the same plus AdaRound (Nagel et al., ICML 2020) of ``adaround_iters`` steps per
    layer."""
    if config.init == "adaround":
        return replace(INIT_PTQ, name="per-channel + CLE + BC + AdaRound", adaround=True,
                       adaround_iters=config.adaround_iters)
    return INIT_PTQ




@dataclass(frozen=True)
class MobileNetQATConfig:
    """A distillation-QAT recipe for MobileNetV2.

    Attributes
    ----------
    bits : (int, int)
        Uniform ``(weight_bits, act_bits)`` (2..8), default W4A8.
    steps : int
        Adam steps (1..100000).
    batch_size : int
        Images per step (1..1024): half augmented photos, half augmented ZeroQ images (when any).
    lr_weight, lr_step : float
        Adam learning rates, in (0, 1], of the weights and biases (parametrized in units of their initial
        weight step, respectively of the output tensor's step: Adam moves each by about ``lr_weight`` codes
        per step) and of the logarithms of the step sizes (about ``lr_step`` relative change per step).
    temperature : float
        KL temperature ``T`` in (0, 100].
    mse : float
        Weight of the logit MSE term (>= 0).
    train_size : int
        Side of the training crops in pixels (64..448).
    threads : int
        torch threads (1..64).
    seed : int
    profile : str
        Requantization semantics of the exported network (:data:`hwsim.quant.PROFILES`).
    init : {"cle_bc", "adaround"}
        The PTQ the student starts from: :data:`INIT_PTQ` (per-channel + CLE + bias correction) or the same
        with AdaRound-ed weights (:func:`init_ptq`; the student's latent weights start halfway between the
        float weights and AdaRound's dequantized weights, so that they round to AdaRound's codes).
    adaround_iters : int
        Adam steps per layer of AdaRound (1..10000; ``init="adaround"`` only).
    lr_bias : float or None
        Adam learning rate of the biases in (0, 1] (in units of the output's step); None: ``lr_weight``.
    freeze_weights : bool
        Train only the biases and the step sizes (weights stay at the start's codes unless a step moves).
    feature : float
        Weight (>= 0) of the feature-distillation term: the mean over the linear-bottleneck outputs (the
        layers without activation but the last) of ``sum((a_s - a_t)^2) / sum(a_t^2)``, student against the
        float teacher's tensor.

    Raises
    ------
    ValueError
        A value out of range; the message starts with the key, e.g. ``"qat.lr_weight: expected ..."``.
    """

    bits: tuple = (4, 8)
    steps: int = 300
    batch_size: int = 8
    lr_weight: float = 5e-3
    lr_step: float = 1e-3
    temperature: float = 2.0
    mse: float = 0.05
    train_size: int = 160
    threads: int = 1
    seed: int = 0
    profile: str = "ort_cpu"
    init: str = "cle_bc"
    adaround_iters: int = 200
    lr_bias: float | None = None
    freeze_weights: bool = False
    feature: float = 0.0

    def __post_init__(self):
        from ..quant import PROFILES

        is_int, is_num = is_config_int, is_config_number

        b = self.bits
        if not (isinstance(b, (tuple, list)) and len(b) == 2 and all(is_int(v) and 2 <= v <= 8 for v in b)):
            raise config_error("qat.bits", "integer (weight_bits, act_bits) the datapath runs (2..8)", b)
        if not (is_int(self.steps) and 1 <= self.steps <= 100000):
            raise config_error("qat.steps", "an integer number of steps in 1..100000", self.steps)
        if not (is_int(self.batch_size) and 1 <= self.batch_size <= 1024):
            raise config_error("qat.batch_size", "an integer in 1..1024", self.batch_size)
        for k in ("lr_weight", "lr_step"):
            v = getattr(self, k)
            if not (is_num(v) and 0 < v <= 1):
                raise config_error(f"qat.{k}", "a learning rate in (0, 1]", v)
        if not (is_num(self.temperature) and 0 < self.temperature <= 100):
            raise config_error("qat.temperature", "a temperature in (0, 100]", self.temperature)
        if not (is_num(self.mse) and self.mse >= 0):
            raise config_error("qat.mse", "a loss weight >= 0", self.mse)
        if not (is_int(self.train_size) and 64 <= self.train_size <= 448):
            raise config_error("qat.train_size", "a crop side in 64..448 pixels", self.train_size)
        if not (is_int(self.threads) and 1 <= self.threads <= 64):
            raise config_error("qat.threads", "an integer in 1..64", self.threads)
        if not is_int(self.seed):
            raise config_error("qat.seed", "an integer", self.seed)
        if self.profile not in PROFILES:
            raise config_error("qat.profile", f"one of {list(PROFILES)}", self.profile)
        if self.init not in INITS:
            raise config_error("qat.init", f"one of {list(INITS)}", self.init)
        if not (is_int(self.adaround_iters) and 1 <= self.adaround_iters <= 10000):
            raise config_error("qat.adaround_iters", "an integer in 1..10000", self.adaround_iters)
        if self.lr_bias is not None and not (is_num(self.lr_bias) and 0 < self.lr_bias <= 1):
            raise config_error("qat.lr_bias", "a learning rate in (0, 1] or null", self.lr_bias)
        if not isinstance(self.freeze_weights, bool):
            raise config_error("qat.freeze_weights", "true or false", self.freeze_weights)
        if not (is_num(self.feature) and self.feature >= 0):
            raise config_error("qat.feature", "a loss weight >= 0", self.feature)

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------------------- augmentation

def augment_photos(photos, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` augmented crops of ``photos`` (uint8 ``(H, W, 3)`` arrays), normalised like
    :func:`hwsim.models.mobilenet_v2.eval_images`.

    Each crop: a photo drawn uniformly, a random resized crop (area fraction in [0.08, 1], log-uniform aspect
    ratio in [3/4, 4/3], ten tries then the centre square; torchvision's ``RandomResizedCrop``) resized to
    ``size x size`` (bilinear, PIL), a horizontal flip with probability 1/2, then brightness, contrast and
    saturation factors each uniform in [0.6, 1.4] (torchvision's ``ColorJitter`` formulas, in float on
    [0, 1]).

    Returns
    -------
    numpy.ndarray of float32, shape (n, 3, size, size)
    """
    from PIL import Image

    from .mobilenet_v2 import IMAGENET_MEAN, IMAGENET_STD

    out = np.empty((n, 3, size, size), np.float32)
    gray_w = np.array([0.299, 0.587, 0.114], np.float32)
    for k in range(n):
        img = photos[int(rng.integers(len(photos)))]
        h, w = img.shape[:2]
        box = None
        for _ in range(10):
            area = h * w * rng.uniform(0.08, 1.0)
            ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
            cw, ch = int(round(math.sqrt(area * ratio))), int(round(math.sqrt(area / ratio)))
            if 0 < cw <= w and 0 < ch <= h:
                top, left = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
                box = (left, top, left + cw, top + ch)
                break
        if box is None:
            s = min(h, w)
            box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
        crop = np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR, box=box), np.float32)
        crop = crop / np.float32(255)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        b, c, s = rng.uniform(0.6, 1.4, 3)
        crop = np.clip(crop * b, 0, 1)
        mean = float((crop @ gray_w).mean())
        crop = np.clip((crop - mean) * c + mean, 0, 1)
        gray = (crop @ gray_w)[..., None]
        crop = np.clip((crop - gray) * s + gray, 0, 1)
        out[k] = ((crop - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)
    return out


def augment_tensors(x: np.ndarray, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random crops (side 50-100 % of the image's) of the normalised images ``x`` ``(M, 3, H, W)``,
    resized to ``size x size`` (bilinear, torch ``interpolate``, ``align_corners=False``) and flipped
    horizontally with probability 1/2 (for ZeroQ images, which are already in the normalised space).

    Returns
    -------
    numpy.ndarray of float32, shape (n, 3, size, size)
    """
    import torch

    out = np.empty((n, 3, size, size), np.float32)
    h, w = x.shape[2:]
    for k in range(n):
        img = x[int(rng.integers(len(x)))]
        side = int(round(min(h, w) * rng.uniform(0.5, 1.0)))
        top, left = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
        crop = torch.from_numpy(np.ascontiguousarray(img[None, :, top:top + side, left:left + side]))
        crop = torch.nn.functional.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False)
        crop = crop[0].numpy()
        out[k] = crop[:, :, ::-1] if rng.random() < 0.5 else crop
    return out


# ------------------------------------------------------------------------------------------- the student

def _quantized_tensors(q: QuantizedNetwork) -> list[str]:
    """The tensors with their own activation quantizer (flatten shares its input's)."""
    shared = {op.dst for op in q.net.ops if isinstance(op, Pool) and op.kind in ("max", "flatten")}
    return [t for t in q.qparams if t not in shared]


def _cl(torch, a: np.ndarray):
    """A float32 torch tensor, channels-last when 4-D (torch's CPU depthwise convolutions are several times
    faster in that layout)."""
    t = torch.tensor(np.asarray(a, np.float32))
    return t.contiguous(memory_format=torch.channels_last) if t.ndim == 4 else t


def _conv(F, x, w, b, op):
    pt, pb, pl, pr = op.pads
    if pt == pb and pl == pr:
        return F.conv2d(x, w, b, stride=tuple(op.stride), padding=(pt, pl), groups=op.groups)
    return F.conv2d(F.pad(x, (pl, pr, pt, pb)), w, b, stride=tuple(op.stride), groups=op.groups)


def lsq_act_function(torch):
    """LSQ's activation quantizer with a fixed integer zero point ``z`` and code bounds ``[lo, hi]`` as one
    fused torch autograd function ``f(v, s, z, lo, hi, g)`` (``hi`` a float or a per-channel tensor
    ``(1, C, 1, 1)``): ``(clamp(round(u), lo, hi) - z) * s`` with ``u = v / s + z``, gradients ``dv = 1``
    where ``lo <= u <= hi`` and ``ds = g * sum(q - u inside, q - z outside)`` (Esser et al., ICLR 2020,
    eq. 1-3). With ``lo = 0``, ``hi = qmax`` it is :func:`hwsim.quant.lsq_quantize` ``(v, s, 0, qmax, g=g,
    z=z)`` (tested equal); a ReLU/ReLU6 before the quantizer is the bound ``lo = z`` and ``hi = z +
    rint(6 / s)`` (per channel after equalization), the same code clamp as the integer network's. Fused
    because the textbook composition of a dozen elementwise ops was three quarters of MobileNetV2's training
    step on the CPU (profiled); it keeps only ``u`` for the backward."""

    def _clamp_codes(q, lo, hi):
        q.clamp_(min=lo)
        return torch.minimum(q, hi, out=q) if isinstance(hi, torch.Tensor) else q.clamp_(max=hi)

    class LSQAct(torch.autograd.Function):
        @staticmethod
        def forward(ctx, v, s, z, lo, hi, g):
            u = v * (1.0 / s)
            u.add_(z)
            ctx.save_for_backward(u, s, hi if isinstance(hi, torch.Tensor) else None)
            ctx.z, ctx.lo, ctx.hi, ctx.g = z, lo, hi, g
            return _clamp_codes(u.round(), lo, hi).sub_(z).mul_(s)

        @staticmethod
        def backward(ctx, grad):
            u, s, hi_t = ctx.saved_tensors
            hi = ctx.hi if hi_t is None else hi_t
            q = _clamp_codes(u.round(), ctx.lo, hi)
            inside = (u >= ctx.lo) & (u <= hi)
            gv = grad * inside
            ds = torch.where(inside, q - u, q - ctx.z)
            gs = (grad * ds).sum().reshape(s.shape) * ctx.g
            return gv, gs, None, None, None, None

    return LSQAct.apply


class _Student:
    """Trainable fake-quantized copy of an engine network, initialized from a PTQ
    :class:`QuantizedNetwork`."""

    def __init__(self, torch, q: QuantizedNetwork, *, latent_from_codes: bool = False):
        # latent_from_codes: the latent float weights (in code units) start halfway between the float
        # weight and the PTQ's code (AdaRound's rounding is kept: the midpoint is within half a code of the
        # code; starting at the code itself, a weight would need Adam steps summing to half a code before
        # any code could change) instead of at the float weight.
        # Parametrization (so that one Adam learning rate means the same everywhere, whatever a layer's
        # scale): weights in units of their initial per-channel step, biases in units of the initial step of
        # the layer's output (0.01 for the logits), step sizes as logarithms (relative changes).
        self.torch, self.net, self.bits = torch, q.net, q.bits
        self.Wp, self.Bp, self.LSW, self.clip, self.w_unit, self.b_unit = {}, {}, {}, {}, {}, {}
        for op in q.net.ops:
            if not isinstance(op, Conv):
                continue
            _, _, wqp = q.wq[op.name]
            x_qp = q.qparams[op.src]
            sw = np.asarray(wqp.scale, np.float32).copy()
            s_acc = np.asarray(x_qp.scale, np.float64) * np.asarray(sw, np.float64)
            unit = sw.reshape((-1,) + (1,) * (op.weight.ndim - 1))
            self.w_unit[op.name] = _cl(torch, np.broadcast_to(unit, op.weight.shape))
            w0 = op.weight / unit
            if latent_from_codes:  # halfway between the float weight and the PTQ's code: rounds to the code
                w0 = (w0 + q.wq[op.name][1] / unit) / 2  # wq[1]: dequantized, (out, in) also when linear
            self.Wp[op.name] = torch.nn.Parameter(_cl(torch, w0))
            # the PTQ's (bias-corrected) bias, as the integer network holds it
            bu = float(q.qparams[op.dst].scale) if op.dst in q.qparams else 0.01
            self.b_unit[op.name] = bu
            b0 = (q.bias_q[op.name] * s_acc / bu).astype(np.float32)
            self.Bp[op.name] = torch.nn.Parameter(torch.tensor(b0))
            self.LSW[op.name] = torch.nn.Parameter(torch.tensor(np.log(np.maximum(sw, 1e-8))))
            if op.act == "relu6":
                hi = np.full(op.weight.shape[0], 6.0, np.float32) if op.clip_hi is None else op.clip_hi
                self.clip[op.name] = torch.tensor(np.asarray(hi, np.float32).reshape(1, -1, 1, 1))
        self.lsq_act = lsq_act_function(torch)
        self.tensors = _quantized_tensors(q)
        self.LS = {t: torch.nn.Parameter(torch.tensor(math.log(max(float(q.qparams[t].scale), 1e-8))))
                   for t in self.tensors}
        self.Z = {t: int(q.qparams[t].zero_point) for t in self.tensors}
        self.act_bits = {t: int(q.qparams[t].bits) for t in self.tensors}

    def W(self, name):
        return self.Wp[name] * self.w_unit[name]

    def B(self, name):
        return self.Bp[name] * self.b_unit[name]

    def SW(self, name):
        return self.torch.exp(self.LSW[name])

    def S(self, t):
        return self.torch.exp(self.LS[t])

    def weight_params(self):
        return list(self.Wp.values()) + list(self.Bp.values())

    def step_params(self):
        return list(self.LSW.values()) + list(self.LS.values())

    def _fq_act(self, t, v, act=None, clip=None):
        """Fake-quantize tensor ``t`` (value ``v``); ``act`` "relu"/"relu6" (with per-channel ``clip``, a
        ``(1, C, 1, 1)`` tensor) is applied as the integer network's code clamp."""
        qmax = (1 << self.act_bits[t]) - 1
        g = 1.0 / math.sqrt(v[0].numel() * qmax)
        s = self.S(t)
        z = self.Z[t]
        lo, hi = 0, qmax
        if act in ("relu", "relu6"):
            lo = max(0, z)
        if act == "relu6":
            top = z + self.torch.round(clip / s.detach())
            hi = self.torch.clamp(top, max=qmax)
        return self.lsq_act(v, s, float(z), float(lo), hi if act == "relu6" else float(hi), g)

    def _fq_weight(self, op):
        from ..quant import lsq_quantize

        w = self.W(op.name)
        qp = (1 << (self.bits[op.name][0] - 1)) - 1
        s = self.SW(op.name).reshape((-1,) + (1,) * (w.ndim - 1))
        return lsq_quantize(w, s, -qp, qp, g=1.0 / math.sqrt(w[0].numel() * qp))

    def forward(self, x, *, quantized: bool = True, keep: bool = False):
        """Logits of the fake-quantized (or, ``quantized=False``, float) network; ``x`` a torch tensor. With
        ``keep`` also the dict of every (fake-quantized) tensor."""
        F = self.torch.nn.functional
        fq = self._fq_act if quantized else (lambda t, v, act=None, clip=None: v)
        vals = {"input": fq("input", x)}
        for op in self.net.ops:
            src = vals[op.src]
            if isinstance(op, Pool):
                if op.kind == "gap":
                    vals[op.dst] = fq(op.dst, src.mean(dim=(2, 3), keepdim=True))
                elif op.kind == "flatten":
                    vals[op.dst] = src.reshape(src.shape[0], -1)
                else:
                    vals[op.dst] = F.max_pool2d(src, op.kernel, op.stride)
                continue
            w = self._fq_weight(op) if quantized else self.W(op.name)
            b = self.B(op.name)
            y = F.linear(src, w, b) if op.linear else _conv(F, src, w, b, op)
            if op.residual is not None:
                y = y + vals[op.residual]
            if op.dst == self.net.output:
                return (y, vals) if keep else y
            if quantized:  # the activation is the quantizer's code clamp, as in the integer network
                vals[op.dst] = fq(op.dst, y, op.act, self.clip.get(op.name))
            elif op.act == "relu":
                vals[op.dst] = self.torch.relu(y)
            elif op.act == "relu6":
                vals[op.dst] = self.torch.minimum(self.torch.relu(y), self.clip[op.name])
            else:
                vals[op.dst] = y
        raise ValueError(f"the network never computes its output {self.net.output!r}")


class _Teacher:
    """torch float forward of the BN-folded float network (no quantization), frozen. Given the equalized
    network of the student's start (the same function, rescaled channels inside the blocks and ReLU6 clipped
    per channel at ``clip_hi``), its every tensor is the float counterpart of the student's."""

    def __init__(self, torch, net):
        self.torch, self.net = torch, net
        self.W = {op.name: _cl(torch, op.weight) for op in net.ops
                  if isinstance(op, Conv)}
        self.B = {op.name: torch.tensor(np.asarray(op.bias, np.float32)) for op in net.ops
                  if isinstance(op, Conv)}

        self.clip = {op.name: torch.tensor(np.asarray(op.clip_hi, np.float32).reshape(1, -1, 1, 1))
                     for op in net.ops if isinstance(op, Conv) and op.clip_hi is not None}

    def __call__(self, x, *, keep: bool = False):
        F = self.torch.nn.functional
        t = {"input": x}
        with self.torch.no_grad():
            for op in self.net.ops:
                src = t[op.src]
                if isinstance(op, Pool):
                    t[op.dst] = (src.mean(dim=(2, 3), keepdim=True) if op.kind == "gap"
                                 else src.reshape(src.shape[0], -1) if op.kind == "flatten"
                                 else F.max_pool2d(src, op.kernel, op.stride))
                    continue
                if op.linear:
                    y = F.linear(src, self.W[op.name], self.B[op.name])
                else:
                    y = _conv(F, src, self.W[op.name], self.B[op.name], op)
                if op.residual is not None:
                    y = y + t[op.residual]
                if op.act == "relu":
                    y = self.torch.relu(y)
                elif op.act == "relu6":
                    y = (self.torch.minimum(self.torch.relu(y), self.clip[op.name]) if op.name in self.clip
                         else self.torch.clamp(y, 0, 6))
                t[op.dst] = y
        return (t[self.net.output], t) if keep else t[self.net.output]


def feature_tensors(net) -> list[str]:
    """The tensors of the feature-distillation term: the outputs of the layers without activation except the
    network's output (MobileNetV2's 17 linear bottlenecks, the residual stream)."""
    return [op.dst for op in net.ops if isinstance(op, Conv) and op.act is None and op.dst != net.output]


# ------------------------------------------------------------------------------------------- training

@dataclass
class MobileNetQATResult:
    """A trained integer MobileNetV2.

    Attributes
    ----------
    qnet : QuantizedNetwork
        The exported integer network (runs on the datapath with :meth:`QuantizedNetwork.run`).
    init : QuantizedNetwork
        The PTQ network training started from.
    config : MobileNetQATConfig
    history : list of dict
        Per logged step: ``step``, ``loss`` (mean distillation loss over the last ``log_every`` steps),
        ``seconds`` since the start.
    seconds : float
        Training wall time (initialization, steps, export), s.
    """

    qnet: QuantizedNetwork
    init: QuantizedNetwork
    config: MobileNetQATConfig
    history: list = field(default_factory=list)
    seconds: float = 0.0


def _import_torch():
    try:
        import torch
    except ImportError as e:
        from ._base import MissingDependency

        raise MissingDependency(f"MobileNetV2 QAT needs torch ({e}): pip install torch==2.13.0") from None
    return torch


def train_mobilenet_qat(net, photos, zeroq: np.ndarray | None, calib: np.ndarray,
                        config: MobileNetQATConfig = MobileNetQATConfig(), *, log=None,
                        log_every: int = 10, bits: dict | None = None,
                        start: QuantizedNetwork | None = None) -> MobileNetQATResult:
    """Distillation QAT of a BN-folded MobileNetV2 (see the module docstring).

    Parameters
    ----------
    net : hwsim.models._engine.Network
        The float network (:func:`hwsim.models.mobilenet_v2.build_network`); also the teacher.
    photos : sequence of numpy.ndarray of uint8, (H, W, 3)
        Unlabelled training photos (augmented each step).
    zeroq : numpy.ndarray of float32, (M, 3, H, W), or None
        Distilled images in the normalised input space (half of every batch when given).
    calib : numpy.ndarray of float32, (C, 3, 224, 224)
        Calibration images of the initial PTQ (:func:`init_ptq`).
    config : MobileNetQATConfig
    log : callable, optional
        Called with one line every ``log_every`` steps.
    bits : dict of str to (int, int), optional
        Per-layer ``(weight_bits, act_bits)`` (e.g. a mixed-precision point); default ``config.bits``
        everywhere.
    start : QuantizedNetwork, optional
        The PTQ start, already built by the caller as ``QuantizedNetwork(net, bits, calib, init_ptq(config),
        profile=config.profile)`` (saves AdaRound's time when the caller also reports it); default: built
        here.

    Returns
    -------
    MobileNetQATResult

    Raises
    ------
    MissingDependency
        torch is missing.
    ValueError
        No photos, bad shapes, or ``bits`` naming an unknown layer or bits outside 2..8.
    """
    if len(photos) == 0:
        raise ValueError("train_mobilenet_qat: photos: expected at least one photo, found none")
    torch = _import_torch()
    t0 = time.perf_counter()
    bits = check_layer_bits(tuple(config.bits) if bits is None else bits, net.layers)
    init = start if start is not None else QuantizedNetwork(net, bits, calib, init_ptq(config),
                                                            profile=config.profile)
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(config.threads)
    torch.use_deterministic_algorithms(True)
    try:
        torch.manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)
        student = _Student(torch, init, latent_from_codes=config.init == "adaround")
        teacher = _Teacher(torch, init.net)  # the equalized float network: tensors aligned with the student
        feats = feature_tensors(init.net) if config.feature else []
        lr_b = config.lr_weight if config.lr_bias is None else config.lr_bias
        groups = [{"params": list(student.Bp.values()), "lr": lr_b},
                  {"params": student.step_params(), "lr": config.lr_step}]
        if not config.freeze_weights:
            groups.append({"params": list(student.Wp.values()), "lr": config.lr_weight})
        opt = torch.optim.Adam(groups)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.steps)
        F = torch.nn.functional
        T = float(config.temperature)
        history, run = [], []
        n_z = config.batch_size // 2 if zeroq is not None and len(zeroq) else 0
        for step in range(config.steps):
            xb = augment_photos(photos, config.batch_size - n_z, config.train_size, rng)
            if n_z:
                xb = np.concatenate([xb, augment_tensors(zeroq, n_z, config.train_size, rng)])
            x = torch.from_numpy(xb).contiguous(memory_format=torch.channels_last)
            zt, tt = teacher(x, keep=True)
            zs, ts = student.forward(x, keep=True)
            loss = F.kl_div(F.log_softmax(zs / T, dim=1), F.softmax(zt / T, dim=1),
                            reduction="batchmean") * T * T
            if config.mse:
                loss = loss + config.mse * F.mse_loss(zs, zt)
            if feats:
                loss = loss + config.feature * sum(((ts[n] - tt[n]) ** 2).sum() / (tt[n] ** 2).sum()
                                                   for n in feats) / len(feats)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            run.append(float(loss.detach()))
            if (step + 1) % log_every == 0 or step + 1 == config.steps:
                rec = {"step": step + 1, "loss": float(np.mean(run)), "seconds": time.perf_counter() - t0}
                history.append(rec)
                run = []
                if log is not None:
                    log(f"mobilenet qat W{config.bits[0]}A{config.bits[1]} step {rec['step']}/"
                        f"{config.steps}: loss {rec['loss']:.4f}, {rec['seconds']:.0f} s")
        qnet = export(student, init, config.profile)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(det)
    return MobileNetQATResult(qnet, init, config, history, time.perf_counter() - t0)


def export(student, init: QuantizedNetwork, profile: str = "ort_cpu") -> QuantizedNetwork:
    """The integer network of a trained student: activation quantizers from the learned steps (zero points
    kept), weight codes ``quantize(w, s_w)`` per output channel, int32 biases of scale ``s_x * s_w``; flatten
    shares its input's quantizer. Returns a :class:`QuantizedNetwork` (the same network ``init`` describes,
    with the trained numbers)."""
    from ..quant import QParams, dequantize, quantize, quantize_bias
    from ._engine import replace_axis

    q = QuantizedNetwork.__new__(QuantizedNetwork)
    q.config = PTQConfig(name="QAT LSQ distillation")
    q.bits = dict(init.bits)
    q.acc_bits, q.acc_mode, q.profile = init.acc_bits, init.acc_mode, profile
    q.net = init.net
    q.qparams = {}
    for t in student.tensors:
        q.qparams[t] = QParams(scale=np.float32(student.S(t).detach().item()),
                               zero_point=student.Z[t], bits=student.act_bits[t], signed=False)
    for op in q.net.ops:
        if isinstance(op, Pool) and op.kind in ("max", "flatten"):
            q.qparams[op.dst] = q.qparams[op.src]
    q.wq, q.bias_q = {}, {}
    for op in q.net.ops:
        if not isinstance(op, Conv):
            continue
        wb = q.bits[op.name][0]
        s = student.SW(op.name).detach().numpy().astype(np.float32)
        wqp = QParams(scale=s, zero_point=np.zeros(s.shape, np.int32), bits=wb, signed=True, axis=0,
                      narrow_range=True)
        codes = quantize(student.W(op.name).detach().numpy(), wqp)
        wdeq = dequantize(codes, wqp)
        if op.linear:
            codes, wqp = np.ascontiguousarray(codes.T), replace_axis(wqp, 1)
        q.wq[op.name] = (codes, wdeq, wqp)
        q.bias_q[op.name] = quantize_bias(student.B(op.name).detach().numpy().astype(np.float32),
                                          q.qparams[op.src], wqp)
    q.overflow = {}
    return q


# ------------------------------------------------------------------------------------------- checking

def integer_forward(q: QuantizedNetwork, x: np.ndarray, *, keep: bool = False):
    """The integer network ``q`` computed with :mod:`hwsim.quant`'s ONNX-exact reference functions instead of
    the datapath's kernels: codes by :func:`hwsim.quant.quantize`, exact accumulators
    (:func:`hwsim.quant.exact_conv2d_acc`, :func:`hwsim.quant.exact_gemm_acc`), the residual skip rescaled to
    the accumulator's scale as ``rne(f32(f32(r - z_r) * f32(s_r / f32(s_x s_w))))`` (the ``ort_cpu``
    requantizer with zero point 0, HAWQ-V3's integer residual), :func:`hwsim.quant.requantize` with
    :func:`hwsim.quant.requant_multiplier`, ReLU/ReLU6 as code clamps, global average pooling as onnxruntime's
    ``QLinearGlobalAveragePool`` (``M = f32(s_x / f32(s_y f32(H W)))``), logits ``f32(acc) * f32(s_x s_w)``.

    Only the ``ort_cpu`` profile and a 32-bit accumulator that does not overflow are modelled (raises
    ValueError otherwise), which is what :func:`qat_evaluate` runs.

    Returns
    -------
    numpy.ndarray of float32, shape (N, 1000); with ``keep`` also a dict of tensor name to codes.
    """
    from ..quant import exact_conv2d_acc, exact_gemm_acc, quantize, requant_multiplier, requantize

    if q.profile != "ort_cpu":
        raise ValueError(f"integer_forward models the ort_cpu profile, not {q.profile!r}")
    lim = 1 << 31

    def reg(acc, name):
        if acc.size and (acc.min() < -lim or acc.max() >= lim):
            raise ValueError(f"layer {name!r}: the 32-bit accumulator overflows")
        return acc

    codes = {"input": quantize(x, q.qparams["input"])}
    for op in q.net.ops:
        src = codes[op.src]
        if isinstance(op, Pool):
            if op.kind == "gap":
                xq, yq = q.qparams[op.src], q.qparams[op.dst]
                hw = src.shape[2] * src.shape[3]
                acc = src.astype(np.int64).sum(axis=(2, 3), keepdims=True) - int(xq.zero_point) * hw
                m = np.divide(xq.scale, np.multiply(yq.scale, np.float32(hw), dtype=np.float32),
                              dtype=np.float32)
                codes[op.dst] = requantize(acc, m, zero_point=int(yq.zero_point), qmin=yq.qmin, qmax=yq.qmax,
                                           profile="ort_cpu").astype(yq.storage_dtype)
            elif op.kind == "flatten":
                codes[op.dst] = src.reshape(src.shape[0], -1)
            else:
                raise ValueError("integer_forward: max pooling is not part of MobileNetV2")
            continue
        wc, _, wqp = q.wq[op.name]
        x_qp = q.qparams[op.src]
        if op.linear:
            acc = exact_gemm_acc(src.reshape(src.shape[0], -1), wc, a_zp=int(x_qp.zero_point), b_zp=0,
                                 bias=q.bias_q[op.name])
        else:
            acc = exact_conv2d_acc(src, wc, x_zp=int(x_qp.zero_point), w_zp=0, bias=q.bias_q[op.name],
                                   stride=op.stride, pads=op.pads, groups=op.groups)
        reg(acc, op.name)
        s_acc = np.multiply(x_qp.scale, wqp.scale, dtype=np.float32)
        if op.residual is not None:
            r_qp = q.qparams[op.residual]
            m_r = np.broadcast_to(np.divide(r_qp.scale, s_acc, dtype=np.float32), (acc.shape[1],))
            r = (codes[op.residual].astype(np.int64) - int(r_qp.zero_point)).astype(np.float32)
            v = np.multiply(r, m_r.astype(np.float32).reshape(1, -1, 1, 1), dtype=np.float32)
            acc = reg(acc + np.clip(np.rint(v.astype(np.float64)), -lim, lim - 1).astype(np.int64), op.name)
        if op.dst == q.net.output:
            logits = np.multiply(acc.astype(np.float32), s_acc, dtype=np.float32)
            return (logits, codes) if keep else logits
        y_qp = q.qparams[op.dst]
        z = int(y_qp.zero_point)
        lo, hi = y_qp.qmin, y_qp.qmax
        if op.act in ("relu", "relu6"):
            lo = max(lo, z)
        m = requant_multiplier(x_qp.scale, wqp.scale, y_qp.scale, profile="ort_cpu")
        y = requantize(acc, m, zero_point=z, qmin=lo, qmax=hi, channel_axis=1 if m.ndim else None,
                       profile="ort_cpu")
        if op.act == "relu6":
            s = np.float64(y_qp.scale)
            top = (np.full(acc.shape[1], z + np.rint(6.0 / s)) if op.clip_hi is None
                   else z + np.rint(op.clip_hi.astype(np.float64) / s))
            y = np.minimum(y, np.minimum(hi, top).astype(np.int64).reshape((1, -1) + (1,) * (y.ndim - 2)))
        codes[op.dst] = y.astype(y_qp.storage_dtype)
    raise ValueError(f"the network never computes its output {q.net.output!r}")


def qat_evaluate(q: QuantizedNetwork, x: np.ndarray, ref: np.ndarray, *, batch: int = 10) -> dict:
    """Run ``q`` on the datapath (:meth:`QuantizedNetwork.run`, 32-bit wrapping accumulators) and with
    :func:`integer_forward`, assert that every code and every logit agree bit for bit, and return
    :func:`hwsim.models.mobilenet_v2.quality` of the datapath's logits against the float ``ref``.

    Raises
    ------
    AssertionError
        The datapath and the reference forward differ (the message names the first tensor), or an accumulator
        overflowed.
    """
    from .mobilenet_v2 import quality

    outs = []
    for i in range(0, len(x), batch):
        xb = x[i:i + batch]
        y_dp, c_dp = q.run(xb, batch=len(xb), return_codes=True)
        if any(q.overflow.values()):
            raise AssertionError(f"accumulator overflow: {q.overflow}")
        y_ref, c_ref = integer_forward(q, xb, keep=True)
        for t, c in c_ref.items():
            if not np.array_equal(c, c_dp[t]):
                raise AssertionError(f"tensor {t!r}: the datapath's codes differ from the reference forward")
        if not np.array_equal(y_dp.view(np.uint32), y_ref.view(np.uint32)):
            raise AssertionError("the datapath's logits differ from the reference forward")
        outs.append(y_dp)
    out = quality(np.concatenate(outs), ref)
    out["bit_exact"] = True
    return out
