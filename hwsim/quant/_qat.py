"""Quantization-aware training (QAT) whose training forward *is* the integer network of the datapath.

Methods (Gholami et al. 2021 survey, §III-G1 and §IV-B; selected by :attr:`QATConfig.method`):

* ``"ste"``: fake quantization with the straight-through estimator (Bengio et al. 2013; Jacob et al., CVPR
  2018): weight scales ``max|w| / Qp`` per output channel recomputed every step, activation ranges the
  exponential moving average (momentum 0.9) of the batch maxima; rounding passes gradients unchanged.
* ``"lsq"``: learned step size quantization (Esser et al., ICLR 2020): every step size (per output channel for
  weights, per tensor for activations) is a parameter with the gradient of eq. 3 of the paper scaled by
  ``g = 1 / sqrt(N * Qp)`` (§2.2, ``N`` the elements per channel or per sample); initial steps
  ``2 <|v|> / sqrt(Qp)`` (§2.1).
* ``"lsq+"``: LSQ with a learned activation offset (Bhalgat et al., CVPR-W 2020, eq. 3-4), here the zero point
  of the datapath's asymmetric quantizer: a continuous parameter rounded to an integer code with the STE, so
  that the integer datapath represents it exactly; steps and offsets initialized from the MSE-optimal range
  (the paper's §3.2 initialization by minimum quantization error) of :func:`hwsim.quant.calibrate`.
* ``"pact"``: parameterized clipping activation (Choi et al. 2018, eq. 1-3): each activation tensor is clipped
  at a learned ``alpha`` (gradient 1 where the input exceeds ``alpha``, PACT's STE), step ``alpha / Qp``,
  ``alpha`` initialized to the calibration maximum and L2-regularized by ``pact_decay``; weights as ``ste``.

Optionally the loss is distilled from the float network (Hinton et al. 2015; the survey's "quantization with
distillation", §IV-D): ``(1 - d) CE(y, z) + d T^2 KL(softmax(z_f / T) || softmax(z / T))``.

Bit-exact training forward. Every step computes the integer network exactly as :mod:`hwsim.datapath` runs it,
with this package's ONNX-exact functions: codes by :func:`hwsim.quant.quantize`, int32 biases by
:func:`hwsim.quant.quantize_bias`, exact accumulators by :func:`hwsim.quant.exact_conv2d_acc` /
:func:`hwsim.quant.exact_gemm_acc`, outputs by :func:`hwsim.quant.requantize` with the profile's multiplier,
max pooling on codes, and the last layer's accumulator dequantized as ``f32(acc) * f32(s_x * s_w)``. A float
torch graph of the same layers (the textbook LSQ/PACT fake quantization) runs beside it only for the
gradients: at every quantizer the value ``v = v_surrogate + (v_exact - v_surrogate).detach()`` takes the exact
codes, so each layer sees exactly the integer network's activations, and the loss is computed on the exact
logits. Hence the trained network's fake-quantized forward (:meth:`QATResult.forward`) equals the datapath's
integer inference (``hwsim.models`` ``QuantizedNetwork.from_qat``) bit for bit (tested), with a 32-bit
accumulator that does not overflow.

Quantizers (those of the PTQ engine, so that the datapath runs them): weights symmetric, signed, restricted
range ``[-(2^(b-1) - 1), 2^(b-1) - 1]``, zero point 0, one step per output channel; activations asymmetric
unsigned ``[0, 2^b - 1]`` per tensor, the bits of the first layer consuming the tensor; ReLU clamps codes at
the zero point; max pooling and flatten share their input's quantizer; biases int32 of scale ``s_x * s_w``.

Networks: an op list as :class:`hwsim.models._engine.Network` describes it (duck-typed, this package does not
import :mod:`hwsim.models`): ``net.ops`` of conv/linear layers (attributes ``name, src, dst, weight, bias,
stride, pads, groups, act ("relu" or None), linear``; no ``residual``) and pools (``kind`` "max" or "flatten",
``kernel``, ``stride``), ``net.output``, ``net.layers``, ``net.consumer_layer(tensor)``, ``net.forward(x)``.

torch (``torch==2.13.0``, CPU) is imported only when training; without it
:class:`hwsim.errors.MissingDependency` is raised. Training is seeded and deterministic:
``torch.manual_seed``, ``torch.use_deterministic_algorithms``, one thread, a seeded shuffle (the same result
on one machine; another CPU's float kernels may round otherwise).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import MissingDependency
from ..numerics import PROFILES, QParams, dequantize, quantize, requant_multiplier, requantize
from ._fakequant import conv_windows, exact_conv2d_acc, exact_gemm_acc, quantize_bias

__all__ = ["QAT_METHODS", "QATConfig", "QATResult", "train_qat", "qat_forward", "check_qat_bits",
           "lsq_quantize", "pact_quantize"]

#: The QAT methods of :attr:`QATConfig.method`.
QAT_METHODS = ("ste", "lsq", "lsq+", "pact")

#: The bit-widths the integer datapath runs for weights and activations (the PTQ engine's range).
MIN_BITS, MAX_BITS = 2, 8


def config_error(key: str, expected: str, found) -> ValueError:
    """The one-line error of a QAT config value: ``"KEY: expected EXPECTED, found FOUND"`` (ValueError)."""
    return ValueError(f"{key}: expected {expected}, found {found!r}")


def is_config_int(v) -> bool:
    """Whether ``v`` is an integer a config may hold: Python or numpy int, not bool."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def is_config_number(v) -> bool:
    """Whether ``v`` is a finite number a config may hold: int or float (Python or numpy), not bool."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) \
        and math.isfinite(float(v))




@dataclass(frozen=True)
class QATConfig:
    """A QAT recipe.

    Attributes
    ----------
    method : one of :data:`QAT_METHODS`, default "lsq"
    epochs : int, default 3
        Passes over the training set, 1..200.
    lr : float, default 1e-3
        Adam's learning rate, in (0, 1]; cosine-annealed to 0 over the training.
    batch_size : int, default 128
        Images per step, 1..65536.
    distill : float, default 0.0
        Weight ``d`` of the distillation loss from the float network, in [0, 1] (0: labels only).
    temperature : float, default 2.0
        Distillation temperature ``T``, in (0, 100].
    pact_decay : float, default 1e-4
        L2 weight of PACT's clipping levels, in [0, 1].
    max_train : int or None
        Train on the first ``max_train`` training images only (None: all), >= 1.
    seed : int, default 0
        Seeds the initialization-free parts (the shuffle) and torch.
    profile : str, default "ort_cpu"
        Requantization semantics, one of :data:`hwsim.quant.PROFILES`.

    Raises
    ------
    ValueError
        A value out of range; the message starts with the key, e.g. ``"qat.lr: expected a learning rate in
        (0, 1], found 5.0"``.
    """

    method: str = "lsq"
    epochs: int = 3
    lr: float = 1e-3
    batch_size: int = 128
    distill: float = 0.0
    temperature: float = 2.0
    pact_decay: float = 1e-4
    max_train: int | None = None
    seed: int = 0
    profile: str = "ort_cpu"

    def __post_init__(self):
        is_int, is_num = is_config_int, is_config_number
        if self.method not in QAT_METHODS:
            raise config_error("qat.method", f"one of {list(QAT_METHODS)}", self.method)
        if not (is_int(self.epochs) and 1 <= self.epochs <= 200):
            raise config_error("qat.epochs", "an integer number of epochs in 1..200", self.epochs)
        if not (is_num(self.lr) and 0 < self.lr <= 1):
            raise config_error("qat.lr", "a learning rate in (0, 1]", self.lr)
        if not (is_int(self.batch_size) and 1 <= self.batch_size <= 65536):
            raise config_error("qat.batch_size", "an integer in 1..65536", self.batch_size)
        if not (is_num(self.distill) and 0 <= self.distill <= 1):
            raise config_error("qat.distill", "a loss weight in [0, 1]", self.distill)
        if not (is_num(self.temperature) and 0 < self.temperature <= 100):
            raise config_error("qat.temperature", "a temperature in (0, 100]", self.temperature)
        if not (is_num(self.pact_decay) and 0 <= self.pact_decay <= 1):
            raise config_error("qat.pact_decay", "a weight in [0, 1]", self.pact_decay)
        if self.max_train is not None and not (is_int(self.max_train) and self.max_train >= 1):
            raise config_error("qat.max_train", "None or an integer >= 1", self.max_train)
        if not is_int(self.seed):
            raise config_error("qat.seed", "an integer", self.seed)
        if self.profile not in PROFILES:
            raise config_error("qat.profile", f"one of {list(PROFILES)}", self.profile)

    def to_dict(self) -> dict:
        return asdict(self)


def check_qat_bits(bits, layers) -> dict[str, tuple[int, int]]:
    """Validate ``{layer: (weight_bits, act_bits)}`` (or one pair) for a network's ``layers``.

    Raises
    ------
    ValueError
        A layer the network does not have (``"bits.conv9: expected a layer of the network ..."``), a missing
        layer, or bits outside what the datapath runs (2..8 for weights and activations).
    """
    layers = tuple(layers)
    if isinstance(bits, (tuple, list)) and len(bits) == 2:
        bits = {n: tuple(bits) for n in layers}
    if not isinstance(bits, dict):
        raise config_error("bits", "a mapping {layer: (weight_bits, act_bits)} or one pair", bits)
    for k in bits:
        if k not in layers:
            raise config_error(f"bits.{k}", f"a layer of the network ({list(layers)})", k)
    out = {}
    for n in layers:
        if n not in bits:
            raise config_error(f"bits.{n}", "(weight_bits, act_bits) for every layer", None)
        v = bits[n]
        if not (isinstance(v, (tuple, list)) and len(v) == 2):
            raise config_error(f"bits.{n}", "a pair (weight_bits, act_bits)", v)
        for b in v:
            if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or not MIN_BITS <= b <= MAX_BITS:
                raise config_error(f"bits.{n}", f"integer bits the datapath runs ({MIN_BITS}..{MAX_BITS})",
                                   list(v))
        out[n] = (int(v[0]), int(v[1]))
    return out


# --------------------------------------------------------------------------------------------- network walk

def _convs(net):
    return [op for op in net.ops if hasattr(op, "weight")]


def _check_net(net) -> None:
    for op in net.ops:
        if hasattr(op, "weight"):
            if getattr(op, "residual", None) is not None:
                raise ValueError(f"layer {op.name!r}: QAT runs chains of conv/linear layers; residual adds "
                                 "are not supported")
            if op.act not in (None, "relu"):
                raise ValueError(f"layer {op.name!r}: QAT supports ReLU or no activation, not {op.act!r}")
        elif op.kind not in ("max", "flatten"):
            raise ValueError(f"pool {op.dst!r}: QAT supports max pooling and flatten, not {op.kind!r}")


def _act_tensors(net) -> dict[str, str]:
    """The quantized tensors (the input and every layer output a later layer consumes, through pools), each
    with the name of its first consuming layer (whose activation bits it takes)."""
    names = ["input"] + [op.dst for op in _convs(net) if op.dst != net.output]
    out = {t: net.consumer_layer(t) for t in names}
    return {t: layer for t, layer in out.items() if layer is not None}


def _shared(net) -> dict[str, str]:
    """Pooled/flattened tensor -> the quantized tensor whose quantizer it keeps."""
    root = {}
    for op in net.ops:
        if not hasattr(op, "weight"):
            root[op.dst] = root.get(op.src, op.src)
    return root


def _maxpool_codes(c: np.ndarray, k: int, s: int) -> np.ndarray:
    return conv_windows(c, k, k, (s, s), (0, 0, 0, 0)).max(axis=(4, 5))


# --------------------------------------------------------------------------------------------- exact forward

def qat_forward(net, qparams: dict, weights: dict, bias_q: dict, x: np.ndarray, *, profile: str = "ort_cpu",
                keep: bool = False):
    """The fake-quantized forward of an integer network, with this package's ONNX-exact functions.

    Parameters
    ----------
    net : network (see the module docstring)
    qparams : dict of str to QParams
        Activation quantizer of every quantized tensor (``"input"`` first).
    weights : dict of str to (codes, QParams)
        Per layer: integer codes in the layer's layout (``(K, C/g, R, S)`` or ``(out, in)``) and their per
        output channel quantizer (axis 0).
    bias_q : dict of str to int32 array, shape (K,)
    x : numpy.ndarray of float
        Network input, e.g. ``(N, 1, 28, 28)``.
    profile : str
        Requantization semantics.
    keep : bool
        Also return the integer codes of every tensor.

    Returns
    -------
    numpy.ndarray of float32, shape (N, classes): the logits ``f32(acc) * f32(s_x * s_w)``; with ``keep`` also
    a dict of tensor name to codes.
    """
    share = _shared(net)
    codes = {"input": quantize(x, qparams["input"])}
    logits = None
    for op in net.ops:
        src = codes[op.src]
        if not hasattr(op, "weight"):
            codes[op.dst] = (_maxpool_codes(src, op.kernel, op.stride) if op.kind == "max"
                             else src.reshape(src.shape[0], -1))
            continue
        x_qp = qparams[share.get(op.src, op.src)]
        wc, wqp = weights[op.name]
        if op.linear:
            wqp_b = QParams(scale=wqp.scale, zero_point=wqp.zero_point, bits=wqp.bits, signed=True, axis=1,
                            narrow_range=wqp.narrow_range)
            acc = exact_gemm_acc(src.reshape(src.shape[0], -1), np.ascontiguousarray(wc.T),
                                 a_zp=int(x_qp.zero_point), b_zp=0, bias=bias_q[op.name])
        else:
            wqp_b = wqp
            acc = exact_conv2d_acc(src, wc, x_zp=int(x_qp.zero_point), w_zp=0, bias=bias_q[op.name],
                                   stride=op.stride, pads=op.pads, groups=op.groups)
        if op.dst == net.output:
            s_acc = np.multiply(x_qp.scale, wqp_b.scale, dtype=np.float32)
            logits = np.multiply(acc.astype(np.float32), s_acc, dtype=np.float32)
            continue
        y_qp = qparams[op.dst]
        z = int(y_qp.zero_point)
        lo = max(y_qp.qmin, z) if op.act == "relu" else y_qp.qmin
        m = requant_multiplier(x_qp.scale, wqp_b.scale, y_qp.scale, profile=profile)
        codes[op.dst] = requantize(acc, m, zero_point=z, qmin=lo, qmax=y_qp.qmax,
                                   channel_axis=1 if m.ndim else None,
                                   profile=profile).astype(y_qp.storage_dtype)
    return (logits, codes) if keep else logits


# --------------------------------------------------------------------------------------------- result

@dataclass
class QATResult:
    """A trained integer network.

    Attributes
    ----------
    net : network
        The float network trained from (its ops give the structure; weights are the original float ones).
    bits : dict of str to (int, int)
    config : QATConfig
    qparams : dict of str to QParams
        Learned activation quantizers per quantized tensor (pooled/flattened tensors share their input's).
    weights : dict of str to (numpy.ndarray of int, QParams)
        Integer weight codes per layer in the layer's layout, and their per-output-channel quantizer (axis 0).
    bias : dict of str to numpy.ndarray of float32
        Trained float biases; ``bias_q`` their int32 codes of scale ``s_x * s_w``.
    bias_q : dict of str to numpy.ndarray of int32
    history : list of dict
        Per epoch: ``epoch``, ``loss`` (mean training loss), ``seconds``.
    seconds : float
        Wall time of the training (initialization, epochs, export), s.
    """

    net: object
    bits: dict
    config: QATConfig
    qparams: dict
    weights: dict
    bias: dict
    bias_q: dict
    history: list = field(default_factory=list)
    seconds: float = 0.0

    def forward(self, x: np.ndarray, *, batch: int = 1000, keep: bool = False):
        """Fake-quantized logits ``(N, classes)`` float32 (:func:`qat_forward`), in batches of ``batch``."""
        if keep:
            return qat_forward(self.net, self.qparams, self.weights, self.bias_q, x,
                               profile=self.config.profile, keep=True)
        return np.concatenate([qat_forward(self.net, self.qparams, self.weights, self.bias_q, x[i:i + batch],
                                           profile=self.config.profile) for i in range(0, len(x), batch)])

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat arrays for ``np.savez`` (:meth:`from_arrays` reads them back)."""
        out = {}
        for t, qp in self.qparams.items():
            out[f"act.{t}.scale"] = np.asarray(qp.scale, np.float32)
            out[f"act.{t}.zero_point"] = np.asarray(qp.zero_point, np.int32)
            out[f"act.{t}.bits"] = np.asarray(qp.bits, np.int32)
        for n, (c, qp) in self.weights.items():
            out[f"w.{n}.codes"] = np.asarray(c, np.int8)
            out[f"w.{n}.scale"] = np.asarray(qp.scale, np.float32)
            out[f"w.{n}.bits"] = np.asarray(qp.bits, np.int32)
            out[f"b.{n}"] = np.asarray(self.bias[n], np.float32)
            out[f"bq.{n}"] = np.asarray(self.bias_q[n], np.int32)
        return out

    @classmethod
    def from_arrays(cls, net, bits, config: QATConfig, arrays, *, seconds: float = 0.0,
                    history=None) -> QATResult:
        qparams, weights, bias, bias_q = {}, {}, {}, {}
        for key in arrays:
            if key.startswith("act.") and key.endswith(".scale"):
                t = key[4:-6]
                qparams[t] = QParams(scale=arrays[key], zero_point=int(arrays[f"act.{t}.zero_point"]),
                                     bits=int(arrays[f"act.{t}.bits"]), signed=False)
        for op in _convs(net):
            n = op.name
            s = np.asarray(arrays[f"w.{n}.scale"], np.float32)
            qp = QParams(scale=s, zero_point=np.zeros(s.shape, np.int32), bits=int(arrays[f"w.{n}.bits"]),
                         signed=True, axis=0, narrow_range=True)
            weights[n] = (np.asarray(arrays[f"w.{n}.codes"], np.int8), qp)
            bias[n] = np.asarray(arrays[f"b.{n}"], np.float32)
            bias_q[n] = np.asarray(arrays[f"bq.{n}"], np.int32)
        return cls(net, dict(bits), config, qparams, weights, bias, bias_q, list(history or []),
                   float(seconds))


# --------------------------------------------------------------------------------------------- training

def _import_torch():
    try:
        import torch
    except ImportError as e:  # also a broken install
        raise MissingDependency(f"quantization-aware training needs torch ({e}); install it with "
                                "'pip install torch==2.13.0 --index-url "
                                "https://download.pytorch.org/whl/cpu'") from None
    return torch


def _round_ste(v):
    """``round`` (half to even) forward, identity backward (the straight-through estimator)."""
    import torch

    return v + (torch.round(v) - v).detach()


def lsq_quantize(v, s, qmin: int, qmax: int, *, g: float = 1.0, z=None):
    """LSQ fake quantization (Esser et al., ICLR 2020, eq. 1-3) of torch tensors: ``(c - z) * s`` with codes
    ``c = round(clip(v / s + z, qmin, qmax))`` (half to even, the STE through ``round``).

    Gradients: ``dv^/dv = 1`` inside the range, 0 outside; ``dv^/ds = round(v/s) - v/s`` inside, ``qmin - z``
    / ``qmax - z`` below/above (eq. 3), scaled by ``g`` (§2.2: ``g = 1/sqrt(N Qp)``); the offset ``z`` (LSQ+,
    rounded with the STE) gets 0 inside the range and ``-s`` outside (Bhalgat et al. 2020, eq. 4:
    ``dv^/dbeta`` is 0 inside and 1 outside, with ``beta = -z s``).

    Parameters
    ----------
    v : torch.Tensor
    s : torch.Tensor, shape () or broadcastable to ``v`` (per channel), > 0
    qmin, qmax : int
    g : float
        Gradient scale of ``s`` (and ``z``).
    z : torch.Tensor, shape (), optional
        Continuous zero point (rounded to an integer code in the forward), default 0.
    """
    import torch

    s = (s - s * g).detach() + s * g
    if z is None:
        return _round_ste(torch.clamp(v / s, qmin, qmax)) * s
    z = _round_ste((z - z * g).detach() + z * g)
    return (_round_ste(torch.clamp(v / s + z, qmin, qmax)) - z) * s


def pact_quantize(y, alpha, qmax: int):
    """PACT (Choi et al. 2018, eq. 1-3) of torch tensors: ``y_q = round(clip(y, 0, alpha) / s) * s`` with
    ``s = alpha / qmax``; gradients by PACT's STE: ``dy_q/dy = 1`` for ``0 < y < alpha``, ``dy_q/dalpha = 1``
    for ``y >= alpha`` and 0 elsewhere."""
    import torch

    yc = torch.minimum(torch.relu(y), alpha)
    s = alpha / qmax
    return yc + (s * torch.round(yc / s) - yc).detach()


def _build(torch, net, bits, cfg: QATConfig, calib_t: dict):
    """The trainable parameters and the per-step forward (closures over torch)."""
    F = torch.nn.functional
    from ._calibrate import calibrate

    tensors = _act_tensors(net)
    share = _shared(net)
    params = []
    # -- weights
    W, B, SW = {}, {}, {}
    for op in _convs(net):
        wb = bits[op.name][0]
        qp_hi = (1 << (wb - 1)) - 1
        w = torch.tensor(np.asarray(op.weight, np.float32))
        W[op.name] = torch.nn.Parameter(w.clone())
        B[op.name] = torch.nn.Parameter(torch.tensor(np.asarray(op.bias, np.float32)))
        params += [W[op.name], B[op.name]]
        flat = w.reshape(w.shape[0], -1)
        if cfg.method in ("lsq", "lsq+"):
            SW[op.name] = torch.nn.Parameter(2 * flat.abs().mean(dim=1) / math.sqrt(qp_hi))
            params.append(SW[op.name])
    # -- activations
    S, Z, ALPHA, EMA = {}, {}, {}, {}
    for t, layer in tensors.items():
        ab = bits[layer][1]
        qmax = (1 << ab) - 1
        a = np.asarray(calib_t[t], np.float32)
        if cfg.method == "lsq":
            S[t] = torch.nn.Parameter(torch.tensor(max(2 * float(np.abs(a).mean()) / math.sqrt(qmax), 1e-6)))
            Z[t] = torch.tensor(0.0)
            params.append(S[t])
        elif cfg.method == "lsq+":
            qp = calibrate(a, ab, "mse")
            S[t] = torch.nn.Parameter(torch.tensor(float(qp.scale)))
            Z[t] = torch.nn.Parameter(torch.tensor(float(qp.zero_point)))
            params += [S[t], Z[t]]
        elif cfg.method == "pact":
            ALPHA[t] = torch.nn.Parameter(torch.tensor(max(float(a.max()), 1e-3)))
            params.append(ALPHA[t])
        else:
            EMA[t] = [max(float(a.max()), 1e-3)]

    def w_qparams(op):
        wb = bits[op.name][0]
        qp_hi = (1 << (wb - 1)) - 1
        if op.name in SW:
            s = SW[op.name].detach().clamp_min(1e-8).numpy().astype(np.float32)
        else:
            s = (W[op.name].detach().reshape(W[op.name].shape[0],
                                             -1).abs().amax(dim=1) / qp_hi).clamp_min(1e-8)
            s = s.numpy().astype(np.float32)
        return QParams(scale=s, zero_point=np.zeros(s.shape, np.int32), bits=wb, signed=True, axis=0,
                       narrow_range=True)

    def a_step(t):
        qmax = (1 << bits[tensors[t]][1]) - 1
        if t in S:
            return S[t].clamp_min(1e-8)
        if t in ALPHA:
            return ALPHA[t].clamp_min(1e-6) / qmax
        return torch.tensor(EMA[t][0] / qmax)

    def a_qparams(t):
        ab = bits[tensors[t]][1]
        s = np.float32(a_step(t).detach().item())
        z = int(np.clip(np.rint(float(Z[t].detach())), 0, (1 << ab) - 1)) if t in Z else 0
        return QParams(scale=s, zero_point=z, bits=ab, signed=False)

    def w_surrogate(op, qp, codes):
        w = W[op.name]
        wb = bits[op.name][0]
        qp_hi = (1 << (wb - 1)) - 1
        shape = (-1,) + (1,) * (w.ndim - 1)
        if op.name in SW:
            v = lsq_quantize(w, SW[op.name].clamp_min(1e-8).reshape(shape), -qp_hi, qp_hi,
                             g=1.0 / math.sqrt(w[0].numel() * qp_hi))
        else:
            v = lsq_quantize(w, torch.from_numpy(np.array(qp.scale)).reshape(shape), -qp_hi, qp_hi)
        exact = torch.from_numpy(dequantize(codes, qp))
        return v + (exact - v).detach()

    def a_surrogate(t, y, qp, codes):
        qmax = (1 << bits[tensors[t]][1]) - 1
        if t in ALPHA:  # PACT: clip at alpha (gradient 1 above it), STE through the rounding
            v = pact_quantize(y, ALPHA[t].clamp_min(1e-6), qmax)
        elif t in S:
            z = Z[t] if isinstance(Z.get(t), torch.nn.Parameter) else None
            v = lsq_quantize(y, a_step(t), 0, qmax, g=1.0 / math.sqrt(y[0].numel() * qmax), z=z)
        else:
            v = lsq_quantize(y, a_step(t).detach(), 0, qmax)
        exact = torch.from_numpy(dequantize(codes, qp))
        return v + (exact - v).detach()

    def forward(x: np.ndarray, training: bool):
        """(torch logits whose value is the exact integer network's, exact numpy logits)."""
        # ste: moving averages of the ranges, updated from this batch's float activations
        if training and EMA:
            with torch.no_grad():
                ft = _float_tensors(torch, net, W, B, x)
            for t in EMA:
                EMA[t][0] = 0.9 * EMA[t][0] + 0.1 * max(float(ft[t].max()), 1e-3)
        qps = {t: a_qparams(t) for t in tensors}
        wq = {op.name: w_qparams(op) for op in _convs(net)}
        codes = {"input": quantize(x, qps["input"])}
        vals = {"input": a_surrogate("input", torch.from_numpy(np.asarray(x, np.float32)), qps["input"],
                                     codes["input"])}
        for op in net.ops:
            src_c, src_v = codes[op.src], vals[op.src]
            if not hasattr(op, "weight"):
                if op.kind == "max":
                    codes[op.dst] = _maxpool_codes(src_c, op.kernel, op.stride)
                    vals[op.dst] = F.max_pool2d(src_v, op.kernel, op.stride)
                else:
                    codes[op.dst] = src_c.reshape(src_c.shape[0], -1)
                    vals[op.dst] = src_v.reshape(src_v.shape[0], -1)
                continue
            x_qp = qps[share.get(op.src, op.src)]
            wqp = wq[op.name]
            w_codes = quantize(W[op.name].detach().numpy(), wqp)
            b_np = B[op.name].detach().numpy()
            b_q = quantize_bias(b_np, x_qp, wqp)
            w_v = w_surrogate(op, wqp, w_codes)
            if op.linear:
                wqp_b = QParams(scale=wqp.scale, zero_point=wqp.zero_point, bits=wqp.bits, signed=True,
                                axis=1, narrow_range=True)
                acc = exact_gemm_acc(src_c.reshape(src_c.shape[0], -1), np.ascontiguousarray(w_codes.T),
                                     a_zp=int(x_qp.zero_point), b_zp=0, bias=b_q)
                y = F.linear(src_v, w_v, B[op.name])
            else:
                wqp_b = wqp
                acc = _torch_conv_acc(torch, src_c, w_codes, int(x_qp.zero_point), b_q, op)
                pt, pb, pl, pr = op.pads
                xin = F.pad(src_v, (pl, pr, pt, pb)) if any(op.pads) else src_v
                y = F.conv2d(xin, w_v, B[op.name], stride=tuple(op.stride), groups=op.groups)
            if op.dst == net.output:
                s_acc = np.multiply(x_qp.scale, wqp_b.scale, dtype=np.float32)
                exact = np.multiply(acc.astype(np.float32), s_acc, dtype=np.float32)
                et = torch.from_numpy(exact)
                return y + (et - y).detach(), exact
            y_qp = qps[op.dst]
            z = int(y_qp.zero_point)
            lo = max(y_qp.qmin, z) if op.act == "relu" else y_qp.qmin
            m = requant_multiplier(x_qp.scale, wqp_b.scale, y_qp.scale, profile=cfg.profile)
            codes[op.dst] = requantize(acc, m, zero_point=z, qmin=lo, qmax=y_qp.qmax,
                                       channel_axis=1 if m.ndim else None,
                                       profile=cfg.profile).astype(y_qp.storage_dtype)
            if op.act == "relu":
                y = torch.relu(y)
            vals[op.dst] = a_surrogate(op.dst, y, y_qp, codes[op.dst])
        raise ValueError(f"the network never computes its output {net.output!r}")

    def export():
        qps = {t: a_qparams(t) for t in tensors}
        for d, r in share.items():
            if r in qps:
                qps[d] = qps[r]
        weights, bias, bias_q = {}, {}, {}
        for op in _convs(net):
            wqp = w_qparams(op)
            codes = quantize(W[op.name].detach().numpy(), wqp)
            weights[op.name] = (codes, wqp)
            bias[op.name] = B[op.name].detach().numpy().astype(np.float32).copy()
            bias_q[op.name] = quantize_bias(bias[op.name], qps[share.get(op.src, op.src)], wqp)
        return qps, weights, bias, bias_q

    reg = (lambda: cfg.pact_decay * sum(a * a for a in ALPHA.values())) if ALPHA else (lambda: 0.0)
    return params, forward, export, reg


def _torch_conv_acc(torch, x_q, w_q, x_zp: int, bias, op) -> np.ndarray:
    """The exact conv accumulator ``sum (x - x_zp) w + bias`` (int64), as :func:`exact_conv2d_acc` but with
    torch's float64 convolution (faster for small channel counts): every product and partial sum is an integer
    below ``2^53`` (checked), so float64 holds each exactly whatever the summation order, and the result is
    the exact integer (the argument of :mod:`hwsim.quant._fakequant`)."""
    from ._fakequant import _check_f64_exact

    xs = x_q.astype(np.int64) - x_zp
    _check_f64_exact(xs, w_q.astype(np.int64), int(np.prod(w_q.shape[1:])), bias)
    pt, pb, pl, pr = op.pads
    xt = torch.from_numpy(xs.astype(np.float64))
    if any(op.pads):
        xt = torch.nn.functional.pad(xt, (pl, pr, pt, pb))
    y = torch.nn.functional.conv2d(xt, torch.from_numpy(w_q.astype(np.float64)), stride=tuple(op.stride),
                                   groups=op.groups)
    return np.rint(y.numpy()).astype(np.int64) + np.asarray(bias, np.int64).reshape(1, -1, 1, 1)


def _float_tensors(torch, net, W, B, x):
    """Float torch forward of every tensor (for the ``ste`` ranges)."""
    F = torch.nn.functional
    t = {"input": torch.from_numpy(np.asarray(x, np.float32))}
    for op in net.ops:
        src = t[op.src]
        if not hasattr(op, "weight"):
            t[op.dst] = F.max_pool2d(src, op.kernel, op.stride) if op.kind == "max" else src.reshape(len(src),
                                                                                                     -1)
            continue
        if op.linear:
            y = F.linear(src, W[op.name], B[op.name])
        else:
            pt, pb, pl, pr = op.pads
            y = F.conv2d(F.pad(src, (pl, pr, pt, pb)), W[op.name], B[op.name], stride=tuple(op.stride),
                         groups=op.groups)
        t[op.dst] = torch.relu(y) if op.act == "relu" else y
    return t


def train_qat(net, bits, x_train: np.ndarray, y_train: np.ndarray, config: QATConfig = QATConfig(), *,
              calib_x: np.ndarray | None = None, log=None) -> QATResult:
    """Quantization-aware training of a float network at per-layer bits (see the module docstring).

    Parameters
    ----------
    net : network
        The float network (BN folded), a chain of conv/linear layers with ReLU, max pooling and flatten.
    bits : dict of str to (int, int), or (int, int)
        ``(weight_bits, act_bits)`` per layer (a policy), each 2..8; ``act_bits`` quantize the layer's input.
    x_train : numpy.ndarray of float32, shape (N, ...)
        Training inputs (the network's input layout).
    y_train : numpy.ndarray of int, shape (N,)
        Class labels.
    config : QATConfig
    calib_x : numpy.ndarray, optional
        Inputs whose float activations initialize the quantizers (default: the first 256 training inputs).
    log : callable, optional
        Called with one line per epoch.

    Returns
    -------
    QATResult

    Raises
    ------
    MissingDependency
        torch is not installed.
    ValueError
        Bad bits (naming the layer), a network QAT cannot run, or mismatched inputs.
    """
    bits = check_qat_bits(bits, net.layers)
    _check_net(net)
    x_train = np.ascontiguousarray(x_train, np.float32)
    y_train = np.asarray(y_train, np.int64)
    if x_train.shape[0] != y_train.shape[0] or x_train.shape[0] == 0:
        raise ValueError("x_train and y_train must hold the same number (> 0) of samples, not "
                         f"{x_train.shape[0]} and {y_train.shape[0]}")
    if config.max_train is not None:
        x_train, y_train = x_train[:config.max_train], y_train[:config.max_train]
    torch = _import_torch()
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        torch.manual_seed(config.seed)
        calib = x_train[:256] if calib_x is None else np.asarray(calib_x, np.float32)
        calib_t = net.forward(calib, keep=True)
        teacher = None
        if config.distill > 0:
            teacher = np.concatenate([net.forward(x_train[i:i + 2048]) for i in range(0, len(x_train), 2048)])
        params, forward, export, reg = _build(torch, net, bits, config, calib_t)
        opt = torch.optim.Adam(params, lr=config.lr)
        n = len(x_train)
        steps_per_epoch = math.ceil(n / config.batch_size)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs * steps_per_epoch)
        gen = torch.Generator().manual_seed(config.seed)
        F = torch.nn.functional
        T = float(config.temperature)
        history = []
        for epoch in range(config.epochs):
            te = time.perf_counter()
            perm = torch.randperm(n, generator=gen).numpy()
            total = 0.0
            for i in range(0, n, config.batch_size):
                idx = np.sort(perm[i:i + config.batch_size])
                logits, _ = forward(x_train[idx], True)
                yb = torch.from_numpy(y_train[idx])
                loss = F.cross_entropy(logits, yb)
                if teacher is not None:
                    tp = F.softmax(torch.from_numpy(teacher[idx]) / T, dim=1)
                    kd = F.kl_div(F.log_softmax(logits / T, dim=1), tp, reduction="batchmean") * T * T
                    loss = (1 - config.distill) * loss + config.distill * kd
                loss = loss + reg()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach()) * len(idx)
            rec = {"epoch": epoch + 1, "loss": total / n, "seconds": time.perf_counter() - te}
            history.append(rec)
            if log is not None:
                log(f"qat {config.method} epoch {epoch + 1}/{config.epochs}: loss {rec['loss']:.4f}, "
                    f"{rec['seconds']:.1f} s")
        qps, weights, bias, bias_q = export()
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(det)
    return QATResult(net, bits, config, qps, weights, bias, bias_q, history, time.perf_counter() - t0)
