"""Several cores (the arch's ``cores:``): the workload split over them, each core's part mapped by the
one-array pipeline, then the chip event model over all of them.

Model (assumptions stated, not measured; docs/multicore_llm.md section 2):

1. **Split.** :func:`hwsim.schedule.split_workload` gives each core its part of every GEMM layer
   (``cores.split``: ``n`` or ``m``); the non-GEMM nodes follow.
2. **Per core.** Each part runs through :func:`hwsim.simulate_workload` on its core's arch
   (:meth:`hwsim.spec.ArchSpec.core_archs`): its own array, buffers, vector unit and ``timing.reuse`` give
   every node's compute cycles, on-chip floor and DRAM bytes.
3. **Chip.** :func:`hwsim.sim.chip_schedule` re-times every part: its tiles on the core's units, the DRAM
   channel shared by all cores at the chip's full bandwidth, the network links on the core's path from
   ``hub`` (breadth-first tree of ``noc.links``), and the data dependencies only (:func:`_own_inputs`: no
   barrier per node). With ``split: n`` and ``timing.reuse`` keeping a GEMM's input on chip, each core also
   receives the ``(c-1)/c`` of that input the other cores produced (all-gather through ``hub``, twice over
   each link of its path), tile by tile after its loads. The makespan is ``total_cycles``.
4. **Energy.** Sum of the cores' energies plus ``bits x hops x noc.pj_per_bit_per_hop`` for every bit on the
   network (``energy_noc_pj``).

One core in ``cores:`` gives the one-array result (cycles, start cycles, bytes and per-core energy; plus the
network energy of its DRAM traffic, zero at ``pj_per_bit_per_hop: 0``) (tested). Layers pipelined over
cores: ``cores.schedule: pipeline`` (:mod:`hwsim._multicore_pipeline`, its own assumptions there). Not
modelled here: spatial splits with halos, multicast, several DRAM channels.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from ._chip_totals import chip_area, chip_cycle_totals, core_cycle_sums, core_roofline, retime_row
from .schedule import split_key, split_workload
from .sim import ARRAY_UNIT as ARRAY
from .sim import NUMBA_TASKS, ChipNode, chip_schedule, warm_up_chip
from .sim import VECTOR_UNIT as VECTOR
from .spec import HUB, INPUT, ArchSpec, VectorOp, Workload

__all__ = ["simulate_multicore", "CORE_COLUMNS"]

CORE_COLUMNS = ("core", "array", "rows", "cols", "macs", "busy_cycles", "utilization", "dram_bytes",
                "noc_bytes", "hops", "energy_pj", "intensity_macs_per_byte", "ridge_macs_per_byte", "bound",
                "peak_macs_per_cycle", "dram_share_bytes_per_cycle", "achieved_macs_per_cycle",
                "roof_macs_per_cycle", "compute_cycles", "dram_cycles", "node_compute_cycles",
                "node_stall_cycles", "node_dram_stall_cycles", "node_onchip_stall_cycles",
                "node_array_cycles", "node_vector_cycles", "area_mm2")

def _tree(arch: ArchSpec) -> dict[str, list[tuple[str, str]]]:
    """Each core's path of links from ``hub`` (:meth:`hwsim.spec.CoresConfig.path`), each link as its sorted
    pair of ends (a link carries both directions)."""
    cfg = arch.cores
    return {c.name: [tuple(sorted(ln)) for ln in cfg.path(HUB, c.name)[::-1]] for c in cfg.list}


def _own_inputs(nd, n_inputs: int, cores: int, mode: str) -> list[bool]:
    """For each input of node ``nd``: does the part on a core wait only for the same core's part of its
    producer (True), or for every core's (False)?

    * a non-GEMM node: its own core (element-wise on the same slice; the cross-core reduction of a split
      norm or softmax row is not modelled, docs/multicore_llm.md);
    * a GEMM's first input (rows x K): ``split: m``: its own core (each core's rows flow on independently);
      ``split: n``: every core (each core reads the whole input: the all-gather);
    * a GEMM's second input produced in the graph (attention's K and V): its own core when the layer is
      split by heads (``count``) or groups, else every core (each core needs all of it).
    """
    if cores == 1 or isinstance(nd, VectorOp):
        return [True] * n_inputs
    first = mode == "m"
    second = split_key(nd, cores, mode)[0] in ("count", "groups")
    return [first] + [second] * (n_inputs - 1)


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
    link_ids = {ln: k for k, ln in enumerate(sorted({ln for p in tree.values() for ln in p}))}
    # per node and core: its row, DRAM bytes, gather bytes, the chip model's block
    per_node: list[dict[str, dict[str, Any]]] = [dict() for _ in nodes]
    own = [_own_inputs(nd, len(graph.inputs[i]), n, cfg.split) for i, nd in enumerate(nodes)]
    idx = graph.node_index()
    blocks: list[list[ChipNode]] = []
    for ci, ((name, a), r) in enumerate(zip(archs, res, strict=False)):
        gi = iter(r.rows)
        vi = iter(r.vector_rows)
        level = {t["tensor"]: t["level"] for t in r.tensor_rows}
        vu = a.vector_unit
        row_blocks = []
        for i, nd in enumerate(nodes):
            vec = isinstance(nd, VectorOp)
            row = next(vi) if vec else next(gi)
            dram = row["dram_read_bytes"] + row["dram_write_bytes"]
            gather = 0
            if not vec and cfg.split == "n" and n > 1:
                src = graph.inputs[i][0]
                if src != INPUT and level.get(src, "dram") != "dram":
                    t = graph.tensors[src]
                    gather = math.ceil(t.elements * row["act_bits"] / 8 * (n - 1) / n)
            per_node[i][name] = {"row": row, "dram": dram, "gather": gather}
            deps = []
            for x, mine in zip(graph.inputs[i], own[i], strict=True):
                if x != INPUT:
                    deps += [(ci, idx[x])] if mine else [(cj, idx[x]) for cj in range(n)]
            if vec:
                lanes = vu.lanes if vu else 1
                tiles = max(1, min(a.timing.max_tiles_per_layer, -(-row["elements"] // lanes)))
                timed = vu is not None and (row["compute_cycles"] or row["dram_read_bytes"]
                                            or row["dram_write_bytes"])
                blk = ChipNode(VECTOR, tiles, row["compute_cycles"] if timed else 0, 0,
                               row["dram_read_bytes"] if timed else 0,
                               row["dram_write_bytes"] if timed else 0,
                               0, tuple(sorted(set(deps))))
            else:
                blk = ChipNode(ARRAY, max(1, min(row["folds"], a.timing.max_tiles_per_layer)),
                               row["compute_cycles"], row.get("onchip_cycles", 0), row["dram_read_bytes"],
                               row["dram_write_bytes"], gather, tuple(sorted(set(deps))))
            row_blocks.append(blk)
        blocks.append(row_blocks)
    dram_lv = arch.memory.dram_level
    chip_kw = dict(dram_bytes_per_cycle=dram_lv.read_bw / 8,
                   link_bytes_per_cycle=cfg.noc.link_bytes_per_cycle,
                   double_buffered=[a.memory.dma_double_buffered for _, a in archs],
                   overlap=[a.vector_unit.overlap if a.vector_unit is not None else True for _, a in archs])
    paths = [[link_ids[ln] for ln in tree[name]] for name, _ in archs]
    warm = 0.0
    if arch.timing.engine == "analytic" and sum(4 * b.tiles + 3 for row in blocks for b in row) > NUMBA_TASKS:
        tw = time.process_time()
        warm_up_chip()  # numba's cache load (or compile) is start-up, not model time
        warm = time.process_time() - tw
    sched = chip_schedule(blocks, paths, engine=arch.timing.engine, **chip_kw)
    noc_bits_hops = 0.0
    noc_bytes = 0
    for i in range(len(nodes)):
        for c, d in per_node[i].items():
            noc_bits_hops += 8 * (d["dram"] * hops[c] + d["gather"] * 2 * hops[c])
            noc_bytes += d["dram"] + d["gather"]
    units = ["vector" if isinstance(nd, VectorOp) else "array" for nd in nodes]
    rows, vrows, timeline = [], [], []
    core_sums = []
    for ci, ((name, a), _r) in enumerate(zip(archs, res, strict=False)):
        mine: tuple[list, list] = ([], [])
        for i, nd in enumerate(nodes):
            d = per_node[i][name]
            row = dict(d["row"])
            key = "node" if isinstance(nd, VectorOp) else "layer"
            s0, e0 = int(sched.start[ci, i]), int(sched.end[ci, i])
            row["start_cycle"], row["stop_cycle"] = s0, e0
            if n > 1:  # the cycles the chip schedule gives the part (one core: the one-array numbers, equal)
                retime_row(row, e0 - s0, int(sched.compute_cycles[ci, i]), a, vector=key == "node")
                row[key] = f"{name}/{row[key]}"
            (vrows if isinstance(nd, VectorOp) else rows).append(row)
            mine[isinstance(nd, VectorOp)].append(row)
            if n == 1:
                timeline.append({"node": nd.name, "unit": units[i], "start_cycle": s0, "stop_cycle": e0})
                busy = int(d["row"].get("dram_busy_cycles", 0))
                if busy:
                    timeline.append({"node": nd.name, "unit": "dma", "start_cycle": s0,
                                     "stop_cycle": s0 + min(busy, e0 - s0)})
                continue
            timeline.append({"node": nd.name, "unit": f"{name}.{units[i]}", "start_cycle": s0,
                             "stop_cycle": e0})
            if sched.dram_cycles[ci, i]:
                timeline.append({"node": nd.name, "unit": f"{name}.dram",
                                 "start_cycle": int(sched.dram_start[ci, i]),
                                 "stop_cycle": int(sched.dram_end[ci, i])})
        core_sums.append(core_cycle_sums(*mine))
    makespan = sched.makespan
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
    if n > 1:  # one core: the one-array totals as they are
        chip_cycle_totals(totals, core_sums, makespan)
    area, core_mm2 = chip_area(archs, source=source)
    core_rows = []
    for ci, ((name, a), r, c) in enumerate(zip(archs, res, cfg.list, strict=False)):
        peak = a.array.rows * a.array.cols
        gemm = [i for i, nd in enumerate(nodes) if not isinstance(nd, VectorOp)]
        busy = int(sum(sched.end[ci, i] - sched.start[ci, i] for i in gemm))
        dram = sum(per_node[i][name]["dram"] for i in range(len(nodes)))
        macs = r.totals["macs"]
        bw = a.memory.dram_level.read_bw / 8  # its share: the chip's bandwidth over the cores
        core_rows.append({
            "core": name, "array": c.array, "rows": a.array.rows, "cols": a.array.cols, "macs": macs,
            "busy_cycles": busy, "utilization": macs / (makespan * peak) if makespan else 0.0,
            "dram_bytes": dram, "noc_bytes": sum(per_node[i][name]["dram"] + per_node[i][name]["gather"]
                                                 for i in range(len(nodes))),
            "hops": hops[name], "energy_pj": r.totals["energy_pj"],
            **core_roofline(peak, bw, macs, dram, makespan),
            "compute_cycles": int(sched.compute_cycles[ci].sum()),
            "dram_cycles": int(sched.dram_cycles[ci].sum()), **core_sums[ci], "area_mm2": core_mm2[ci]})
    cpu = time.process_time() - t0 - warm
    first = res[0]
    out = make_result(arch=arch, workload=workload, bits=first.bits, rows=rows,
                    energy_records=[dict(x, layer=f"{nm}/{x['layer']}" if n > 1 else x["layer"])
                                    for (nm, _), r in zip(archs, res, strict=False)
                                    for x in r.energy_records],
                    energies=first.energies, model_cpu_s=cpu, area=area, vector_rows=vrows,
                    tensor_rows=first.tensor_rows if n == 1 else [
                        dict(t, tensor=f"{nm}/{t['tensor']}") for (nm, _), r in zip(archs, res, strict=False)
                        for t in r.tensor_rows], timeline=timeline,
                    occupancy=first.occupancy if n == 1 else [],
                    notes=[*first.notes, *([f"{n} cores, split {cfg.split}: chip event model, shared DRAM "
                                            "channel (docs/multicore_llm.md)"] if n > 1 else [])])
    out.totals = totals
    finish(out)
    out.totals["peak_tops"] = 2.0 * sum(x["rows"] * x["cols"] for x in core_rows) * arch.clock_mhz * 1e-6
    out.totals["utilization"] = (totals["macs"] / (makespan * sum(x["rows"] * x["cols"] for x in core_rows))
                                 if makespan else 0.0) if n > 1 else first.totals["utilization"]
    out.core_rows = core_rows
    return out



