"""The whole pipeline in one place: spec -> bits -> mapping -> event model -> energy -> results.

Each stage is a plain function of the one before (``../shared/DESIGN.md``, "One picture"):

1. resolve each layer's (weight_bits, act_bits, out_bits)          ``resolve_bits``
2. map the layer onto the array: folds, cycles, accesses, bytes    :func:`hwsim.mapping.map_layer`
3. run the SimPy event model over its tiles: stalls, total cycles  :func:`hwsim.sim.simulate_tiles`
4. price every action                                              :func:`hwsim.energy.layer_energy`
5. collect one row per layer and the totals                        :class:`SimResult`
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from .energy import (ActionEnergies, AreaBreakdown, EnergyRecord, action_energies, area_breakdown, energy_components,
                     layer_energy)
from .errors import SpecError
from .mapping import LayerMapping, map_layer
from .sim import LayerTiming, simulate_tiles, split_even
from .spec import ArchSpec, Workload

__all__ = ["SimResult", "resolve_bits", "simulate_workload", "layer_columns", "BASE_COLUMNS", "bandwidth_columns",
           "bandwidth_rows"]

BASE_COLUMNS = (
    "layer", "op", "m", "k", "n", "groups", "macs", "weight_bits", "act_bits", "out_bits", "dataflow",
    "row_folds", "col_folds", "folds", "m_tiles", "n_tiles", "fill_cycles", "steady_cycles", "drain_cycles",
    "compute_cycles", "onchip_stall_cycles", "dram_stall_cycles", "stall_cycles", "total_cycles", "latency_us",
    "utilization", "compute_utilization", "peak_macs_per_cycle", "mapping_efficiency", "start_cycle",
    "stop_cycle", "sram_ifmap_reads", "sram_filter_reads", "sram_ofmap_writes",
    "sram_ofmap_reads", "dram_ifmap_read_bytes", "dram_filter_read_bytes", "dram_read_bytes",
    "dram_ofmap_write_bytes", "dram_write_bytes",
)


def layer_columns(arch: ArchSpec) -> list[str]:
    """Columns of ``layers.csv`` for an arch: the base columns, bytes read from and written to each on-chip
    level, the total energy and one ``energy_<component>_pj`` per component (mac, each level, requant)."""
    levels = [lv.name for lv in arch.memory.hierarchy() if lv.kind != "dram"]
    return [*BASE_COLUMNS, *(f"{lv}_{d}_bytes" for lv in levels for d in ("read", "write")), "energy_pj",
            *(f"energy_{c}_pj" for c in energy_components(arch))]


@dataclass
class SimResult:
    """What ``hwsim simulate`` computes: one row per layer (:func:`layer_columns`) and the totals.

    Units are in the column names or documented: cycles are array clock cycles, energies pJ, bytes bytes,
    SRAM reads/writes operand elements (``*_accesses``: accesses of the buffer's word), utilization a fraction.
    """

    arch: ArchSpec
    workload: Workload
    bits: dict[str, tuple[int, int, int]]
    rows: list[dict[str, Any]]
    energy_records: list[dict[str, Any]]
    energies: ActionEnergies
    model_cpu_s: float
    totals: dict[str, float] = field(default_factory=dict)
    area: AreaBreakdown | None = None


def resolve_bits(workload: Workload, *, bits: dict[str, tuple[int, int]] | None = None,
                 weight_bits: int | None = None, act_bits: int | None = None,
                 source: str = "<bits>") -> dict[str, tuple[int, int, int]]:
    """Each layer's (weight_bits, act_bits, out_bits).

    Precedence: ``bits[layer]`` > uniform ``weight_bits``/``act_bits`` > the layer's own > the workload's
    defaults. A layer's outputs are written at the next layer's act_bits (the last layer: its own act_bits):
    layers are taken as a chain in file order.

    Raises
    ------
    SpecError
        ``bits`` names a layer the workload does not have.
    """
    bits = bits or {}
    names = [layer.name for layer in workload.layers]
    for k in bits:
        if k not in names:
            raise SpecError(source, k, f"a layer of workload {workload.name!r} ({', '.join(names[:6])}"
                            f"{', ...' if len(names) > 6 else ''})", k)
    wa: list[tuple[int, int]] = []
    for layer in workload.layers:
        w, a = workload.bits(layer)
        if weight_bits is not None:
            w = weight_bits
        if act_bits is not None:
            a = act_bits
        if layer.name in bits:
            w, a = bits[layer.name]
        wa.append((int(w), int(a)))
    out: dict[str, tuple[int, int, int]] = {}
    for i, name in enumerate(names):
        nxt = wa[i + 1][1] if i + 1 < len(wa) else wa[i][1]
        out[name] = (wa[i][0], wa[i][1], nxt)
    return out


def _onchip_cycles(m: LayerMapping, arch: ArchSpec) -> int:
    """Cycles the layer's on-chip traffic needs at least: its bits over each shared level's bandwidth."""
    need = 0.0
    for lv in arch.memory.hierarchy():
        if lv.kind == "dram" or lv.instances != "shared":
            continue
        r, w = sum(m.traffic.reads[lv.name].values()), sum(m.traffic.writes[lv.name].values())
        need = max(need, r / lv.read_bw if r else 0.0, w / lv.write_bw if w else 0.0)
    return math.ceil(need)


def _timing(m: LayerMapping, arch: ArchSpec) -> LayerTiming:
    n = max(1, min(m.folds, arch.timing.max_tiles_per_layer))
    dram = arch.memory.dram_level
    onchip = _onchip_cycles(m, arch)
    return simulate_tiles(split_even(m.compute_cycles, n), split_even(m.dram_read_bytes, n),
                          split_even(m.dram_write_bytes, n), bandwidth_bytes_per_cycle=dram.read_bw / 8,
                          double_buffered=dram.double_buffered or arch.memory.double_buffered,
                          onchip_cycles=split_even(onchip, n) if onchip else None, engine=arch.timing.engine)


def simulate_workload(arch: ArchSpec, workload: Workload, *, bits: dict[str, tuple[int, int]] | None = None,
                      weight_bits: int | None = None, act_bits: int | None = None,
                      source: str = "<arch>") -> SimResult:
    """Time and price every layer of ``workload`` on ``arch``.

    Raises
    ------
    SpecError, InfeasibleError
        Bits that name no layer, or operand widths the PE cannot take.
    """
    if arch.timing.engine == "analytic":
        from .sim import warm_up

        warm_up()  # numba's cache load is start-up, not model time
    else:
        import simpy  # noqa: F401  (an import is start-up, not model time)
    action_energies(arch, source=source)  # reads and checks the technology table once (cached): start-up
    t0 = time.process_time()
    resolved = resolve_bits(workload, bits=bits, weight_bits=weight_bits, act_bits=act_bits)
    ae = action_energies(arch, source=source)
    comps = energy_components(arch)
    onchip_levels = [lv.name for lv in arch.memory.hierarchy() if lv.kind != "dram"]
    R, C = arch.array.rows, arch.array.cols
    rows: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    start = 0
    for layer in workload.layers:
        w, a, o = resolved[layer.name]
        m = map_layer(layer, arch, weight_bits=w, act_bits=a, out_bits=o, where=source)
        tm = _timing(m, arch)
        cycles_taken = tm.total_cycles + (m.groups if arch.timing.convention == "scalesim" else 0)
        wz, az = workload.asymmetric(layer)
        recs: list[EnergyRecord] = layer_energy(m, arch, ae, weight_zero_point=wz, act_zero_point=az)
        by_comp = {c: 0.0 for c in comps}
        for r in recs:
            by_comp[r.component] += r.energy_pj
            records.append({"layer": m.layer, "component": r.component, "operand": r.operand,
                            "action": r.action, "count": r.count, "unit": r.unit, "pj_each": r.pj_each,
                            "energy_pj": r.energy_pj})
        peak = R * C * m.precision.macs_per_pe_cycle / m.precision.cycles_per_step
        tr = m.traffic
        row: dict[str, Any] = {
            "layer": m.layer, "op": m.op, "m": m.m, "k": m.k, "n": m.n, "groups": m.groups, "macs": m.macs,
            "weight_bits": w, "act_bits": a, "out_bits": o, "dataflow": m.dataflow,
            "row_folds": m.row_folds, "col_folds": m.col_folds, "folds": m.folds, "m_tiles": m.m_tiles,
            "n_tiles": m.n_tiles, "fill_cycles": m.fill_cycles, "steady_cycles": m.steady_cycles,
            "drain_cycles": m.drain_cycles, "compute_cycles": tm.compute_cycles,
            "onchip_stall_cycles": tm.onchip_stall_cycles, "dram_stall_cycles": tm.dram_stall_cycles,
            "stall_cycles": tm.stall_cycles, "total_cycles": tm.total_cycles,
            "latency_us": tm.total_cycles / arch.clock_mhz,
            # against the cycles counted (the scalesim convention reports one less per GEMM than it takes)
            "utilization": m.macs / (cycles_taken * peak) if cycles_taken else 0.0,
            # SCALE-Sim's "Compute Util": the same without the stall cycles
            "compute_utilization": (m.macs / ((cycles_taken - tm.stall_cycles) * peak)
                                    if cycles_taken > tm.stall_cycles else 0.0),
            "peak_macs_per_cycle": peak,
            "mapping_efficiency": m.mapping_efficiency,
            # layers run back to back (SCALE-Sim keeps no data on chip between layers either): a layer occupies
            # cycles [start_cycle, stop_cycle) of the workload
            "start_cycle": start, "stop_cycle": start + tm.total_cycles,
            "sram_ifmap_reads": m.sram_ifmap_reads, "sram_filter_reads": m.sram_filter_reads,
            "sram_ofmap_writes": m.sram_ofmap_writes, "sram_ofmap_reads": m.sram_ofmap_reads,
            "dram_ifmap_read_bytes": tr.dram_read_bytes("ifmap"), "dram_filter_read_bytes": tr.dram_read_bytes("filter"),
            "dram_read_bytes": m.dram_read_bytes, "dram_ofmap_write_bytes": tr.dram_write_bytes("ofmap"),
            "dram_write_bytes": m.dram_write_bytes,
        }
        for lv in onchip_levels:
            row[f"{lv}_read_bytes"] = -(-sum(tr.reads[lv].values()) // 8)
            row[f"{lv}_write_bytes"] = -(-sum(tr.writes[lv].values()) // 8)
        row["energy_pj"] = sum(by_comp.values())
        row.update({f"energy_{c}_pj": by_comp[c] for c in comps})
        rows.append(row)
        start += tm.total_cycles
    cpu = time.process_time() - t0
    res = SimResult(arch=arch, workload=workload, bits=resolved, rows=rows, energy_records=records, energies=ae,
                    model_cpu_s=cpu,
                    area=area_breakdown(arch, source=source))
    res.totals = _totals(res)
    return res


def bandwidth_columns(arch: ArchSpec) -> list[str]:
    """Columns of ``bandwidth.csv`` for an arch (:func:`bandwidth_rows`)."""
    cols = ["layer", "total_cycles", "compute_cycles"]
    for lv in arch.memory.hierarchy():
        for d in ("read", "write"):
            cols += [f"{lv.name}_{d}_avg_bytes_per_cycle", f"{lv.name}_{d}_peak_bytes_per_cycle"]
    cols += [f"dram_{op}_{d}_avg_bytes_per_cycle" for op, d in (("ifmap", "read"), ("filter", "read"),
                                                               ("ofmap", "write"))]
    return cols


def bandwidth_rows(res: SimResult) -> list[dict[str, Any]]:
    """Bytes per cycle through every memory level, per layer (SCALE-Sim's BANDWIDTH_REPORT, in bytes).

    ``<level>_<read|write>_avg_bytes_per_cycle``: the layer's bytes over its ``total_cycles`` (SCALE-Sim's
    "Avg ... SRAM BW" is accesses / total cycles, ``single_layer_sim.py: calc_report_data``; its DRAM average
    divides by the DRAM's own start-to-stop window, which in hwsim's double-buffered schedule spans the
    layer). ``..._peak_bytes_per_cycle``: the bytes over the ``compute_cycles`` only: the rate the level must
    sustain for the layer to run without a stall. The event model spreads a layer's traffic evenly over its
    tiles (:mod:`hwsim.sim`), so this is the highest rate it has within a layer; a cycle-level trace (SCALE-Sim's
    ``*_TRACE.csv``) would show bursts above it. ``dram_<operand>_..._avg``: SCALE-Sim's per-operand DRAM
    columns (ifmap and filter reads, ofmap writes). Units: bytes per array clock cycle.
    """
    levels = [lv.name for lv in res.arch.memory.hierarchy()]
    out = []
    for r in res.rows:
        t, c = r["total_cycles"], r["compute_cycles"]
        b = {"layer": r["layer"], "total_cycles": t, "compute_cycles": c}
        for lv in levels:
            for d in ("read", "write"):
                n = r[f"dram_{d}_bytes"] if lv == "dram" else r[f"{lv}_{d}_bytes"]
                b[f"{lv}_{d}_avg_bytes_per_cycle"] = n / t if t else 0.0
                b[f"{lv}_{d}_peak_bytes_per_cycle"] = n / c if c else 0.0
        for op, d in (("ifmap", "read"), ("filter", "read"), ("ofmap", "write")):
            b[f"dram_{op}_{d}_avg_bytes_per_cycle"] = r[f"dram_{op}_{d}_bytes"] / t if t else 0.0
        out.append(b)
    return out


def _totals(res: SimResult) -> dict[str, float]:
    rows = res.rows
    s = {k: sum(r[k] for r in rows) for k in (
        "macs", "compute_cycles", "stall_cycles", "total_cycles", "dram_read_bytes", "dram_write_bytes",
        "sram_ifmap_reads", "sram_filter_reads", "sram_ofmap_writes", "onchip_stall_cycles", "dram_stall_cycles",
        "energy_pj", *(f"energy_{c}_pj" for c in energy_components(res.arch)))}
    arch = res.arch
    s["latency_us"] = s["total_cycles"] / arch.clock_mhz
    s["utilization"] = (sum(r["utilization"] * r["total_cycles"] for r in rows) / s["total_cycles"]
                        if s["total_cycles"] else 0.0)
    s["pj_per_mac"] = s["energy_pj"] / s["macs"] if s["macs"] else 0.0
    # TOPS/W = (2 ops per MAC) / (energy per MAC): 2 / (pJ/MAC) gives TOPS/W
    s["tops_per_w"] = 2.0 / s["pj_per_mac"] if s["pj_per_mac"] else 0.0
    # at the arch's clock: achieved and peak throughput, average power (dynamic energy only, no leakage)
    s["tops"] = 2.0 * s["macs"] / (s["latency_us"] * 1e6) if s["latency_us"] else 0.0
    s["peak_tops"] = 2.0 * arch.array.rows * arch.array.cols * arch.clock_mhz * 1e-6
    s["power_mw"] = s["energy_pj"] / s["latency_us"] * 1e-3 if s["latency_us"] else 0.0
    if res.area is not None:
        s.update({f"area_{c}_mm2": v for c, v in res.area.mm2.items()})
        s["area_mm2"] = res.area.total_mm2
    s["model_cpu_s"] = res.model_cpu_s
    return s
