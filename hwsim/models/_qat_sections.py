"""Sections of ``docs/quality.md`` with their own markers, written by ``python -m hwsim.models.quality_table
--qat --networks NAME`` for the networks of :data:`SECTION_NETWORKS`, each replacing only its own section:

* ``opencv_digits_cnn``: QAT against PTQ at W4A4, W3A3, W2A2 and the mixed point, as the digits and
  Fashion-MNIST tables of :mod:`hwsim.models._qat_table` (whose :func:`~hwsim.models._qat_table.qat_rows`
  measures it, every QAT cell checked bit-exact on the datapath before it is written);
* ``minilm_l6``: QAT of the integer GEMMs distilled from the float model (:mod:`hwsim.models.minilm_qat`)
  against GEMM-only PTQ at W4A8, W4A4 and the PTQ table's mixed point, mean cosine to the float embeddings on
  the 24 evaluation sentences (every QAT network checked bit-exact on the datapath).
"""

from __future__ import annotations

import time
from pathlib import Path

from ..quant import QATConfig
from ._base import host_line

__all__ = ["SECTION_NETWORKS", "markers", "measure", "render", "section", "write", "MINILM_QAT_ROWS",
           "MINILM_POINTS"]

#: Networks whose QAT results have a section of their own.
SECTION_NETWORKS = ("opencv_digits_cnn", "minilm_l6")

#: MiniLM's uniform QAT points, (weight_bits, act_bits); "mixed" is added (the PTQ table's mixed point).
MINILM_POINTS = {"W4A8": (4, 8), "W4A4": (4, 4)}

#: MiniLM QAT rows: (label, config).
MINILM_QAT_ROWS = (
    ("QAT LSQ+, distilled (1 - cos), 2 ep on 128 sentences",
     QATConfig(method="lsq+", epochs=2, lr=1e-4, batch_size=16, max_train=128)),
)


def markers(network: str) -> tuple[str, str]:
    """The begin and end markers of ``network``'s section."""
    cmd = f"python -m hwsim.models.quality_table --qat --networks {network}"
    return (f"<!-- qat {network} section: {cmd} -->",
            f"<!-- end of qat {network} section -->")


def _minilm_mixed() -> dict:
    """The mixed point of the MiniLM PTQ table (``quality_table.mixed_point`` of the committed
    ``docs/sensitivity/minilm_l6.csv``: the quarter of the layers least robust at W4A8 stay W8A8)."""
    from ..quant import read_sensitivity
    from .minilm import LAYERS
    from .quality_table import mixed_point

    root = Path(__file__).resolve().parents[2]
    return mixed_point(read_sensitivity(root / "docs" / "sensitivity" / "minilm_l6.csv"), LAYERS)


def _measure_minilm(log) -> dict:
    from . import minilm, minilm_qat
    from ._engine import PTQConfig

    points = {**MINILM_POINTS, "mixed": _minilm_mixed()}
    ptq = []
    for cfg in (PTQConfig(name="PTQ per-channel, min/max"), PTQConfig(name="PTQ per-channel, MSE",
                                                                      act_calibration="mse")):
        cells = {p: minilm.evaluate(b, config=cfg)["cosine"] for p, b in points.items()}
        log(f"minilm_l6: {cfg.name}: {cells}")
        ptq.append((cfg.name, cells))
    qat = []
    for label, cfg in MINILM_QAT_ROWS:
        cells = {}
        for p, b in points.items():
            res = minilm_qat.train(b, cfg, log=log)
            r = minilm_qat.evaluate_qat(res)
            if not r["bit_exact"]:
                raise RuntimeError(f"minilm_l6 {label} {p}: datapath embeddings differ from the "
                                   "fake-quantized forward")
            cells[p] = (r["cosine"], r["cosine_min"], res.seconds)
            log(f"minilm_l6: {label} {p}: cosine {r['cosine']:.4f} in {res.seconds:.0f} s")
        qat.append((label, cells))
    n8 = sum(1 for b in points["mixed"].values() if b == (8, 8))
    return {"ptq": ptq, "qat": qat, "n_w8": n8, "n_layers": len(points["mixed"]),
            "n_train": len(minilm_qat.training_sentences())}


def measure(network: str, *, log=print, workers: int = 1) -> dict:
    """The measurements of ``network``'s section.

    Raises
    ------
    MissingDependency
        torch, the data set or the model package is missing.
    RuntimeError
        A trained network whose datapath output differs from its fake-quantized forward (a bug).
    """
    if network == "minilm_l6":
        return _measure_minilm(log)
    from ._qat_table import qat_rows

    return qat_rows(network, log=log, workers=workers)


def _render_cnn(network: str, res: dict) -> list[str]:
    from ._qat_table import accuracy_table

    mixed = ", ".join(f"`{n}` {w}/{a}" for n, (w, a) in res["mixed"].items())
    lines = ["Cells: top-1 accuracy (%) of the integer network on the datapath over the tutorial's "
             f"{res['n_test']:,} test digits; for QAT also the training time. Float reference: "
             f"{100 * res['float']:.2f} %. Training digits: {res['n_train']:,} (the tutorial's first 250 per "
             f"digit). Mixed: {mixed}. Methods as in the QAT section above (3 epochs, Adam lr 2e-3, batch "
             "64, seed 0).", ""]
    return lines + accuracy_table(res)


def _render_minilm(res: dict) -> list[str]:
    cols = [*MINILM_POINTS, "mixed"]
    lines = ["Cells: mean cosine with the float embeddings over the 24 evaluation sentences "
             "(`hwsim.models.minilm.SENTENCES`; for QAT also the worst sentence's cosine and the training "
             "time). GEMMs on the integer datapath (32-bit accumulators), nonlinearities in float, as in the "
             "all-MiniLM-L6-v2 PTQ table above. QAT (`hwsim.models.minilm_qat`): every projection's weight, "
             "bias and per-channel LSQ step and every GEMM input's LSQ+ step and zero point trained, "
             "starting from PTQ's quantizers (per-channel max weight steps, MSE-calibrated inputs: the "
             "'PTQ per-channel, MSE' row); loss = mean 1 - cosine to the float "
             "model's embedding (distillation, no labels); training sentences from Python's own reference "
             f"documentation (`pydoc_data.topics`, {res['n_train']} sentences of 8-30 words, disjoint from "
             "the evaluation and calibration sentences; the first 128 in a seeded order used); Adam with a "
             "cosine learning rate, batch 16 sentences, seed 0, one thread. Every QAT network was checked to "
             "give on the datapath the same embeddings bit for bit as its fake-quantized forward. Mixed: the "
             f"PTQ table's point ({res['n_w8']} of {res['n_layers']} GEMMs W8A8, the rest W4A8).", ""]
    lines += ["| method | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for label, cells in res["ptq"]:
        lines.append(f"| {label} | " + " | ".join(f"{cells[c]:.4f}" for c in cols) + " |")
    for label, cells in res["qat"]:
        lines.append(f"| {label} | " + " | ".join(
            f"**{cells[c][0]:.4f}** ({cells[c][1]:.4f}; {cells[c][2]:.0f} s)" for c in cols) + " |")
    return lines


_TITLES = {"opencv_digits_cnn": "QAT against PTQ: OpenCV digits CNN (opencv-doc, 2,500 test digits)",
           "minilm_l6": "QAT against PTQ: all-MiniLM-L6-v2, distilled from the float model"}


def render(network: str, res, seconds: float) -> str:
    """The section's markdown with its markers; ``res`` a :func:`measure` result or a skip reason (str)."""


    begin, end = markers(network)
    lines = [begin, "", f"## {_TITLES[network]}", ""]
    if isinstance(res, str):
        lines += [f"Skipped: {res}", ""]
    else:
        import torch

        lines += [f"Produced by `python -m hwsim.models.quality_table --qat --networks {network}` "
                  f"({seconds / 60:.0f} min on this machine, 2 shared cores; torch {torch.__version__}).", ""]
        lines += _render_minilm(res) if network == "minilm_l6" else _render_cnn(network, res)
        lines += ["", host_line(), ""]
    lines.append(end)
    return "\n".join(lines)


def section(network: str, *, log=print, workers: int = 1) -> str:
    """Measure ``network`` and render its section (a missing dependency becomes a "Skipped" section)."""
    from ._base import MissingDependency

    t0 = time.time()
    try:
        res = measure(network, log=log, workers=workers)
    except MissingDependency as e:
        res = str(e)
    return render(network, res, time.time() - t0)


def write(network: str, path: Path, *, log=print, workers: int = 1) -> None:
    """Measure ``network``'s section, then replace it in the file ``path`` (appended when absent), reading
    the file only after the measurement so that runs for different networks can overlap."""
    from ._qat_table import splice

    text = section(network, log=log, workers=workers)
    doc = path.read_text() if path.is_file() else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(splice(doc, text, *markers(network)))
