"""Write ``docs/quality.md``: each real network's quality per bit-width point and PTQ method, measured on the
integer datapath, plus each network's per-layer sensitivity table (CSV and JSON, the input of mixed
precision).

Usage::

    python -m hwsim.models.quality_table [--out docs/quality.md] [--sensitivity-dir docs/sensitivity]
                                         [--networks fashion_cnn,mobilenet_v2,minilm_l6]
    python -m hwsim.models.quality_table --qat [--networks digits_cnn,fashion_cnn] [--fashion-dir DIR]
    python -m hwsim.models.quality_table --qat --networks opencv_digits_cnn,minilm_l6 [--opencv-digits PNG]
    python -m hwsim.models.quality_table --qat-mobilenet

``--qat`` measures quantization-aware training against PTQ (:mod:`hwsim.models._qat_table`) and replaces only
the QAT section of the output file (about 40 minutes on 2 shared cores, Fashion-MNIST's trainings dominate);
the OpenCV digits CNN and MiniLM have QAT sections of their own (:mod:`hwsim.models._qat_sections`), each
replaced only when its network is named (or by default, when ``--networks`` is not given).
``--qat-mobilenet`` trains MobileNetV2 by distillation on unlabelled photos and ZeroQ images
(:mod:`hwsim.models._mnv2_qat_table`) and replaces only its own section.

Bit-width points: W8A8, W6A6, W4A8, W4A4 (every layer) and a mixed-precision point chosen from the sensitivity
table: the quarter of the layers (rounded up) with the lowest output SQNR when quantized alone to W4A8 stay at
W8A8, every other layer runs W4A8. A network whose package or data is missing is reported as skipped. Takes
about 20 minutes on 2 cores (AdaRound and the MobileNetV2/MiniLM runs dominate).
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np

from ._base import MissingDependency
from ._engine import PTQConfig

__all__ = ["POINTS", "METHODS", "mixed_point", "network_table", "main"]

#: The uniform bit-width points of the table, (weight_bits, act_bits).
POINTS = {"W8A8": (8, 8), "W6A6": (6, 6), "W4A8": (4, 8), "W4A4": (4, 4)}

_PC = PTQConfig(name="per-channel, min/max")

#: PTQ methods per network (the first is the baseline the mixed point is chosen under).
METHODS = {
    "fashion_cnn": (
        _PC,
        PTQConfig(name="per-tensor, min/max", weight_granularity="tensor"),
        PTQConfig(name="per-channel, percentile 99.99", act_calibration="percentile"),
        PTQConfig(name="per-channel, MSE", act_calibration="mse"),
        PTQConfig(name="per-channel, entropy (KL)", act_calibration="entropy"),
        PTQConfig(name="per-channel, ACIQ", act_calibration="aciq"),
        PTQConfig(name="per-channel + bias correction", bias_correction=True),
        PTQConfig(name="per-channel + AdaRound", adaround=True),
    ),
    "mobilenet_v2": (
        _PC,
        PTQConfig(name="per-tensor, min/max", weight_granularity="tensor"),
        PTQConfig(name="per-tensor + CLE", weight_granularity="tensor", equalize=True),
        PTQConfig(name="per-tensor + bias correction", weight_granularity="tensor", bias_correction=True),
        PTQConfig(name="per-tensor + CLE + bias correction", weight_granularity="tensor", equalize=True,
                  bias_correction=True),
        PTQConfig(name="per-channel, percentile 99.99", act_calibration="percentile"),
        PTQConfig(name="per-channel, MSE", act_calibration="mse"),
        PTQConfig(name="per-channel, entropy (KL)", act_calibration="entropy"),
        PTQConfig(name="per-channel, ACIQ", act_calibration="aciq"),
        PTQConfig(name="per-channel + CLE + bias correction", equalize=True, bias_correction=True),
        PTQConfig(name="per-channel + CLE + BC + AdaRound", equalize=True, bias_correction=True,
                  adaround=True, adaround_iters=200),
    ),
    "minilm_l6": (
        _PC,
        PTQConfig(name="per-tensor, min/max", weight_granularity="tensor"),
        PTQConfig(name="per-channel, percentile 99.99", act_calibration="percentile"),
        PTQConfig(name="per-channel, MSE", act_calibration="mse"),
        PTQConfig(name="per-channel, entropy (KL)", act_calibration="entropy"),
        PTQConfig(name="per-channel, ACIQ", act_calibration="aciq"),
        PTQConfig(name="per-channel, dynamic activations", act_dynamic=True),
        PTQConfig(name="group-wise (64), min/max", weight_granularity="group", weight_group_size=64),
        PTQConfig(name="per-channel + bias correction", bias_correction=True),
    ),
}

#: Non-uniform and extreme weights at 8-bit activations (weight bits: pow2 code width; ignored otherwise).
EXTREME = (
    ("power-of-two weights, 4-bit codes", PTQConfig(name="pow2", weight_scheme="pow2"), 4),
    ("ternary weights (TWN)", PTQConfig(name="ternary", weight_scheme="ternary"), 2),
    ("binary weights (XNOR-Net scale)", PTQConfig(name="binary", weight_scheme="binary"), 2),
)


def _module(network: str):
    from . import fashion, minilm, mobilenet_v2

    return {"fashion_cnn": fashion, "mobilenet_v2": mobilenet_v2, "minilm_l6": minilm}[network]


def _cell(network: str, r: dict) -> str:
    if network == "fashion_cnn":
        return f"{100 * r['accuracy']:.2f}"
    if network == "mobilenet_v2":
        return f"{100 * r['top1_agreement']:.0f} / {r['logit_sqnr_db']:.1f}"
    return f"{r['cosine']:.4f}"


def mixed_point(table, layers: tuple[str, ...], low=(4, 8), high=(8, 8)) -> dict[str, tuple[int, int]]:
    """The mixed-precision point: the ``ceil(len(layers) / 4)`` layers with the lowest ``sqnr_db`` at ``low``
    in ``table`` (a :class:`hwsim.quant.SensitivityTable`) get ``high``, the others ``low``."""
    sq = {r["layer"]: r["sqnr_db"] for r in table.rows if (r["weight_bits"], r["act_bits"]) == tuple(low)}
    k = math.ceil(len(layers) / 4)
    keep = set(sorted(layers, key=lambda n: (sq[n], layers.index(n)))[:k])
    return {n: tuple(high) if n in keep else tuple(low) for n in layers}


def _sensitivity(network: str, out_dir: Path | None, log):
    from ..quant import layer_sensitivity

    mod = _module(network)
    sm = mod.sensitivity_model()
    t0 = time.time()
    tab = layer_sensitivity(sm, [(4, 8)], n_probes=4, seed=0)
    log(f"{network}: sensitivity in {time.time() - t0:.0f} s")
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        tab.to_csv(out_dir / f"{network}.csv")
        tab.to_json(out_dir / f"{network}.json")
    return tab


def network_table(network: str, *, sensitivity_dir: Path | None = None, log=print) -> dict:
    """Measure one network: ``{"rows": [(method, {point: cell})], "mixed": bits, "extreme": [...], ...}``.

    Raises
    ------
    MissingDependency
        The network's package or data is missing.
    """
    mod = _module(network)
    tab = _sensitivity(network, sensitivity_dir, log)
    layers = tuple(mod.LAYERS)
    mixed = mixed_point(tab, layers)
    points = dict(POINTS)
    rows = []
    for cfg in METHODS[network]:
        cells = {}
        t0 = time.time()
        for label, bits in (*points.items(), ("mixed", mixed)):
            cells[label] = _cell(network, mod.evaluate(bits, config=cfg))
        log(f"{network}: {cfg.name} in {time.time() - t0:.0f} s: {cells}")
        rows.append((cfg.name, cells))
    extreme = []
    for label, cfg, wb in EXTREME:
        extreme.append((label, _cell(network, mod.evaluate((wb, 8), config=cfg))))
    n_w8 = sum(1 for b in mixed.values() if b == (8, 8))
    w_macs = _mean_weight_bits(network, mixed)
    return {"rows": rows, "mixed": mixed, "n_w8": n_w8, "mean_weight_bits": w_macs, "extreme": extreme,
            "sensitivity": tab}


def _mean_weight_bits(network: str, bits: dict) -> float:
    """Weight bits averaged over the layers' MACs (from the workload YAML)."""
    from ..spec import load_workload_yaml

    root = Path(__file__).resolve().parents[2]
    name = {"fashion_cnn": "fashion_cnn", "mobilenet_v2": "mobilenet_v2", "minilm_l6": "minilm_l6"}[network]
    wl = load_workload_yaml(root / "workloads" / f"{name}.yaml")
    macs = {layer.name: layer.gemm.macs for layer in wl.layers}
    total = sum(macs.values())
    return sum(macs[n] * bits[n][0] for n in bits) / total


_TITLES = {
    "fashion_cnn": ("Fashion-MNIST CNN", "top-1 accuracy (%) on the 10,000 test images"),
    "mobilenet_v2": ("MobileNetV2 (torchvision ImageNet weights)",
                     "top-1 agreement with the float model (%) / logit SQNR (dB), 20 photo crops"),
    "minilm_l6": ("all-MiniLM-L6-v2", "mean cosine with the float embeddings, 24 sentences"),
}


def _float_note(network: str) -> str:
    mod = _module(network)
    if network == "fashion_cnn":
        return f"Float reference: {100 * mod.load_metadata()['test_accuracy']:.2f} % top-1."
    if network == "mobilenet_v2":
        return "Float reference: 100 % agreement, infinite SQNR by definition."
    return "Float reference: cosine 1 by definition."


def render(results: dict, seconds: float) -> str:
    """The markdown text of ``docs/quality.md``."""
    import numba
    import onnxruntime  # noqa: F401  (version of the peer the datapath is bit-exact with)

    lines = [
        "# Quality of the real networks under post-training quantization",
        "",
        "Produced by `python -m hwsim.models.quality_table` (do not edit by hand; "
        f"{seconds / 60:.0f} min on this machine). Every number is a bit-accurate run of the integer "
        "datapath (`hwsim.datapath`: integer accumulators of 32 bits, onnxruntime's requantization) on real "
        "data; activations are static per tensor (asymmetric, unsigned) unless the method says otherwise; "
        "weights are symmetric with a restricted range. Bits are (weight, activation) per layer; a layer's "
        "activation bits quantize its input.",
        "",
        "The mixed-precision point: the quarter of the layers (rounded up) with the lowest output SQNR when "
        "quantized alone to W4A8 (the rest at W8A8) stay W8A8; all others run W4A8. Its mean weight bits are "
        "weighted by each layer's MACs. The sensitivity tables behind it (output SQNR and HAWQ Hessian "
        "traces, 4 Hutchinson probes, seed 0) are in `docs/sensitivity/<network>.csv` and `.json` "
        "(`hwsim.quant.layer_sensitivity`).",
        "",
        "Methods (Gholami et al. 2021, survey §III-IV): per-tensor/per-channel weight scales; activation "
        "calibration by min/max, percentile, MSE, entropy (KL, TensorRT style) or ACIQ; CLE = cross-layer "
        "equalization and bias correction (Nagel et al., ICCV 2019); AdaRound (Nagel et al., ICML 2020; "
        "500 Adam steps per layer, 200 for MobileNetV2).",
        "",
    ]
    for network, res in results.items():
        title, unit = _TITLES[network]
        lines += [f"## {title}", ""]
        if isinstance(res, str):
            lines += [f"Skipped: {res}", ""]
            continue
        lines += [f"Cells: {unit}. {_float_note(network)} Mixed point: {res['n_w8']} of {len(res['mixed'])} "
                  f"layers at W8A8, the rest W4A8; mean weight bits {res['mean_weight_bits']:.2f} "
                  "(MAC-weighted). W8A8 layers: "
                  f"{', '.join(f'`{n}`' for n, b in res['mixed'].items() if b == (8, 8))}.", ""]
        cols = [*POINTS, "mixed"]
        lines.append("| method | " + " | ".join(cols) + " |")
        lines.append("|---|" + "---:|" * len(cols))
        for name, cells in res["rows"]:
            lines.append(f"| {name} | " + " | ".join(cells[c] for c in cols) + " |")
        lines += ["", "Non-uniform and extreme weights (per channel, activations 8-bit min/max):", "",
                  "| weights | quality |", "|---|---:|"]
        lines += [f"| {label} | {cell} |" for label, cell in res["extreme"]]
        lines.append("")
    lines += ["## Environment", "",
              f"Python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}, "
              f"{platform.machine()}.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Write docs/quality.md (see the module docstring).")
    root = Path(__file__).resolve().parents[2]
    ap.add_argument("--out", type=Path, default=root / "docs" / "quality.md")
    ap.add_argument("--sensitivity-dir", type=Path, default=root / "docs" / "sensitivity")
    ap.add_argument("--networks", default=None, help="default: fashion_cnn,mobilenet_v2,minilm_l6 "
                    "(with --qat: digits_cnn,fashion_cnn,opencv_digits_cnn,minilm_l6)")
    ap.add_argument("--qat", action="store_true", help="write the QAT-against-PTQ section only")
    ap.add_argument("--qat-mobilenet", action="store_true", help="write the MobileNetV2 distillation-QAT "
                    "section only (hwsim.models.mobilenet_qat)")
    ap.add_argument("--ptq-mobilenet", action="store_true", help="write the MobileNetV2 W4A8 layer-wise "
                    "against sequential PTQ section only (hwsim.models._mnv2_ptq_table)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads of each --qat-mobilenet "
                    "training (1..64; default: the run's config, 1)")
    ap.add_argument("--workers", type=int, default=2, help="processes training QAT cells (default 2)")
    ap.add_argument("--fashion-dir", type=Path, default=None, help="folder of the Fashion-MNIST IDX files "
                    "(default: $HWSIM_FASHION_MNIST_DIR or /usr/share/datasets/fashion-mnist)")
    ap.add_argument("--opencv-digits", type=Path, default=None, help="OpenCV's digits.png (default: "
                    "$HWSIM_OPENCV_DIGITS or /usr/share/doc/opencv-doc/examples/data/digits.png)")
    args = ap.parse_args(argv)
    if args.opencv_digits is not None:
        if not args.opencv_digits.is_file():
            print("quality_table: error: --opencv-digits: expected an existing file, OpenCV's "
                  f"samples/data/digits.png, found {str(args.opencv_digits)!r}", file=sys.stderr)
            return 2
        import os

        os.environ["HWSIM_OPENCV_DIGITS"] = str(args.opencv_digits)
    if args.fashion_dir is not None:
        if not args.fashion_dir.is_dir():
            print("quality_table: error: --fashion-dir: expected an existing folder with the Fashion-MNIST "
                  f"IDX files, found {str(args.fashion_dir)!r}", file=sys.stderr)
            return 2
        import os

        os.environ["HWSIM_FASHION_MNIST_DIR"] = str(args.fashion_dir)
    if args.threads is not None and not 1 <= args.threads <= 64:
        print(f"quality_table: error: --threads: expected an integer in 1..64, found {args.threads}",
              file=sys.stderr)
        return 2
    if args.qat_mobilenet:
        return _main_qat_mobilenet(args)
    if args.ptq_mobilenet:
        return _main_ptq_mobilenet(args)
    if args.qat:
        return _main_qat(args)
    if args.networks is None:
        args.networks = "fashion_cnn,mobilenet_v2,minilm_l6"
    t0 = time.time()
    results = {}
    for network in args.networks.split(","):
        if network not in METHODS:
            print(f"quality_table: error: --networks: unknown network {network!r} (known: "
                  f"{', '.join(METHODS)})",
                  file=sys.stderr)
            return 2
        try:
            results[network] = network_table(network, sensitivity_dir=args.sensitivity_dir,
                                             log=lambda s: print(s, file=sys.stderr, flush=True))
        except MissingDependency as e:
            results[network] = str(e)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    old = args.out.read_text() if args.out.is_file() else ""
    args.out.write_text(keep_sections(render(results, time.time() - t0), old))
    print(f"wrote {args.out}")
    return 0


#: Markers of the hand-written ZeroQ section of ``docs/quality.md`` (its numbers come from the command it
#: quotes, ``mobilenet_v2.calibration_comparison``).
ZEROQ_BEGIN = "<!-- zeroq section: mobilenet_v2.calibration_comparison, the command in the section -->"
ZEROQ_END = "<!-- end of zeroq section -->"


def section_markers() -> tuple:
    """``(begin, end)`` of every section of ``docs/quality.md`` that another command writes (``--qat``,
    ``--qat-mobilenet``, ``--ptq-mobilenet``, ``hwsim.models.minilm_int``, the per-network QAT sections) or
    that is hand-written (ZeroQ): the default command keeps them."""
    from . import _mnv2_ptq_table, _mnv2_qat_table, _qat_sections, _qat_table, minilm_int

    return ((_qat_table.BEGIN, _qat_table.END), (minilm_int.BEGIN, minilm_int.END), (ZEROQ_BEGIN, ZEROQ_END),
            (_mnv2_qat_table.BEGIN, _mnv2_qat_table.END), (_mnv2_ptq_table.BEGIN, _mnv2_ptq_table.END),
            *map(_qat_sections.markers, _qat_sections.SECTION_NETWORKS))


def keep_sections(text: str, old: str) -> str:
    """``text`` (the default command's PTQ tables) followed by every :func:`section_markers` section found in
    ``old`` (the previous ``docs/quality.md``), markers included, in that order."""
    for begin, end in section_markers():
        if begin in old and end in old.split(begin, 1)[1]:
            text = text.rstrip("\n") + "\n\n" + begin + old.split(begin, 1)[1].split(end, 1)[0] + end + "\n"
    return text


def _main_qat(args) -> int:
    from . import _qat_sections
    from ._qat_table import qat_rows, render_qat, splice
    from .qat import QAT_NETWORKS

    known = (*QAT_NETWORKS, *(n for n in _qat_sections.SECTION_NETWORKS if n not in QAT_NETWORKS))
    networks = (args.networks or ",".join(known)).split(",")
    for network in networks:
        if network not in known:
            print("quality_table: error: --networks: expected networks QAT trains "
                  f"({', '.join(known)}), found {network!r}", file=sys.stderr)
            return 2
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    t0 = time.time()
    results = {}
    for network in networks:
        if network in _qat_sections.SECTION_NETWORKS:
            continue
        try:
            results[network] = qat_rows(network, log=log, workers=args.workers)
        except MissingDependency as e:
            results[network] = str(e)
    if results:
        doc = args.out.read_text() if args.out.is_file() else ""
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(splice(doc, render_qat(results, time.time() - t0)))
    for network in networks:   # the networks with a section of their own (hwsim.models._qat_sections)
        if network in _qat_sections.SECTION_NETWORKS:
            _qat_sections.write(network, args.out, log=log, workers=args.workers)
    print(f"wrote {args.out}")
    return 0


def _main_qat_mobilenet(args) -> int:
    """``--qat-mobilenet``: MobileNetV2 distillation QAT against PTQ (:mod:`hwsim.models._mnv2_qat_table`)."""
    from ._mnv2_qat_table import BEGIN, END, mobilenet_qat_rows, render_mobilenet_qat
    from ._qat_table import splice

    t0 = time.time()
    try:
        rows = mobilenet_qat_rows(log=lambda s: print(s, file=sys.stderr, flush=True), threads=args.threads)
    except MissingDependency as e:
        print(f"quality_table: skipped MobileNetV2 QAT: {e}", file=sys.stderr)
        return 0
    doc = args.out.read_text() if args.out.is_file() else ""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(splice(doc, render_mobilenet_qat(rows, time.time() - t0), BEGIN, END))
    print(f"wrote {args.out}")
    return 0


def _main_ptq_mobilenet(args) -> int:
    """``--ptq-mobilenet``: MobileNetV2 W4A8 layer-wise against sequential PTQ
    (:mod:`hwsim.models._mnv2_ptq_table`)."""
    from ._mnv2_ptq_table import BEGIN, END, mobilenet_ptq_rows, render_mobilenet_ptq
    from ._qat_table import splice

    t0 = time.time()
    try:
        res = mobilenet_ptq_rows(log=lambda s: print(s, file=sys.stderr, flush=True), workers=args.workers)
    except MissingDependency as e:
        print(f"quality_table: skipped MobileNetV2 W4A8 PTQ: {e}", file=sys.stderr)
        return 0
    doc = args.out.read_text() if args.out.is_file() else ""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(splice(doc, render_mobilenet_ptq(res, time.time() - t0), BEGIN, END))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
