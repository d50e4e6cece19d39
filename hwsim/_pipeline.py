"""The whole pipeline in one place: spec -> bits -> mapping -> event model -> energy -> results.

Each stage is a plain function of the one before (``../shared/DESIGN.md``, "One picture"):

1. resolve each layer's (weight_bits, act_bits, out_bits)          ``resolve_bits``
2. map the layer onto the array: folds, cycles, accesses, bytes    :func:`hwsim.mapping.map_layer`
3. run the SimPy event model over its tiles: stalls, total cycles  :func:`hwsim.sim.simulate_tiles`
4. price every action                                              :func:`hwsim.energy.layer_energy`
5. collect one row per layer and the totals                        :class:`SimResult`

With the workload's graph (:meth:`hwsim.spec.Workload.graph`): ``timing.reuse`` other than ``none`` places
every tensor (:func:`hwsim.schedule.schedule_tensors`) and maps again the layers whose input or output stays
on chip (the ``resident`` hook of :func:`hwsim.mapping.map_layer`); the non-GEMM nodes are timed and priced
on the vector unit (:func:`hwsim.mapping.vector_op_counts`, :func:`hwsim.energy.vector_op_energies`); the
nodes are scheduled over the array and the vector unit (:func:`hwsim.sim.schedule_nodes`), and the total
cycles are the makespan (the sum of the layers' cycles when there is no vector unit, as before).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .energy import (
    ActionEnergies,
    AreaBreakdown,
    EnergyRecord,
    action_energies,
    area_breakdown,
    energy_components,
    layer_energy,
    vector_op_energies,
)
from .errors import Found, SpecError
from .mapping import LayerMapping, map_layer, vector_op_counts
from .schedule import TensorPlan, schedule_tensors
from .sim import LayerTiming, schedule_nodes, simulate_tiles, split_even
from .spec import INPUT, ArchSpec, VectorOp, Workload, WorkloadGraph

__all__ = ["SimResult", "resolve_bits", "simulate_workload", "layer_columns", "BASE_COLUMNS",
           "bandwidth_columns", "bandwidth_rows", "VECTOR_COLUMNS", "TENSOR_COLUMNS"]

VECTOR_COLUMNS = ("node", "op", "inputs", "elements", "row", "bits", "arithmetic", "ops_add", "ops_mul",
                  "ops_max", "ops_exp", "ops_divide", "ops_rsqrt", "compute_cycles", "stall_cycles",
                  "total_cycles", "start_cycle", "stop_cycle", "dram_read_bytes", "dram_write_bytes",
                  "onchip_read_bytes", "onchip_write_bytes", "energy_pj", "energy_vector_pj",
                  "energy_memory_pj", "energy_dram_pj")
TENSOR_COLUMNS = ("tensor", "producer", "consumers", "elements", "bits", "bytes", "level", "kind",
                  "from_step",
                  "to_step", "from_cycle", "to_cycle", "lifetime_cycles", "written_bytes", "read_bytes",
                  "dram_write_bytes", "dram_read_bytes")

BASE_COLUMNS = (
    "layer", "op", "m", "k", "n", "groups", "macs", "weight_bits", "act_bits", "out_bits", "dataflow",
    "row_folds", "col_folds", "folds", "m_tiles", "n_tiles", "fill_cycles", "steady_cycles", "drain_cycles",
    "compute_cycles", "onchip_stall_cycles", "dram_stall_cycles", "stall_cycles", "total_cycles",
    "latency_us",
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
    SRAM reads/writes operand elements (``*_accesses``: accesses of the buffer's word), utilization a
    fraction.
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
    vector_rows: list[dict[str, Any]] = field(default_factory=list)
    tensor_rows: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    occupancy: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    core_rows: list[dict[str, Any]] = field(default_factory=list)


def resolve_bits(workload: Workload, *, bits: dict[str, tuple[int, ...]] | None = None,
                 weight_bits: int | None = None, act_bits: int | None = None,
                 source: str = "<bits>") -> dict[str, tuple[int, int, int]]:
    """Each layer's (weight_bits, act_bits, out_bits).

    Precedence: ``bits[layer]`` > uniform ``weight_bits``/``act_bits`` > the layer's own > the workload's
    defaults. A layer's outputs are written at the next layer's act_bits (the last layer: its own act_bits):
    layers are taken as a chain in file order. A ``bits[layer]`` of three values (weight, act, out) sets the
    output width too (used to price a layer at each output width the next layer may choose).

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
    forced_out: dict[str, int] = {}
    for layer in workload.layers:
        w, a = workload.bits(layer)
        if weight_bits is not None:
            w = weight_bits
        if act_bits is not None:
            a = act_bits
        if layer.name in bits:
            w, a, *o = bits[layer.name]
            if o:
                forced_out[layer.name] = int(o[0])
        wa.append((int(w), int(a)))
    out: dict[str, tuple[int, int, int]] = {}
    for i, name in enumerate(names):
        nxt = wa[i + 1][1] if i + 1 < len(wa) else wa[i][1]
        out[name] = (wa[i][0], wa[i][1], forced_out.get(name, nxt))
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
    totals = (m.compute_cycles, m.dram_read_bytes, m.dram_write_bytes, onchip)
    if min(totals) >= 0 and max(totals) < 2**62 // n:  # split_even's formula, the four at once
        parts = np.diff(np.arange(n + 1, dtype=np.int64) * np.array(totals, dtype=np.int64)[:, None] // n,
                        axis=1)
    else:
        parts = [split_even(v, n) for v in totals]
    return simulate_tiles(parts[0], parts[1], parts[2], bandwidth_bytes_per_cycle=dram.read_bw / 8,
                          double_buffered=arch.memory.dma_double_buffered,
                          onchip_cycles=parts[3] if onchip else None, engine=arch.timing.engine)


def simulate_workload(arch: ArchSpec, workload: Workload, *, bits: dict[str, tuple[int, ...]] | None = None,
                      weight_bits: int | None = None, act_bits: int | None = None,
                      source: str = "<arch>") -> SimResult:
    """Time and price every node of ``workload`` on ``arch``.

    Raises
    ------
    SpecError, InfeasibleError
        Bits that name no layer, operand widths the PE cannot take, a buffer too small for one tile, a
        non-GEMM node whose op class the vector unit lacks (naming ``source``, the key and the node).
    """
    if workload.transformer is not None and (weight_bits is not None or act_bits is not None):
        # a uniform override on a generated transformer = the same defaults written in its file: generated
        # again, so the KV cache keeps an explicit kv_bits and attention's activation operands take act_bits
        workload = workload.with_default_bits(weight_bits, act_bits)
        weight_bits = act_bits = None
    if arch.cores is not None:
        from ._multicore import simulate_multicore

        return simulate_multicore(arch, workload, one_core=simulate_workload, make_result=SimResult,
                                  finish=_finish_totals, bits=bits, weight_bits=weight_bits,
                                  act_bits=act_bits, source=source)
    if arch.timing.engine == "analytic":
        from .sim import warm_up

        warm_up()  # numba's cache load is start-up, not model time
    else:
        import simpy  # noqa: F401  (an import is start-up, not model time)
    if arch.timing.reuse != "none":
        import scipy.optimize  # noqa: F401  (start-up)
    action_energies(arch, source=source)  # reads and checks the technology table once (cached): start-up
    t0 = time.process_time()
    graph = workload.graph()
    resolved = resolve_bits(workload, bits=bits, weight_bits=weight_bits, act_bits=act_bits)
    ae = action_energies(arch, source=source)
    comps = energy_components(arch)
    onchip_levels = [lv.name for lv in arch.memory.hierarchy() if lv.kind != "dram"]
    nodes = graph.nodes
    tbits = _tensor_bits(graph, resolved, workload)
    gemm_idx = [i for i, nd in enumerate(nodes) if not isinstance(nd, VectorOp)]
    maps: dict[int, LayerMapping] = {}
    # layers of one shape, bits and residency map, time and price alike (ResNet-50: 54 GEMM layers of 25
    # shapes); each is computed once per call and the others are renamed copies (_LayerMemo)
    memo = _LayerMemo()
    keys: dict[int, tuple | None] = {}
    for i in gemm_idx:
        w, a, o = resolved[nodes[i].name]
        keys[i] = _shape_key(nodes[i], (w, a, o), None)
        maps[i] = memo.mapping(keys[i], nodes[i].name) or memo.put_mapping(keys[i], _with_scales(
            map_layer(nodes[i], arch, weight_bits=w, act_bits=a, out_bits=o, where=source), nodes[i], arch))
    vu = arch.vector_unit
    # the tensor placement (every tensor in DRAM under reuse: none)
    spill = _spill_bits(graph, maps, tbits, priced=vu is not None)
    acc = arch.pe.acc_bits
    operand_bits = {i: {"ifmap": _in_elems(nodes[i]) * maps[i].act_bits,
                        "filter": maps[i].k * maps[i].n * maps[i].groups * maps[i].weight_bits,
                        "ofmap": maps[i].outputs * acc} for i in gemm_idx}
    latency = arch.timing.objective == "latency" and arch.timing.reuse != "none"
    cost = _CycleCost(graph, maps, resolved, memo, arch, source) if latency else None
    plan = schedule_tensors(arch, graph, tensor_bits=tbits, spill_bits=spill, operand_bits=operand_bits,
                            mode=arch.timing.reuse, tile_rows=arch.timing.fused_tile_rows, cycle_cost=cost)
    maps0, keys0 = maps, keys

    def run(plan: TensorPlan) -> SimResult:
        """Map again the layers with resident operands, add the bands' tiles, time, price, schedule."""
        maps, keys = dict(maps0), dict(keys0)
        if arch.timing.reuse != "none":
            for i in gemm_idx:
                res_ = _resident(graph, i, plan)
                if res_:
                    w, a, o = resolved[nodes[i].name]
                    keys[i] = _shape_key(nodes[i], (w, a, o), res_)
                    maps[i] = memo.mapping(keys[i], nodes[i].name) or memo.put_mapping(keys[i], _with_scales(
                        map_layer(nodes[i], arch, weight_bits=w, act_bits=a, out_bits=o, resident=res_,
                                  where=source), nodes[i], arch))
        extra_tiles: dict[int, list[tuple[int, bool]]] = {}
        for t, o in plan.bands().items():
            tn = graph.tensors[t]
            for i in (tn.producer, tn.consumers[0][0]):
                extra_tiles.setdefault(i, []).append((o.tiles, o.refetch_bits > 0))
        restart: dict[int, int] = {}  # fill + drain cycles the bands add to a layer
        for i, tl in extra_tiles.items():
            before = maps[i].fill_cycles + maps[i].drain_cycles
            maps[i] = _tile_costs(maps[i], arch, tl)
            restart[i] = maps[i].fill_cycles + maps[i].drain_cycles - before
            k = keys.get(i)
            keys[i] = None if k is None else (*k, tuple(tl))  # the row memo: the band's tiles are in the key
        band_notes = _band_notes(graph, plan, restart, latency)
        rows: list[dict[str, Any]] = []
        records: list[dict[str, Any]] = []
        durations: list[int] = []
        for i in gemm_idx:
            layer = nodes[i]
            m = maps[i]
            done = memo.row(keys[i], m.layer)
            if done is None:
                done = memo.put_row(keys[i], *_layer_row(layer, m, resolved[layer.name], arch, workload, ae,
                                                         comps, onchip_levels))
            rows.append(done[0])
            records.extend(done[1])
        vrows = _vector_nodes(arch, graph, plan, tbits, ae, records, source)
        # the graph over the units: array and vector unit
        by_node: dict[int, dict[str, Any]] = {}
        for i, r in zip(gemm_idx, rows, strict=True):
            by_node[i] = r
        vi = iter(vrows)
        for i, nd in enumerate(nodes):
            if isinstance(nd, VectorOp):
                by_node[i] = next(vi)
        durations = [int(by_node[i]["total_cycles"]) for i in range(len(nodes))]
        units = ["vector" if isinstance(nd, VectorOp) else "array" for nd in nodes]
        idx = graph.node_index()
        deps = [tuple(sorted({idx[x] for x in graph.inputs[i] if x != INPUT})) for i in range(len(nodes))]
        start, end = schedule_nodes(durations, units, deps, overlap=vu.overlap if vu is not None else True,
                                    engine=arch.timing.engine)
        timeline = []
        for i, nd in enumerate(nodes):
            r = by_node[i]
            r["start_cycle"], r["stop_cycle"] = start[i], end[i]
            timeline.append({"node": nd.name, "unit": units[i], "start_cycle": start[i],
                             "stop_cycle": end[i]})
            busy = int(r.get("dram_busy_cycles", 0))
            if busy:
                timeline.append({"node": nd.name, "unit": "dma", "start_cycle": start[i],
                                 "stop_cycle": start[i] + min(busy, end[i] - start[i])})
        trows = _tensor_rows(graph, plan, tbits, maps, start, end)
        occ = _occupancy(plan, start, end, nodes)
        res = SimResult(arch=arch, workload=workload, bits=resolved, rows=rows, energy_records=records,
                        energies=ae, model_cpu_s=0.0, area=area_breakdown(arch, source=source),
                        vector_rows=vrows,
                        tensor_rows=trows, timeline=timeline, occupancy=occ,
                        notes=list(plan.placement.notes) + band_notes + (
                            [] if vu is not None or len(vrows) == 0 else
                            [f"{len(vrows)} non-GEMM nodes not timed and their compute not priced (the arch "
                             f"has no vector_unit); their DRAM traffic is counted and priced: "
                             f"{_vec_dram(vrows):,} B of the DRAM total, "
                             f"{sum(r.get('energy_dram_pj', 0.0) for r in vrows):,.0f} pJ of the DRAM "
                             f"energy"])
                        + _acc_notes(arch, maps))
        res.totals = _totals(res)
        res.totals["total_cycles"] = max(end) if end else 0
        res.totals["array_cycles"] = sum(r["total_cycles"] for r in rows)
        res.totals["vector_cycles"] = sum(r["total_cycles"] for r in vrows)
        _finish_totals(res)
        return res

    res = run(plan)
    if latency and plan.bands():
        # the bands' cycles were estimated one option at a time (Option.cycles); a layer with its input and
        # output both on chip is not re-timed jointly, so the sum can promise more than the schedule gives.
        # The schedule without bands (inter_layer's placement, same objective) is timed too; the faster wins.
        plan_i = schedule_tensors(arch, graph, tensor_bits=tbits, spill_bits=spill, operand_bits=operand_bits,
                                  mode="inter_layer", cycle_cost=cost)
        res_i = run(plan_i)
        c_f, c_i = res.totals["total_cycles"], res_i.totals["total_cycles"]
        d_f, d_i = (r.totals["dram_read_bytes"] + r.totals["dram_write_bytes"] for r in (res, res_i))
        keep = (c_f, d_f) <= (c_i, d_i)
        note = (f"timing.objective latency: {int(c_f):,} cycles with the {len(plan.bands())} fused bands, "
                f"{int(c_i):,} without (inter_layer's placement): "
                + ("kept the bands" if keep else "kept the schedule without bands (the bands' cycles, "
                   "estimated per tensor, did not add up)"))
        res = res if keep else res_i
        res.notes.append(note)
    res.model_cpu_s = time.process_time() - t0
    res.totals["model_cpu_s"] = res.model_cpu_s
    return res


def _layer_row(layer, m: LayerMapping, bits: tuple[int, int, int], arch: ArchSpec, workload: Workload,
               ae: ActionEnergies, comps, onchip_levels: list[str]) -> tuple[dict[str, Any], list[dict]]:
    """One GEMM layer's row (timing, traffic, energy) and its energy records (dicts)."""
    R, C = arch.array.rows, arch.array.cols
    w, a, o = bits
    tm = _timing(m, arch)
    cycles_taken = tm.total_cycles + (m.groups if arch.timing.convention == "scalesim" else 0)
    wz, az = workload.asymmetric(layer)
    recs: list[EnergyRecord] = layer_energy(m, arch, ae, weight_zero_point=wz, act_zero_point=az)
    records = []
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
        "mapping_efficiency": m.mapping_efficiency,
        "sram_ifmap_reads": m.sram_ifmap_reads, "sram_filter_reads": m.sram_filter_reads,
        "sram_ofmap_writes": m.sram_ofmap_writes, "sram_ofmap_reads": m.sram_ofmap_reads,
        "dram_ifmap_read_bytes": tr.dram_read_bytes("ifmap"),
        "dram_filter_read_bytes": tr.dram_read_bytes("filter"),
        "dram_read_bytes": m.dram_read_bytes, "dram_ofmap_write_bytes": tr.dram_write_bytes("ofmap"),
        "dram_write_bytes": m.dram_write_bytes, "dram_busy_cycles": tm.dram_busy_cycles,
        "onchip_cycles": _onchip_cycles(m, arch),  # the on-chip floor (event and chip models)
        "peak_macs_per_cycle": peak,
        # cycles [start_cycle, stop_cycle) of the workload: set by the graph schedule below (back to back
        # when there is no vector unit, as SCALE-Sim runs layers)
        "start_cycle": 0, "stop_cycle": 0,
    }
    for lv in onchip_levels:
        row[f"{lv}_read_bytes"] = -(-sum(tr.reads[lv].values()) // 8)
        row[f"{lv}_write_bytes"] = -(-sum(tr.writes[lv].values()) // 8)
    row["energy_pj"] = sum(by_comp.values())
    row.update({f"energy_{c}_pj": by_comp[c] for c in comps})
    return row, records


def _shape_key(layer, bits: tuple[int, int, int], resident: dict[str, str] | None) -> tuple | None:
    """What a GEMM layer's mapping, timing and energy depend on within one :func:`simulate_workload` call
    (one arch, one workload): its type and every field but its name, its bits and its resident operands.
    None (no memo) when a field is unhashable."""
    key = (type(layer), tuple((k, v) for k, v in layer.__dict__.items() if k != "name"), bits,
           tuple(sorted(resident.items())) if resident else None)
    try:
        hash(key)
    except TypeError:
        return None
    return key


class _LayerMemo:
    """Per-call memo of :func:`_shape_key` -> the layer's mapping, timing and energy records.

    ``map_layer``, ``_timing`` and ``layer_energy`` are pure functions of the layer's fields (the name is used
    only in error messages, which the first layer of a shape raises before anything is stored), the arch,
    the bits and the resident operands; a later layer of the same key gets the stored mapping renamed
    (``LayerMapping.layer``) and the same timing and records (read only)."""

    def __init__(self):
        self._maps: dict[tuple, LayerMapping] = {}
        self._rows: dict[tuple, tuple[dict[str, Any], list[dict]]] = {}

    def mapping(self, key, name: str) -> LayerMapping | None:
        m = self._maps.get(key) if key is not None else None
        if m is None or m.layer == name:
            return m
        c = copy.copy(m)  # (dataclasses.replace re-runs __init__ over 35 fields)
        object.__setattr__(c, "layer", name)
        return c

    def put_mapping(self, key, m: LayerMapping) -> LayerMapping:
        if key is not None:
            self._maps[key] = m
        return m

    def row(self, key, name: str) -> tuple[dict[str, Any], list[dict]] | None:
        """Fresh copies (renamed) of the stored row and energy records of ``key``, or None."""
        hit = self._rows.get(key) if key is not None else None
        if hit is None:
            return None
        row = dict(hit[0])
        row["layer"] = name
        return row, [dict(r, layer=name) for r in hit[1]]

    def put_row(self, key, row: dict[str, Any], records: list[dict]) -> tuple[dict[str, Any], list[dict]]:
        if key is not None:
            self._rows[key] = (dict(row), [dict(r) for r in records])
        return row, records


def _with_scales(m: LayerMapping, layer, arch: ArchSpec) -> LayerMapping:
    """Weight-only quantization with group scales (``Gemm.weight_group_size``): every time the layer's
    weights come from DRAM, their scales come too. Adds ``scale_elements * scale_bits`` times the DRAM
    weight fetch factor (DRAM filter bits / whole filter bits, >= 1 when tiles re-fetch) to the DRAM filter
    reads and to the writes of the outermost on-chip level holding weights (the fill). The dequantizing
    multiply is taken as part of the PE's MAC (not priced apart)."""
    se = getattr(layer, "scale_elements", 0)
    if not se:
        return m
    from dataclasses import replace

    wbits = m.k * m.n * m.groups * m.weight_bits
    fetch = m.traffic.reads["dram"]["filter"] / wbits if wbits else 0.0
    extra = math.ceil(se * layer.scale_bits * fetch)
    reads = {lv: dict(d) for lv, d in m.traffic.reads.items()}
    writes = {lv: dict(d) for lv, d in m.traffic.writes.items()}
    reads["dram"]["filter"] += extra
    outer = [lv.name for lv in arch.memory.hierarchy() if lv.kind != "dram" and "filter" in lv.operands]
    if outer:
        writes[outer[-1]]["filter"] = writes[outer[-1]].get("filter", 0) + extra
    return replace(m, traffic=replace(m.traffic, reads=reads, writes=writes))


def _tile_costs(m: LayerMapping, arch: ArchSpec, tilings: list[tuple[int, bool]]) -> LayerMapping:
    """A layer run in depth-first row tiles (``timing.reuse: fused``, :mod:`hwsim.schedule._plan`), once per
    fused edge it belongs to: ``tilings`` = ``(tiles, refetch)`` per edge. The layer runs in ``T`` tiles: the
    edges' count when they agree, else ``1 + sum(tiles - 1)`` (the union of their boundaries, an upper bound).
    A layer the mapper already runs in ``m_tiles`` row tiles (its ifmap does not fit its buffer share)
    restarts its folds per tile anyway: only ``k = max(0, T - m_tiles)`` restarts are new, each one tile's
    fill + drain (``(fill + drain) / m_tiles`` of the untiled layer) and a reload of the layer's weights W
    into the array: W bits read from the innermost shared level holding weights (and written into a per-PE
    filter register file when there is one). With ``refetch`` (the stack's weights do not fit the filter
    buffers together) the weights also come again from DRAM, ``tiles - 1`` times per such edge (what the
    placement counted, so that DRAM bytes stay ``none``'s minus the bits saved), written into the outermost
    on-chip filter level."""
    from dataclasses import replace

    ns = [n for n, _ in tilings]
    # one tiling when the layer's fused edges agree on the tile count, else the union of their boundaries
    tiles = ns[0] if len(set(ns)) == 1 else 1 + sum(n - 1 for n in ns)
    k = max(0, tiles - m.m_tiles)  # new restarts
    kr = sum(n - 1 for n, r in tilings if r)
    if k <= 0 and kr <= 0:
        return m
    w = m.k * m.n * m.groups * m.weight_bits
    reads = {lv: dict(d) for lv, d in m.traffic.reads.items()}
    writes = {lv: dict(d) for lv, d in m.traffic.writes.items()}
    hier = [lv for lv in arch.memory.hierarchy() if lv.kind != "dram" and "filter" in lv.operands]
    shared = [lv.name for lv in hier if lv.instances == "shared"]
    if shared:
        reads[shared[0]]["filter"] = reads[shared[0]].get("filter", 0) + k * w
    for lv in hier:
        if lv.instances == "per_pe":
            writes[lv.name]["filter"] = writes[lv.name].get("filter", 0) + k * w
            break
    if kr:
        reads["dram"]["filter"] = reads["dram"].get("filter", 0) + kr * w
        if hier:
            writes[hier[-1].name]["filter"] = writes[hier[-1].name].get("filter", 0) + kr * w
    mt = max(1, m.m_tiles)
    fill, drain = k * m.fill_cycles // mt, k * m.drain_cycles // mt
    return replace(m, traffic=replace(m.traffic, reads=reads, writes=writes),
                   fill_cycles=m.fill_cycles + fill, drain_cycles=m.drain_cycles + drain,
                   compute_cycles=m.compute_cycles + fill + drain)


class _CycleCost:
    """``timing.objective: latency``: the modelled cycles a placement option adds (negative: saves) to the
    GEMM layers that produce and consume its tensor, against the tensor in DRAM (``Option.cycles``).

    Each such layer is mapped again with the tensor resident in the option's level (``map_layer``'s
    ``resident`` hook, memoized with the pipeline's layers), a band's tiling added (:func:`_tile_costs`: its
    tiles' fill, drain and weight reloads), and timed by the event model (``_timing``, the same call the
    layer's row makes); the difference of total cycles is summed over the layers. Non-GEMM nodes add 0
    (their DRAM time is not part of the estimate)."""

    def __init__(self, graph: WorkloadGraph, maps: dict[int, LayerMapping],
                 resolved: dict[str, tuple[int, int, int]], memo: _LayerMemo, arch: ArchSpec, source: str):
        self.graph, self.maps, self.resolved, self.memo, self.arch, self.source = (graph, maps, resolved,
                                                                                  memo, arch, source)
        self._cycles: dict[tuple, int] = {}

    def _total(self, i: int, resident: dict[str, str] | None, tiling: tuple[int, bool] | None) -> int:
        nd = self.graph.nodes[i]
        bits = self.resolved[nd.name]
        key = _shape_key(nd, bits, resident)
        hit = self._cycles.get((key, tiling)) if key is not None else None
        if hit is not None:
            return hit
        m = self.maps[i]
        if resident:
            m = self.memo.mapping(key, nd.name) or self.memo.put_mapping(key, _with_scales(
                map_layer(nd, self.arch, weight_bits=bits[0], act_bits=bits[1], out_bits=bits[2],
                          resident=resident, where=self.source), nd, self.arch))
        if tiling is not None:
            m = _tile_costs(m, self.arch, [tiling])
        cyc = _timing(m, self.arch).total_cycles
        if key is not None:
            self._cycles[(key, tiling)] = cyc
        return cyc

    def __call__(self, o) -> int:
        t = self.graph.tensors[o.tensor]
        roles: dict[int, dict[str, str]] = {}
        if t.producer >= 0 and t.producer in self.maps:
            roles.setdefault(t.producer, {})["ofmap"] = o.level
        for c, pos in t.consumers:
            if c in self.maps and pos < 2:
                roles.setdefault(c, {})["ifmap" if pos == 0 else "filter"] = o.level
        tiling = (o.tiles, o.refetch_bits > 0) if o.kind == "band" else None
        return sum(self._total(i, res, tiling) - self._total(i, None, None) for i, res in roles.items())


def _band_notes(graph: WorkloadGraph, plan: TensorPlan, restart: dict[int, int], latency: bool) -> list[str]:
    """One note per fused band chosen (its tiling and why it was chosen) and, under ``timing.objective:
    latency``, one per fusable edge whose bands all lost to the tensor kept whole or in DRAM."""
    nodes = graph.nodes
    out = []
    chosen = plan.placement.chosen
    for t, o in plan.bands().items():
        tn = graph.tensors[t]
        p, c = tn.producer, tn.consumers[0][0]
        why = (f"chosen for the fewest modelled cycles ({o.cycles:+,} against the tensor in DRAM), then "
               f"DRAM bytes (timing.objective: latency)" if latency else
               "chosen for the fewest DRAM bytes, then the fewest tiles (timing.objective: dram; latency "
               "ranks the modelled cycles first)")
        per_tile = -(-o.refetch_bits // (8 * max(o.tiles - 1, 1)))  # the two layers' weights, bytes
        out.append(f"fused {nodes[p].name} -> {nodes[c].name}: {o.tiles} tiles of {o.tile_rows} output rows, "
                   f"weights fetched again per tile: {per_tile:,} B; in {o.level}, saving "
                   f"{o.saving_bits // 8:,} B of DRAM; fill and drain of the tiles add "
                   f"{restart.get(p, 0):,} cycles to {nodes[p].name} and {restart.get(c, 0):,} to "
                   f"{nodes[c].name} (a layer in two bands: for both); {why}")
    if latency:
        bands: dict[str, list] = {}
        for o in plan.options:
            if o.kind == "band" and o.tensor not in plan.bands() and o.bits <= plan.capacity_bits[o.level]:
                bands.setdefault(o.tensor, []).append(o)
        for t, os_ in sorted(bands.items()):
            tn = graph.tensors[t]
            kept = chosen.get(t)
            alt = (f"kept whole in {kept.level} ({kept.cycles:+,} cycles against DRAM)" if kept is not None
                   else "kept in DRAM")
            lo = min(os_, key=lambda o: (o.cycles, o.tiles))
            hi = max(os_, key=lambda o: (o.cycles, -o.tiles))
            out.append(f"not fused {nodes[tn.producer].name} -> {nodes[tn.consumers[0][0]].name}: {alt}; its "
                       f"{len(os_)} bands within {lo.level}'s size take {lo.cycles:+,} ({lo.tiles} tiles) to "
                       f"{hi.cycles:+,} ({hi.tiles} tiles) cycles against DRAM, and none that fits next to "
                       f"the layers' tiles and the tensors kept lowers the total (timing.objective: latency)")
    return out


def _in_elems(layer) -> int:
    if hasattr(layer, "in_channels"):
        return layer.batch * layer.in_channels * layer.in_h * layer.in_w
    g = layer.gemm
    return g.m * g.k * g.groups


def _tensor_bits(graph: WorkloadGraph, resolved: dict[str, tuple[int, int, int]], wl: Workload) -> dict[str,
                                                                                                        int]:
    """Bits per element of every tensor: a GEMM layer's out_bits, a non-GEMM node's ``bits`` (else its first
    input's), the network input at its first GEMM consumer's act_bits (else the workload's)."""
    out: dict[str, int] = {}
    first = next((resolved[graph.nodes[c].name][1] for c, _ in graph.tensors[INPUT].consumers
                  if graph.nodes[c].name in resolved), wl.act_bits) if INPUT in graph.tensors else wl.act_bits
    out[INPUT] = first
    for i, nd in enumerate(graph.nodes):
        if isinstance(nd, VectorOp):
            out[nd.name] = nd.bits or out[graph.inputs[i][0]]
        else:
            out[nd.name] = resolved[nd.name][2]
    return out


def _spill_bits(graph: WorkloadGraph, maps: dict[int, LayerMapping], tbits: dict[str, int], *,
                priced: bool) -> dict[str, int]:
    """DRAM bits each tensor moves when it lives in DRAM: its producer's write and every consumer's read
    (non-GEMM nodes: once each way, and only when the vector unit is priced)."""
    out: dict[str, int] = {}
    for t in graph.tensors.values():
        b = 0
        if t.producer >= 0:
            m = maps.get(t.producer)
            b += m.traffic.writes["dram"]["ofmap"] if m is not None else (t.elements * tbits[t.name] if priced
                                                                         else 0)
        for c, pos in t.consumers:
            m = maps.get(c)
            if m is not None:
                b += m.traffic.reads["dram"]["ifmap" if pos == 0 else "filter"]
            elif priced:
                b += t.elements * tbits[t.name]
        out[t.name] = b
    return out


def _resident(graph: WorkloadGraph, i: int, plan: TensorPlan) -> dict[str, str]:
    ins = graph.inputs[i]
    out = {}
    for pos, name in enumerate(ins[:2]):
        lv = plan.level.get(name, "dram")
        if lv != "dram":
            out["ifmap" if pos == 0 else "filter"] = lv
    lv = plan.level.get(graph.nodes[i].name, "dram")
    if lv != "dram":
        out["ofmap"] = lv
    return out


def _vector_nodes(arch: ArchSpec, graph: WorkloadGraph, plan: TensorPlan, tbits: dict[str, int], ae,
                  records: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
    """One row per non-GEMM node: op counts, cycles on the vector unit, traffic and energy (zeros without a
    vector unit)."""
    vu = arch.vector_unit
    levels = {lv.name: lv for lv in arch.memory.hierarchy()}
    opj = vector_op_energies(arch, source=source) if vu is not None else {}
    dram = arch.memory.dram_level
    out = []
    for i, nd in enumerate(graph.nodes):
        if not isinstance(nd, VectorOp):
            continue
        t = graph.tensors[nd.name]
        t_in = graph.tensors[graph.inputs[i][0]]
        arith = vu.arithmetic if vu is not None else ""
        row: dict[str, Any] = {"node": nd.name, "op": nd.op, "inputs": " ".join(graph.inputs[i]),
                               "elements": t.elements, "row": t_in.row, "bits": tbits[nd.name],
                               "arithmetic": arith}
        counts = vector_op_counts(nd.op, elements=t.elements, row=t_in.row, window=graph.window[i],
                                  arithmetic=arith or "int") if vu is not None else {}
        for c in ("add", "mul", "max", "exp", "divide", "rsqrt"):
            row[f"ops_{c}"] = counts.get(c, 0)
        compute = 0
        e_ops = 0.0
        if vu is not None:
            for c, cnt in counts.items():
                tp = vu.throughput.get(c)
                if tp is None:
                    raise SpecError(source, f"vector_unit.throughput.{c}",
                                    f"a throughput for op class {c!r}: node {nd.name!r} ({nd.op}, {arith}) "
                                    f"needs {cnt:,} of them", Found("no such key"))
                compute += math.ceil(cnt / (vu.lanes * tp))
                pj, src = opj[c]
                e_ops += cnt * pj
                records.append({"layer": nd.name, "component": "vector", "operand": "", "action": c,
                                "count": cnt, "unit": f"{arith} {c} ({src})", "pj_each": pj,
                                "energy_pj": cnt * pj})
            compute += vu.latency_cycles if counts or nd.op in ("concat", "copy") else 0
            if nd.op in ("concat", "copy"):  # data movement only: one element per lane per cycle
                compute += math.ceil(t.elements / vu.lanes)
        rd = wr = ord_ = owr = 0
        e_mem = 0.0
        by_comp = {c: 0.0 for c in energy_components(arch)}
        by_comp["vector"] = e_ops
        # the bytes move whether or not a vector unit is modelled (without one: the DRAM bytes are counted in
        # the traffic totals and priced at the DRAM level's pJ per bit; the node's compute and its on-chip
        # accesses are neither timed nor priced)
        moves = [(x, "read") for x in graph.inputs[i]] + [(nd.name, "write")]
        for name, action in moves:
            tt = graph.tensors[name]
            nbits = tt.elements * tbits[name]
            lvn = plan.level.get(name, "dram")
            lv = levels[lvn]
            if lvn == "dram":
                pj_each = ae.read_pj["dram"] if action == "read" else ae.write_pj["dram"]
                cnt, unit = nbits, "bit"
                if action == "read":
                    rd += -(-nbits // 8)
                else:
                    wr += -(-nbits // 8)
            else:
                pj_each = (ae.read_pj if action == "read" else ae.write_pj)[lvn]
                cnt, unit = -(-nbits // lv.word_bits), f"{lv.word_bits}-bit access, packed"
                if action == "read":
                    ord_ += -(-nbits // 8)
                else:
                    owr += -(-nbits // 8)
            if vu is None and lvn != "dram":
                continue
            e_mem += cnt * pj_each
            by_comp[lvn] += cnt * pj_each
            records.append({"layer": nd.name, "component": lvn, "operand": "ifmap" if action == "read"
                            else "ofmap", "action": action, "count": cnt, "unit": unit,
                            "pj_each": pj_each, "energy_pj": cnt * pj_each})
        if nd.constant is not None:  # a bias or scale operand: read once from DRAM at the node's bits
            nbits = nd.constant * tbits[nd.name]
            rd += -(-nbits // 8)
            pj_each = ae.read_pj["dram"]
            e_mem += nbits * pj_each
            by_comp["dram"] += nbits * pj_each
            records.append({"layer": nd.name, "component": "dram", "operand": "filter", "action": "read",
                            "count": nbits, "unit": "bit", "pj_each": pj_each, "energy_pj": nbits * pj_each})
        n_t = max(1, min(arch.timing.max_tiles_per_layer, -(-t.elements // (vu.lanes if vu else 1))))
        if vu is not None and (compute or rd or wr):
            tm = simulate_tiles(split_even(compute, n_t), split_even(rd, n_t), split_even(wr, n_t),
                                bandwidth_bytes_per_cycle=dram.read_bw / 8,
                                double_buffered=arch.memory.dma_double_buffered,
                                engine=arch.timing.engine)
            total, busy = tm.total_cycles, tm.dram_busy_cycles
        else:
            total, busy = 0, 0
        row.update({"compute_cycles": compute, "stall_cycles": total - compute, "total_cycles": total,
                    "dram_busy_cycles": busy, "dram_read_bytes": rd, "dram_write_bytes": wr,
                    "onchip_read_bytes": ord_, "onchip_write_bytes": owr, "energy_pj": e_ops + e_mem,
                    "energy_memory_pj": e_mem})
        row.update({f"energy_{c}_pj": v for c, v in by_comp.items() if c in energy_components(arch)})
        out.append(row)
    return out


def _vec_dram(vrows: list[dict[str, Any]]) -> int:
    """DRAM bytes (read + write) of the non-GEMM nodes."""
    return sum(int(r["dram_read_bytes"]) + int(r["dram_write_bytes"]) for r in vrows)


def _acc_notes(arch: ArchSpec, maps: dict) -> list[str]:
    """One note when ``pe.acc_bits`` is narrower than ``b_a + b_w + ceil(log2 K)`` for some layer (the classic
    bound: its sums may wrap or saturate; timing and energy do not depend on it)."""
    acc = arch.pe.acc_bits
    need = {m.layer: m.act_bits + m.weight_bits + (math.ceil(math.log2(m.k)) if m.k > 1 else 0)
            for m in maps.values()}
    over = [name for name, b in need.items() if b > acc]
    if not over:
        return []
    worst = max(over, key=lambda n: need[n])
    return [f"pe.acc_bits {acc} is below b_a + b_w + ceil(log2 K) for {len(over)} of {len(need)} layers "
            f"(largest: {worst}, {need[worst]} bits): their sums may {arch.pe.acc_mode}; timing and energy "
            "do not depend on it, `hwsim verify --arch` counts the events on a quantized model"]


def _tensor_rows(graph: WorkloadGraph, plan: TensorPlan, tbits: dict[str, int], maps: dict[int, LayerMapping],
                 start: list[int], end: list[int]) -> list[dict[str, Any]]:
    """One row per tensor: where it lived, from which step and cycle to which, and the bytes it moved."""
    nodes = graph.nodes
    out = []
    for t in graph.tensors.values():
        lv = plan.level.get(t.name, "dram")
        nbytes = -(-t.elements * tbits[t.name] // 8)
        wrote = read = dw = dr = 0
        if t.producer >= 0:
            m = maps.get(t.producer)
            if m is not None:
                wrote = -(-m.traffic.writes[lv]["ofmap"] // 8)
                dw = -(-m.traffic.writes["dram"]["ofmap"] // 8)
            else:
                wrote = nbytes
                dw = nbytes if lv == "dram" else 0
        for c, pos in t.consumers:
            m = maps.get(c)
            op = "ifmap" if pos == 0 else "filter"
            if m is not None:
                read += -(-m.traffic.reads[lv][op] // 8)
                dr += -(-m.traffic.reads["dram"][op] // 8)
            else:
                read += nbytes
                dr += nbytes if lv == "dram" else 0
        f_step = max(t.producer, 0)
        to_step = t.last_use if t.consumers else max(t.producer, 0)
        f_cyc = start[t.producer] if t.producer >= 0 else 0
        to_cyc = max((end[c] for c, _ in t.consumers), default=end[t.producer] if t.producer >= 0 else 0)
        out.append({"tensor": t.name, "producer": nodes[t.producer].name if t.producer >= 0 else "",
                    "consumers": " ".join(nodes[c].name for c, _ in t.consumers), "elements": t.elements,
                    "bits": tbits[t.name], "bytes": nbytes, "level": lv,
                    "kind": plan.kind.get(t.name, "dram"),
                    "from_step": f_step, "to_step": to_step, "from_cycle": f_cyc, "to_cycle": to_cyc,
                    "lifetime_cycles": to_cyc - f_cyc, "written_bytes": wrote, "read_bytes": read,
                    "dram_write_bytes": dw, "dram_read_bytes": dr})
    return out


def _occupancy(plan: TensorPlan, start: list[int], end: list[int], nodes) -> list[dict[str, Any]]:
    """Per on-chip level and node: bytes held by resident tensors and by the node's tiles, over the node's
    cycles."""
    out = []
    pl = plan.placement
    for lv, cap in plan.capacity_bits.items():
        for i, nd in enumerate(nodes):
            out.append({"level": lv, "node": nd.name, "start_cycle": start[i], "stop_cycle": end[i],
                        "resident_bytes": pl.resident[lv][i] // 8, "tile_bytes": pl.reserved[lv][i] // 8,
                        "capacity_bytes": int(cap // 8)})
    return out


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
    tiles (:mod:`hwsim.sim`), so this is the highest rate it has within a layer; a cycle-level trace
    (SCALE-Sim's ``*_TRACE.csv``) would show bursts above it. ``dram_<operand>_..._avg``: SCALE-Sim's
    per-operand DRAM columns (ifmap and filter reads, ofmap writes). Units: bytes per array clock cycle.
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
    vrows = res.vector_rows
    s = {k: sum(r[k] for r in rows) + sum(r.get(k, 0) for r in vrows) for k in (
        "macs", "compute_cycles", "stall_cycles", "total_cycles", "dram_read_bytes", "dram_write_bytes",
        "sram_ifmap_reads", "sram_filter_reads", "sram_ofmap_writes", "onchip_stall_cycles",
        "dram_stall_cycles", "energy_pj", *(f"energy_{c}_pj" for c in energy_components(res.arch)))}
    s["total_cycles"] = sum(r["total_cycles"] for r in rows)  # set to the makespan by the caller
    _finish_totals(res, s)
    return s


def _finish_totals(res: SimResult, s: dict[str, float] | None = None) -> None:
    """The totals derived from the total cycles and energy (latency, throughput, power, area)."""
    s = res.totals if s is None else s
    rows = res.rows
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
