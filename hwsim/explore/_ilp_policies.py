"""Mixed-precision policies chosen by the ILP for each hardware point of a sweep (``precision.ilp``).

For every hardware point: each layer's cost at each bit option comes from hwsim's own models on that hardware
(cycles and energy per layer, weight bytes, BOPS = MACs x b_w x b_a as in HAWQ-V3); the budgets are fractions
of the uniform reference policy's cost there; :func:`hwsim.explore._ilp.solve_mixed_precision` picks the bits;
the chosen policy becomes a design point that the sweep then runs bit-accurately for its real quality. A
layer writes its outputs at the next layer's activation width, so each layer's cost is taken at every output
width the next layer's options can ask for, and the ILP pairs adjacent layers (``_ilp``'s docstring): its
predicted cost is the cost simulated. Each chosen policy is simulated again as the sweep will simulate it
(:func:`hwsim.explore.evaluate_hardware`) and kept only when within budget there; ``ilp.csv`` lists every ILP
run with its status, its predicted and its simulated cost.
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
from ..spec import ArchSpec, Workload
from ._ilp import LayerOption, solve_mixed_precision
from ._quality import quality_model
from ._quality_store import QUALITY_FILE, QualityStore, quality_key
from ._spec import DesignPoint, ResolvedSweep

__all__ = ["expand_ilp", "layer_costs", "layer_options", "measured_sensitivity"]

log = logging.getLogger(__name__)


def layer_costs(arch: ArchSpec, workload: Workload, bits: tuple[int, int], out_bits: int | None = None,
                source: str = "<arch>") -> dict[str, dict[str, float]]:
    """Per-layer ``total_cycles`` (cycles), ``energy_pj`` (pJ), ``weight_bytes`` and ``bops`` with every layer
    at ``bits`` = (weight_bits, act_bits) and its outputs written at ``out_bits`` (default: ``act_bits``).

    Raises
    ------
    InfeasibleError
        The hardware cannot take these bits.
    """
    names = [layer.name for layer in workload.layers]
    o = bits[1] if out_bits is None else out_bits
    res = simulate_workload(arch, workload, bits={n: (bits[0], bits[1], o) for n in names}, source=source)
    out = {}
    for layer, row in zip(workload.layers, res.rows, strict=False):
        g = layer.gemm
        out[layer.name] = {"total_cycles": float(row["total_cycles"]), "energy_pj": float(row["energy_pj"]),
                           "weight_bytes": float(math.ceil(g.k * g.n * g.groups * bits[0] / 8)),
                           "bops": float(g.macs * bits[0] * bits[1])}
    # a non-GEMM node's energy (its DRAM bytes even without a vector unit) is charged to the GEMM layers whose
    # outputs its tensors are (through other non-GEMM nodes), each move at the bits its layer writes: a read
    # or write record to the producing layer of the tensor moved, the ops (and a constant's read) to the
    # producer of its first input, whose bits are the node's
    if res.vector_rows and out:
        graph = workload.graph()
        first_layer = next(iter(out))
        level = {t["tensor"]: t["level"] for t in res.tensor_rows}
        recs: dict[str, list[dict[str, Any]]] = {}
        for r in res.energy_records:
            recs.setdefault(r["layer"], []).append(r)
        root: dict[str, str] = {}
        vi = iter(res.vector_rows)
        for i, nd in enumerate(graph.nodes):
            if nd.name in out:
                root[nd.name] = nd.name
                continue
            ins = graph.inputs[i]
            root[nd.name] = root.get(ins[0], first_layer)
            row = next(vi)
            moves = [*ins, nd.name]
            if arch.vector_unit is None:
                moves = [x for x in moves if level.get(x, "dram") == "dram"]
            mem = [r for r in recs.get(nd.name, []) if r["component"] != "vector"
                   and r["operand"] in ("ifmap", "ofmap")]
            rest = float(row["energy_pj"])
            if len(mem) == len(moves):
                for x, r in zip(moves, mem, strict=True):
                    out[root.get(x, first_layer)]["energy_pj"] += float(r["energy_pj"])
                    rest -= float(r["energy_pj"])
            out[root[nd.name]]["energy_pj"] += rest
    return out


def layer_options(arch: ArchSpec, workload: Workload, options: list[tuple[int, int]],
                  sensitivity: dict[tuple[str, tuple[int, int]], float], source: str = "<arch>",
                  ) -> dict[str, list[LayerOption]]:
    """The ILP's options per layer on one arch: each option that the hardware takes and that has a
    sensitivity, with the layer's costs at every output width the options' act_bits can ask for (an
    infeasible output width is left out of ``costs_by_out_bits``, which forbids that pair).

    ``sensitivity`` maps (layer, (weight_bits, act_bits)) to a loss; a missing or NaN one drops the option."""
    names = [layer.name for layer in workload.layers]
    widths = sorted({o[1] for o in options})  # the output widths a next layer can ask for
    costs: dict[tuple[int, int], dict[int, dict[str, dict[str, float]]]] = {}
    for o in options:
        for ob in [o[1], *(b for b in widths if b != o[1])]:
            try:
                table = layer_costs(arch, workload, o, ob, source)
            except InfeasibleError as e:
                log.info("ILP: option %s with outputs at %d bits infeasible: %s", o, ob, e)
                if ob == o[1]:
                    break
                continue
            costs.setdefault(o, {})[ob] = table
    return {n: [LayerOption(n, o, sensitivity[n, o], c[o[1]][n], {ob: t[n] for ob, t in c.items()})
                for o, c in costs.items() if not math.isnan(sensitivity.get((n, o),
                                                                            math.nan))] for n in names}


def measured_sensitivity(rs: ResolvedSweep, options: list[tuple[int, int]], reference: tuple[int, int],
                         out_dir: Path | None = None) -> list[dict[str, Any]]:
    """Loss of the quality metric with one layer at an option and every other at ``reference``, run
    bit-accurately: ``sensitivity = metric(all at reference) - metric(layer at option)`` (higher metric is
    better). One row per layer and option. With the sweep's ``qat:`` block every run is a QAT training (cached
    under ``out_dir/qat``)."""
    qat = None if rs.spec.qat is None else rs.spec.qat.model_dump(mode="json")
    qm = quality_model(rs.spec.quality, qat, out_dir)
    names = [layer.name for layer in rs.workload.layers]
    pe = rs.arch.pe
    store = None if out_dir is None else QualityStore(Path(out_dir) / QUALITY_FILE)

    def evaluate(bits: dict[str, tuple[int, int]]) -> float:
        """The metric of one run, stored as it completes (a sweep stopped meanwhile keeps it; its policies
        reuse it)."""
        key = quality_key(qm, tuple(bits.items()), pe.acc_bits, pe.acc_mode)
        got = None if store is None else store.get(key)
        if got is None:
            got = qm.evaluate(bits, acc_bits=pe.acc_bits, acc_mode=pe.acc_mode)
            if store is not None:
                got = store.put(key, got)
        return got[qm.metric]

    base = evaluate({n: tuple(reference) for n in names})
    rows = []
    for n in names:
        for o in options:
            if tuple(o) == tuple(reference):
                m = base
            else:
                m = evaluate({k: (tuple(o) if k == n else tuple(reference)) for k in names})
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
    ``sensitivity.csv``). A policy whose simulated cost exceeds its budget (none should: the program is exact)
    is logged and not added."""
    from ._runner import evaluate_hardware  # _runner imports this module lazily: no cycle

    ilp = rs.spec.precision.ilp
    if ilp is None:
        return rs
    names = [layer.name for layer in rs.workload.layers]
    options = [tuple(o) for o in ilp.options]
    sens_path = out_dir / "sensitivity.csv"
    if ilp.sensitivity == "measured":
        if not sens_path.is_file():
            rows = measured_sensitivity(rs, options, tuple(ilp.reference), out_dir)
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
        hw = dict(zip(keys, hw_vals, strict=False))
        hw_id = ",".join(f"{k}={v}" for k, v in hw.items())
        arch, workload = rs.arch_for(hw), rs.workload_for(hw)
        layer_opts = layer_options(arch, workload, options, sens, rs.source)
        try:
            ref = layer_costs(arch, workload, tuple(ilp.reference), source=rs.source)
        except InfeasibleError as e:
            runs.append({"hw": hw_id, "budget": "", "status": f"reference infeasible: {e}"})
            continue
        for cost, fractions in ilp.budgets.items():
            ref_total = sum(v[cost] for v in ref.values())
            for frac in fractions:
                label = f"{cost}<={frac:g}x W{ilp.reference[0]}A{ilp.reference[1]}"
                if any(not v for v in layer_opts.values()):
                    runs.append({"hw": hw_id, "budget": label, "status": "a layer has no usable option"})
                    continue
                bound = frac * ref_total
                r = solve_mixed_precision(layer_opts, {cost: bound})
                run = {"hw": hw_id, "budget": label, "status": r.status, "budget_value": bound,
                       "predicted_cost": r.costs.get(cost, ""), "simulated_cost": "",
                       "predicted_sensitivity": r.sensitivity,
                       "bits": "" if r.bits is None else ", ".join(f"{k} {w}/{a}"
                                                                    for k, (w, a) in r.bits.items())}
                runs.append(run)
                if r.bits is None:
                    continue
                pid = f"{hw_id}|ilp:{label}" if hw_id else f"ilp:{label}"
                pt = DesignPoint(index=len(points), point_id=pid, hw=hw, policy=f"ilp:{label}",
                                 bits={n: r.bits[n] for n in names})
                sim = evaluate_hardware(rs, pt)  # re-check: the cost the sweep will report for this point
                run["simulated_cost"] = sim.get(cost, "")
                if sim["status"] != "ok" or not sim[cost] <= bound:
                    log.warning("ILP at %s, %s: the chosen policy simulates at %s against a budget of %s; "
                                "dropped", hw_id, label, sim.get(cost, sim.get("error")), bound)
                    run["status"] = "over budget when simulated"
                    continue
                points.append(pt)
    cols = ["hw", "budget", "status", "budget_value", "predicted_cost", "simulated_cost",
            "predicted_sensitivity", "bits"]
    with (out_dir / "ilp.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        w.writerows(runs)
    return rs.model_copy(update={"points": tuple(points)})
