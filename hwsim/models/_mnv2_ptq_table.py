"""The MobileNetV2 W4A8 PTQ section of ``docs/quality.md``: layer-wise against sequential (quantized-input)
PTQ on the library's 30 evaluation photos, with the calibration photos alone or with augmented crops of them,
and block reconstruction; all layers at 4 bits and, as a separate row group, the literature's convention
(first conv and classifier at W8A8).

Written by ``python -m hwsim.models.quality_table --ptq-mobilenet`` (it replaces the text between
:data:`BEGIN` and :data:`END` and leaves every other section alone). Every cell's centre-crop numbers are the
integer network on the datapath, checked bit for bit against
:func:`hwsim.models.mobilenet_qat.integer_forward` on all 30 evaluation photos before it is written
(:func:`hwsim.models.mobilenet_qat.qat_evaluate`; a mismatch stops the command); the 10-view numbers are the
same network on the datapath over :func:`hwsim.models.mobilenet_v2.library_views`.
"""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass

import numpy as np

from ._base import host_line

__all__ = ["BEGIN", "END", "CONVENTIONS", "PtqRun", "RUNS", "calibration_pool", "mobilenet_ptq_rows",
           "render_mobilenet_ptq"]

BEGIN = "<!-- mobilenet w4a8 ptq section: python -m hwsim.models.quality_table --ptq-mobilenet -->"
END = "<!-- end of mobilenet w4a8 ptq section -->"

#: (label, layers at W8A8): all layers 4-bit, and the convention of LSQ (Esser et al., ICLR 2020), HAWQ-V3
#: (Yao et al., ICML 2021) and BRECQ (Li et al., ICLR 2021): first conv and classifier at 8 bits.
CONVENTIONS = (("all 53 layers W4A8", ()),
               ("first conv and classifier W8A8, the other 51 W4A8", ("features.0.0", "classifier.1")))


@dataclass(frozen=True)
class PtqRun:
    """One cell of the section.

    Attributes
    ----------
    convention : str
        A label of :data:`CONVENTIONS`.
    label : str
        The method's row label.
    config : PTQConfig
    pool_aug : int
        Augmented crops of the 10 calibration photos added to their 10 centre crops (:func:`calibration_pool`;
        0: the centre crops alone).
    seed : int
        Seeds the augmentation and the Gram matrices' row sampling.
    recon : BlockReconConfig or None
        Block reconstruction after the PTQ (:func:`hwsim.models.block_recon.block_reconstruct`, on the same
        pool).
    wallpapers : bool
        Calibrate on the 27 wallpaper photos too (:func:`calibration_pool`).
    """

    convention: str
    label: str
    config: object
    pool_aug: int = 0
    seed: int = 0
    recon: object = None
    wallpapers: bool = False


def calibration_pool(n_aug: int, seed: int, *, wallpapers: bool = False) -> np.ndarray:
    """The 10 calibration photos' centre crops (:func:`hwsim.models.mobilenet_v2.library_sets`), with
    ``wallpapers`` the 27 wallpaper photos' centre crops after them (:func:`hwsim.models._photos.
    wallpaper_photos`: unlabelled, never evaluated; resized to a shorter side of 256, centre crop 224, as
    the library's), followed by ``n_aug`` augmented crops of the same photos (10, or 37 with ``wallpapers``;
    :func:`hwsim.models.mobilenet_qat.augment_photos`: random resized crops of 8-100 % of the area, flips,
    colour jitter; generator seeded with ``seed``). Never an evaluation photo.

    Returns
    -------
    numpy.ndarray of float32, shape (10 + n_aug, 3, 224, 224), or (37 + n_aug, ...) with ``wallpapers``
        A new array (writing to it changes nothing cached).

    Raises
    ------
    ValueError
        ``n_aug`` or ``seed`` not an integer >= 0, ``wallpapers`` not a bool.
    MissingDependency
        As :func:`hwsim.models.mobilenet_v2.library_sets`; with ``wallpapers``, fewer than the 27 wallpaper
        photos installed (the message gives the ``apt-get install`` command).
    """
    from . import mobilenet_v2 as mb
    from ._photos import LOMIRI, PLASMA, photos, wallpaper_photos
    from .mobilenet_qat import augment_photos

    if isinstance(n_aug, (bool, np.bool_)) or not isinstance(n_aug, numbers.Integral) or n_aug < 0:
        raise ValueError(f"calibration_pool: n_aug: expected an integer >= 0, found {n_aug!r}")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"calibration_pool: seed: expected an integer >= 0, found {seed!r}")
    if not isinstance(wallpapers, (bool, np.bool_)):
        raise ValueError(f"calibration_pool: wallpapers: expected true or false, found {wallpapers!r}")
    n_aug, seed, wallpapers = int(n_aug), int(seed), bool(wallpapers)
    parts = [mb.library_sets()[1].copy()]   # library_sets is cached: the caller gets its own array
    raw = [img for i, (_, img) in enumerate(photos()) if not i % 4]   # library_sets' calibration split
    if wallpapers:
        extra = [img for _, img in wallpaper_photos(len(LOMIRI) + len(PLASMA))]
        parts.append(mb.centre_crops(extra))
        raw += extra
    if n_aug:
        parts.append(augment_photos(raw, n_aug, 224, np.random.default_rng(seed)))
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _runs() -> tuple:
    from ._engine import PTQConfig
    from .block_recon import BlockReconConfig

    base = dict(equalize=True, bias_correction=True)
    cle = PTQConfig("per-channel + CLE + BC", **base)
    layer = PTQConfig("+ AdaRound, layer-wise (float inputs)", adaround=True, adaround_iters=200, **base)
    seq = PTQConfig("+ AdaRound, sequential (quantized inputs)", adaround=True, adaround_iters=200,
                    sequential=True, **base)
    seq_fast = PTQConfig("+ AdaRound, sequential, lr 5e-2, 16,384 rows", adaround=True, adaround_iters=200,
                         adaround_lr=5e-2, adaround_rows=16384, sequential=True, **base)
    recon = BlockReconConfig(init="codes", lr_bias=0.0, freeze=("classifier.1",))
    all4, ends8 = (c for c, _ in CONVENTIONS)
    runs = []
    for conv in (all4, ends8):
        runs += [PtqRun(conv, cle.name, cle), PtqRun(conv, layer.name, layer), PtqRun(conv, seq.name, seq)]
        seeds = (0, 1, 2) if conv == all4 else (0,)
        runs += [PtqRun(conv, seq_fast.name, seq_fast, 54, s) for s in seeds]
        if conv == all4:
            runs += [PtqRun(conv, seq_fast.name, seq_fast, 54, s, wallpapers=True) for s in seeds]
    runs.append(PtqRun(all4, seq_fast.name + " + block reconstruction (BRECQ; classifier kept)", seq_fast, 54,
                       0, recon))
    return tuple(runs)


#: A function returning the section's cells, a tuple of :class:`PtqRun` (built on call: the configs import
#: the engine).
RUNS = _runs


def _cell(task) -> dict:
    """Build and measure one :class:`PtqRun` (a worker process's job)."""
    run, ref, ref_views = task
    from . import mobilenet_v2 as mb
    from ._engine import QuantizedNetwork
    from .mobilenet_qat import qat_evaluate

    w8 = dict(CONVENTIONS)[run.convention]
    net = mb.build_network()
    bits = {n: (8, 8) if n in w8 else (4, 8) for n in net.layers}
    pool = calibration_pool(run.pool_aug, run.seed, wallpapers=run.wallpapers)
    t0 = time.perf_counter()
    q = QuantizedNetwork(net, bits, pool, run.config, seed=run.seed)
    if run.recon is not None:
        from .block_recon import block_reconstruct

        q = block_reconstruct(q, pool, run.recon)
    t1 = time.perf_counter()
    r = qat_evaluate(q, mb.library_sets()[0], ref)
    rv = mb.quality(q.run(mb.library_views()), ref_views)
    return {"centre": r, "views": rv, "build_s": t1 - t0, "eval_s": time.perf_counter() - t1,
            "n_pool": int(len(pool))}


def mobilenet_ptq_rows(log=print, *, workers: int = 1) -> dict:
    """Build and measure every cell of :data:`RUNS`.

    Parameters
    ----------
    log : callable
        Called with one line per finished cell.
    workers : int
        Processes building cells in parallel (spawned; each holds a pool's float tensors). The wallpaper
        cells (a 91-image pool: 12.5 GB resident, measured) run one at a time after the others.

    Returns
    -------
    dict
        ``rows``: list of ``(PtqRun, result)`` in :data:`RUNS` order, result as :func:`_cell` (``centre``:
        :func:`hwsim.models.mobilenet_v2.quality` plus ``bit_exact`` on the 30 centre crops; ``views``: the
        same on the 300 views; build and evaluation seconds; pool size); ``n_eval``, ``n_calib``,
        ``n_views``; ``skipped``: why cells were left out (the wallpaper packages missing), else "".
    """
    from . import mobilenet_v2 as mb
    from ._base import MissingDependency
    from ._photos import LOMIRI, PLASMA, wallpaper_photos

    net = mb.build_network()
    ev, cal, _, _ = mb.library_sets()
    views = mb.library_views()
    ref, ref_views = net.forward(ev), net.forward(views)
    runs = list(RUNS())
    out = {"rows": [], "n_eval": len(ev), "n_calib": len(cal), "n_views": len(views), "skipped": "",
           "workers": workers}
    try:   # checked before any cell: a missing package drops its cells, not the section
        wallpaper_photos(len(LOMIRI) + len(PLASMA))
    except MissingDependency as e:
        runs = [r for r in runs if not r.wallpapers]
        out["skipped"] = f"the wallpaper-photo cells were skipped: {e}"
        log(out["skipped"])
    tasks = [(run, ref, ref_views) for run in runs]
    done: dict[int, dict] = {}

    def record(i, res):
        run = runs[i]
        done[i] = res
        c, v = res["centre"], res["views"]
        log(f"{run.convention} | {run.label} (pool {res['n_pool']}, seed {run.seed}): "
            f"{c['top1_agreement'] * 100:.1f} % / {c['logit_sqnr_db']:.2f} dB / top-5 "
            f"{c['top5_agreement'] * 100:.1f} %; views {v['top1_agreement'] * 100:.1f} % / "
            f"{v['logit_sqnr_db']:.2f} dB; build {res['build_s']:.0f} s")

    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: numba's GNU OpenMP threading layer aborts a forked child. The wallpaper cells
        # (12.5 GB each) run one at a time after the others
        ctx = multiprocessing.get_context("spawn")
        for group, n in (([i for i, r in enumerate(runs) if not r.wallpapers], workers),
                         ([i for i, r in enumerate(runs) if r.wallpapers], 1)):
            if group:
                with ProcessPoolExecutor(n, mp_context=ctx) as ex:
                    for i, res in zip(group, ex.map(_cell, [tasks[i] for i in group]), strict=True):
                        record(i, res)
    else:
        for i, t in enumerate(tasks):
            record(i, _cell(t))
    out["rows"] = [(runs[i], done[i]) for i in range(len(runs))]
    return out


def _pool_label(run) -> str:
    photos = "10 photos + 27 wallpaper photos" if run.wallpapers else "10 photos"
    return photos if not run.pool_aug else f"{photos} + {run.pool_aug} crops (seed {run.seed})"


def _mean(rows, key: str, metric: str) -> float:
    return float(np.mean([r[key][metric] for _, r in rows]))


def _triple(d: dict) -> str:
    return f"{d['top1_agreement'] * 100:.1f} / {d['logit_sqnr_db']:.2f} / {d['top5_agreement'] * 100:.1f}"


def render_mobilenet_ptq(res: dict, seconds: float) -> str:
    """The markdown section (with its markers) for :func:`mobilenet_ptq_rows`' result."""
    intro = (
        f"Produced by `python -m hwsim.models.quality_table --ptq-mobilenet` ({seconds / 60:.0f} min on this "
        f"machine, {res.get('workers', 1)} process(es) on 2 shared cores). Cells: top-1 agreement with the "
        "float model (%) / logit "
        f"SQNR (dB) / top-5 agreement (%) on the {res['n_eval']} centre crops of the evaluation photos of "
        f"the {res['n_eval'] + res['n_calib']}-photo library (one photo is {100 / res['n_eval']:.1f} "
        f"points), the same on their {res['n_views']} views (`mobilenet_v2.library_views`: 4 corners, centre "
        "and mirrors of each photo; an agreement averaged over ten inputs per photo), and the time to build "
        f"the integer network (calibration, AdaRound, reconstruction) from the {res['n_calib']} calibration "
        "photos (37 with the wallpaper photos). Every centre-crop cell is the integer network on the "
        "datapath (32-bit accumulators, onnxruntime's requantization), checked bit for bit against "
        "`hwsim.models.mobilenet_qat.integer_forward` before it was written; the views are the same network "
        "on the datapath. Weights symmetric per output channel (4-bit: codes -7..7), activations 8-bit "
        "asymmetric per tensor (min/max over the calibration images). AdaRound: 200 Adam steps per layer, "
        "lr 1e-2 unless stated (5e-2 lets the rounding variables saturate in 200 steps). Sequential: the "
        "layers are quantized in order, each AdaRound-ed and bias-corrected on the *quantized* network's "
        "calibration activations (`PTQConfig(sequential=True)`). Crops: `_mnv2_ptq_table.calibration_pool`, "
        "augmented crops of the same 10 calibration photos (random resized crops, flips, colour jitter), "
        "never an evaluation photo; with the wallpaper photos, the 27 photographs of Debian's lomiri and "
        "plasma wallpaper packages (`hwsim.models._photos.wallpaper_photos`, unlabelled, never evaluated) "
        "join the 10 as centre crops and as sources of the crops. Block reconstruction: "
        "`hwsim.models.block_recon` (BRECQ, Li et al. 2021) from the sequential start's codes, 300 steps of "
        "8 pool images per block, biases and the classifier kept. The float network accumulates in float64 "
        "(`Network.accumulate`), so no cell "
        "depends on the BLAS thread count. Discussion: docs/qat.md, \"More calibration crops, a saturating "
        "AdaRound learning rate, block reconstruction, 300 views\" and \"Where MobileNetV2's W4A8 SQNR "
        "goes\".")
    lines = [BEGIN, "", "## MobileNetV2 W4A8: layer-wise against sequential PTQ", "", intro, ""]
    if res.get("skipped"):
        lines += [f"Not measured here: {res['skipped']}.", ""]
    for conv, _ in CONVENTIONS:
        lines += [f"**{conv}**", "",
                  "| method | calibration | centre crops: agreement / SQNR / top-5 | "
                  "300 views: agreement / SQNR / top-5 | build |", "|---|---|---:|---:|---:|"]
        rows = [(run, r) for run, r in res["rows"] if run.convention == conv]
        # the seeds of one recipe and pool (the crop pool alone, or with the wallpapers) are averaged together
        groups: dict = {}
        for run, r in rows:
            if run.pool_aug and run.recon is None:
                groups.setdefault((run.label, run.pool_aug, run.wallpapers), []).append((run, r))
        for run, r in rows:
            lines.append(f"| {run.label} | {_pool_label(run)} | {_triple(r['centre'])} | "
                         f"{_triple(r['views'])} | {r['build_s']:.0f} s |")
            seeded = groups.get((run.label, run.pool_aug, run.wallpapers), []) if run.recon is None else []
            if len(seeded) > 1 and run is seeded[-1][0]:   # the mean right under the seeds it averages
                metrics = ("top1_agreement", "logit_sqnr_db", "top5_agreement")
                means = {k: {m: _mean(seeded, k, m) for m in metrics} for k in ("centre", "views")}
                lines.append(f"| mean of the {len(seeded)} seeds above | | {_triple(means['centre'])} | "
                             f"{_triple(means['views'])} | |")
        lines.append("")
    lines += [host_line(), "",
              END]
    return "\n".join(lines)
