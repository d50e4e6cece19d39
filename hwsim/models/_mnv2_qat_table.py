"""The MobileNetV2 QAT section of ``docs/quality.md``: distillation QAT (:mod:`hwsim.models.mobilenet_qat`)
against PTQ on the library's 30 evaluation photos.

Written by ``python -m hwsim.models.quality_table --qat-mobilenet`` (it replaces the text between
:data:`BEGIN` and :data:`END` and leaves every other section alone). Every QAT cell is the datapath's quality
of the exported integer network, checked bit for bit against
:func:`hwsim.models.mobilenet_qat.integer_forward` on all 30 evaluation photos before it is written (a
mismatch stops the command).
"""

from __future__ import annotations

import time
from pathlib import Path

from ._base import host_line

__all__ = ["BEGIN", "END", "MNV2_QAT_RUNS", "ZEROQ", "mobilenet_qat_rows", "render_mobilenet_qat",
           "mixed_bits", "POINTS"]

BEGIN = "<!-- mobilenet qat section: python -m hwsim.models.quality_table --qat-mobilenet -->"
END = "<!-- end of mobilenet qat section -->"

#: ZeroQ images mixed into the training batches: (count, side in pixels, Adam steps, lr, seed).
ZEROQ = (8, 160, 40, 0.2, 0)

#: The bit-width points of the section (``"mixed"``: :func:`mixed_bits`).
POINTS = ("W4A8", "W4A4", "mixed")


def mixed_bits() -> dict:
    """The mixed point of the MobileNetV2 PTQ table (``quality_table.mixed_point`` of the committed
    ``docs/sensitivity/mobilenet_v2.csv``: the quarter of the layers least robust at W4A8 stay W8A8, the rest
    W4A8)."""
    from ..quant import read_sensitivity
    from .mobilenet_v2 import LAYERS
    from .quality_table import mixed_point

    root = Path(__file__).resolve().parents[2]
    return mixed_point(read_sensitivity(root / "docs" / "sensitivity" / "mobilenet_v2.csv"), LAYERS)


def _point_bits(point: str, layers) -> dict:
    if point == "mixed":
        return mixed_bits()
    w, a = int(point[1]), int(point[3])
    return {n: (w, a) for n in layers}


def _runs():
    from .mobilenet_qat import MobileNetQATConfig

    # (label, point, config, ZeroQ images in half of each batch?). See docs/qat.md for the runs that were
    # tried and dropped (ZeroQ half-batches at lr 1e-2 fell to 0 %; logits-only from CLE+BC at 112 px fell).
    recipe = dict(steps=100, batch_size=8, lr_weight=1e-2, lr_bias=1e-2, lr_step=1e-3, temperature=2.0,
                  mse=0.05, feature=1.0, train_size=224, threads=1, seed=0, init="adaround",
                  adaround_iters=200)
    label = "QAT LSQ + distillation (logits + features), from AdaRound, 100 steps of 8 at 224 px"
    return tuple((label, p, MobileNetQATConfig(bits=(4, 4) if p == "W4A4" else (4, 8), **recipe), False)
                 for p in POINTS)


#: The QAT runs of the table: (label, point, MobileNetQATConfig, uses ZeroQ) (built lazily).
MNV2_QAT_RUNS = _runs


def mobilenet_qat_rows(log=print, *, threads: int | None = None) -> dict:
    """Train every run of :data:`MNV2_QAT_RUNS` and measure it and the PTQ baselines on the 30 evaluation
    photos (:func:`hwsim.models.mobilenet_v2.library_sets`).

    Parameters
    ----------
    threads : int, optional
        torch threads of every run (default: each config's).

    Returns
    -------
    dict
        ``ptq``: list of ``(label, point, quality, seconds)``; ``qat``: list of ``(label, point, config,
        quality, history, seconds)``; ``zeroq_seconds``; ``n_eval``; ``n_calib``; ``mixed`` (the mixed
        point's bits).
    """
    from dataclasses import replace

    from . import mobilenet_v2 as mb
    from ._engine import PTQConfig, QuantizedNetwork
    from ._photos import photos
    from .mobilenet_qat import INIT_PTQ, init_ptq, qat_evaluate, train_mobilenet_qat

    net = mb.build_network()
    ev, cal, _, _ = mb.library_sets()
    cal_photos = [img for i, (_, img) in enumerate(photos()) if i % 4 == 0]  # library_sets' split
    ref = net.forward(ev)
    zq, zq_s = None, 0.0
    runs = MNV2_QAT_RUNS()
    if any(use for *_, use in runs):
        t0 = time.perf_counter()
        n, side, steps, lr, seed = ZEROQ
        zq = mb.zeroq_calibration_images(n, side, steps, lr=lr, seed=seed)
        zq_s = time.perf_counter() - t0
        log(f"zeroq: {n} images of {side} px, {steps} steps, {zq_s:.0f} s")
    out = {"ptq": [], "qat": [], "zeroq_seconds": zq_s, "n_eval": len(ev), "n_calib": len(cal_photos),
           "mixed": mixed_bits()}
    done = set()
    for label, point, cfg, use_zq in runs:
        if threads is not None:
            cfg = replace(cfg, threads=threads)
        bits = _point_bits(point, net.layers)
        start, start_s = None, 0.0
        for pl, pc in (("PTQ per-channel, min/max", PTQConfig()), (f"PTQ {INIT_PTQ.name}", INIT_PTQ),
                       (f"PTQ {init_ptq(cfg).name} (QAT's start)", init_ptq(cfg))):
            t0 = time.perf_counter()
            q = QuantizedNetwork(net, bits, cal, pc, profile=cfg.profile)
            if pc == init_ptq(cfg):
                start, start_s = q, time.perf_counter() - t0
            if (pl, point) in done:
                continue
            done.add((pl, point))
            r = mb.quality(q.run(ev, batch=10), ref)
            out["ptq"].append((pl, point, r, time.perf_counter() - t0))
            log(f"{pl} {point}: {r['top1_agreement'] * 100:.1f} % / {r['logit_sqnr_db']:.1f} dB")
        res = train_mobilenet_qat(net, cal_photos, zq if use_zq else None, cal, cfg, log=log, bits=bits,
                                  start=start)
        r = qat_evaluate(res.qnet, ev, ref)
        log(f"{label} {point}: {r['top1_agreement'] * 100:.1f} % / {r['logit_sqnr_db']:.1f} dB "
            f"(bit-exact on {r['n']} photos), {res.seconds + start_s:.0f} s")
        out["qat"].append((label, point, cfg, r, res.history, res.seconds + start_s))
    return out


def _cell(r: dict) -> str:
    return f"{r['top1_agreement'] * 100:.1f} / {r['logit_sqnr_db']:.1f}"


def render_mobilenet_qat(rows: dict, seconds: float) -> str:
    """The markdown section (with its markers) for :func:`mobilenet_qat_rows`' result."""
    import torch

    points = [p for p in POINTS if any(pt == p for _, pt, *_ in rows["qat"])]
    n_w8 = sum(1 for b in rows["mixed"].values() if tuple(b) == (8, 8))
    cfgs = [c for _, _, c, *_ in rows["qat"]]
    c0 = cfgs[0]
    threads = sorted({c.threads for c in cfgs})
    lines = [BEGIN, "", "## MobileNetV2: quantization-aware training by distillation, against PTQ", "",
             f"Produced by `python -m hwsim.models.quality_table --qat-mobilenet` ({seconds / 60:.0f} min on "
             f"this machine, 2 shared cores; torch {torch.__version__}, {'/'.join(map(str, threads))} torch "
             f"thread(s) per run). Cells: top-1 agreement with the float model (%) / logit SQNR (dB) on the "
             f"{rows['n_eval']} evaluation photos of the 40-photo "
             "library (the same photos as the ZeroQ table above; one photo is 3.3 points); for QAT also the "
             "training time (the PTQ start, the steps and the export). Every QAT cell is "
             "the integer network on the datapath (32-bit accumulators, onnxruntime's requantization), "
             "checked before it was written to give the same codes and logits bit for bit as its reference "
             "forward with `hwsim.quant`'s ONNX-exact functions "
             "(`hwsim.models.mobilenet_qat.integer_forward`). All layers have 4-bit weights at W4A8 and W4A4 "
             f"(the first and last included). Mixed: the PTQ table's mixed point ({n_w8} of "
             f"{len(rows['mixed'])} layers W8A8, the rest W4A8).",
             "",
             "QAT (`hwsim.models.mobilenet_qat`): no labels. The student starts from the PTQ row marked "
             "\"QAT's start\" (equalized, bias-corrected, AdaRound-ed weights, BN folded) and learns its "
             "weights, biases and LSQ step sizes (weights per channel, activations per tensor with the PTQ's "
             "zero points) by Adam (cosine-annealed; learning rates "
             f"{c0.lr_weight:g} for weights and {(c0.lr_bias or c0.lr_weight):g} for biases, both in units "
             "of "
             f"their steps, {c0.lr_step:g} for log step sizes) on the loss `T^2 KL(teacher || student) + "
             f"{c0.mse:g} MSE(logits) + {c0.feature:g} F` at T = {c0.temperature:g}, F being the mean "
             "normalised squared error of the 17 linear-bottleneck outputs against the float network's "
             "(`mobilenet_qat.feature_tensors`). Training images: the "
             f"{rows['n_calib']} calibration photos (never the evaluation photos), under random "
             "resized crops, flips and colour jitter; seeded (seed 0), deterministic algorithms.", "",
             "| method | " + " | ".join(points) + " |", "|---|" + "---:|" * len(points)]
    labels = list(dict.fromkeys(lb for lb, *_ in rows["ptq"]))
    for lb in labels:
        cells = {pt: _cell(r) for lab, pt, r, _ in rows["ptq"] if lab == lb}
        lines.append(f"| {lb} | " + " | ".join(cells.get(p, "-") for p in points) + " |")
    for lb in dict.fromkeys(lb for lb, *_ in rows["qat"]):
        cells = {pt: f"**{_cell(r)}** ({sec:.0f} s)" for lab, pt, _, r, _, sec in rows["qat"] if lab == lb}
        lines.append(f"| {lb} | " + " | ".join(cells.get(p, "-") for p in points) + " |")
    lines += ["", "Training loss (mean of the first and the last 10 steps): " + "; ".join(
        f"{pt} {h[0]['loss']:.3f} -> {h[-1]['loss']:.3f}" for _, pt, _, _, h, _ in rows["qat"] if h)
        + ".",
        "", "The recipes tried and their numbers: docs/qat.md, \"MobileNetV2 QAT by distillation\".",
        "", host_line(),
        "", END]
    return "\n".join(lines)
