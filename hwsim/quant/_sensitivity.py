"""Per-layer sensitivity for mixed precision: output SQNR and the HAWQ Hessian-trace estimate (Hutchinson).

Two measures per layer ``i`` and candidate bits ``(b_w, b_a)``:

* **Output SQNR** -- layer ``i`` at ``(b_w, b_a)``, every other layer at the reference bits (default W8A8),
  run on the integer datapath; ``SQNR = 10 log10(sum y^2 / sum (y - y_q)^2)`` in dB against the float output.
* **HAWQ perturbation** -- ``Omega_i(b_w) = Tr(H_i) / n_i * ||Q_{b_w}(W_i) - W_i||^2`` (Dong et al., "HAWQ-V2:
  Hessian Aware trace-Weighted Quantization of Neural Networks", NeurIPS 2020, §3, eq. 3; the ILP objective
  of HAWQ-V3, Yao et al., ICML 2021, §3.4), with ``H_i`` the Hessian of the loss with respect to layer ``i``'s
  weights and ``n_i`` its number of weights. ``Tr(H_i)`` is Hutchinson's estimator ``E[v^T H v]`` over
  Rademacher vectors ``v`` (Hutchinson 1990; HAWQ-V2 Algorithm 1).

How ``v^T H v`` is computed without automatic differentiation: write the loss as ``L(W) = l(f(W))`` with ``f``
the network output (logits, embeddings). Then ``H = J^T H_l J + sum_k (dl/df_k) d^2 f_k / dW^2`` and the first
term, the generalised Gauss-Newton matrix (Schraudolph, Neural Computation 2002), gives ``v^T G v = (J v)^T
H_l (J v)``. The second term vanishes here: for a ReLU/ReLU6/max-pool network ``f`` is piecewise linear in any
single layer's weights (``d^2 f / dW_i^2 = 0`` almost everywhere), and for a loss minimised at the reference
weights (KL to the float model's softmax, ``1 - cos`` to the float embedding) ``dl/df = 0`` there. So ``v^T G
v`` is ``v^T H v``, the quantity HAWQ obtains by double back-propagation (checked against torch autograd in
the tests). ``J v`` is the central difference ``(f(W + h v) - f(W - h v)) / (2 h)``, ``h = rel_step * ||W|| /
sqrt(n_i)``, exact for a piecewise-linear ``f`` unless a unit changes its linear piece within ``+-h v``, and
``(J v)^T H_l (J v)`` is the model's ``output_curvature`` (e.g. ``sum_k p_k u_k^2 - (sum_k p_k u_k)^2`` per
sample for softmax cross-entropy, ``u = J v``).

The probes are reproducible: layer ``i``'s vectors come from ``numpy.random.default_rng(SeedSequence([seed,
crc32(layer name)]))``, so a table for a subset of layers has the same numbers as the full table.

A model is any object with (duck typing):

* ``layers``: tuple of layer names; ``name``: str;
* ``float_output()`` -> float array; ``quantized_output(bits)`` -> array of the same shape (``bits``:
  ``{layer: (weight_bits, act_bits)}`` for every layer, run on the integer datapath);
* ``layer_weight(layer)`` -> float weight; ``quantized_weight(layer, weight_bits)`` -> its dequantized
  quantized version (same shape);
* ``layer_output(layer)`` -> a function ``W -> f`` (float64 network output on the loss inputs with only that
  layer's weight replaced); ``output_curvature(du)`` -> ``mean_n du_n^T H_l du_n`` at the reference output.

:func:`hwsim.models.fashion.sensitivity_model`, :func:`hwsim.models.mobilenet_v2.sensitivity_model` and
:func:`hwsim.models.minilm.sensitivity_model` build them for the real networks.
"""

from __future__ import annotations

import csv
import json
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["output_sqnr_db", "hutchinson_trace", "hessian_top_eigenvalue", "layer_sensitivity",
           "SensitivityTable", "read_sensitivity", "COLUMNS"]

#: Columns of a sensitivity table, in file order.
COLUMNS = ("layer", "weight_bits", "act_bits", "n_params", "sqnr_db", "weight_perturbation", "hessian_trace",
           "hessian_trace_stderr", "hessian_trace_per_param", "omega", "hessian_top_eigenvalue")


def output_sqnr_db(reference, test) -> float:
    """``10 log10(sum ref^2 / sum (ref - test)^2)`` in dB (float64); ``inf`` when they are equal.

    Raises
    ------
    ValueError
        Shapes differ.
    """
    r = np.asarray(reference, np.float64)
    t = np.asarray(test, np.float64)
    if r.shape != t.shape:
        raise ValueError(f"reference and test must have the same shape, not {r.shape} and {t.shape}")
    noise = float(np.sum((r - t) ** 2))
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(float(np.sum(r * r)) / noise)


def _layer_rng(seed: int, layer: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(layer.encode())]))


def hutchinson_trace(output, curvature, w, *, n_probes: int = 8, rng: np.random.Generator | None = None,
                     rel_step: float = 1e-4) -> tuple[float, float, np.ndarray]:
    """Hutchinson's estimate of ``Tr(H)`` with ``v^T H v = (J v)^T H_l (J v)`` (see the module docstring).

    Parameters
    ----------
    output : callable
        ``output(w) -> numpy.ndarray``, the network output as a function of the weight (float64).
    curvature : callable
        ``curvature(du) -> float``, the loss's quadratic form in output space at ``output(w)``.
    w : array_like of float
        The point (any shape, ``n`` entries; ``n = 0`` gives 0).
    n_probes : int, default 8
        Rademacher vectors (entries +-1).
    rng : numpy.random.Generator, optional
        Source of the probes (default ``default_rng(0)``).
    rel_step : float, default 1e-4
        ``h = rel_step * ||w|| / sqrt(n)`` for the central difference ``J v ~ (f(w + h v) - f(w - h v)) /
        2h``.

    Returns
    -------
    (trace, stderr, samples) : float, float, numpy.ndarray of shape (n_probes,)
        The mean of the samples ``v^T H v``, its standard error (``std(ddof=1) / sqrt(n_probes)``; 0 for one
        probe) and the samples.
    """
    w = np.asarray(w, np.float64)
    if w.size == 0:
        return 0.0, 0.0, np.zeros(int(n_probes))
    rng = np.random.default_rng(0) if rng is None else rng
    norm = float(np.linalg.norm(w))
    h = float(rel_step) * (norm if norm > 0 else 1.0) / math.sqrt(w.size)
    samples = np.empty(int(n_probes))
    for j in range(int(n_probes)):
        v = rng.integers(0, 2, size=w.shape).astype(np.float64) * 2.0 - 1.0
        du = (np.asarray(output(w + h * v), np.float64) - np.asarray(output(w - h * v),
                                                                     np.float64)) / (2.0 * h)
        samples[j] = float(curvature(du))
    stderr = float(samples.std(ddof=1) / math.sqrt(samples.size)) if samples.size > 1 else 0.0
    return float(samples.mean()), stderr, samples


def hessian_top_eigenvalue(hvp, shape, *, iters: int = 50, tol: float = 1e-4,
                           rng: np.random.Generator | None = None) -> tuple[float, int]:
    """The largest eigenvalue of a symmetric matrix ``H`` given by its products ``H v``, by power iteration
    (HAWQ, Dong et al., ICCV 2019, §3.1 and Algorithm 1: ``v <- Hv / ||Hv||``, ``lambda = v^T H v``).

    Parameters
    ----------
    hvp : callable
        ``hvp(v) -> H v`` for arrays of ``shape`` (float64).
    shape : tuple of int
        The weight's shape.
    iters : int, default 50
        At most this many products.
    tol : float, default 1e-4
        Stop when ``lambda`` changes by less than ``tol * |lambda|``.
    rng : numpy.random.Generator, optional
        Source of the Gaussian start vector (default ``default_rng(0)``).

    Returns
    -------
    (eigenvalue, iterations) : float, int
        The Rayleigh quotient at the last iterate (the dominant eigenvalue in magnitude; the Hessian of a loss
        at its minimum is positive semi-definite, so the largest) and the products used.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    v = rng.standard_normal(shape)
    v /= np.linalg.norm(v)
    lam = 0.0
    for i in range(1, int(iters) + 1):
        hv = np.asarray(hvp(v), np.float64)
        new = float(np.sum(v * hv))
        nrm = float(np.linalg.norm(hv))
        if nrm == 0.0:
            return 0.0, i
        v = hv / nrm
        if i > 1 and abs(new - lam) <= tol * abs(new):
            return new, i
        lam = new
    return lam, int(iters)


@dataclass
class SensitivityTable:
    """Rows of :data:`COLUMNS` plus metadata (model, seed, probes, reference bits, ...).

    Attributes
    ----------
    rows : list of dict
    meta : dict
    """

    rows: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def to_csv(self, path) -> Path:
        """Write the rows as CSV (header = :data:`COLUMNS`); returns the path."""
        p = Path(path)
        with p.open("w", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=COLUMNS)
            wr.writeheader()
            for r in self.rows:
                wr.writerow({k: r.get(k) for k in COLUMNS})
        return p

    def to_json(self, path) -> Path:
        """Write ``{"meta": ..., "columns": [...], "rows": [...]}`` (non-finite numbers as strings)."""
        p = Path(path)

        def enc(v):
            if isinstance(v, float) and not math.isfinite(v):
                return str(v)
            return v

        p.write_text(json.dumps({"meta": self.meta, "columns": list(COLUMNS),
                                 "rows": [{k: enc(r.get(k)) for k in COLUMNS} for r in self.rows]}, indent=1))
        return p

    def lookup(self, layer: str, weight_bits: int, act_bits: int) -> dict:
        """The row of ``(layer, weight_bits, act_bits)``; KeyError when absent."""
        for r in self.rows:
            if r["layer"] == layer and r["weight_bits"] == weight_bits and r["act_bits"] == act_bits:
                return r
        raise KeyError(f"no row for layer {layer!r} at W{weight_bits}A{act_bits}")


def read_sensitivity(path) -> SensitivityTable:
    """Read a table written by :meth:`SensitivityTable.to_csv` or :meth:`SensitivityTable.to_json`."""
    p = Path(path)
    ints = ("weight_bits", "act_bits", "n_params")

    def dec(k, v):
        if k == "layer" or v is None:
            return v
        if k in ints:
            return int(v)
        return float(v)

    if p.suffix == ".json":
        d = json.loads(p.read_text())
        return SensitivityTable([{k: dec(k, r.get(k, "nan")) for k in COLUMNS} for r in d["rows"]],
                                d.get("meta", {}))
    with p.open(newline="") as f:  # tables written before a column existed read it as NaN
        return SensitivityTable([{k: dec(k, r.get(k) or "nan") for k in COLUMNS} for r in csv.DictReader(f)],
                                {})


def layer_sensitivity(model, bits_options, *, layers=None, reference: tuple[int, int] = (8, 8),
                      sqnr: bool = True, hessian: bool = True, n_probes: int = 8, seed: int = 0,
                      rel_step: float = 1e-4, eigen: bool = False, progress=None) -> SensitivityTable:
    """Sensitivity of each layer of ``model`` to each candidate bit pair (the input of a mixed-precision ILP).

    Parameters
    ----------
    model
        See the module docstring for the interface.
    bits_options : iterable of (int, int)
        Candidate ``(weight_bits, act_bits)`` per layer.
    layers : iterable of str, optional
        A subset (default: all ``model.layers``).
    reference : (int, int), default (8, 8)
        Bits of every other layer while one layer is varied.
    sqnr, hessian : bool
        Which measures to compute (the other columns are NaN).
    n_probes : int, default 8
        Hutchinson probes per layer.
    seed : int, default 0
    rel_step : float, default 1e-4
    eigen : bool, default False
        Also the top Hessian eigenvalue per layer (HAWQ-v1), by :func:`hessian_top_eigenvalue` over the
        model's ``layer_hvp(layer)`` (``v -> H v``; torch autograd in
        :class:`hwsim.models._base.CNNSensitivityModel`).
    progress : callable, optional
        Called with a short message per layer.

    Returns
    -------
    SensitivityTable
        One row per (layer, bits option); ``meta`` records the settings, the float/reference SQNR and the
        model name.

    Raises
    ------
    ValueError
        An unknown layer or a malformed bits option.
    """
    opts = []
    for o in bits_options:
        if not (isinstance(o, (tuple, list)) and len(o) == 2 and all(isinstance(b,
                                                                                (int,
                                                                                 np.integer)) for b in o)):
            raise ValueError(f"bits_options must hold (weight_bits, act_bits) pairs, not {o!r}")
        opts.append((int(o[0]), int(o[1])))
    names = tuple(model.layers) if layers is None else tuple(layers)
    unknown = [n for n in names if n not in model.layers]
    if unknown:
        raise ValueError(f"layers {unknown} are not layers of {getattr(model, 'name', 'the model')}")
    ref_bits = {n: tuple(reference) for n in model.layers}
    y_float = model.float_output() if sqnr else None
    meta = {"model": getattr(model, "name", type(model).__name__), "seed": int(seed),
            "n_probes": int(n_probes),
            "rel_step": float(rel_step), "reference_bits": list(reference),
            "bits_options": [list(o) for o in opts],
            "sqnr": "output SQNR (dB) vs float, one layer at the option, others at the reference bits",
            "omega": "Tr(H)/n * ||Q(W) - W||^2 (HAWQ-V2 eq. 3)"}
    try:
        from .. import __version__ as version
    except ImportError:  # pragma: no cover
        version = "unknown"
    meta["hwsim_version"] = version
    if sqnr:
        meta["reference_sqnr_db"] = output_sqnr_db(y_float, model.quantized_output(ref_bits))
    rows = []
    for name in names:
        if progress is not None:
            progress(f"sensitivity: {name}")
        w = np.asarray(model.layer_weight(name), np.float64)
        tr = tr_err = math.nan
        if hessian:
            tr, tr_err, _ = hutchinson_trace(model.layer_output(name), model.output_curvature, w,
                                             n_probes=n_probes, rng=_layer_rng(seed, name), rel_step=rel_step)
        eig = math.nan
        if eigen:
            eig, _ = hessian_top_eigenvalue(model.layer_hvp(name), w.shape, rng=_layer_rng(seed + 1, name))
        pert = {}
        for wb, ab in opts:
            if wb not in pert:
                pert[wb] = float(np.sum((np.asarray(model.quantized_weight(name, wb), np.float64) - w) ** 2))
            s = math.nan
            if sqnr:
                bits = dict(ref_bits)
                bits[name] = (wb, ab)
                s = output_sqnr_db(y_float, model.quantized_output(bits))
            per = (tr / w.size if w.size else 0.0) if hessian else math.nan
            rows.append({"layer": name, "weight_bits": wb, "act_bits": ab, "n_params": int(w.size),
                         "sqnr_db": s,
                         "weight_perturbation": pert[wb], "hessian_trace": tr, "hessian_trace_stderr": tr_err,
                         "hessian_trace_per_param": per, "omega": per * pert[wb] if hessian else math.nan,
                         "hessian_top_eigenvalue": eig})
    return SensitivityTable(rows, meta)
