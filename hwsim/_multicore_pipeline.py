"""Layers pipelined over cores (``cores.schedule: pipeline``): each layer whole on one core, layers on
different cores overlapping at the granularity of computation nodes (CNs), as Stream does.

Model (analytic; each assumption stated):

1. **Allocation.** :func:`hwsim.schedule.allocate_layers`: ``cores.allocation`` (a core per GEMM layer, by
   name or as a list in layer order) or ``auto`` (a greedy balance of the cores' busy cycles).
2. **Per layer.** A layer costs what it costs alone on its core: the one-array pipeline
   (:func:`hwsim.simulate_workload`) runs the whole workload on each core type once (the core's array,
   buffers, vector unit, ``timing.reuse``; DRAM bandwidth shared equally, ``bandwidth / cores``) and
   the layer's row (cycles, DRAM bytes, energy per component) is taken from its core.
3. **Computation nodes.** A conv is cut into CNs of ``cores.pipeline_rows`` output rows (Stream's
   ``hint_loops=[("OY", "all")]`` is one row per CN); a GEMM (``count`` 1) into CNs of that many rows of M; a
   windowed pool or an element-wise vector node with a known (C, H, W) output into rows the same way; any
   other node (a global pool, a softmax, a batched conv) is one CN. A CN lasts its share of the layer's
   cycles, ``floor(T (k+1) r / R) - floor(T k r / R)`` for rows ``[k r, (k+1) r)`` of ``R`` (they sum to
   ``T`` exactly).
4. **Dependencies.** A conv's CN for output rows ``[a, b)`` needs the input rows ``[a s - p, (b-1) s - p +
   (kh-1) d]`` (stride, top padding, dilation: the kernel's halo; a pool's window likewise), i.e. the producer
   CNs holding them when the producer's rows are that input's rows; a GEMM's or an element-wise node's CN
   needs the same rows; any other pair needs the whole producer. On one core a node waits for its producers
   whole (the one-array sequencer: a node starts when its inputs are done); the CN overlap is across cores.
5. **Transfers.** A tensor crossing cores that the consumer's core keeps on chip (its tensor plan) goes core
   to core: each producer CN's share of the tensor's bytes crosses every link of the shortest path (breadth-
   first over ``noc.links``, ties by name; store and forward, a hop after the previous), ``ceil(bytes /
   link_bytes_per_cycle)`` cycles on each link, in order (one task at a time per link and direction); its
   consumer CNs wait for the last hop. A tensor the plan puts in DRAM goes through DRAM: the producer's write
   and the consumer's read are already in their rows. A tensor is sent once per consumer core.
6. **Schedule.** The CNs on each core's array and vector unit (``overlap: false``: one unit per core) and the
   transfers on each link are one task graph (:func:`hwsim.sim.schedule_nodes`, SimPy or analytic: equal); the
   makespan is the last task's end. Each unit takes its tasks in program order (a CN of a layer before the
   CNs of the next layer on the same core: in-order issue, no interleaving of layers on one core).
7. **Energy.** The allocated rows' energies, plus ``8 x bytes x hops x noc.pj_per_bit_per_hop`` for every
   transfer and for every core's DRAM bytes (from ``hub`` to the core, as the split model counts them).

One core equals the one-array result exactly (the CNs of a layer run back to back on one array; tested).
Not modelled: interleaving CNs of several layers on one core (Stream's layer fusion on a core), buffer
capacity taken by tensors in flight between cores, DRAM contention beyond the equal share.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from .schedule import allocate_layers
from .sim import schedule_nodes
from .spec import HUB, INPUT, ArchSpec, Conv2d, Gemm, VectorOp, Workload

__all__ = ["simulate_pipeline", "pipeline_tasks"]


def _path(arch: ArchSpec, a: str, b: str) -> list[tuple[str, str]]:
    """The directed links from core ``a`` to core ``b``: a shortest path over ``noc.links`` (breadth-first,
    neighbours by name)."""
    cfg = arch.cores
    links = cfg.noc.links if cfg.noc.links is not None else tuple((HUB, c.name) for c in cfg.list)
    adj: dict[str, set[str]] = {}
    for u, v in links:
        adj.setdefault(u, set()).add(v)
        adj.setdefault(v, set()).add(u)
    parent: dict[str, str | None] = {a: None}
    frontier = [a]
    while frontier and b not in parent:
        nxt = []
        for u in frontier:
            for v in sorted(adj.get(u, ())):
                if v not in parent:
                    parent[v] = u
                    nxt.append(v)
        frontier = nxt
    out, v = [], b
    while parent[v] is not None:
        out.append((parent[v], v))
        v = parent[v]
    return out[::-1]


#: Vector ops that map output row r to input row r (element-wise on one shape).
_ROWWISE = ("add", "mul", "relu", "gelu", "silu", "requant")


def _cn_rows(nd, chw) -> int:
    """The rows a node is cut along (1: one CN); ``chw``: its output tensor's (C, H, W) or None."""
    if isinstance(nd, Conv2d):
        return nd.out_hw[0] if nd.batch == 1 else 1
    if isinstance(nd, Gemm):
        return nd.m if nd.count == 1 else 1
    if chw is not None and (nd.op in _ROWWISE or (nd.op in ("maxpool", "avgpool") and nd.kernel is not None)):
        return chw[1]
    return 1


def _share(total: int, lo: int, hi: int, rows: int) -> int:
    return total * hi // rows - total * lo // rows


def _window(q) -> tuple[int, int, int, int] | None:
    """(kernel rows, stride, top padding, dilation) of a windowed node, or None."""
    if isinstance(q, Conv2d):
        return q.kernel_hw[0], q.stride_hw[0], q.pads[0], q.dilation_hw[0]
    if isinstance(q, VectorOp) and q.op in ("maxpool", "avgpool") and q.kernel is not None:
        kh = q.kernel if isinstance(q.kernel, int) else q.kernel[0]
        st = q.stride if q.stride is not None else q.kernel
        pd = q.padding
        return kh, st if isinstance(st, int) else st[0], pd if isinstance(pd, int) else pd[0], 1
    return None


def _needed(q, a: int, b: int, rp: int, in_rows: int, prows: int, ncn_p: int) -> range:
    """Producer CN indices that consumer rows ``[a, b)`` of ``q`` need (module docstring, 4.); ``in_rows``:
    the rows of ``q``'s input (0: unknown), ``prows``: the rows the producer is cut along."""
    if prows > 1 and prows == in_rows:
        win = _window(q)
        if win is not None:
            kh, s, t, d = win
            lo = max(0, a * s - t)
            hi = min(in_rows - 1, (b - 1) * s - t + (kh - 1) * d)
            return range(lo // rp, hi // rp + 1) if hi >= lo else range(0)
        if isinstance(q, Gemm) or (isinstance(q, VectorOp) and q.op in _ROWWISE):
            return range(a // rp, (b - 1) // rp + 1)
    return range(ncn_p)


def pipeline_tasks(arch: ArchSpec, workload: Workload, alloc: list[int], node_rows: list[list[dict]],
                   levels: list[dict[str, str]]) -> dict[str, Any]:
    """The task graph of the pipeline (module docstring, 3.-6.) over units.

    Parameters
    ----------
    alloc : list of int
        The core index of every node (program order).
    node_rows : list of list of dict
        ``node_rows[c][i]``: node ``i``'s row on core ``c`` (``total_cycles``; a tensor's ``bytes`` come from
        ``levels``' companion, the producer's row is not needed).
    levels : list of dict
        ``levels[c]``: tensor name -> level name in core ``c``'s tensor plan; ``"bytes:" + name`` -> bytes.

    Returns
    -------
    dict
        ``durations``, ``units``, ``deps`` (for :func:`hwsim.sim.schedule_nodes`), ``node_of`` (node index per
        task, -1 for a transfer), ``transfers`` (one dict per transfer task: ``src``, ``core``, ``link``,
        ``bytes``, ``hops``).
    """
    cfg = arch.cores
    names = [c.name for c in cfg.list]
    graph = workload.graph()
    nodes = graph.nodes
    idx = graph.node_index()
    rp = cfg.pipeline_rows
    vu = arch.vector_unit
    overlap = vu.overlap if vu is not None else True
    durations: list[int] = []
    units: list[str] = []
    deps: list[tuple[int, ...]] = []
    node_of: list[int] = []
    transfers: dict[int, dict[str, Any]] = {}
    cn_tasks: list[list[int]] = []
    sent: dict[tuple[int, int], list[int]] = {}  # (producer node, consumer core) -> last-hop task per CN
    rows_of = [_cn_rows(nd, graph.tensors[nd.name].chw) for nd in nodes]
    ncn = [math.ceil(r / rp) for r in rows_of]
    link_bw = cfg.noc.link_bytes_per_cycle

    def add(d: int, u: str, ds, node: int) -> int:
        durations.append(int(d))
        units.append(u)
        deps.append(tuple(sorted(set(ds))))
        node_of.append(node)
        return len(durations) - 1

    def q_in_rows(q, prod, p: int) -> int:
        """The rows of ``q``'s input from node ``p``."""
        if isinstance(q, Conv2d):
            return q.in_h
        if isinstance(q, Gemm):
            return q.m if isinstance(prod, Gemm) else 0
        chw = graph.tensors[prod.name].chw
        return chw[1] if chw is not None else 0

    for i, nd in enumerate(nodes):
        c = alloc[i]
        core = names[c]
        unit = f"{core}.vector" if isinstance(nd, VectorOp) and overlap else f"{core}.array"
        # the inputs: producer CNs directly (same core, or through DRAM), or their transfers
        src_tasks: list[tuple[Any, list[int], int]] = []
        for src in dict.fromkeys(graph.inputs[i]):
            if src == INPUT:
                continue
            p = idx[src]
            tasks = cn_tasks[p]
            if alloc[p] != c and levels[c].get(src, "dram") != "dram":
                key = (p, c)
                if key not in sent:
                    path = _path(arch, names[alloc[p]], core)
                    total = int(levels[c][f"bytes:{src}"])
                    last = []
                    for k, t in enumerate(tasks):
                        b = _share(total, k * rp, min((k + 1) * rp, rows_of[p]), rows_of[p]) \
                            if ncn[p] > 1 else total
                        prev = t
                        for hop in path:
                            prev = add(math.ceil(b / link_bw), f"link.{hop[0]}>{hop[1]}", (prev,), -1)
                            transfers[prev] = {"src": src, "core": core, "link": hop, "bytes": b}
                        last.append(prev)
                    sent[key] = last
                tasks = sent[key]
            src_tasks.append((nodes[p], tasks, p))
        mine = []
        total = int(node_rows[c][i]["total_cycles"])
        for k in range(ncn[i]):
            a, b = k * rp, min((k + 1) * rp, rows_of[i])
            ds = []
            for prod, tasks, p in src_tasks:
                in_rows = q_in_rows(nd, prod, p)
                need = _needed(nd, a, b, rp, in_rows, rows_of[p], ncn[p]) \
                    if ncn[i] > 1 and alloc[p] != c else range(ncn[p])
                if len(need):
                    ds.append(tasks[min(need[-1], len(tasks) - 1)])
                    ds.extend(tasks[j] for j in need if j < len(tasks))
            d = _share(total, a, b, rows_of[i]) if ncn[i] > 1 else total
            mine.append(add(d, unit, ds, i))
        cn_tasks.append(mine)
    return {"durations": durations, "units": units, "deps": deps, "node_of": node_of,
            "transfers": transfers, "cn_tasks": cn_tasks}


def simulate_pipeline(arch: ArchSpec, workload: Workload, *, one_core: Callable, make_result: Callable,
                      finish: Callable, start_up: Callable, source: str = "<arch>", **kw: Any):
    """Simulate ``workload`` on a multi-core ``arch`` with ``cores.schedule: pipeline`` (module docstring).
    Called by :func:`hwsim.simulate_multicore` (which :func:`hwsim.simulate_workload` calls) with the
    one-array pipeline as ``one_core``, its result class as ``make_result``, its totals finisher as
    ``finish`` and what runs before the clock starts as ``start_up(archs, source)`` (so this module
    imports neither back).

    Returns
    -------
    SimResult
        ``rows`` / ``vector_rows``: one per node, from its core (``layer`` named ``core/layer`` when there are
        several cores; ``start_cycle``/``stop_cycle``: its first CN's start, its last CN's end; ``core``);
        ``timeline``: one row per node on its core's unit and one per transfer group on each link;
        ``totals``: the makespan as ``total_cycles``, ``energy_noc_pj``, ``noc_bytes``,
        ``noc_core_to_core_bytes``, ``cores``; ``core_rows`` one per core (:data:`CORE_COLUMNS`);
        ``allocation``: node name -> core name.

    Raises
    ------
    SpecError
        ``cores.allocation``: a node the workload does not have, a GEMM layer with no core, a list of the
        wrong length; anything the one-core pipeline raises.
    """
    cfg = arch.cores
    archs = arch.core_archs(source)
    start_up(archs, source)
    t0 = time.process_time()
    names = [n for n, _ in archs]
    n = len(archs)
    seen: dict[int, Any] = {}
    res = []
    for _, a in archs:
        if id(a) not in seen:
            seen[id(a)] = one_core(a, workload, source=source, **kw)
        res.append(seen[id(a)])
    graph = workload.graph()
    nodes = graph.nodes
    node_rows: list[list[dict]] = []
    levels: list[dict[str, str]] = []
    for r in res:
        gi, vi = iter(r.rows), iter(r.vector_rows)
        node_rows.append([next(vi) if isinstance(nd, VectorOp) else next(gi) for nd in nodes])
        lv = {t["tensor"]: t["level"] for t in r.tensor_rows}
        lv.update({f"bytes:{t['tensor']}": t["bytes"] for t in r.tensor_rows})
        levels.append(lv)
    cycles = [[int(x["total_cycles"]) for x in nr] for nr in node_rows]
    alloc = allocate_layers(workload, names, cfg.allocation, cycles, source=source)
    tg = pipeline_tasks(arch, workload, alloc, node_rows, levels)
    start, end = schedule_nodes(tg["durations"], tg["units"], tg["deps"], engine=arch.timing.engine)
    makespan = max(end) if end else 0
    hops = cfg.hops()
    pj = cfg.noc.pj_per_bit_per_hop
    rows, vrows, timeline = [], [], []
    per_core = {nm: {"busy": 0, "macs": 0, "dram": 0, "noc": 0, "energy": 0.0} for nm in names}
    noc_bits_hops = 0.0
    noc_bytes = 0
    for i, nd in enumerate(nodes):
        c = alloc[i]
        core = names[c]
        row = dict(node_rows[c][i])
        key = "node" if isinstance(nd, VectorOp) else "layer"
        if n > 1:
            row[key] = f"{core}/{row[key]}"
        tasks = tg["cn_tasks"][i]
        row["start_cycle"], row["stop_cycle"] = start[tasks[0]], end[tasks[-1]]
        row["core"] = core
        (vrows if isinstance(nd, VectorOp) else rows).append(row)
        unit = tg["units"][tasks[0]]
        timeline.append({"node": nd.name, "unit": unit if n > 1 else unit.split(".", 1)[1],
                         "start_cycle": row["start_cycle"], "stop_cycle": row["stop_cycle"]})
        dram = int(row.get("dram_read_bytes", 0)) + int(row.get("dram_write_bytes", 0))
        noc_bits_hops += 8 * dram * hops[core]
        noc_bytes += dram
        pc = per_core[core]
        pc["busy"] += int(row["total_cycles"])
        pc["macs"] += int(row.get("macs", 0) or 0)
        pc["dram"] += dram
        pc["noc"] += dram
        pc["energy"] += float(row.get("energy_pj", 0.0))
    c2c = 0
    groups: dict[tuple[str, str, tuple[str, str]], list[int]] = {}
    for t, tr in tg["transfers"].items():
        noc_bits_hops += 8 * tr["bytes"]
        c2c += tr["bytes"]
        groups.setdefault((tr["src"], tr["core"], tr["link"]), []).append(t)
    for (src, _core, link), ts in groups.items():
        timeline.append({"node": src, "unit": f"link.{link[0]}>{link[1]}", "start_cycle": start[ts[0]],
                         "stop_cycle": end[ts[-1]]})
    # bytes sent core to core, counted once per transfer (not per hop)
    c2c_once = sum(tr["bytes"] for t, tr in tg["transfers"].items()
                   if tg["deps"][t] and tg["node_of"][tg["deps"][t][0]] >= 0)
    noc_bytes += c2c_once
    e_noc = noc_bits_hops * pj
    keys = [k for k in res[0].totals if k in ("macs", "compute_cycles", "stall_cycles", "dram_read_bytes",
                                              "dram_write_bytes", "sram_ifmap_reads", "sram_filter_reads",
                                              "sram_ofmap_writes", "onchip_stall_cycles", "dram_stall_cycles",
                                              "energy_pj") or (k.startswith("energy_") and k.endswith("_pj"))]
    for r in res[1:]:
        keys += [k for k in r.totals if k.startswith("energy_") and k.endswith("_pj") and k not in keys]
    totals: dict[str, Any] = {k: sum(x.get(k, 0) for x in rows) + sum(x.get(k, 0) for x in vrows)
                              for k in keys}
    totals["total_cycles"] = makespan
    totals["array_cycles"] = sum(x["total_cycles"] for x in rows)
    totals["vector_cycles"] = sum(x["total_cycles"] for x in vrows)
    totals["energy_pj"] = totals.get("energy_pj", 0.0) + e_noc
    totals["energy_noc_pj"] = e_noc
    totals["noc_bytes"] = noc_bytes
    totals["noc_core_to_core_bytes"] = c2c_once
    totals["cores"] = n
    core_rows = []
    for (name, a), c in zip(archs, cfg.list, strict=True):
        pc = per_core[name]
        peak = a.array.rows * a.array.cols
        bw = a.memory.dram_level.read_bw / 8
        ridge = peak / bw if bw != math.inf else 0.0
        inten = pc["macs"] / pc["dram"] if pc["dram"] else math.inf
        core_rows.append({
            "core": name, "array": c.array, "rows": a.array.rows, "cols": a.array.cols, "macs": pc["macs"],
            "busy_cycles": pc["busy"], "utilization": pc["macs"] / (makespan * peak) if makespan else 0.0,
            "dram_bytes": pc["dram"], "noc_bytes": pc["noc"], "hops": hops[name], "energy_pj": pc["energy"],
            "intensity_macs_per_byte": inten, "ridge_macs_per_byte": ridge,
            "bound": "memory" if inten < ridge else "compute"})
    idx = graph.node_index()
    tensor_rows = []  # each tensor as its producer's core plans it (the input: its first consumer's core)
    for c, r in enumerate(res):
        for t in r.tensor_rows:
            owner = idx.get(t["producer"]) if t["producer"] else idx.get(t["consumers"].split(" ")[0])
            if owner is not None and alloc[owner] == c:
                tensor_rows.append(dict(t, tensor=f"{names[c]}/{t['tensor']}"))
    cpu = time.process_time() - t0
    first = res[0]
    records = [dict(x, layer=f"{names[alloc[i]]}/{x['layer']}" if n > 1 else x["layer"])
               for i, nd in enumerate(nodes) for x in res[alloc[i]].energy_records if x["layer"] == nd.name]
    out = make_result(arch=arch, workload=workload, bits=first.bits, rows=rows, energy_records=records,
                      energies=first.energies, model_cpu_s=cpu, area=None, vector_rows=vrows,
                      tensor_rows=first.tensor_rows if n == 1 else tensor_rows,
                      timeline=timeline, occupancy=first.occupancy if n == 1 else [],
                      notes=[*first.notes, *([f"{n} cores, layers pipelined (allocation "
                                              f"{[names[alloc[i]] for i in range(len(nodes))]}), "
                                              f"{cfg.pipeline_rows} rows per computation node "
                                              "(docs/validation_multicore.md)"] if n > 1 else [])])
    out.totals = totals
    finish(out)
    peak_all = sum(x["rows"] * x["cols"] for x in core_rows)
    out.totals["peak_tops"] = 2.0 * peak_all * arch.clock_mhz * 1e-6
    out.totals["utilization"] = (totals["macs"] / (makespan * peak_all) if makespan else 0.0) if n > 1 \
        else first.totals["utilization"]
    out.allocation = {nd.name: names[alloc[i]] for i, nd in enumerate(nodes)}
    out.core_rows = core_rows
    return out
