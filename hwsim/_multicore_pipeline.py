"""Layers pipelined over cores (``cores.schedule: pipeline``): each layer whole on one core, layers on
different cores overlapping at the granularity of computation nodes (CNs), as Stream does.

Model (analytic; each assumption stated):

1. **Allocation.** :func:`hwsim.schedule.allocate_layers`: ``cores.allocation`` (a core per GEMM layer, by
   name or as a list in layer order) or ``auto``: each of :func:`hwsim.schedule.auto_candidates` (the
   greedy balance of the cores' busy cycles, every layer on one core, each layer on its fastest core)
   scheduled by this model (3.-6.), the fewest makespan cycles kept (ties: the first).
2. **Per layer.** A layer costs what it costs alone on its core: the one-array pipeline
   (:func:`hwsim.simulate_workload`) runs the whole workload on each core type once (the core's array,
   buffers, vector unit, ``timing.reuse``) and the layer's row (compute cycles, on-chip floor, DRAM bytes,
   tiles, energy per component) is taken from its core. Its DRAM time is not taken from the row: with
   several cores the CNs' transfers are tasks on the shared channel (5.). With several cores every written
   cycle count of a node is the schedule's (6.), not the row's (which is at the equal share ``bandwidth /
   cores``): ``total_cycles`` its window (``stop_cycle - start_cycle``), ``stall_cycles`` the window less its
   ``compute_cycles``, ``onchip_stall_cycles`` its compute tasks' cycles less its compute cycles,
   ``dram_stall_cycles`` the window less its compute tasks' cycles (waiting for DRAM, the links or a
   producer on another core), ``dram_busy_cycles`` its loads' and writes' cycles on the channel; a core's
   ``busy_cycles`` are the cycles at least one of its nodes runs (the union of their windows: at most the
   makespan). With one core the rows are the one-array rows (its schedule, 6.).
3. **Computation nodes.** A conv is cut into CNs of ``cores.pipeline_rows`` output rows (Stream's
   ``hint_loops=[("OY", "all")]`` is one row per CN); a GEMM (``count`` 1) into CNs of that many rows of M; a
   windowed pool or an element-wise vector node with a known (C, H, W) output into rows the same way; any
   other node (a global pool, a softmax, a batched conv) is one CN. Only a node with a producer or a consumer
   on another core is cut: on its own core a node waits for its producers whole (4.), so CNs would only
   coarsen its DMA tiles (5.); an uncut node keeps the event model's tiles. A CN has its share of the layer's
   cycles (with several cores also of its bytes, 5.), ``floor(T (k+1) r / R) - floor(T k r / R)`` for rows
   ``[k r, (k+1) r)`` of ``R`` (they sum to ``T`` exactly).
4. **Dependencies.** A conv's CN for output rows ``[a, b)`` needs the input rows ``[a s - p, (b-1) s - p +
   (kh-1) d]`` (stride, top padding, dilation: the kernel's halo; a pool's window likewise), i.e. the producer
   CNs holding them when the producer's rows are that input's rows; a GEMM's or an element-wise node's CN
   needs the same rows; any other pair needs the whole producer. On one core a node waits for its producers
   whole (the one-array sequencer: a node starts when its inputs are done); the CN overlap is across cores.
5. **Transfers.** A tensor crossing cores that the consumer's core keeps on chip (its tensor plan) goes core
   to core: each producer CN's share of the tensor's bytes crosses every link of the shortest path (breadth-
   first over ``noc.links``, ties by name; store and forward, a hop after the previous), ``ceil(bytes /
   link_bytes_per_cycle)`` cycles on each link direction; its consumer CNs wait for the last hop. A tensor
   the plan puts in DRAM goes through DRAM (the producer's writes and the consumer's reads are in their
   rows' DRAM bytes). A tensor is sent once per consumer core.
   **DRAM, as the split's chip model** (:mod:`hwsim.sim._chip`): with several cores a CN of rows is one tile
   (a node of one CN: the event model's tiles, folds or elements over lanes, at most
   ``timing.max_tiles_per_layer``), and each tile has a load of its share of the row's DRAM read bytes, a
   compute (its share of ``max(compute cycles, on-chip floor)``) and a write of its share of the write bytes.
   A load or a write holds, for ``max(ceil(bytes / DRAM bytes per cycle), ceil(bytes / link bytes per
   cycle))`` cycles, the DRAM channel (the chip's full bandwidth; two ports, the arrays' and the vector
   units', as in the chip model) and every link direction of its core's path from ``hub`` at once (cut-
   through). A core's tiles on one unit form one stream in the one-array DMA order
   (:func:`hwsim.sim.dma_order`): a load waits for the tile ``slots`` earlier to be computed (2 slots when
   the DRAM level or the memory is double buffered, else 1), a compute for its load, the previous compute on
   the unit and the write ``slots`` earlier; a CN's first load waits for its producer CNs' last writes (or
   their last hop); a CN ends with its last write. With one core the row's ``total_cycles`` is the CN's
   time on its unit (nothing is shared: the one-array model exactly).
6. **Schedule.** All of it is one task system (:func:`hwsim.sim.schedule_tasks`, SimPy or analytic: equal,
   tested on random pipelines), each resource serving its tasks in one order (in order). As the chip model:
   a *plan* first, each core with a DRAM channel of its own at ``bandwidth / cores``, tasks in program order;
   then up to :data:`hwsim.sim.MAX_PASSES` passes on the shared channel, each ordered by the previous pass's
   ready times (ties: program order; a topological order, since a task is ready after its dependencies
   end), stopping at a fixpoint; the shortest pass is kept (:func:`schedule_pipeline`). The makespan is the
   last task's end; a node's ``start_cycle``/``stop_cycle`` span its first and last task.
7. **Energy.** The allocated rows' energies, plus ``8 x bytes x hops x noc.pj_per_bit_per_hop`` for every
   transfer and for every core's DRAM bytes (from ``hub`` to the core, as the split model counts them).

One core equals the one-array result exactly (the CNs of a layer run back to back on one array; tested).
Not modelled: interleaving CNs of several layers on one core (Stream's layer fusion on a core), buffer
capacity taken by tensors in flight between cores, a first-come-first-served DRAM arbiter (the passes
approximate it; more passes shorten ResNet-50 further, docs/validation_multicore.md), several DRAM channels.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from ._chip_totals import (
    chip_area,
    chip_cycle_totals,
    core_cycle_sums,
    core_roofline,
    retime_row,
    union_cycles,
)
from .schedule import allocate_layers, auto_candidates
from .sim import MAX_PASSES, dma_order, schedule_tasks
from .spec import HUB, INPUT, ArchSpec, Conv2d, Gemm, VectorOp, Workload

__all__ = ["simulate_pipeline", "pipeline_tasks", "schedule_pipeline"]


def _path(arch: ArchSpec, a: str, b: str) -> list[tuple[str, str]]:
    """The directed links from core ``a`` to core ``b``: :meth:`hwsim.spec.CoresConfig.path`."""
    return arch.cores.path(a, b)


#: Vector ops that map output row r to input row r (element-wise on one shape).
_ROWWISE = ("add", "mul", "div", "sqrt", "relu", "gelu", "silu", "requant", "sigmoid", "tanh")


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


def _cdiv(b: int, bw: float) -> int:
    """``ceil(b / bw)`` cycles (0 for no bytes or an unbounded bandwidth)."""
    if b <= 0 or math.isinf(bw):
        return 0
    return -(-b // int(bw)) if float(bw).is_integer() else math.ceil(b / bw)


def _tiles(nd, row: dict, a: ArchSpec) -> int:
    """The event model's tiles of a node on its core (as the split: folds, or elements over lanes)."""
    cap = a.timing.max_tiles_per_layer
    if isinstance(nd, VectorOp):
        lanes = a.vector_unit.lanes if a.vector_unit is not None else 1
        return max(1, min(cap, -(-int(row.get("elements", 1) or 1) // lanes)))
    return max(1, min(int(row.get("folds", 1) or 1), cap))


def pipeline_tasks(arch: ArchSpec, workload: Workload, alloc: list[int], node_rows: list[list[dict]],
                   levels: list[dict[str, str]], *, dram: bool | None = None) -> dict[str, Any]:
    """The task graph of the pipeline (module docstring, 3.-6.) over resources, for
    :func:`hwsim.sim.schedule_tasks`.

    Parameters
    ----------
    alloc : list of int
        The core index of every node (program order).
    node_rows : list of list of dict
        ``node_rows[c][i]``: node ``i``'s row on core ``c`` (``total_cycles``; with DRAM tasks also
        ``compute_cycles``, ``onchip_cycles``, ``dram_read_bytes``, ``dram_write_bytes``, ``folds`` or
        ``elements``, each optional: missing means 0, or 1 tile).
    levels : list of dict
        ``levels[c]``: tensor name -> level name in core ``c``'s tensor plan; ``"bytes:" + name`` -> bytes.
    dram : bool, optional
        Give every CN its DRAM reads and writes as tasks on the DRAM channel and the links of its core's path
        from ``hub`` (default: when there are several cores). Without, a CN lasts its share of the row's
        ``total_cycles`` on its core's unit (the one-array row, its DRAM time inside).

    Returns
    -------
    dict
        ``durations``, ``resources``, ``deps`` (the shared DRAM channel at the chip's full bandwidth),
        ``plan_durations``, ``plan_resources`` (each core with a channel of its own at ``bandwidth / cores``:
        the plan pass), ``node_of`` (node index per task, -1 for a core-to-core transfer), ``kind`` per task
        (``load``, ``compute``, ``write``, ``link``), ``transfers`` (task -> ``src``, ``core``, ``link``,
        ``bytes``), ``cn_tasks`` (each node's CNs' first compute task), ``cn_ends`` (each CN's last task),
        ``units`` (per task: its unit or link name, for the timeline).
    """
    cfg = arch.cores
    names = [c.name for c in cfg.list]
    ncores = len(names)
    dram = ncores > 1 if dram is None else dram
    graph = workload.graph()
    nodes = graph.nodes
    idx = graph.node_index()
    rp = cfg.pipeline_rows
    vu = arch.vector_unit
    overlap = vu.overlap if vu is not None else True
    archs = dict(arch.core_archs()) if dram else {}
    dram_bw = arch.memory.dram_level.read_bw / 8
    share = dram_bw / ncores
    link_bw = cfg.noc.link_bytes_per_cycle
    hub_path = {nm: _path(arch, HUB, nm) for nm in names} if dram else {}
    hub_links: dict[tuple[int, int, str], tuple] = {}
    dram_unit = [f"{nm}.dram" for nm in names]
    durations: list[int] = []
    plan_dur: list[int] = []
    resources: list[tuple] = []
    plan_res: list[tuple] = []
    deps: list[tuple[int, ...]] = []
    node_of: list[int] = []
    kinds: list[str] = []
    units: list[str] = []
    transfers: dict[int, dict[str, Any]] = {}
    cn_tasks: list[list[int]] = []
    cn_ends: list[list[int]] = []
    sent: dict[tuple[int, int], list[int]] = {}  # (producer node, consumer core) -> last-hop task per CN
    # a node is cut into CNs only when a producer or a consumer is on another core: on one core a node waits
    # for its producers whole, so CNs there would only coarsen its tiles (module docstring, 3.)
    cross = [False] * len(nodes)
    for i in range(len(nodes)):
        for src in graph.inputs[i]:
            if src != INPUT and alloc[idx[src]] != alloc[i]:
                cross[i] = cross[idx[src]] = True
    rows_of = [_cn_rows(nd, graph.tensors[nd.name].chw) if cross[i] else 1 for i, nd in enumerate(nodes)]
    ncn = [math.ceil(r / rp) for r in rows_of]
    # per (core, unit): the stream of tiles in program order (compute and write tasks), for the slots
    stream_comp: dict[tuple[int, str], list[int]] = {}
    stream_write: dict[tuple[int, str], list[int]] = {}

    def add(d: int, res: tuple, ds, node: int, kind: str, unit: str, pd: int | None = None,
            pres: tuple | None = None) -> int:
        durations.append(int(d))
        plan_dur.append(int(d if pd is None else pd))
        resources.append(res)
        plan_res.append(res if pres is None else pres)
        deps.append(tuple(sorted(set(ds))))
        node_of.append(node)
        kinds.append(kind)
        units.append(unit)
        return len(durations) - 1

    def q_in_rows(q, prod, p: int) -> int:
        """The rows of ``q``'s input from node ``p``."""
        if isinstance(q, Conv2d):
            return q.in_h
        if isinstance(q, Gemm):
            return q.m if isinstance(prod, Gemm) else 0
        chw = graph.tensors[prod.name].chw
        return chw[1] if chw is not None else 0

    def dram_task(b: int, c: int, stream: int, ds, i: int, kind: str) -> int:
        """A load (hub to core) or write (core to hub): the channel and the path's links at once."""
        key = (c, stream, kind)
        links = hub_links.get(key)
        if links is None:
            core = names[c]
            hops = hub_path[core] if kind == "load" else [(v, u) for u, v in hub_path[core][::-1]]
            links = hub_links[key] = tuple(("link", u, v, stream) for u, v in hops)
        if b <= 0:
            return add(0, (), ds, i, kind, dram_unit[c])
        d = max(_cdiv(b, dram_bw), _cdiv(b, link_bw))
        pd = max(_cdiv(b, share), _cdiv(b, link_bw))
        res = (("dram", stream), *links) if d else ()
        pres = (("dram", c, stream), *links) if pd else ()
        return add(d, res, ds, i, kind, dram_unit[c], pd, pres)

    for i, nd in enumerate(nodes):
        c = alloc[i]
        core = names[c]
        vec = isinstance(nd, VectorOp)
        uname = "vector" if vec and overlap else "array"
        unit = f"{core}.{uname}"
        ures = (("unit", c, uname),)
        stream = 1 if vec else 0
        # the inputs: producer CNs directly (same core, or through DRAM), or their transfers
        src_tasks: list[tuple[Any, list[int], int]] = []
        for src in dict.fromkeys(graph.inputs[i]):
            if src == INPUT:
                continue
            p = idx[src]
            tasks = cn_ends[p]
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
                            d = _cdiv(b, link_bw)
                            prev = add(d, (("link", hop[0], hop[1], 0),) if d else (), (prev,), -1, "link",
                                       f"link.{hop[0]}>{hop[1]}")
                            transfers[prev] = {"src": src, "core": core, "link": hop, "bytes": b}
                        last.append(prev)
                    sent[key] = last
                tasks = sent[key]
            src_tasks.append((nodes[p], tasks, p))
        row = node_rows[c][i]
        total = int(row["total_cycles"])
        if dram:
            busy = max(int(row.get("compute_cycles", total)), int(row.get("onchip_cycles", 0) or 0))
            rd, wr = int(row.get("dram_read_bytes", 0)), int(row.get("dram_write_bytes", 0))
            a = archs[core]
            slots = 2 if a.memory.dma_double_buffered else 1
            per_cn = _tiles(nd, row, a) if ncn[i] == 1 else 1  # a CN of rows: one tile
        comps = stream_comp.setdefault((c, uname), [])
        writes = stream_write.setdefault((c, uname), [])
        cn_deps = []
        for k in range(ncn[i]):
            a_, b_ = k * rp, min((k + 1) * rp, rows_of[i])
            ds = []
            for prod, tasks, p in src_tasks:
                in_rows = q_in_rows(nd, prod, p)
                need = _needed(nd, a_, b_, rp, in_rows, rows_of[p], ncn[p]) \
                    if ncn[i] > 1 and alloc[p] != c else range(ncn[p])
                if len(need):
                    ds.append(tasks[min(need[-1], len(tasks) - 1)])
                    ds.extend(tasks[j] for j in need if j < len(tasks))
            cn_deps.append(ds)
        mine, ends = [], []
        if not dram:
            for k in range(ncn[i]):
                d = _share(total, k * rp, min((k + 1) * rp, rows_of[i]), rows_of[i]) if ncn[i] > 1 else total
                t = add(d, ures, cn_deps[k] + comps[-1:], i, "compute", unit)
                comps.append(t)
                mine.append(t)
                ends.append(t)
            cn_tasks.append(mine)
            cn_ends.append(ends)
            continue
        # the CNs' tiles (each CN its share of the node's tiles, at least one), in the DMA order of the
        # one-array model (hwsim.sim.dma_order: loads `slots` tiles ahead of the writes), each compute emitted
        # just before the first transfer that waits for it (as hwsim/sim/_chip.py: _pattern)
        n_all = ncn[i] * per_cn
        base = len(comps)
        s_ = min(slots, n_all)
        lds: dict[int, int] = {}
        seq, done = [], 0
        for kind_, g in dma_order(n_all, s_):
            while done <= (g - s_ if kind_ == "load" else g):
                seq.append(("compute", done))
                done += 1
            seq.append((kind_, g))
        seq += [("compute", g) for g in range(done, n_all)]
        for kind_, g in seq:
            lo, hi = g, g + 1  # tile g of n_all: v (g+1) // n_all - v g // n_all
            if kind_ == "compute":
                cd = [lds[g], *comps[-1:]]
                if base + g >= slots:
                    cd.append(writes[base + g - slots])  # an output slot free: that tile written
                t = add(_share(busy, lo, hi, n_all), ures, cd, i, "compute", unit)
                comps.append(t)
                if g % per_cn == 0:
                    mine.append(t)
            elif kind_ == "load":
                ld_deps = list(cn_deps[g // per_cn]) if g % per_cn == 0 else [lds[g - 1]]
                if base + g >= slots:
                    ld_deps.append(comps[base + g - slots])  # a buffer slot free: that tile computed
                lds[g] = dram_task(_share(rd, lo, hi, n_all), c, stream, ld_deps, i, "load")
            else:
                w = dram_task(_share(wr, lo, hi, n_all), c, stream, [comps[base + g]], i, "write")
                writes.append(w)
                if g % per_cn == per_cn - 1:
                    ends.append(w)
        cn_tasks.append(mine)
        cn_ends.append(ends)
    return {"durations": durations, "resources": resources, "deps": deps, "plan_durations": plan_dur,
            "plan_resources": plan_res, "node_of": node_of, "kind": kinds, "units": units,
            "transfers": transfers, "cn_tasks": cn_tasks, "cn_ends": cn_ends}


def schedule_pipeline(tg: dict[str, Any], *, engine: str = "analytic", passes: int = MAX_PASSES,
                      shared: bool = True) -> tuple[list[int], list[int], int]:
    """Start and end cycle of every task of :func:`pipeline_tasks` (module docstring, 6.): the plan (each core
    with a DRAM channel of its own at its share, tasks in program order), then up to ``passes`` passes on the
    shared channel, each serving every resource in the order of the previous pass's ready times (ties:
    program order), stopping at a fixpoint; the pass with the shortest makespan is kept (the first of
    equals). ``shared=False``: the plan only (one core: nothing is shared). Returns ``(start, end,
    passes run)``, in program order."""
    n = len(tg["durations"])
    ids: dict[Any, int] = {}  # resource names as small integers (hashed once, not at every pass)
    plan_res = [tuple(ids.setdefault(r, len(ids)) for r in rs) for rs in tg["plan_resources"]]
    start, end = schedule_tasks(tg["plan_durations"], plan_res, tg["deps"], engine=engine)
    if not shared:
        return start, end, 0
    deps = tg["deps"]
    res = [tuple(ids.setdefault(r, len(ids)) for r in rs) for rs in tg["resources"]]
    durs = tg["durations"]
    order, best, k = list(range(n)), None, 0
    while k < passes:
        key = [0] * n
        for t, ds in enumerate(deps):
            r = 0
            for d in ds:
                if end[d] > r:
                    r = end[d]
            key[t] = r * n + t  # ready cycle, then program order
        nxt = sorted(range(n), key=key.__getitem__)
        if k and nxt == order:
            break  # a fixpoint: every resource serves its tasks in the order they become ready
        order = nxt
        inv = [0] * n
        for new, old in enumerate(order):
            inv[old] = new
        s2, e2 = schedule_tasks([durs[t] for t in order], [res[t] for t in order],
                                [[inv[d] for d in deps[t]] for t in order], engine=engine)
        start, end = [s2[x] for x in inv], [e2[x] for x in inv]
        k += 1
        span = max(end, default=0)
        if best is None or span < best[0]:
            best = (span, start, end, k)
    if best is None:
        return start, end, 0
    return best[1], best[2], best[3]


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
        ``timeline``: one row per node on its core's unit, one per node with DRAM transfers on
        ``core.dram`` (its first to its last transfer on the channel), one per transfer group on each
        link;
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
    auto_note = ""
    if cfg.allocation == "auto" and n > 1:  # the best of the candidates, each timed by this model (1.)
        hops0 = cfg.hops()
        same = [(id(a), hops0[nm]) for nm, a in archs]
        tried = []
        best = None
        for label, cand in auto_candidates(workload, names, cycles, same):
            tg_c = pipeline_tasks(arch, workload, cand, node_rows, levels)
            s_c, e_c, _ = schedule_pipeline(tg_c, engine=arch.timing.engine)
            span_c = max(e_c) if e_c else 0
            tried.append(f"{label} {span_c:,}")
            if best is None or span_c < best[0]:
                best = (span_c, label, cand, tg_c, s_c, e_c)
        assert best is not None
        _, label, alloc, tg, start, end = best
        auto_note = f"allocation auto: {label}, the fewest cycles of {'; '.join(tried)}"
    else:
        alloc = allocate_layers(workload, names, cfg.allocation, cycles, source=source)
        tg = pipeline_tasks(arch, workload, alloc, node_rows, levels)
        start, end, _passes = schedule_pipeline(tg, engine=arch.timing.engine, shared=n > 1)
    makespan = max(end) if end else 0
    span: dict[int, list[int]] = {}  # node -> [first start, last end] of its tasks (loads, computes, writes)
    dspan: dict[int, list[int]] = {}  # node -> [first start, last end] of its DRAM tasks that take time
    comp_of = [0] * len(nodes)  # node -> its compute tasks' cycles in the schedule (max(compute, floor))
    dram_of = [0] * len(nodes)  # node -> its loads' and writes' cycles on the channel
    for t, i in enumerate(tg["node_of"]):
        if i < 0:
            continue
        sp = span.setdefault(i, [start[t], end[t]])
        sp[0], sp[1] = min(sp[0], start[t]), max(sp[1], end[t])
        if tg["kind"][t] == "compute":
            comp_of[i] += tg["durations"][t]
        else:
            dram_of[i] += tg["durations"][t]
        if tg["kind"][t] != "compute" and tg["durations"][t]:
            sp = dspan.setdefault(i, [start[t], end[t]])
            sp[0], sp[1] = min(sp[0], start[t]), max(sp[1], end[t])
    hops = cfg.hops()
    pj = cfg.noc.pj_per_bit_per_hop
    rows, vrows, timeline = [], [], []
    windows: dict[str, list[tuple[int, int]]] = {nm: [] for nm in names}  # its nodes' [start, stop)
    per_core = {nm: {"busy": 0, "macs": 0, "dram": 0, "noc": 0, "energy": 0.0} for nm in names}
    core_nodes: dict[str, tuple[list, list]] = {nm: ([], []) for nm in names}  # GEMM rows, vector rows
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
        row["start_cycle"], row["stop_cycle"] = span[i]
        if n > 1:  # the cycles of the schedule (the row's are the one-array ones at the equal DRAM share)
            retime_row(row, span[i][1] - span[i][0], comp_of[i], archs[c][1], vector=key == "node")
            if key == "layer":
                row["onchip_stall_cycles"] = comp_of[i] - int(row["compute_cycles"])
            row["dram_busy_cycles"] = dram_of[i]
        row["core"] = core
        (vrows if isinstance(nd, VectorOp) else rows).append(row)
        core_nodes[core][isinstance(nd, VectorOp)].append(row)
        unit = tg["units"][tasks[0]]
        timeline.append({"node": nd.name, "unit": unit if n > 1 else unit.split(".", 1)[1],
                         "start_cycle": row["start_cycle"], "stop_cycle": row["stop_cycle"]})
        if i in dspan:
            timeline.append({"node": nd.name, "unit": f"{core}.dram", "start_cycle": dspan[i][0],
                             "stop_cycle": dspan[i][1]})
        dram = int(row.get("dram_read_bytes", 0)) + int(row.get("dram_write_bytes", 0))
        noc_bits_hops += 8 * dram * hops[core]
        noc_bytes += dram
        pc = per_core[core]
        windows[core].append((row["start_cycle"], row["stop_cycle"]))
        pc["macs"] += int(row.get("macs", 0) or 0)
        pc["dram"] += dram
        pc["noc"] += dram
        pc["energy"] += float(row.get("energy_pj", 0.0))
    for nm in names:  # the cycles the core runs at least one of its nodes (its units overlap: not a sum)
        per_core[nm]["busy"] = union_cycles(windows[nm])
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
    core_sums = [core_cycle_sums(*core_nodes[nm]) for nm in names]
    if n > 1:  # one core: the one-array totals as they are
        chip_cycle_totals(totals, core_sums, makespan)
    # each core's compute and DRAM cycles, as the split model counts them (its tasks' durations: computes on
    # its units, loads and writes on the channel at the chip's full bandwidth); one core has no DRAM tasks
    # in its schedule (a CN lasts the row's total cycles), so they are counted on the task graph with them
    dtg = tg if n > 1 else pipeline_tasks(arch, workload, alloc, node_rows, levels, dram=True)
    comp_cyc, dram_cyc = [0] * n, [0] * n
    for t, i in enumerate(dtg["node_of"]):
        if i >= 0:
            k = dtg["kind"][t]
            if k == "compute":
                comp_cyc[alloc[i]] += dtg["durations"][t]
            elif k in ("load", "write"):
                dram_cyc[alloc[i]] += dtg["durations"][t]
    area, core_mm2 = chip_area(archs, source=source)
    core_rows = []
    for ci, ((name, a), c, sums) in enumerate(zip(archs, cfg.list, core_sums, strict=True)):
        pc = per_core[name]
        peak = a.array.rows * a.array.cols
        bw = a.memory.dram_level.read_bw / 8  # its share: the chip's bandwidth over the cores
        core_rows.append({
            "core": name, "array": c.array, "rows": a.array.rows, "cols": a.array.cols, "macs": pc["macs"],
            "busy_cycles": pc["busy"], "utilization": pc["macs"] / (makespan * peak) if makespan else 0.0,
            "dram_bytes": pc["dram"], "noc_bytes": pc["noc"], "hops": hops[name], "energy_pj": pc["energy"],
            **core_roofline(peak, bw, pc["macs"], pc["dram"], makespan),
            "compute_cycles": comp_cyc[ci], "dram_cycles": dram_cyc[ci], **sums, "area_mm2": core_mm2[ci]})
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
                      energies=first.energies, model_cpu_s=cpu, area=area, vector_rows=vrows,
                      tensor_rows=first.tensor_rows if n == 1 else tensor_rows,
                      timeline=timeline, occupancy=first.occupancy if n == 1 else [],
                      notes=[*first.notes, *([f"{n} cores, layers pipelined (allocation "
                                              f"{[names[alloc[i]] for i in range(len(nodes))]}), "
                                              f"{cfg.pipeline_rows} rows per computation node "
                                              "(docs/validation_multicore.md)"] if n > 1 else []),
                             *([auto_note] if auto_note else [])])
    out.totals = totals
    finish(out)
    peak_all = sum(x["rows"] * x["cols"] for x in core_rows)
    out.totals["peak_tops"] = 2.0 * peak_all * arch.clock_mhz * 1e-6
    out.totals["utilization"] = (totals["macs"] / (makespan * peak_all) if makespan else 0.0) if n > 1 \
        else first.totals["utilization"]
    out.allocation = {nd.name: names[alloc[i]] for i, nd in enumerate(nodes)}
    out.core_rows = core_rows
    return out
