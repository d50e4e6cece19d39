"""A small CNN graph engine: float reference and post-training-quantized integer inference on hwsim's
datapath.

Used by the Fashion-MNIST CNN (:mod:`hwsim.models.fashion`) and MobileNetV2
(:mod:`hwsim.models.mobilenet_v2`). A network is an ordered list of ops over named tensors (``"input"``
first):

* :class:`Conv` -- conv2d (any stride, padding, groups; depthwise is ``groups == C``) or a fully connected
  layer (``linear=True``, weight ``(out, in)``), with an optional residual input added before the activation
  (``act`` ``None``, ``"relu"`` or ``"relu6"``). Batch norm is folded into the weights beforehand.
* :class:`Pool` -- ``"max"`` (2-D max pooling), ``"gap"`` (global average pooling) or ``"flatten"``.

Integer inference (:class:`QuantizedNetwork`, a first-cut PTQ pipeline per :class:`PTQConfig`; survey:
Gholami et al. 2021, §III-IV):

* weights: symmetric signed (restricted range) per output channel or per tensor, or power-of-two, ternary or
  binary (:mod:`hwsim.quant`); optionally cross-layer equalized, clipped at an output-MSE range, AdaRound-ed,
  bias-corrected, each layer either against the float network's input or, ``sequential``, against the
  quantized network's (a float64 fake-quantized calibration forward, layer after layer);
* activations: one static per-tensor quantizer per tensor (asymmetric, unsigned by default), calibrated on the
  float activations of calibration inputs by the configured method; a tensor takes the activation bits of the
  first layer that consumes it;
* every conv/linear layer is :func:`hwsim.datapath.conv2d_acc` / :func:`hwsim.datapath.gemm_acc` (integer
  accumulator of ``acc_bits``, wrap or saturate) followed by :func:`hwsim.quant.requantize` (the runtime
  ``profile``) straight to the consumer's quantizer; ReLU clamps the codes at the zero point, ReLU6 also at
  the code of 6 (per channel after equalization);
* a residual add is done in the accumulator, as integer-only inference does it (HAWQ-V3, Yao et al., ICML
  2021, §3.3): the skip tensor's codes are rescaled to the accumulator's scale ``s_x * s_w[k]`` with the
  profile's requantizer (``M_r = s_skip / (s_x * s_w[k])``, zero point 0, clamped to the register), added to
  the conv's accumulator in the same ``acc_bits`` register (overflows counted), and the sum is requantized
  once;
* max pooling runs on codes (:func:`hwsim.datapath.maxpool2d`), global average pooling is
  :func:`hwsim.datapath.global_avgpool` (ORT semantics); the last layer's accumulator is dequantized to float
  logits ``f32(acc) * f32(s_x * s_w[c])``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..quant import (
    QParams,
    binary_quantize,
    calibrate,
    conv_windows,
    dequantize,
    float_conv2d,
    pow2_dequantize,
    pow2_quantize,
    pow2_to_int,
    quantize,
    quantize_bias,
    requant_multiplier,
    requantize,
    symmetric_qparams,
    ternary_quantize,
)

__all__ = ["Conv", "Pool", "Network", "PTQConfig", "QuantizedNetwork", "WEIGHT_SCHEMES"]

#: Weight quantizers a :class:`PTQConfig` can name.
WEIGHT_SCHEMES = ("uniform", "pow2", "ternary", "binary")


@dataclass
class Conv:
    """A conv2d or fully connected layer (float weights, BN folded).

    Attributes
    ----------
    name, src, dst : str
        Layer name (as in the workload YAML) and its input and output tensor names.
    weight : numpy.ndarray of float32
        ``(K, C/groups, R, S)``, or ``(out, in)`` when ``linear``.
    bias : numpy.ndarray of float32, shape (K,)
    stride : (int, int); pads : (top, bottom, left, right); groups : int
    act : None, "relu" or "relu6"
    residual : str or None
        A tensor added to the layer's output (before ``act``).
    linear : bool
    clip_hi : numpy.ndarray of float32, shape (K,), or None
        Per-channel upper clip replacing ReLU6's 6 (set by cross-layer equalization).
    """

    name: str
    src: str
    dst: str
    weight: np.ndarray
    bias: np.ndarray
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    groups: int = 1
    act: str | None = None
    residual: str | None = None
    linear: bool = False
    clip_hi: np.ndarray | None = None

    @property
    def depthwise(self) -> bool:
        return not self.linear and self.groups > 1 and self.weight.shape[1] == 1


@dataclass
class Pool:
    """``kind`` "max" (``kernel``/``stride`` square), "gap" (global average) or "flatten"."""

    kind: str
    src: str
    dst: str
    kernel: int = 2
    stride: int = 2


def _act_float(y: np.ndarray, op: Conv) -> np.ndarray:
    if op.act == "relu":
        return np.maximum(y, 0)
    if op.act == "relu6":
        hi = 6.0 if op.clip_hi is None else op.clip_hi.astype(y.dtype).reshape((1, -1) + (1,) * (y.ndim - 2))
        return np.minimum(np.maximum(y, 0), hi)
    return y


@dataclass
class Network:
    """An op list with its float reference forward pass.

    Attributes
    ----------
    name : str
    ops : list of Conv and Pool
    output : str
        The tensor holding the logits.
    accumulate : numpy dtype or None
        When set (``numpy.float64``), a float32 :meth:`forward` computes every op in this dtype and rounds
        its output to float32 once: each tensor is then the float64 value rounded, the same on any number of
        BLAS threads and any BLAS kernel (up to float64 rounding ties), where float32 BLAS products change
        with the thread count (OpenBLAS splits the reduction). MobileNetV2 sets it: its W4A8 agreement moved
        by 3 of 30 photos between 1 and 2 BLAS threads (docs/qat.md). None: the input dtype throughout.
    """

    name: str
    ops: list
    output: str
    accumulate: type | None = None

    @property
    def layers(self) -> tuple[str, ...]:
        """The GEMM layer names, in order."""
        return tuple(op.name for op in self.ops if isinstance(op, Conv))

    def layer(self, name: str) -> Conv:
        for op in self.ops:
            if isinstance(op, Conv) and op.name == name:
                return op
        raise KeyError(f"no layer {name!r} in {self.name}; the layers are {list(self.layers)}")

    def op_index(self, name: str) -> int:
        for i, op in enumerate(self.ops):
            if isinstance(op, Conv) and op.name == name:
                return i
        raise KeyError(f"no layer {name!r} in {self.name}")

    def copy(self) -> Network:
        """A copy whose layers can be modified (weights copied)."""
        ops = [replace(op, weight=op.weight.copy(), bias=op.bias.copy(),
                       clip_hi=None if op.clip_hi is None else op.clip_hi.copy()) if isinstance(op, Conv)
               else replace(op) for op in self.ops]
        return Network(self.name, ops, self.output, self.accumulate)

    def forward(self, x: np.ndarray, *, dtype=np.float32, weights: dict | None = None,
                tensors: dict | None = None, start: int = 0, keep: bool = False):
        """Float forward pass.

        Parameters
        ----------
        x : numpy.ndarray or None
            The input tensor (e.g. ``(N, C, H, W)`` images); None to take ``tensors["input"]``.
        dtype : numpy dtype, default float32
            Arithmetic precision (float64 for Hessian probes).
        weights : dict of str to numpy.ndarray, optional
            Replacement weights per layer name.
        tensors : dict, optional
            Tensors computed by an earlier pass (``keep=True``), needed when ``start > 0``.
        start : int, default 0
            First op to run.
        keep : bool, default False
            Return every tensor (a dict) instead of the output.

        Returns
        -------
        numpy.ndarray (the output tensor, e.g. ``(N, classes)`` logits) or dict of str to numpy.ndarray
        """
        t = dict(tensors) if tensors is not None else {}
        if x is not None:
            t["input"] = np.asarray(x, dtype)
        # compute dtype: float64 when the network asks for it (outputs rounded to ``dtype`` once per op)
        cdt = np.dtype(dtype) if self.accumulate is None else np.promote_types(dtype, self.accumulate)
        for op in self.ops[start:]:
            src = t[op.src]
            if isinstance(op, Pool):
                if op.kind == "max":
                    win = conv_windows(src, op.kernel, op.kernel, (op.stride, op.stride), (0, 0, 0, 0))
                    t[op.dst] = win.max(axis=(4, 5))
                elif op.kind == "gap":
                    t[op.dst] = src.astype(cdt).mean(axis=(2, 3), keepdims=True).astype(dtype)
                else:
                    t[op.dst] = src.reshape(src.shape[0], -1)
                continue
            w = op.weight if weights is None or op.name not in weights else weights[op.name]
            w = np.asarray(np.asarray(w, dtype), cdt)
            b = op.bias.astype(dtype).astype(cdt)
            src = src.astype(cdt, copy=False)
            if op.linear:
                y = src.reshape(src.shape[0], -1) @ w.T + b
            else:
                y = float_conv2d(src, w, b, stride=op.stride, pads=op.pads, groups=op.groups)
            if op.residual is not None:
                y = y + t[op.residual]
            t[op.dst] = _act_float(y, op).astype(dtype, copy=False)
        return t if keep else t[self.output]

    def consumer_layer(self, tensor: str) -> str | None:
        """The first GEMM layer that consumes ``tensor`` (through pooling/flatten ops), or None."""
        for op in self.ops:
            if op.src == tensor:
                if isinstance(op, Conv):
                    return op.name
                found = self.consumer_layer(op.dst)
                if found is not None:
                    return found
        return None


@dataclass(frozen=True)
class PTQConfig:
    """A post-training quantization recipe (the methods of the survey's §III-C..G2).

    Attributes
    ----------
    name : str
        Label used in tables.
    weight_granularity : {"channel", "tensor", "group"}
        Per output channel, one scale per layer, or one per output and group of ``weight_group_size`` inputs
        (``"group"``: MiniLM's projections only).
    weight_group_size : int
    weight_scheme : one of :data:`WEIGHT_SCHEMES`
        ``uniform`` (symmetric, restricted range), ``pow2`` (log), ``ternary`` (TWN) or ``binary``
        (XNOR-Net); the non-uniform schemes ignore the weight bits except ``pow2``.
    act_calibration : one of :data:`hwsim.quant.CALIBRATION_METHODS`
    act_percentile : float
        For ``percentile``.
    act_signed : bool
        Signed activation codes (default unsigned, ORT's uint8 default).
    act_dynamic : bool
        Per-input activation ranges (ONNX DynamicQuantizeLinear; MiniLM only, whose GEMM outputs are float).
    equalize : bool
        Cross-layer equalization of every (layer -> depthwise -> layer) pair (Nagel et al. 2019).
    bias_correction : bool
        Empirical bias correction with calibration-input means (Nagel et al. 2019, §4.2).
    adaround : bool
        AdaRound the uniform weights (Nagel et al. 2020), ``adaround_iters`` Adam steps per layer.
    adaround_iters : int
    adaround_lr : float
        Adam learning rate of AdaRound's rounding variables (AIMET's default 1e-2). With few steps a larger
        one lets them reach 0 or 1 (|V| >= 2.4, so that the rounded network is the optimised soft one):
        5e-2 for 200 steps on MobileNetV2 (docs/qat.md).
    adaround_rows : int
        Input rows (pixels x images) sampled for each layer's Gram matrix.
    weight_range : {"max", "mse"}
        Uniform per-channel weights: clip at ``max|w|`` per output channel, or at the per-channel threshold
        minimising the layer's output error under nearest rounding (:func:`hwsim.quant.weight_range_mse` with
        the calibration input's Gram matrix, and the cross term when ``sequential``); AdaRound then rounds on
        that grid.
    sequential : bool
        Quantize the layers in order, each seeing the *quantized* network's calibration input (fake-quantized
        activations, the weights already rounded): AdaRound then minimises ``E||W x - W~ x^||^2`` (asymmetric
        reconstruction, AdaRound §5; the sequential layer-wise scheme of GPTQ, Frantar et al., ICLR 2023) and
        bias correction removes ``E[conv(x, W)] - E[conv(x^, W~)]`` per output channel (the empirical bias
        correction measured on the quantized network, Nagel et al. 2019 §4.2), so that upstream errors are
        compensated instead of accumulated. Without it every layer is fitted to the float network's input.
    """

    name: str = "per-channel minmax"
    weight_granularity: str = "channel"
    weight_group_size: int = 64
    weight_scheme: str = "uniform"
    act_calibration: str = "minmax"
    act_percentile: float = 99.99
    act_signed: bool = False
    act_dynamic: bool = False
    equalize: bool = False
    bias_correction: bool = False
    adaround: bool = False
    adaround_iters: int = 500
    adaround_lr: float = 1e-2
    adaround_rows: int = 8192
    weight_range: str = "max"
    sequential: bool = False

    def __post_init__(self):
        from ..quant import CALIBRATION_METHODS

        if self.weight_granularity not in ("channel", "tensor", "group"):
            raise ValueError(f"weight_granularity must be 'channel', 'tensor' or 'group', "
                             f"not {self.weight_granularity!r}")
        if self.weight_scheme not in WEIGHT_SCHEMES:
            raise ValueError(f"weight_scheme must be one of {WEIGHT_SCHEMES}, not {self.weight_scheme!r}")
        if self.weight_range not in ("max", "mse"):
            raise ValueError(f"weight_range must be 'max' or 'mse', not {self.weight_range!r}")
        uniform_channel = (self.weight_scheme, self.weight_granularity) == ("uniform", "channel")
        if self.weight_range == "mse" and not uniform_channel:
            raise ValueError("weight_range 'mse' needs uniform per-channel weights")
        from ..quant import is_config_int, is_config_number

        if not (is_config_number(self.adaround_lr) and 0 < self.adaround_lr <= 1):
            raise ValueError(f"adaround_lr must be a number in (0, 1], not {self.adaround_lr!r}")
        for key in ("adaround_iters", "adaround_rows"):
            if not (is_config_int(getattr(self, key)) and getattr(self, key) >= 1):
                raise ValueError(f"{key} must be an integer >= 1, not {getattr(self, key)!r}")
        for key in ("act_signed", "act_dynamic", "equalize", "bias_correction", "adaround", "sequential"):
            if not isinstance(getattr(self, key), (bool, np.bool_)):
                raise ValueError(f"{key} must be True or False, not {getattr(self, key)!r}")
        if self.act_calibration not in CALIBRATION_METHODS:
            raise ValueError(f"act_calibration must be one of {CALIBRATION_METHODS}, not "
                             f"{self.act_calibration!r}")


# ------------------------------------------------------------------------------------------- equalization

def equalize_network(net: Network, sweeps: int = 8) -> Network:
    """Cross-layer equalization of every chain ``A -> B`` where ``B`` is a depthwise conv consuming ``A``'s
    output only, and of ``B -> C`` where ``C`` is the next conv consuming ``B``'s output (the
    inverted-residual block of MobileNetV2: expand -> depthwise -> project; Nagel et al. 2019, §4.1 and §5.1).
    ReLU6 between them becomes a per-channel clip at ``6 / s_i`` so that the float function is unchanged.

    The pairs are equalized in order, ``sweeps`` times (each pass moves a block's three ranges closer to their
    common geometric mean). Returns a new network (the input is not modified).
    """
    from ..quant import equalize_pair

    net = net.copy()
    convs = [op for op in net.ops if isinstance(op, Conv)]
    users: dict[str, list] = {}
    for op in net.ops:
        users.setdefault(op.src, []).append(op)
        if isinstance(op, Conv) and op.residual is not None:
            users.setdefault(op.residual, []).append(op)

    def sole_user(a: Conv):
        u = users.get(a.dst, [])
        return u[0] if len(u) == 1 and isinstance(u[0], Conv) and not u[0].linear else None

    pairs = []
    for a in convs:
        b = sole_user(a)
        if b is not None and not a.linear and (b.depthwise or a.depthwise):
            pairs.append((a, b))
    for _ in range(sweeps):  # chains of three layers: iterate the pairs until the ranges settle (§4.1)
        for a, b in pairs:
            w1, b1, w2, s = equalize_pair(a.weight, a.bias, b.weight, depthwise2=b.depthwise)
            a.weight, a.bias, b.weight = w1, b1, w2
            if a.act == "relu6":
                base = np.float32(6.0) if a.clip_hi is None else a.clip_hi
                a.clip_hi = (base / s).astype(np.float32)
    return net


# ---------------------------------------------------------------------------------------- integer network

def _quantize_weight(w: np.ndarray, bits: int, cfg: PTQConfig, amax: np.ndarray | None = None):
    """(codes for the datapath, dequantized float weight, QParams whose scale the requantizer uses);
    ``amax``: per-channel clipping thresholds of uniform weights (default ``max|w|``).

    Power-of-two weights are handed to the datapath as their integers ``sign * 2^e`` (what a shift-add PE
    computes, :func:`hwsim.quant.shift_gemm_acc`), with a 16-bit carrier QParams holding the scale."""
    axis = 0 if cfg.weight_granularity == "channel" else None
    if cfg.weight_scheme == "uniform":
        if amax is None:
            amax = np.abs(w).reshape(w.shape[0], -1).max(axis=1) if axis == 0 else np.abs(w).max()
        qp = symmetric_qparams(amax, bits, axis=axis)
        q = quantize(w, qp)
        return q, dequantize(q, qp), qp
    if cfg.weight_scheme == "pow2":
        pq = pow2_quantize(w, bits, axis=axis)
        qi = pow2_to_int(pq)
        qp = QParams(scale=pq.scale, zero_point=np.zeros(pq.scale.shape, np.int32), bits=16, signed=True,
                     axis=axis if pq.scale.ndim else None)
        return qi, pow2_dequantize(pq), qp
    fn = ternary_quantize if cfg.weight_scheme == "ternary" else binary_quantize
    q, qp = fn(w, axis=axis)
    return q, dequantize(q, qp), qp


def _gram(op: Conv, x: np.ndarray, rows: int, rng: np.random.Generator, xh: np.ndarray | None = None):
    """E[p p^T] of the layer's input patches, (groups, D, D) float64, from at most ``rows`` sampled
    patches. With ``xh`` (the quantized network's input, same shape as ``x``): ``(E[ph ph^T], E[p ph^T])``
    over the same sampled patches (AdaRound's asymmetric reconstruction)."""

    def patches(a, sel):
        a = np.asarray(a, np.float64)
        if op.linear:
            p = a.reshape(a.shape[0], -1)
            return (p if sel is None else p[sel])[None]
        win = conv_windows(a, kr, ks, op.stride, op.pads)                  # (N, C, Ho, Wo, R, S)
        ni, rem = np.divmod(sel, win.shape[2] * win.shape[3])
        hi, wi = np.divmod(rem, win.shape[3])
        p = win[ni, :, hi, wi]                                           # (P, C, R, S)
        return p.reshape(p.shape[0], op.groups, cg * kr * ks).transpose(1, 0, 2)   # (g, P, D)

    if op.linear:
        n_rows = x.shape[0]
        sel = None if n_rows <= rows else np.sort(rng.choice(n_rows, rows, replace=False))
    else:
        k, cg, kr, ks = op.weight.shape
        ho = (x.shape[2] + op.pads[0] + op.pads[1] - kr) // op.stride[0] + 1
        wo = (x.shape[3] + op.pads[2] + op.pads[3] - ks) // op.stride[1] + 1
        sel = np.arange(x.shape[0] * ho * wo)
        if sel.size > rows:
            sel = np.sort(rng.choice(sel.size, rows, replace=False))
    p = patches(x, sel)
    if xh is None:
        return np.matmul(p.transpose(0, 2, 1), p) / p.shape[1]
    ph = patches(xh, sel)
    n_p = p.shape[1]
    return np.matmul(ph.transpose(0, 2, 1), ph) / n_p, np.matmul(p.transpose(0, 2, 1), ph) / n_p


class QuantizedNetwork:
    """A network prepared for integer inference at per-layer bits under a :class:`PTQConfig`.

    Parameters
    ----------
    net : Network
        The float network (BN folded).
    bits : dict of str to (int, int)
        ``(weight_bits, act_bits)`` per layer; ``act_bits`` are the bits of the layer's INPUT.
    calib_x : numpy.ndarray
        Calibration inputs (float, as the network's input).
    config : PTQConfig
    acc_bits, acc_mode, profile
        Accumulator register and requantization semantics (see :func:`hwsim.datapath.conv2d_acc`,
        :data:`hwsim.quant.PROFILES`).
    calib_tensors : dict, optional
        Float calibration activations of ``net`` (``net.forward(calib_x, keep=True)``) to reuse; computed when
        absent (ignored when the config equalizes, which changes the network).
    seed : int, default 0
        Seeds the row sampling of AdaRound's Gram matrices.

    Raises
    ------
    ValueError
        A config the CNN engine cannot run (dynamic activations, group-wise weights), or bad bits.
    KeyError
        ``bits`` lacks a layer.

    Attributes
    ----------
    net : Network
        The (possibly equalized) float network the codes approximate.
    qparams : dict of str to QParams
        Activation quantizer per tensor.
    wq : dict of str to (codes, dequantized float weight, QParams)
    bias_q : dict of str to int32 array
    """

    def __init__(self, net: Network, bits: dict, calib_x: np.ndarray, config: PTQConfig = PTQConfig(), *,
                 acc_bits: int = 32, acc_mode: str = "wrap", profile: str = "ort_cpu",
                 calib_tensors: dict | None = None, seed: int = 0):
        if config.act_dynamic or config.weight_granularity == "group":
            raise ValueError(f"config {config.name!r}: dynamic activations and group-wise weights need float "
                             f"GEMM outputs; the CNN engine requantizes between layers (use MiniLM for them)")
        self.config = config
        self.bits = dict(bits)
        self.acc_bits, self.acc_mode, self.profile = int(acc_bits), acc_mode, profile
        if config.equalize:
            net = equalize_network(net)
            calib_tensors = None
        self.net = net
        t = calib_tensors if calib_tensors is not None else net.forward(calib_x, keep=True)
        # activation quantizers: one per tensor, bits of its first consuming layer
        self.qparams: dict[str, QParams] = {}
        for name in self._quantized_tensors():
            layer = net.consumer_layer(name)
            a_bits = self.bits[layer][1]
            self.qparams[name] = calibrate(t[name], a_bits, config.act_calibration, signed=config.act_signed,
                                           percentile=config.act_percentile)
        for op in net.ops:  # max pooling and flatten keep their input's quantizer
            if isinstance(op, Pool) and op.kind in ("max", "flatten") and op.src in self.qparams:
                self.qparams[op.dst] = self.qparams[op.src]
        rng = np.random.default_rng(seed)
        self.wq = {}
        self.bias_q = {}
        tq = self._fake_input(calib_x) if config.sequential else None
        for op in net.ops:
            if not isinstance(op, Conv):
                if tq is not None:
                    self._fake_pool(op, tq)
                continue
            wb = self.bits[op.name][0]
            xh = None if tq is None else tq[op.src]
            gram = cross = amax = None
            if config.weight_scheme == "uniform" and (config.adaround or config.weight_range == "mse"):
                if xh is None:
                    gram = _gram(op, t[op.src], config.adaround_rows, rng)
                else:
                    gram, cross = _gram(op, t[op.src], config.adaround_rows, rng, xh=xh)
            if config.weight_range == "mse":
                from ..quant import weight_range_mse

                amax = weight_range_mse(op.weight, wb, gram, cross=cross, groups=op.groups)
            codes, wdeq, wqp = _quantize_weight(op.weight, wb, config, amax)
            if config.adaround and config.weight_scheme == "uniform":
                from ..quant import adaround

                codes = adaround(op.weight, gram, wqp, iters=config.adaround_iters, lr=config.adaround_lr,
                                 groups=op.groups, cross=cross)
                wdeq = dequantize(codes, wqp)
            bias = op.bias.astype(np.float32)
            if config.bias_correction and xh is not None:
                bias = (bias + self._output_mean_shift(op, t[op.src], xh, wdeq)).astype(np.float32)
            elif config.bias_correction:
                from ..quant import bias_correction

                src = np.asarray(t[op.src], np.float64)
                mean = src.reshape(src.shape[0], src.shape[1], -1).mean(axis=(0, 2)) if not op.linear \
                    else src.reshape(src.shape[0], -1).mean(axis=0)
                bias = (bias + bias_correction(op.weight, wdeq, mean, groups=op.groups)).astype(np.float32)
            x_qp = self.qparams[op.src]
            if op.linear:
                codes_b = np.ascontiguousarray(codes.T)
                wqp_b = wqp if not wqp.per_channel else replace_axis(wqp, 1)
            else:
                codes_b, wqp_b = codes, wqp
            self.wq[op.name] = (codes_b, wdeq, wqp_b)
            self.bias_q[op.name] = quantize_bias(bias, x_qp, wqp_b)
            if tq is not None:
                self._fake_conv(op, tq, wdeq, bias)
        self.overflow: dict[str, int] = {}

    # -- the sequential (quantized-input) calibration: a float64 fake-quantized forward ----------------------

    def _fake(self, name: str, y: np.ndarray) -> np.ndarray:
        from ..quant import fake_quantize

        qp = self.qparams.get(name)
        return y if qp is None else fake_quantize(y, qp)   # float32: the dequantized codes are exact in it

    def _fake_input(self, x: np.ndarray) -> dict:
        return {"input": self._fake("input", np.asarray(x, np.float32))}

    def _fake_pool(self, op: Pool, tq: dict) -> None:
        src = tq[op.src]
        if op.kind == "max":
            y = conv_windows(src, op.kernel, op.kernel, (op.stride, op.stride), (0, 0, 0, 0)).max(axis=(4, 5))
        elif op.kind == "gap":
            y = self._fake(op.dst, src.mean(axis=(2, 3), keepdims=True))
        else:
            y = src.reshape(src.shape[0], -1)
        tq[op.dst] = y

    @staticmethod
    def _conv64(op: Conv, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
        if op.linear:
            return x.reshape(x.shape[0], -1) @ w.T
        return float_conv2d(x, w, None, stride=op.stride, pads=op.pads, groups=op.groups)

    def _output_mean_shift(self, op: Conv, x: np.ndarray, xh: np.ndarray, wdeq: np.ndarray) -> np.ndarray:
        """``E[conv(x, W)] - E[conv(x^, W~)]`` per output channel (float64, over images and positions)."""
        d = self._conv64(op, x, op.weight) - self._conv64(op, xh, wdeq)
        return d.mean(axis=tuple(i for i in range(d.ndim) if i != 1))

    def _fake_conv(self, op: Conv, tq: dict, wdeq: np.ndarray, bias: np.ndarray) -> None:
        """The layer's output in the fake-quantized calibration forward (float64; the integer network's
        quantizers, dequantized weights and corrected bias; ReLU6 with its per-channel clip)."""
        y = self._conv64(op, tq[op.src], wdeq)
        y = y + np.asarray(bias, np.float64).reshape((1, -1) + (1,) * (y.ndim - 2))
        if op.residual is not None:
            y = y + tq[op.residual]
        tq[op.dst] = self._fake(op.dst, _act_float(y, op)) if op.dst != self.net.output else y

    @classmethod
    def from_qat(cls, result, *, acc_bits: int = 32, acc_mode: str = "wrap") -> QuantizedNetwork:
        """The integer network trained by :func:`hwsim.quant.train_qat` (its learned quantizers, weight codes
        and int32 biases), ready to :meth:`run` on the datapath. Its logits equal ``result.forward(x)`` bit
        for bit while the ``acc_bits`` register does not overflow (tested).

        Parameters
        ----------
        result : hwsim.quant.QATResult
        acc_bits, acc_mode
            The accumulator register (requantization follows ``result.config.profile``).
        """
        self = cls.__new__(cls)
        self.config = PTQConfig(name=f"QAT {result.config.method}")
        self.bits = dict(result.bits)
        self.acc_bits, self.acc_mode, self.profile = int(acc_bits), acc_mode, result.config.profile
        self.net = result.net
        self.qparams = dict(result.qparams)
        self.wq, self.bias_q = {}, {}
        for op in result.net.ops:
            if not isinstance(op, Conv):
                continue
            codes, wqp = result.weights[op.name]
            wdeq = dequantize(codes, wqp)
            if op.linear:
                self.wq[op.name] = (np.ascontiguousarray(codes.T), wdeq, replace_axis(wqp, 1))
            else:
                self.wq[op.name] = (codes, wdeq, wqp)
            self.bias_q[op.name] = np.asarray(result.bias_q[op.name], np.int32)
        self.overflow = {}
        return self

    def _quantized_tensors(self) -> list[str]:
        names = []
        for op in self.net.ops:
            if isinstance(op, Pool) and op.kind in ("max", "flatten"):
                continue  # shares its input's quantizer
            if op.src not in names:
                names.append(op.src)
            if isinstance(op, Conv) and op.residual is not None and op.residual not in names:
                names.append(op.residual)
            if (op.dst != self.net.output and op.dst not in names
                    and self.net.consumer_layer(op.dst) is not None):
                names.append(op.dst)
        return [n for n in names if self.net.consumer_layer(n) is not None]

    # -- running ------------------------------------------------------------------------------------------

    def _clamp(self, op: Conv, y_qp: QParams) -> tuple[int, int, np.ndarray | None]:
        z = int(y_qp.zero_point)
        lo, hi = y_qp.qmin, y_qp.qmax
        per_ch = None
        if op.act in ("relu", "relu6"):
            lo = max(lo, z)
        if op.act == "relu6":
            s = np.float64(y_qp.scale)
            if op.clip_hi is None:
                hi = min(hi, z + int(np.rint(6.0 / s)))
            else:
                per_ch = np.minimum(hi, z + np.rint(op.clip_hi.astype(np.float64) / s)).astype(np.int64)
        return lo, hi, per_ch

    def _register(self, acc: np.ndarray) -> tuple[np.ndarray, int]:
        lo, hi = -(1 << (self.acc_bits - 1)), (1 << (self.acc_bits - 1)) - 1
        over = int(np.count_nonzero((acc < lo) | (acc > hi)))
        if over and self.acc_mode == "wrap" and self.acc_bits < 64:
            acc = ((acc - lo) & np.int64((1 << self.acc_bits) - 1)) + lo
        elif over:
            acc = np.clip(acc, lo, hi)
        return acc, over

    def _rescale(self, r: np.ndarray, m: np.ndarray) -> np.ndarray:
        """The skip tensor's shifted codes in accumulator units: the profile's requantization with zero point
        0 into the register range (``ort_cpu``/``torch_onednn``: ``rne(f32(f32(r) * M))``, computed without an
        int32 cast so that registers wider than 32 bits work)."""
        lo, hi = -(1 << (self.acc_bits - 1)), (1 << (self.acc_bits - 1)) - 1
        if self.profile in ("ort_cpu", "torch_onednn"):
            v = np.multiply(r.astype(np.float32), m.reshape((1, -1) + (1,) * (r.ndim - 2)), dtype=np.float32)
            return np.clip(np.rint(v.astype(np.float64)), lo, hi).astype(np.int64)
        return requantize(r, m, zero_point=0, qmin=max(lo, -(1 << 31)), qmax=min(hi, (1 << 31) - 1),
                          channel_axis=1, profile=self.profile).astype(np.int64)

    def run(self, x: np.ndarray, *, batch: int = 256, return_codes: bool = False):
        """Integer inference.

        Parameters
        ----------
        x : numpy.ndarray
            Float inputs (quantized with the input tensor's quantizer).
        batch : int, default 256
            Images per datapath call (memory bound).
        return_codes : bool
            Also return every integer tensor of the last batch (for bit-exactness checks).

        Returns
        -------
        numpy.ndarray of float32
            Dequantized logits ``(N, classes)``. ``self.overflow`` holds accumulator overflow counts per
            layer.
        """
        outs = []
        self.overflow = {name: 0 for name in self.net.layers}
        codes = None
        for i in range(0, x.shape[0], batch):
            y, codes = self._run_batch(x[i:i + batch])
            outs.append(y)
        out = np.concatenate(outs)
        return (out, codes) if return_codes else out

    def _run_batch(self, x: np.ndarray):
        from ..datapath import conv2d_acc, gemm_acc, global_avgpool, maxpool2d

        net = self.net
        t = {"input": quantize(x, self.qparams["input"])}
        logits = None
        for op in net.ops:
            src = t[op.src]
            if isinstance(op, Pool):
                if op.kind == "max":
                    t[op.dst] = maxpool2d(src, (op.kernel, op.kernel), (op.stride, op.stride))
                elif op.kind == "gap":
                    t[op.dst] = global_avgpool(src, x_qp=self.qparams[op.src], y_qp=self.qparams[op.dst])
                else:
                    t[op.dst] = src.reshape(src.shape[0], -1)
                continue
            codes, _, wqp = self.wq[op.name]
            x_qp = self.qparams[op.src]
            if op.linear:
                acc, over = gemm_acc(np.ascontiguousarray(src.reshape(src.shape[0], -1)), codes,
                                     a_zp=int(x_qp.zero_point), b_zp=wqp.zero_point,
                                     bias=self.bias_q[op.name],
                                     acc_bits=self.acc_bits, acc_mode=self.acc_mode)
            else:
                acc, over = conv2d_acc(src, codes, x_zp=int(x_qp.zero_point), w_zp=wqp.zero_point,
                                       bias=self.bias_q[op.name], stride=op.stride, pads=op.pads,
                                       groups=op.groups, acc_bits=self.acc_bits, acc_mode=self.acc_mode)
            s_acc = np.multiply(x_qp.scale, wqp.scale, dtype=np.float32)
            if op.residual is not None:
                r_qp = self.qparams[op.residual]
                m_r = np.divide(r_qp.scale, s_acc, dtype=np.float32)
                m_r = np.broadcast_to(m_r, (acc.shape[1],)).astype(np.float32)
                r = t[op.residual].astype(np.int64) - int(r_qp.zero_point)
                acc, over2 = self._register(acc + self._rescale(r, m_r))
                over += over2
            self.overflow[op.name] += int(over)
            if op.dst == net.output:
                logits = np.multiply(acc.astype(np.float32), s_acc, dtype=np.float32)
                t[op.dst] = logits
                continue
            y_qp = self.qparams[op.dst]
            lo, hi, per_ch = self._clamp(op, y_qp)
            m = requant_multiplier(x_qp.scale, wqp.scale, y_qp.scale, profile=self.profile)
            y = requantize(acc, m, zero_point=int(y_qp.zero_point), qmin=lo, qmax=hi,
                           channel_axis=1 if m.ndim else None, profile=self.profile)
            if per_ch is not None:
                y = np.minimum(y, per_ch.reshape((1, -1) + (1,) * (y.ndim - 2)))
            t[op.dst] = y.astype(y_qp.storage_dtype)
        return logits, t


def replace_axis(qp: QParams, axis: int) -> QParams:
    """The same quantizer with its per-channel ``axis`` changed (e.g. ``(out, in)`` weights used as ``(in,
    out)``)."""
    return QParams(scale=qp.scale, zero_point=qp.zero_point, bits=qp.bits, signed=qp.signed, axis=axis,
                   narrow_range=qp.narrow_range)

