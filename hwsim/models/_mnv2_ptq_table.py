"""The MobileNetV2 W4A8 PTQ section of ``docs/quality.md``: layer-wise against sequential (quantized-input)
PTQ on the library's 30 evaluation photos, all layers at 4 bits and, as a separate row group, the literature's
convention (first conv and classifier at W8A8).

Written by ``python -m hwsim.models.quality_table --ptq-mobilenet`` (it replaces the text between
:data:`BEGIN` and :data:`END` and leaves every other section alone). Every cell is the integer network on the
datapath, checked bit for bit against :func:`hwsim.models.mobilenet_qat.integer_forward` on all 30 evaluation
photos before it is written (:func:`hwsim.models.mobilenet_qat.qat_evaluate`; a mismatch stops the command).
"""

from __future__ import annotations

import platform
import time

import numpy as np

__all__ = ["BEGIN", "END", "CONFIGS", "CONVENTIONS", "mobilenet_ptq_rows", "render_mobilenet_ptq"]

BEGIN = "<!-- mobilenet w4a8 ptq section: python -m hwsim.models.quality_table --ptq-mobilenet -->"
END = "<!-- end of mobilenet w4a8 ptq section -->"

#: (label, layers at W8A8): all layers 4-bit, and the convention of LSQ (Esser et al., ICLR 2020), HAWQ-V3
#: (Yao et al., ICML 2021) and BRECQ (Li et al., ICLR 2021): first conv and classifier at 8 bits.
CONVENTIONS = (("all 53 layers W4A8", ()),
               ("first conv and classifier W8A8, the other 51 W4A8", ("features.0.0", "classifier.1")))


def _configs():
    from ._engine import PTQConfig

    base = dict(equalize=True, bias_correction=True)
    return (PTQConfig("per-channel + CLE + BC", **base),
            PTQConfig("per-channel + CLE + BC + AdaRound (layer-wise, float inputs)", adaround=True,
                      adaround_iters=200, **base),
            PTQConfig("per-channel + CLE + BC + AdaRound, sequential (quantized inputs)", adaround=True,
                      adaround_iters=200, sequential=True, **base))


#: The PTQ configs of the section (built lazily: :class:`~hwsim.models._engine.PTQConfig` objects).
CONFIGS = _configs


def mobilenet_ptq_rows(log=print) -> dict:
    """Build and measure every (convention, config) cell on the 30 evaluation photos.

    Returns
    -------
    dict
        ``rows``: list of ``(convention label, config label, quality dict, build seconds, eval seconds)``
        (quality: :func:`hwsim.models.mobilenet_v2.quality` plus ``bit_exact``); ``n_eval``; ``n_calib``.
    """
    from . import mobilenet_v2 as mb
    from ._engine import QuantizedNetwork
    from .mobilenet_qat import qat_evaluate

    net = mb.build_network()
    ev, cal, _, _ = mb.library_sets()
    ref = net.forward(ev)
    out = {"rows": [], "n_eval": len(ev), "n_calib": len(cal)}
    for conv, w8 in CONVENTIONS:
        bits = {n: (8, 8) if n in w8 else (4, 8) for n in net.layers}
        for cfg in CONFIGS():
            t0 = time.perf_counter()
            q = QuantizedNetwork(net, bits, cal, cfg)
            t1 = time.perf_counter()
            r = qat_evaluate(q, ev, ref)
            t2 = time.perf_counter()
            out["rows"].append((conv, cfg.name, r, t1 - t0, t2 - t1))
            log(f"{conv} | {cfg.name}: {r['top1_agreement'] * 100:.1f} % / {r['logit_sqnr_db']:.2f} dB "
                f"(top-5 {r['top5_agreement'] * 100:.1f} %), build {t1 - t0:.0f} s, "
                f"bit-exact eval {t2 - t1:.0f} s")
    return out


def render_mobilenet_ptq(res: dict, seconds: float) -> str:
    """The markdown section (with its markers) for :func:`mobilenet_ptq_rows`' result."""
    lines = [BEGIN, "", "## MobileNetV2 W4A8: layer-wise against sequential PTQ", "",
             f"Produced by `python -m hwsim.models.quality_table --ptq-mobilenet` ({seconds / 60:.0f} min on "
             "this machine, one loaded core). Cells: top-1 agreement with the float model (%) / logit SQNR "
             f"(dB) / top-5 agreement (%) on the {res['n_eval']} evaluation photos of the 40-photo library "
             "(one photo is 3.3 points), and the time to build the integer network (calibration, AdaRound) "
             f"on the {res['n_calib']} calibration photos. Every cell is the integer network on the datapath "
             "(32-bit accumulators, onnxruntime's requantization), checked bit for bit against "
             "`hwsim.models.mobilenet_qat.integer_forward` on all evaluation photos before it was written. "
             "Weights symmetric per output channel (4-bit: codes -7..7), activations 8-bit asymmetric per "
             "tensor (min/max). AdaRound: 200 Adam steps per layer. Sequential: the layers are quantized in "
             "order, each AdaRound-ed and bias-corrected on the *quantized* network's calibration "
             "activations (`PTQConfig(sequential=True)`: asymmetric reconstruction `E||W x - W~ x^||^2`, "
             "AdaRound eq. 25 without the activation; bias correction of `E[W x] - E[W~ x^]`). The float "
             "network accumulates in float64 (`Network.accumulate`), so no cell depends on the BLAS thread "
             "count. Diagnosis and discussion: docs/qat.md, \"Where MobileNetV2's W4A8 SQNR goes\".", ""]
    for conv, _ in CONVENTIONS:
        lines += [f"**{conv}**", "", "| method | agreement / SQNR / top-5 | build |", "|---|---:|---:|"]
        for c, label, r, tb, _te in res["rows"]:
            if c == conv:
                lines.append(f"| {label} | {r['top1_agreement'] * 100:.1f} / {r['logit_sqnr_db']:.2f} / "
                             f"{r['top5_agreement'] * 100:.1f} | {tb:.0f} s |")
        lines.append("")
    lines += [f"Host: {platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}.", "",
              END]
    return "\n".join(lines)
