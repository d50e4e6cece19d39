"""Several cores (the arch's ``cores:``): the workload split over them, each core simulated by the one-array
pipeline, then one schedule over the chip.

Model (analytic; assumptions stated, not measured):

1. **Split.** :func:`hwsim.schedule.split_workload` gives each core its part of every GEMM layer
   (``cores.split``: ``n`` or ``m``); the non-GEMM nodes follow.
2. **Per core.** Each part runs through :func:`hwsim.simulate_workload` on its core's arch
   (:meth:`hwsim.spec.ArchSpec.core_archs`): its own array, buffers, vector unit and ``timing.reuse``, with
   the DRAM bandwidth shared equally (``bandwidth / cores``: every core streams at once, exact for symmetric
   cores in a DRAM-bound phase, pessimistic when the others are idle).
3. **Network.** A core's DRAM traffic crosses the links from ``hub`` (the global buffer and DRAM port) to the
   core along the breadth-first tree of ``noc.links``; with ``split: n`` and ``timing.reuse`` keeping a GEMM's
   input on chip, each core also receives the ``(c-1)/c`` of that input the other cores produced (all-gather
   through ``hub``, 2 x hops). A link carries the sum of the traffic of the cores behind it; a node takes at
   least ``max over links of bytes / link_bytes_per_cycle``.
4. **Chip schedule.** A node's duration is the max over cores of its cycles there and its network time (the
   cores run a layer together and meet at its end: a barrier per node); the nodes are scheduled over the
   array and the vector unit as on one core (:func:`hwsim.sim.schedule_nodes`): the makespan.
5. **Energy.** Sum of the cores' energies plus ``bits x hops x noc.pj_per_bit_per_hop`` for every bit on the
   network (``energy_noc_pj``).

One core in ``cores:`` gives the one-array result (cycles, bytes and per-core energy; plus the network energy
of its DRAM traffic, zero at ``pj_per_bit_per_hop: 0``) (tested). Layers pipelined over cores:
``cores.schedule: pipeline`` (:mod:`hwsim._multicore_pipeline`). Not modelled here:
spatial splits with halos, multicast, contention of the DRAM channel beyond the equal share.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from .schedule import split_workload
from .sim import schedule_nodes
from .spec import HUB, INPUT, ArchSpec, VectorOp, Workload

__all__ = ["simulate_multicore", "CORE_COLUMNS"]

CORE_COLUMNS = ("core", "array", "rows", "cols", "macs", "busy_cycles", "utilization", "dram_bytes",
                "noc_bytes", "hops", "energy_pj", "intensity_macs_per_byte", "ridge_macs_per_byte", "bound")


def _tree(arch: ArchSpec) -> dict[str, list[tuple[str, str]]]:
    """Each core's path of links from ``hub`` (breadth-first, ties by name)."""
    cfg = arch.cores
    links = cfg.noc.links if cfg.noc.links is not None else tuple((HUB, c.name) for c in cfg.list)
    adj: dict[str, set[str]] = {}
    for a, b in links:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    parent = {HUB: None}
    frontier = [HUB]
    while frontier:
        nxt = []
        for u in frontier:
            for v in sorted(adj.get(u, ())):
                if v not in parent:
                    parent[v] = u
                    nxt.append(v)
        frontier = nxt
    out = {}
    for c in cfg.list:
        path, v = [], c.name
        while parent[v] is not None:
            path.append(tuple(sorted((parent[v], v))))
            v = parent[v]
        out[c.name] = path
    return out


def _start_up(archs: list[tuple[str, ArchSpec]], source: str) -> None:
    """What the one-core pipeline does before its clock starts (imports, numba cache, technology tables)."""
    from .energy import action_energies

    for _, a in archs:
        if a.timing.engine == "analytic":
            from .sim import warm_up

            warm_up()
        else:
            import simpy  # noqa: F401
        if a.timing.reuse != "none":
            import scipy.optimize  # noqa: F401
        action_energies(a, source=source)


def simulate_multicore(arch: ArchSpec, workload: Workload, *, one_core: Callable, make_result: Callable,
                       finish: Callable, source: str = "<arch>", **kw: Any):
    """Simulate ``workload`` on a multi-core ``arch`` (module docstring). Called by
    :func:`hwsim.simulate_workload`, which passes itself as ``one_core`` (the one-array pipeline), its
    result class as ``make_result`` and its totals finisher as ``finish`` (so this module does not import
    the pipeline back).

    Returns
    -------
    SimResult
        ``rows``: one per (core, GEMM layer part), ``layer`` named ``core/layer``; ``vector_rows`` likewise;
        ``timeline`` per core and unit (``unit`` = ``core.array``, ``core.vector``); ``totals`` with the
        makespan as ``total_cycles``, ``energy_noc_pj``, ``noc_bytes``, ``cores``; ``core_rows`` one per core
        (:data:`CORE_COLUMNS`: busy cycles, utilization over the makespan, DRAM and network bytes, the
        roofline: MACs per DRAM byte against the ridge ``peak MACs per cycle / (DRAM bytes per cycle
        shared)``, and ``memory`` or ``compute`` bound).

    Raises
    ------
    SpecError
        ``cores.split``: a layer dimension the cores do not divide; anything the one-core pipeline raises.
    """
    cfg = arch.cores
    if cfg.schedule == "pipeline":  # layers whole on one core each, pipelined (hwsim/_multicore_pipeline.py)
        from ._multicore_pipeline import simulate_pipeline

        return simulate_pipeline(arch, workload, one_core=one_core, make_result=make_result, finish=finish,
                                 start_up=_start_up, source=source, **kw)
    archs = arch.core_archs(source)
    _start_up(archs, source)
    t0 = time.process_time()
    n = len(archs)
    parts = split_workload(workload, n, cfg.split, uneven=cfg.uneven, source=source)
    res = []
    seen: dict[tuple[int, str], Any] = {}  # identical (core type, part): simulated once (deterministic model)
    for (_name, a), wl in zip(archs, parts, strict=False):
        key = (id(a), wl.model_dump_json())
        if key not in seen:
            seen[key] = one_core(a, wl, source=source, **kw)
        res.append(seen[key])
    graph = workload.graph()
    nodes = graph.nodes
    tree = _tree(arch)
    hops = {c: len(p) for c, p in tree.items()}
    link_bw = cfg.noc.link_bytes_per_cycle
    # per node and core: cycles, DRAM bytes, gather bytes
    per_node: list[dict[str, dict[str, Any]]] = [dict() for _ in nodes]
    for (name, _), r in zip(archs, res, strict=False):
        gi = iter(r.rows)
        vi = iter(r.vector_rows)
        level = {t["tensor"]: t["level"] for t in r.tensor_rows}
        for i, nd in enumerate(nodes):
            row = next(vi) if isinstance(nd, VectorOp) else next(gi)
            dram = row["dram_read_bytes"] + row["dram_write_bytes"]
            gather = 0
            if not isinstance(nd, VectorOp) and cfg.split == "n" and n > 1:
                src = graph.inputs[i][0]
                if src != INPUT and level.get(src, "dram") != "dram":
                    t = graph.tensors[src]
                    gather = math.ceil(t.elements * row["act_bits"] / 8 * (n - 1) / n)
            per_node[i][name] = {"row": row, "cycles": int(row["total_cycles"]), "dram": dram,
                                 "gather": gather}
    durations, units = [], []
    noc_bits_hops = 0.0
    noc_bytes = 0
    for i, nd in enumerate(nodes):
        load: dict[tuple[str, str], float] = {}
        for c, d in per_node[i].items():
            for ln in tree[c]:
                load[ln] = load.get(ln, 0) + d["dram"] + 2 * d["gather"]  # gather: in to hub and out
            noc_bits_hops += 8 * (d["dram"] * hops[c] + d["gather"] * 2 * hops[c])
            noc_bytes += d["dram"] + d["gather"]
        noc_cycles = math.ceil(max(load.values(), default=0) / link_bw)
        for d in per_node[i].values():
            d["noc_cycles"] = noc_cycles
        durations.append(max([d["cycles"] for d in per_node[i].values()] + [noc_cycles]))
        units.append("vector" if isinstance(nd, VectorOp) else "array")
    idx = graph.node_index()
    deps = [tuple(sorted({idx[x] for x in graph.inputs[i] if x != INPUT})) for i in range(len(nodes))]
    vu = arch.vector_unit
    start, end = schedule_nodes(durations, units, deps, overlap=vu.overlap if vu is not None else True,
                                engine=arch.timing.engine)
    rows, vrows, timeline = [], [], []
    for (name, _), _r in zip(archs, res, strict=False):
        for i, nd in enumerate(nodes):
            d = per_node[i][name]
            row = dict(d["row"])
            key = "node" if isinstance(nd, VectorOp) else "layer"
            row[key] = f"{name}/{row[key]}" if n > 1 else row[key]
            row["start_cycle"], row["stop_cycle"] = start[i], start[i] + d["cycles"]
            (vrows if isinstance(nd, VectorOp) else rows).append(row)
            unit = units[i] if n == 1 else f"{name}.{units[i]}"
            timeline.append({"node": nd.name, "unit": unit, "start_cycle": start[i],
                             "stop_cycle": start[i] + d["cycles"]})
            busy = int(d["row"].get("dram_busy_cycles", 0))
            if busy:
                timeline.append({"node": nd.name, "unit": "dma" if n == 1 else f"{name}.dma",
                                 "start_cycle": start[i], "stop_cycle": start[i] + min(busy, d["cycles"])})
    makespan = max(end) if end else 0
    e_noc = noc_bits_hops * cfg.noc.pj_per_bit_per_hop
    totals: dict[str, float] = {}
    for r in res:
        for k, v in r.totals.items():
            if isinstance(v, int | float) and not k.startswith(("area_", "latency", "utilization", "pj_per",
                                                                 "tops", "peak", "power", "model_cpu")):
                totals[k] = totals.get(k, 0) + v
    totals["energy_pj"] = totals.get("energy_pj", 0.0) + e_noc
    totals["energy_noc_pj"] = e_noc
    totals["noc_bytes"] = noc_bytes
    totals["cores"] = n
    totals["total_cycles"] = makespan
    core_rows = []
    for (name, a), r, c in zip(archs, res, cfg.list, strict=False):
        peak = a.array.rows * a.array.cols
        busy = sum(int(x["total_cycles"]) for x in r.rows)
        dram = sum(per_node[i][name]["dram"] for i in range(len(nodes)))
        macs = r.totals["macs"]
        bw = a.memory.dram_level.read_bw / 8
        ridge = peak / bw if bw != math.inf else 0.0
        inten = macs / dram if dram else math.inf
        core_rows.append({
            "core": name, "array": c.array, "rows": a.array.rows, "cols": a.array.cols, "macs": macs,
            "busy_cycles": busy, "utilization": macs / (makespan * peak) if makespan else 0.0,
            "dram_bytes": dram, "noc_bytes": sum(per_node[i][name]["dram"] + per_node[i][name]["gather"]
                                                 for i in range(len(nodes))),
            "hops": hops[name], "energy_pj": r.totals["energy_pj"], "intensity_macs_per_byte": inten,
            "ridge_macs_per_byte": ridge, "bound": "memory" if inten < ridge else "compute"})
    cpu = time.process_time() - t0
    first = res[0]
    out = make_result(arch=arch, workload=workload, bits=first.bits, rows=rows,
                    energy_records=[dict(x, layer=f"{nm}/{x['layer']}" if n > 1 else x["layer"])
                                    for (nm, _), r in zip(archs, res, strict=False)
                                    for x in r.energy_records],
                    energies=first.energies, model_cpu_s=cpu, area=None, vector_rows=vrows,
                    tensor_rows=first.tensor_rows if n == 1 else [
                        dict(t, tensor=f"{nm}/{t['tensor']}") for (nm, _), r in zip(archs, res, strict=False)
                        for t in r.tensor_rows], timeline=timeline,
                    occupancy=first.occupancy if n == 1 else [],
                    notes=[*first.notes, *([f"{n} cores, split {cfg.split}: analytic chip schedule "
                                            "(docs/multicore_llm.md)"] if n > 1 else [])])
    out.totals = totals
    finish(out)
    out.totals["peak_tops"] = 2.0 * sum(x["rows"] * x["cols"] for x in core_rows) * arch.clock_mhz * 1e-6
    out.totals["utilization"] = (totals["macs"] / (makespan * sum(x["rows"] * x["cols"] for x in core_rows))
                                 if makespan else 0.0) if n > 1 else first.totals["utilization"]
    out.core_rows = core_rows
    return out



