"""Mixed-precision policies chosen by the ILP for each hardware point of a sweep (``precision.ilp``).

For every hardware point: each layer's cost at each bit option comes from hwsim's own models on that hardware
(cycles and energy per layer, weight bytes, BOPS = MACs x b_w x b_a as in HAWQ-V3); the budgets are fractions
of the uniform reference policy's cost there; :func:`hwsim.explore._ilp.solve_mixed_precision` picks the bits;
the chosen policy becomes a design point that the sweep then runs bit-accurately for its real quality. A
layer's cost is taken with its outputs at its own activation width (the ILP does not know the next layer's);
the design point is then simulated exactly. Every ILP run is listed in ``ilp.csv`` with its status.
"""

from __future__ import annotations

import csv
import itertools
import logging
import math
from pathlib import Path
from typing import Any

from .._pipeline import simulate_workload
from ..errors import Found, InfeasibleError, SpecError
from ._ilp import LayerOption, solve_mixed_precision
from ._quality import QUALITY_MODELS
from ._spec import DesignPoint, ResolvedSweep

__all__ = ["expand_ilp", "layer_costs", "measured_sensitivity"]

log = logging.getLogger(__name__)


def layer_costs(rs: ResolvedSweep, hw: dict[str, Any], bits: tuple[int, int]) -> dict[str, dict[str, float]]:
    """Per-layer ``total_cycles``, ``energy_pj``, ``weight_bytes`` and ``bops`` with every layer at ``bits``.

    Raises
    ------
    InfeasibleError
        The hardware cannot take these bits.
    """
    arch = rs.arch_for(hw)
    names = [layer.name for layer in rs.workload.layers]
    res = simulate_workload(arch, rs.workload_for(hw), bits={n: bits for n in names}, source=rs.source)
    out = {}
    for layer, row in zip(rs.workload.layers, res.rows):
        g = layer.gemm
        out[layer.name] = {"total_cycles": float(row["total_cycles"]), "energy_pj": float(row["energy_pj"]),
                           "weight_bytes": float(math.ceil(g.k * g.n * g.groups * bits[0] / 8)),
                           "bops": float(g.macs * bits[0] * bits[1])}
    return out


def measured_sensitivity(rs: ResolvedSweep, options: list[tuple[int, int]], reference: tuple[int, int],
                         ) -> list[dict[str, Any]]:
    """Loss of the quality metric with one layer at an option and every other at ``reference``, run
    bit-accurately: ``sensitivity = metric(all at reference) - metric(layer at option)`` (higher metric is
    better). One row per layer and option."""
    qm = QUALITY_MODELS[rs.spec.quality]
    names = [layer.name for layer in rs.workload.layers]
    pe = rs.arch.pe
    base = qm.evaluate({n: reference for n in names}, acc_bits=pe.acc_bits, acc_mode=pe.acc_mode)[qm.metric]
    rows = []
    for n in names:
        for o in options:
            if tuple(o) == tuple(reference):
                m = base
            else:
                bits = {k: (tuple(o) if k == n else reference) for k in names}
                m = qm.evaluate(bits, acc_bits=pe.acc_bits, acc_mode=pe.acc_mode)[qm.metric]
            rows.append({"layer": n, "weight_bits": o[0], "act_bits": o[1], "sensitivity": base - m,
                         qm.metric: m})
    return rows


def _read_sensitivity(path: Path, names: list[str], column: str = "sensitivity",
                      reference: tuple[int, int] = (8, 8)) -> dict[tuple[str, tuple[int, int]], float]:
    out = {}
    with path.open() as f:
        r = csv.DictReader(f)
        need = {"layer", "weight_bits", "act_bits", column}
        if not r.fieldnames or not need <= set(r.fieldnames):
            raise SpecError(str(path), "", f"a CSV with columns {sorted(need)}", r.fieldnames)
        for i, row in enumerate(r, start=2):
            if row["layer"] not in names:
                raise SpecError(str(path), f"row {i}.layer", "a layer of the workload", row["layer"])
            try:
                key = (row["layer"], (int(row["weight_bits"]), int(row["act_bits"])))
                out[key] = float(row[column])
            except ValueError:
                raise SpecError(str(path), f"row {i}", f"integer bits and a numeric {column}", row) from None
    if column == "sqnr_db":  # the noise-to-signal ratio each option adds to that of the reference
        ref = {n: out.get((n, tuple(reference))) for n in names}
        missing = [n for n, v in ref.items() if v is None]
        if missing:
            raise SpecError(str(path), "", f"a row at the reference bits {tuple(reference)} for every layer "
                            "(to turn SQNR into added noise)", Found(f"none for {missing[:3]}"))
        out = {(n, b): 10 ** (-v / 10) - 10 ** (-ref[n] / 10) for (n, b), v in out.items()}
    return out


def expand_ilp(rs: ResolvedSweep, out_dir: Path) -> ResolvedSweep:
    """Add one design point per hardware point and ILP budget; write ``sensitivity.csv`` (when measured) and
    ``ilp.csv``. Deterministic: the same spec gives the same points (a resumed sweep reuses
    ``sensitivity.csv``)."""
    ilp = rs.spec.precision.ilp
    if ilp is None:
        return rs
    names = [layer.name for layer in rs.workload.layers]
    options = [tuple(o) for o in ilp.options]
    sens_path = out_dir / "sensitivity.csv"
    if ilp.sensitivity == "measured":
        if not sens_path.is_file():
            rows = measured_sensitivity(rs, options, tuple(ilp.reference))
            with sens_path.open("w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
                w.writeheader()
                w.writerows(rows)
        sens = _read_sensitivity(sens_path, names)
    else:
        sens = _read_sensitivity(Path(rs.source).parent / ilp.sensitivity, names, ilp.sensitivity_column,
                                 tuple(ilp.reference))
    negative = {k: v for k, v in sens.items() if v < 0}
    if negative:  # a measured gain is noise around zero: no loss, said once rather than per ILP
        log.warning("%d of %d sensitivities are negative (quantizing those layers measured no loss); treated "
                    "as 0, e.g. %s", len(negative), len(sens), next(iter(negative)))
        sens = {k: max(v, 0.0) for k, v in sens.items()}
    keys = list(rs.spec.axes)
    combos = list(itertools.product(*(rs.spec.axes[k] for k in keys))) if keys else [()]
    points = list(rs.points)
    runs = []
    for hw_vals in combos:
        hw = dict(zip(keys, hw_vals))
        hw_id = ",".join(f"{k}={v}" for k, v in hw.items())
        costs = {}
        for o in options:
            try:
                costs[o] = layer_costs(rs, hw, o)
            except InfeasibleError as e:
                log.info("ILP at %s: option %s infeasible: %s", hw_id, o, e)
        try:
            ref = layer_costs(rs, hw, tuple(ilp.reference))
        except InfeasibleError as e:
            runs.append({"hw": hw_id, "budget": "", "status": f"reference infeasible: {e}"})
            continue
        layer_opts = {n: [LayerOption(n, o, sens.get((n, o), math.nan), c[n]) for o, c in costs.items()
                          if not math.isnan(sens.get((n, o), math.nan))] for n in names}
        for cost, fractions in ilp.budgets.items():
            ref_total = sum(v[cost] for v in ref.values())
            for frac in fractions:
                label = f"{cost}<={frac:g}x W{ilp.reference[0]}A{ilp.reference[1]}"
                if any(not v for v in layer_opts.values()):
                    runs.append({"hw": hw_id, "budget": label, "status": "a layer has no usable option"})
                    continue
                r = solve_mixed_precision(layer_opts, {cost: frac * ref_total})
                runs.append({"hw": hw_id, "budget": label, "status": r.status, "budget_value": frac * ref_total,
                             "predicted_cost": r.costs.get(cost, ""), "predicted_sensitivity": r.sensitivity,
                             "bits": "" if r.bits is None else ", ".join(f"{k} {w}/{a}"
                                                                          for k, (w, a) in r.bits.items())})
                if r.bits is None:
                    continue
                pid = f"{hw_id}|ilp:{label}" if hw_id else f"ilp:{label}"
                points.append(DesignPoint(index=len(points), point_id=pid, hw=hw, policy=f"ilp:{label}",
                                          bits={n: r.bits[n] for n in names}))
    cols = ["hw", "budget", "status", "budget_value", "predicted_cost", "predicted_sensitivity", "bits"]
    with (out_dir / "ilp.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        w.writerows(runs)
    return rs.model_copy(update={"points": tuple(points)})
