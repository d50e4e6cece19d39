"""The MobileNetV2 QAT section of ``docs/quality.md``: distillation QAT (:mod:`hwsim.models.mobilenet_qat`)
against PTQ on the library's 30 evaluation photos.

Written by ``python -m hwsim.models.quality_table --qat-mobilenet`` (it replaces the text between
:data:`BEGIN` and :data:`END` and leaves every other section alone). Every QAT cell is the datapath's quality
of the exported integer network, checked bit for bit against
:func:`hwsim.models.mobilenet_qat.integer_forward` on all 30 evaluation photos before it is written (a
mismatch stops the command).
"""

from __future__ import annotations

import platform
import time

import numpy as np

__all__ = ["BEGIN", "END", "MNV2_QAT_RUNS", "ZEROQ", "mobilenet_qat_rows", "render_mobilenet_qat"]

BEGIN = "<!-- mobilenet qat section: python -m hwsim.models.quality_table --qat-mobilenet -->"
END = "<!-- end of mobilenet qat section -->"

#: ZeroQ images mixed into the training batches: (count, side in pixels, Adam steps, lr, seed).
ZEROQ = (8, 160, 40, 0.2, 0)


def _runs():
    from .mobilenet_qat import MobileNetQATConfig

    # (label, config, ZeroQ images in half of each batch?). Photos only: an earlier run with ZeroQ
    # half-batches (100 steps, lr 1e-2 / 2e-3, 128 px) fell to 0.0 % / -0.9 dB (see docs/qat.md).
    return (("QAT LSQ + distillation, photos only (40 steps of 8 at 112 px)",
             MobileNetQATConfig(bits=(4, 8), steps=40, batch_size=8, lr_weight=1e-3, lr_step=2e-4,
                                temperature=2.0, mse=0.05, train_size=112, threads=2, seed=0), False),)


#: The QAT runs of the table: (label, MobileNetQATConfig, uses ZeroQ) (built lazily).
MNV2_QAT_RUNS = _runs


def mobilenet_qat_rows(log=print) -> dict:
    """Train every run of :data:`MNV2_QAT_RUNS` and measure it and the PTQ baselines on the 30 evaluation
    photos (:func:`hwsim.models.mobilenet_v2.library_sets`).

    Returns
    -------
    dict
        ``ptq``: list of ``(label, bits, quality)``; ``qat``: list of ``(label, config, quality, history,
        seconds)``; ``zeroq_seconds``; ``n_eval``; ``n_calib``.
    """
    from . import mobilenet_v2 as mb
    from ._engine import PTQConfig, QuantizedNetwork
    from ._photos import photos
    from .mobilenet_qat import INIT_PTQ, qat_evaluate, train_mobilenet_qat

    net = mb.build_network()
    ev, cal, _, _ = mb.library_sets()
    cal_photos = [img for i, (_, img) in enumerate(photos()) if i % 4 == 0]  # library_sets' split
    ref = net.forward(ev)
    zq, zq_s = None, 0.0
    if any(use for _, _, use in MNV2_QAT_RUNS()):
        t0 = time.perf_counter()
        n, side, steps, lr, seed = ZEROQ
        zq = mb.zeroq_calibration_images(n, side, steps, lr=lr, seed=seed)
        zq_s = time.perf_counter() - t0
        log(f"zeroq: {n} images of {side} px, {steps} steps, {zq_s:.0f} s")
    out = {"ptq": [], "qat": [], "zeroq_seconds": zq_s, "n_eval": len(ev), "n_calib": len(cal_photos)}
    for label, cfg, use_zq in MNV2_QAT_RUNS():
        b = tuple(cfg.bits)
        bits = {k: b for k in net.layers}
        for pl, pc in (("PTQ per-channel, min/max", PTQConfig()), (f"PTQ {INIT_PTQ.name} (QAT's start)",
                                                                    INIT_PTQ)):
            q = QuantizedNetwork(net, bits, cal, pc)
            r = mb.quality(q.run(ev, batch=10), ref)
            out["ptq"].append((pl, f"W{b[0]}A{b[1]}", r))
            log(f"{pl} W{b[0]}A{b[1]}: {r['top1_agreement'] * 100:.1f} % / {r['logit_sqnr_db']:.1f} dB")
        res = train_mobilenet_qat(net, cal_photos, zq if use_zq else None, cal, cfg, log=log)
        r = qat_evaluate(res.qnet, ev, ref)
        log(f"{label} W{b[0]}A{b[1]}: {r['top1_agreement'] * 100:.1f} % / {r['logit_sqnr_db']:.1f} dB "
            f"(bit-exact on {r['n']} photos), {res.seconds:.0f} s")
        out["qat"].append((label, cfg, r, res.history, res.seconds))
    return out


def render_mobilenet_qat(rows: dict, seconds: float) -> str:
    """The markdown section (with its markers) for :func:`mobilenet_qat_rows`' result."""
    import torch

    lines = [BEGIN, "", "## MobileNetV2: quantization-aware training by distillation, against PTQ", "",
             f"Produced by `python -m hwsim.models.quality_table --qat-mobilenet` ({seconds / 60:.0f} min on "
             f"this machine, 2 shared cores; torch {torch.__version__}). Cells: top-1 agreement with the "
             f"float model (%) / logit SQNR (dB) on the {rows['n_eval']} evaluation photos of the 40-photo "
             "library (the same photos as the ZeroQ table above; one photo is 3.3 points). Every QAT cell is "
             "the integer network on the datapath (32-bit accumulators, onnxruntime's requantization), "
             "checked before it was written to give the same codes and logits bit for bit as its reference "
             "forward with `hwsim.quant`'s ONNX-exact functions "
             "(`hwsim.models.mobilenet_qat.integer_forward`).",
             "",
             "QAT (`hwsim.models.mobilenet_qat`): no labels. The student starts from the PTQ row marked "
             "\"QAT's start\" (equalized, bias-corrected, BN folded) and learns its weights, biases and LSQ "
             "step sizes (weights per channel, activations per tensor with the PTQ's zero points) by Adam "
             "(cosine-annealed) on the loss `T^2 KL(teacher || student) + 0.05 MSE(logits)` at T = 2 against "
             "the float network's logits. Training images: the "
             f"{rows['n_calib']} calibration photos (never the evaluation photos) under random resized "
             "crops, flips and colour jitter (no ZeroQ images in this run); seeded (seed 0), deterministic "
             "algorithms.", "",
             "| method | bits | agreement / SQNR | training |", "|---|---|---:|---:|"]
    for label, bits, r in rows["ptq"]:
        lines.append(f"| {label} | {bits} | {r['top1_agreement'] * 100:.1f} / {r['logit_sqnr_db']:.1f} | - |")
    for label, cfg, r, hist, sec in rows["qat"]:
        loss = f"loss {hist[0]['loss']:.3f} -> {hist[-1]['loss']:.3f}" if hist else ""
        cell = f"**{r['top1_agreement'] * 100:.1f} / {r['logit_sqnr_db']:.1f}**"
        lines.append(f"| {label}, {loss} | W{cfg.bits[0]}A{cfg.bits[1]} | {cell} | {sec:.0f} s |")
    lines += ["", f"Host: {platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}.",
              "", END]
    return "\n".join(lines)
