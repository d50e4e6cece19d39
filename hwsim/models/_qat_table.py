"""The QAT section of ``docs/quality.md``: quantization-aware training against post-training quantization at
W4A4, W3A3, W2A2 and a mixed point, for the digits and Fashion-MNIST CNNs, with training times.

Written by ``python -m hwsim.models.quality_table --qat`` (it replaces the text between :data:`BEGIN` and
:data:`END` in ``docs/quality.md`` and leaves the PTQ tables alone). Every QAT cell is the datapath's accuracy
of the trained integer network, checked equal bit for bit to the network's fake-quantized forward before it is
written (a mismatch stops the command).
"""

from __future__ import annotations

import time

import numpy as np

from ..quant import QATConfig
from ._base import host_line
from ._engine import PTQConfig, QuantizedNetwork

__all__ = ["BEGIN", "END", "QAT_POINTS", "accuracy_table", "mixed_low", "qat_rows", "render_qat", "splice"]

BEGIN = "<!-- qat section: python -m hwsim.models.quality_table --qat -->"
END = "<!-- end of qat section -->"

#: Uniform points of the QAT tables, (weight_bits, act_bits).
QAT_POINTS = {"W4A4": (4, 4), "W3A3": (3, 3), "W2A2": (2, 2)}

#: PTQ rows (engine configs).
PTQ_ROWS = (PTQConfig(name="PTQ per-channel, min/max"), PTQConfig(name="PTQ per-channel, MSE",
                                                                  act_calibration="mse"),
            PTQConfig(name="PTQ per-channel + bias correction", bias_correction=True))

#: The two small digit CNNs' QAT rows: every method, 3 epochs, at every point and the mixed one.
_SMALL_CNN_ROWS = tuple((label, cfg, (*QAT_POINTS, "mixed")) for label, cfg in (
    ("QAT STE (3 ep)", QATConfig(method="ste", epochs=3, lr=2e-3, batch_size=64)),
    ("QAT LSQ (3 ep)", QATConfig(method="lsq", epochs=3, lr=2e-3, batch_size=64)),
    ("QAT LSQ+ (3 ep)", QATConfig(method="lsq+", epochs=3, lr=2e-3, batch_size=64)),
    ("QAT PACT (3 ep)", QATConfig(method="pact", epochs=3, lr=2e-3, batch_size=64)),
    ("QAT LSQ + distillation 0.5 (3 ep)", QATConfig(method="lsq", epochs=3, lr=2e-3, batch_size=64,
                                                      distill=0.5))))

#: QAT rows per network: (label, config, points it runs at). Fashion-MNIST: LSQ for two epochs of all 60,000
#: images at W4A4 and W2A2, and one epoch of the first 20,000 for the other rows (each epoch of 60,000 costs
#: minutes on 2 shared cores); the variants beside LSQ run at W2A2 only.
QAT_ROWS = {
    "digits_cnn": _SMALL_CNN_ROWS,
    # OpenCV digits: rendered in a section of its own (hwsim.models._qat_sections)
    "opencv_digits_cnn": _SMALL_CNN_ROWS,
    "fashion_cnn": (
        ("QAT LSQ (2 ep)", QATConfig(method="lsq", epochs=2, lr=1e-3, batch_size=256), ("W4A4", "W2A2")),
        ("QAT LSQ (1 ep on 20,000)", QATConfig(method="lsq", epochs=1, lr=1e-3, batch_size=256,
                                               max_train=20000),
         (*QAT_POINTS, "mixed")),
        ("QAT STE (1 ep on 20,000)", QATConfig(method="ste", epochs=1, lr=1e-3, batch_size=256,
                                               max_train=20000),
         ("W2A2",)),
        ("QAT LSQ+ (1 ep on 20,000)", QATConfig(method="lsq+", epochs=1, lr=1e-3, batch_size=256,
                                                max_train=20000), ("W2A2",)),
        ("QAT PACT (1 ep on 20,000)", QATConfig(method="pact", epochs=1, lr=1e-3, batch_size=256,
                                                max_train=20000), ("W2A2",)),
        ("QAT LSQ + distillation 0.5 (1 ep on 20,000)", QATConfig(method="lsq", epochs=1, lr=1e-3,
                                                                  batch_size=256,
                                                                  distill=0.5, max_train=20000), ("W2A2",)),
    ),
}


def mixed_low(layers: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """The mixed point: the first and the last layer W4A4, every other layer W2A2 (the common practice of
    keeping the first and last layers wider; survey §IV-B)."""
    return {n: (4, 4) if i in (0, len(layers) - 1) else (2, 2) for i, n in enumerate(layers)}


def _context(network: str):
    from .qat import qat_context

    return qat_context(network)


def _qat_cell(task) -> tuple[float, float, float]:
    """Train one QAT cell and run it on the datapath: ``(accuracy, training seconds, wall seconds)``."""
    from .qat import train

    network, label, cfg, p, bits = task
    t0 = time.perf_counter()
    net, _, _, x_te, y_te, _, _ = _context(network)
    res = train(network, bits, cfg)
    logits = QuantizedNetwork.from_qat(res).run(x_te, batch=500)
    if not np.array_equal(logits, res.forward(x_te)):
        raise RuntimeError(f"{network} {label} {p}: datapath logits differ from the fake-quantized forward")
    return float((logits.argmax(1) == y_te).mean()), res.seconds, time.perf_counter() - t0


def qat_rows(network: str, *, log=print, workers: int = 1) -> dict:
    """Measure one network: ``{"ptq": [(label, {point: acc})], "qat": [(label, {point: (acc, seconds)})],
    "float": acc, "mixed": bits}``.

    Raises
    ------
    MissingDependency
        torch or the data set is missing.
    RuntimeError
        A trained network whose datapath logits differ from its fake-quantized forward (a bug).
    """
    net, x_tr, _, x_te, y_te, calib, _ = _context(network)
    layers = tuple(net.layers)
    points = {**{k: {n: v for n in layers} for k, v in QAT_POINTS.items()}, "mixed": mixed_low(layers)}
    flt = float((net.forward(x_te).argmax(1) == y_te).mean())
    calib_t = net.forward(calib, keep=True)
    ptq = []
    for cfg in PTQ_ROWS:
        cells = {}
        for label, bits in points.items():
            q = QuantizedNetwork(net, bits, calib, cfg, calib_tensors=calib_t)
            cells[label] = float((q.run(x_te, batch=500).argmax(1) == y_te).mean())
        log(f"{network}: {cfg.name}: {cells}")
        ptq.append((cfg.name, cells))
    tasks = [(network, label, cfg, p, points[p]) for label, cfg, where in QAT_ROWS[network] for p in where]
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: the PTQ rows above ran numba's parallel kernels, and numba's GNU OpenMP threading
        # layer aborts a forked child ("fork() called from a process already using GNU OpenMP")
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            done = list(pool.map(_qat_cell, tasks))
    else:
        done = [_qat_cell(t) for t in tasks]
    got = {}
    for (_, label, _, p, _), (acc, secs, wall) in zip(tasks, done, strict=False):
        got.setdefault(label, {})[p] = (acc, secs)
        log(f"{network}: {label} {p}: {100 * acc:.2f} % in {wall:.0f} s")
    qat = [(label, got[label]) for label, _, _ in QAT_ROWS[network]]
    return {"ptq": ptq, "qat": qat, "float": flt, "mixed": points["mixed"], "n_test": int(len(y_te)),
            "n_train": int(len(x_tr))}


_NAMES = {"digits_cnn": "Digits CNN (scikit-learn digits, 450 test images)",
          "fashion_cnn": "Fashion-MNIST CNN (10,000 test images)"}


def render_qat(results: dict, seconds: float) -> str:
    """The markdown of the QAT section (between :data:`BEGIN` and :data:`END`)."""

    import torch

    lines = [BEGIN, "", "## Quantization-aware training against post-training quantization", "",
             f"Produced by `python -m hwsim.models.quality_table --qat` ({seconds / 60:.0f} min on this "
             f"machine, 2 shared cores; torch {torch.__version__}, one thread). Cells: top-1 accuracy (%) of "
             "the integer network on the datapath (32-bit accumulators, onnxruntime's requantization); for "
             "QAT also the training time in seconds. Every QAT network was checked, before its cell was "
             "written, to give on the datapath the same logits bit for bit as its fake-quantized forward.",
             "", "QAT (`hwsim.quant.train_qat`) fine-tunes the committed float weights at the policy's bits, "
             "seeded (seed 0), Adam with a cosine-annealed learning rate: STE = fixed-point fake "
             "quantization with max-scaled weights and EMA activation ranges (Jacob et al. 2018); LSQ = "
             "learned step sizes (Esser et al., ICLR 2020); LSQ+ = LSQ with a learned integer zero point and "
             "MSE initialization (Bhalgat et al. 2020); PACT = learned activation clipping (Choi et al. "
             "2018); distillation = half the loss is the KL divergence to the float network's outputs at "
             "temperature 2 (Hinton et al. 2015). The training forward computes the exact integer network "
             "(the loss is that of the network that runs); the float fake-quantized graph beside it only "
             "supplies the gradients.", "",
             "Mixed point: the first and last layers W4A4, every other layer W2A2. PTQ rows: the engine's "
             "static per-channel weights and per-tensor activations (see the PTQ tables above).", ""]
    for network, res in results.items():
        lines += [f"### {_NAMES[network]}", ""]
        if isinstance(res, str):
            lines += [f"Skipped: {res}", ""]
            continue
        mixed = ", ".join(f"`{n}` {w}/{a}" for n, (w, a) in res["mixed"].items())
        lines += [f"Float reference: {100 * res['float']:.2f} %. Training images: {res['n_train']:,}. "
                  f"Mixed: {mixed}.", ""]
        lines += accuracy_table(res)
        lines.append("")
    lines += [host_line(), "",
              END]
    return "\n".join(lines)


def splice(doc: str, section: str, begin: str = BEGIN, end: str = END) -> str:
    """``doc`` with the text from ``begin`` to ``end`` (default :data:`BEGIN`, :data:`END`) replaced by
    ``section`` (which carries the markers; appended when the markers are absent)."""
    if begin in doc and end in doc:
        head, rest = doc.split(begin, 1)
        tail = rest.split(end, 1)[1]
        return head + section + tail
    return doc.rstrip("\n") + "\n\n" + section + "\n"


def accuracy_table(res: dict) -> list[str]:
    """The markdown table of a network's QAT section: a row per PTQ method (``res["ptq"]``: label, accuracy
    per point) and per QAT run (``res["qat"]``: label, (accuracy, training s) per point), a column per
    point of :data:`QAT_POINTS` and ``mixed``; accuracies in %."""
    cols = [*QAT_POINTS, "mixed"]
    lines = ["| method | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for label, cells in res["ptq"]:
        lines.append(f"| {label} | " + " | ".join(f"{100 * cells[c]:.2f}" for c in cols) + " |")
    for label, cells in res["qat"]:
        lines.append(f"| {label} | " + " | ".join(
            f"**{100 * cells[c][0]:.2f}** ({cells[c][1]:.0f} s)" if c in cells else "-" for c in cols) + " |")
    return lines
