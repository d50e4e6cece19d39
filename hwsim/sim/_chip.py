"""The chip-level event model: every core's nodes as tiles on shared resources (the DRAM channel, the network
links), with the data dependencies between cores and nothing else (no barrier per node).

What runs (one block per core and node, each assumption stated):

* **A node's part on a core** is the one-array event model of :mod:`hwsim.sim._event` (its tiles, split
  evenly: compute, DRAM read and write bytes; double buffered or not) inside a window: its *start* waits for
  the blocks it depends on and for the previous node on the same unit of that core (the array, the vector
  unit; one unit when they do not overlap); its *end* is when its last tile is computed and written.
* **A transfer** (one tile's load or write) holds, for its whole duration, the DRAM channel and every link on
  the core's path from ``hub`` (cut-through: it streams through all of them at once), and lasts
  ``max(ceil(bytes / DRAM bytes per cycle), ceil(bytes / link bytes per cycle))``. A transfer of zero cycles
  holds nothing (as in the one-array model).
* **Two DRAM ports**: the arrays' transfers of every core share one DRAM channel, the vector units' share a
  second one, and each link likewise carries the two streams as two resources. As in the one-array model,
  where a vector node's DRAM traffic never contends with the array's, so that one core equals one array
  exactly; the vector units' DRAM traffic is small (KV-cache writes, spilled activations): optimistic there.
* **All-gather** (``gather_bytes``): a block's input produced by the other cores reaches it through ``hub``,
  tile by tile: after each tile's load, a task on the path's links (the array stream) of
  ``ceil(2 x its share / link bytes per cycle)`` (in to ``hub`` and out again over each link, as the byte
  count of :func:`hwsim.simulate_multicore`); the tile computes once it is done.
* **Service discipline: in order** (:func:`hwsim.sim.schedule_tasks`): every resource serves its tasks in one
  fixed order, the chip's task order. A *plan* runs first: each core with a DRAM channel of its own at the
  equal share ``bandwidth / cores``, tasks in round-robin order (node by node, over the cores by position in
  each block's sequence ``join, start, (load, all-gather, compute, write in the DMA order of
  :func:`hwsim.sim.dma_order`), end``). Then up to :data:`MAX_PASSES` passes on the shared channel, each
  ordered by the previous pass's *ready* times (when a task's dependencies are done; ties: node, core,
  position), stopping early at a fixpoint (where every resource serves first come, first served); the pass
  with the shortest makespan is kept (the first of equals). With one core nothing is shared: one pass in
  program order, the one-array model exactly.

Two engines give the same schedule (tested equal on hundreds of random chips, ``tests/test_sim_chip.py``):
``engine="simpy"`` builds the explicit tasks (:func:`chip_tasks`) and runs SimPy processes over
:class:`simpy.Resource` objects (:func:`hwsim.sim.schedule_tasks`, the reference); ``engine="analytic"`` runs
the same recurrence over the blocks without building the tasks (plain Python for small chips, numba above
:data:`NUMBA_TASKS` tasks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._event import dma_order
from ._tasks import schedule_tasks

__all__ = ["ChipNode", "ChipSchedule", "chip_schedule", "chip_tasks", "warm_up_chip", "NUMBA_TASKS",
           "MAX_PASSES", "ARRAY_UNIT", "VECTOR_UNIT"]

#: Above this many tasks the analytic engine runs compiled by numba (below, plain Python: no compiler loaded).
NUMBA_TASKS = 20_000

#: Passes on the shared channel after the plan, at most (each ordered by the previous one's ready times); the
#: shortest is kept.
MAX_PASSES = 2

#: ``ChipNode.unit`` of a node on the array and on the vector unit.
ARRAY_UNIT, VECTOR_UNIT = 0, 1
ARRAY, VECTOR = ARRAY_UNIT, VECTOR_UNIT
_GATHER, _START, _LOAD, _COMPUTE, _WRITE, _END, _GLINK = range(7)


@dataclass(frozen=True)
class ChipNode:
    """One node's part on one core.

    Attributes
    ----------
    unit : int
        0: the array, 1: the vector unit (also the stream its DRAM transfers use).
    tiles : int
        Tiles (>= 1) the part's compute cycles and DRAM bytes are split into, evenly.
    compute_cycles, onchip_cycles : int
        Compute cycles; cycles the on-chip traffic needs at least (a tile's array phase lasts the max of its
        shares of both).
    read_bytes, write_bytes : int
        DRAM bytes read before its tiles compute and written after.
    gather_bytes : int
        Bytes of its input received from the other cores before it starts (all-gather through ``hub``).
    deps : tuple of (core, node)
        The blocks (of earlier nodes, any core) whose end it waits for.
    """

    unit: int
    tiles: int
    compute_cycles: int
    onchip_cycles: int = 0
    read_bytes: int = 0
    write_bytes: int = 0
    gather_bytes: int = 0
    deps: tuple[tuple[int, int], ...] = ()


@dataclass
class ChipSchedule:
    """Per block (shape ``(cores, nodes)``, int64 cycles): ``start``, ``end`` of its window; ``dram_start``,
    ``dram_end`` of its first and last transfer on the DRAM channel (``start`` when none), ``dram_cycles``
    the sum of its transfers' durations,
    ``compute_cycles`` of its tiles' array phases. ``makespan``: the last end."""

    start: np.ndarray
    end: np.ndarray
    dram_start: np.ndarray
    dram_end: np.ndarray
    dram_cycles: np.ndarray
    compute_cycles: np.ndarray
    makespan: int
    passes: int = 1


def _pattern(n: int, slots: int) -> list[tuple[int, int]]:
    """A block's tiles in task order: the DMA order, each compute placed just before the first transfer that
    waits for it (as :mod:`hwsim.sim._recurrence` settles them)."""
    s = min(slots, n)
    out, done = [], 0
    for kind, i in dma_order(n, s):
        need = i - s if kind == "load" else i
        while done <= need:
            out.append((_COMPUTE, done))
            done += 1
        out.append((_LOAD if kind == "load" else _WRITE, i))
        if kind == "load":
            out.append((_GLINK, i))  # the tile's share of the all-gather, over the links after its load
    while done < n:
        out.append((_COMPUTE, done))
        done += 1
    return out


def _ceil_div(b: int, bw: float) -> int:
    if b <= 0 or math.isinf(bw):
        return 0
    if float(bw).is_integer():
        return -(-b // int(bw))
    return int(math.ceil(b / bw))


def _part(total: int, n: int, k: int) -> int:
    return (k + 1) * total // n - k * total // n


def _check(nodes, paths, double_buffered, overlap):
    c = len(nodes)
    if c == 0 or len(paths) != c:
        raise ValueError(f"one node list and one path per core, found {c} node lists and {len(paths)} paths")
    n = len(nodes[0])
    if any(len(x) != n for x in nodes):
        raise ValueError("every core must have the same number of nodes")
    for ci, row in enumerate(nodes):
        for i, nd in enumerate(row):
            if nd.tiles < 1 or nd.unit not in (ARRAY, VECTOR):
                raise ValueError(f"block ({ci}, {i}): tiles >= 1 and unit 0 or 1, found {nd}")
            if min(nd.compute_cycles, nd.onchip_cycles, nd.read_bytes, nd.write_bytes, nd.gather_bytes) < 0:
                raise ValueError(f"block ({ci}, {i}): negative cycles or bytes")
            for dc, dn in nd.deps:
                if not (0 <= dc < c and 0 <= dn < i):
                    raise ValueError(f"block ({ci}, {i}) depends on ({dc}, {dn}): an earlier node of a core")
    flags = []
    for v in (double_buffered, overlap):
        v = [bool(v)] * c if isinstance(v, bool | np.bool_) else [bool(x) for x in v]
        if len(v) != c:
            raise ValueError("double_buffered and overlap: one flag or one per core")
        flags.append(v)
    return flags


def _sequences(nodes, db):
    """Each block's task sequence ``[(kind, tile), ...]``: gather, start, its tiles in the DMA order, end."""
    return {(c, i): [(_GATHER, 0), (_START, 0), *_pattern(nd.tiles, 2 if db[c] else 1), (_END, 0)]
            for c, row in enumerate(nodes) for i, nd in enumerate(row)}


def _round_robin(nodes, seqs) -> list[tuple[int, int, int]]:
    """(core, node, position) of every task: node by node, round-robin over the cores by position."""
    out = []
    for i in range(len(nodes[0])):
        width = max(len(seqs[(c, i)]) for c in range(len(nodes)))
        out += [(c, i, p) for p in range(width) for c in range(len(nodes)) if p < len(seqs[(c, i)])]
    return out


def chip_tasks(nodes: Sequence[Sequence[ChipNode]], paths: Sequence[Sequence[int]], *,
               dram_bytes_per_cycle: float, link_bytes_per_cycle: float,
               double_buffered: bool | Sequence[bool] = True, overlap: bool | Sequence[bool] = True,
               private_dram: bool = False, planned: dict | None = None):
    """The chip model as explicit tasks (module docstring), in the order every resource serves them.

    ``private_dram``: each core has a DRAM channel of its own (the plan, at the caller's share of the
    bandwidth); ``planned``: ``{(core, node, position): ready cycle}`` of a previous pass, which sets the task
    order (by ready cycle, then node, core and position); without it the order is round-robin (node by node,
    over the cores by position).

    Returns
    -------
    (durations, resources, deps, labels) : lists, one entry per task; ``labels[t] = (core, node, position,
    kind, tile)`` with kind 0 join, 1 start, 2 load, 3 compute, 4 write, 5 end, 6 the tile's all-gather.
    The inputs of
    :func:`hwsim.sim.schedule_tasks`.
    """
    db, ov = _check(nodes, paths, double_buffered, overlap)
    seqs = _sequences(nodes, db)
    order = _round_robin(nodes, seqs)
    if planned is not None:
        order.sort(key=lambda x: (planned[(x[0], x[1], x[2])], x[1], x[0], x[2]))
    durations, resources, deps, labels = [], [], [], []
    where: dict[tuple[int, int, int, int], int] = {}
    # the previous block on each core's unit, in program order (not in task order)
    prev_on_unit: dict[tuple[int, int], tuple[int, int]] = {}
    last: dict[tuple[int, int], tuple[int, int]] = {}
    for c in range(len(nodes)):
        for i, nd in enumerate(nodes[c]):
            u = nd.unit if ov[c] else ARRAY
            if (c, u) in last:
                prev_on_unit[(c, i)] = last[(c, u)]
            last[(c, u)] = (c, i)
    for c, i, p in order:
        kind, k = seqs[(c, i)][p]
        nd = nodes[c][i]
        n, s = nd.tiles, min(2 if db[c] else 1, nd.tiles)
        unit = nd.unit if ov[c] else ARRAY
        ends = [where[(dc, dn, _END, 0)] for dc, dn in nd.deps]
        dur, res, dep = 0, (), []
        dram = ("dram", c, nd.unit) if private_dram else ("dram", nd.unit)
        if kind == _GATHER:  # a join (the all-gather streams with the loads)
            dep = ends
        elif kind == _START:
            dep = [where[(c, i, _GATHER, 0)], *ends]
            if (c, i) in prev_on_unit:
                dep.append(where[(*prev_on_unit[(c, i)], _END, 0)])
        elif kind in (_LOAD, _WRITE):
            b = _part(nd.read_bytes if kind == _LOAD else nd.write_bytes, n, k)
            dur = max(_ceil_div(b, dram_bytes_per_cycle), _ceil_div(b, link_bytes_per_cycle))
            res = (dram, *(("link", ln, nd.unit) for ln in paths[c])) if dur else ()
            if kind == _LOAD:
                dep = [where[(c, i, _START, 0)] if k < s else where[(c, i, _COMPUTE, k - s)]]
            else:
                dep = [where[(c, i, _COMPUTE, k)]]
        elif kind == _COMPUTE:
            dur = max(_part(nd.compute_cycles, n, k), _part(nd.onchip_cycles, n, k))
            res = (("unit", c, unit),)
            dep = [where[(c, i, _START, 0)] if k == 0 else where[(c, i, _COMPUTE, k - 1)],
                   where[(c, i, _GLINK, k)]]
            if k >= s:
                dep.append(where[(c, i, _WRITE, k - s)])
        elif kind == _GLINK:  # in to hub and out again: twice its bytes over each link of the path
            dur = _ceil_div(2 * _part(nd.gather_bytes, n, k), link_bytes_per_cycle)
            res = tuple(("link", ln, nd.unit) for ln in paths[c]) if dur else ()
            dep = [where[(c, i, _LOAD, k)]]
        else:
            dep = [where[(c, i, _COMPUTE, n - 1)]] + [where[(c, i, _WRITE, j)] for j in range(n - s, n)]
        where[(c, i, kind, k)] = len(durations)
        durations.append(dur)
        resources.append(res)
        deps.append(sorted(set(dep)))
        labels.append((c, i, p, kind, k))
    return durations, resources, deps, labels


def _from_tasks(nodes, start, end, durations, resources, labels, passes) -> ChipSchedule:
    shape = (len(nodes), len(nodes[0]))
    out = {k: np.zeros(shape, dtype=np.int64) for k in ("start", "end", "dram_start", "dram_end",
                                                          "dram_cycles",
                                                          "compute_cycles")}
    first = np.full(shape, -1, dtype=np.int64)
    for t, (c, i, _p, kind, _k) in enumerate(labels):
        if kind == _START:
            out["start"][c, i] = start[t]
        elif kind == _END:
            out["end"][c, i] = end[t]
        elif kind == _COMPUTE:
            out["compute_cycles"][c, i] += durations[t]
        elif kind != _GLINK and durations[t]:
            if first[c, i] < 0 or start[t] < first[c, i]:
                first[c, i] = start[t]
            out["dram_end"][c, i] = max(out["dram_end"][c, i], end[t])
            out["dram_cycles"][c, i] += durations[t]
    none = first < 0
    out["dram_start"] = np.where(none, out["start"], first)
    out["dram_end"] = np.where(none, out["start"], out["dram_end"])
    return ChipSchedule(**out, makespan=int(out["end"].max()) if out["end"].size else 0, passes=passes)


def _body(ncores, nn, unit, ntiles, slots, cdur, ldur, wdur, gdur, dptr, didx, lptr, lidx, ovl, pkind, ptile,
          poff, toff, boff, prev, ob, op, private, free, comp_end, load_end, write_end, glink_end, tready,
          b_start, b_end, d_first, d_last, d_cyc, c_cyc):
    """The recurrence of :func:`chip_tasks` + :func:`hwsim.sim.schedule_tasks` (analytic) over the tasks in
    the order ``(ob, op)`` (block, position), without building them. ``cdur, ldur, wdur, gdur[toff[b] + k]``:
    each tile's compute, load, write and all-gather cycles. The state (``free`` and the arguments after it) is
    filled in place; ``tready[boff[b] + p]``: when each task's dependencies are done. One source: plain
    Python on lists, or compiled by numba on int64 arrays."""
    # resources: 2c + u (core c's units), 2C + (2c + stream | stream) (DRAM), lbase + 2 link + stream
    lbase = 4 * ncores
    for t in range(len(ob)):
        b = ob[t]
        p = op[t]
        c = b // nn
        n = ntiles[b]
        s = slots[b] if slots[b] < n else n
        t0 = toff[b]
        st = 0
        if p == 0:  # a join: the blocks it depends on are done
            for q in range(dptr[b], dptr[b + 1]):
                if b_end[didx[q]] > st:
                    st = b_end[didx[q]]
            tready[boff[b]] = st
            b_start[b] = st
        elif p == 1:  # the window opens: inputs done, the unit's previous node done
            st = b_start[b]
            if prev[b] >= 0 and b_end[prev[b]] > st:
                st = b_end[prev[b]]
            b_start[b] = st
            tready[boff[b] + 1] = st
        elif p == 4 * n + 2:  # the window closes: last tile computed, last writes done
            st = comp_end[t0 + n - 1]
            for j in range(n - s, n):
                if write_end[t0 + j] > st:
                    st = write_end[t0 + j]
            b_end[b] = st
            tready[boff[b] + p] = st
        else:
            kind = pkind[poff[b] + p - 2]
            k = ptile[poff[b] + p - 2]
            sk = unit[b]
            if kind == 3:  # a tile's array phase on the core's unit
                st = b_start[b] if k == 0 else comp_end[t0 + k - 1]
                if glink_end[t0 + k] > st:
                    st = glink_end[t0 + k]
                if k >= s and write_end[t0 + k - s] > st:
                    st = write_end[t0 + k - s]
                tready[boff[b] + p] = st
                dur = cdur[t0 + k]
                r = 2 * c + (sk if ovl[c] else 0)
                if free[r] > st:
                    st = free[r]
                free[r] = st + dur
                comp_end[t0 + k] = st + dur
                c_cyc[b] += dur
            elif kind == 6:  # the tile's share of the all-gather over the path's links
                st = load_end[t0 + k]
                tready[boff[b] + p] = st
                dur = gdur[t0 + k]
                if dur > 0:
                    for q in range(lptr[c], lptr[c + 1]):
                        if free[lbase + 2 * lidx[q] + sk] > st:
                            st = free[lbase + 2 * lidx[q] + sk]
                    for q in range(lptr[c], lptr[c + 1]):
                        free[lbase + 2 * lidx[q] + sk] = st + dur
                glink_end[t0 + k] = st + dur
            else:  # a load (2) or a write (4): the DRAM channel and the path's links at once
                if kind == 2:
                    st = b_start[b] if k < s else comp_end[t0 + k - s]
                    dur = ldur[t0 + k]
                else:
                    st = comp_end[t0 + k]
                    dur = wdur[t0 + k]
                tready[boff[b] + p] = st
                if dur > 0:
                    rdram = 2 * ncores + (2 * c + sk if private else sk)
                    if free[rdram] > st:
                        st = free[rdram]
                    for q in range(lptr[c], lptr[c + 1]):
                        if free[lbase + 2 * lidx[q] + sk] > st:
                            st = free[lbase + 2 * lidx[q] + sk]
                    free[rdram] = st + dur
                    for q in range(lptr[c], lptr[c + 1]):
                        free[lbase + 2 * lidx[q] + sk] = st + dur
                    if d_first[b] < 0 or st < d_first[b]:
                        d_first[b] = st
                    if st + dur > d_last[b]:
                        d_last[b] = st + dur
                    d_cyc[b] += dur
                if kind == 2:
                    load_end[t0 + k] = st + dur
                else:
                    write_end[t0 + k] = st + dur


def _tile_parts(totals: np.ndarray, ntiles: np.ndarray) -> np.ndarray:
    """Every block's total split evenly over its tiles (as :func:`hwsim.sim.split_even`), concatenated."""
    n = np.repeat(ntiles, ntiles)
    tot = np.repeat(totals, ntiles)
    k = np.arange(len(n), dtype=np.int64) - np.repeat(np.cumsum(ntiles) - ntiles, ntiles)
    return (k + 1) * tot // n - k * tot // n


def _cycles(nbytes: np.ndarray, bw: float) -> np.ndarray:
    """``ceil(bytes / bw)`` per entry (0 for 0 bytes or unbounded bandwidth), as :func:`_ceil_div`."""
    if math.isinf(bw):
        return np.zeros(len(nbytes), dtype=np.int64)
    if float(bw).is_integer():
        return (nbytes + int(bw) - 1) // int(bw)
    return np.ceil(nbytes / bw).astype(np.int64)


_compiled = None
_patterns: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def _numba_body():
    global _compiled
    if _compiled is None:
        from numba import njit

        _compiled = njit(cache=True)(_body)
    return _compiled


def _analytic(nodes, paths, db, ov, dram_bw, link_bw, force_numba=None) -> ChipSchedule:
    ncores, nn = len(nodes), len(nodes[0])
    flat = [nodes[c][i] for c in range(ncores) for i in range(nn)]
    nb = len(flat)
    unit = [x.unit for x in flat]
    ntiles = [x.tiles for x in flat]
    slots = [2 if db[c] else 1 for c in range(ncores) for _ in range(nn)]
    cols = [[getattr(x, k) for x in flat] for k in ("compute_cycles", "onchip_cycles", "read_bytes",
                                                    "write_bytes", "gather_bytes")]
    dptr, didx = [0], []
    for x in flat:
        didx += sorted({dc * nn + dn for dc, dn in x.deps})
        dptr.append(len(didx))
    lptr, lidx = [0], []
    for pth in paths:
        lidx += list(pth)
        lptr.append(len(lidx))
    nlinks = max(lidx, default=-1) + 1
    prev, last = [-1] * nb, {}
    for b, x in enumerate(flat):
        c = b // nn
        key = (c, x.unit if ov[c] else ARRAY)
        prev[b] = last.get(key, -1)
        last[key] = b
    ntask = [4 * n + 3 for n in ntiles]
    toff, boff, t, bt = [], [], 0, 0
    for n in ntiles:
        toff.append(t)
        boff.append(bt)
        t += n
        bt += 4 * n + 3
    pk, pt, poff, o = [], [], [], 0
    for b in range(nb):
        key = (ntiles[b], slots[b])
        if key not in _patterns:
            pat = _pattern(*key)
            _patterns[key] = (np.array([k for k, _ in pat], np.int64),
                              np.array([j for _, j in pat], np.int64))
        pk.append(_patterns[key][0])
        pt.append(_patterns[key][1])
        poff.append(o)
        o += len(pk[-1])
    # the round-robin order of the planning pass: node, then position, then core
    nt = np.asarray(ntask, dtype=np.int64).reshape(ncores, nn)
    width = int(nt.max())
    bb = np.repeat(np.arange(nb, dtype=np.int64), ntask)
    pp = np.arange(bt, dtype=np.int64) - np.repeat(np.asarray(boff, dtype=np.int64), ntask)
    node, core = bb % nn, bb // nn
    o1 = np.argsort((node * width + pp) * ncores + core, kind="stable")
    ob1, op1 = bb[o1], pp[o1]
    nres = 4 * ncores + 2 * nlinks
    big = max([max(c, default=0) for c in cols], default=0)
    if big * (max(ntiles) + 1) >= 2**62:  # int64 would overflow: Python integers, one tile at a time
        parts = [[_part(col[b], ntiles[b], k) for b in range(nb) for k in range(ntiles[b])] for col in cols]
        to = lambda v: np.array(v, dtype=object)  # noqa: E731
        parts = [to(x) for x in parts]
        ceil = lambda v, bw: to([_ceil_div(int(x), bw) for x in v])  # noqa: E731
        use = False
    else:
        nt_arr = np.asarray(ntiles, dtype=np.int64)
        parts = [_tile_parts(np.asarray(col, dtype=np.int64), nt_arr) for col in cols]
        ceil = _cycles
        use = (bt > NUMBA_TASKS) if force_numba is None else force_numba
    comp, onch, rd, wd, gb = parts
    cdur = np.maximum(comp, onch)
    ldur, wdur = (np.maximum(ceil(x, dram_bw), ceil(x, link_bw)) for x in (rd, wd))
    share = dram_bw / ncores
    lsh, wsh = (np.maximum(ceil(x, share), ceil(x, link_bw)) for x in (rd, wd))
    gdur = ceil(2 * gb, link_bw)
    if use:
        arr = lambda v: np.asarray(v, dtype=np.int64)  # noqa: E731
        common = [ncores, nn, arr(unit), arr(ntiles), arr(slots)]
        tail = [arr(dptr), arr(didx), arr(lptr), arr(lidx), np.asarray(ov, dtype=np.bool_),
                np.concatenate(pk), np.concatenate(pt), arr(poff), arr(toff), arr(boff), arr(prev)]
        durs = [arr(x) for x in (cdur, ldur, wdur, gdur)]
        plan_durs = [durs[0], arr(lsh), arr(wsh), durs[3]]
        run = _numba_body()

        def state():
            return [np.zeros(nres, np.int64), *(np.zeros(t, np.int64) for _ in range(4)),
                    np.zeros(bt, np.int64), *(np.zeros(nb, np.int64) for _ in range(2)),
                    np.full(nb, -1, np.int64), *(np.zeros(nb, np.int64) for _ in range(3))]
    else:
        common = [ncores, nn, unit, ntiles, slots]
        tail = [dptr, didx, lptr, lidx, list(ov), [int(v) for a in pk for v in a],
                [int(v) for a in pt for v in a], poff, toff, boff, prev]
        durs = [[int(v) for v in x] for x in (cdur, ldur, wdur, gdur)]
        plan_durs = [durs[0], [int(v) for v in lsh], [int(v) for v in wsh], durs[3]]
        run = _body
        ob1, op1 = ob1.tolist(), op1.tolist()

        def state():
            return [[0] * nres, *([0] * t for _ in range(4)), [0] * bt, *([0] * nb for _ in range(2)),
                    [-1] * nb, *([0] * nb for _ in range(3))]
    st = state()
    if ncores == 1:  # nothing shared: one pass in program order
        run(*common, *durs, *tail, ob1, op1, False, *st)
        passes = 1
    else:
        # the plan: every core with a DRAM channel of its own at its share of the bandwidth
        run(*common, *plan_durs, *tail, ob1, op1, True, *st)
        passes, order, best = 0, None, None
        while passes < MAX_PASSES:
            # the next pass serves every resource in the order of the previous pass's ready times
            ready = np.asarray(st[5], dtype=np.int64)
            if int(ready.max()) < 2**62 // (nn * ncores + 1):
                nxt = np.argsort((ready * nn + node) * ncores + core, kind="stable")
            else:
                nxt = np.lexsort((core, node, ready))
            if order is not None and np.array_equal(nxt, order):
                break  # a fixpoint: every resource serves its tasks in the order they become ready
            order = nxt
            ob2, op2 = bb[order], pp[order]
            if not use:
                ob2, op2 = ob2.tolist(), op2.tolist()
            st = state()
            run(*common, *durs, *tail, ob2, op2, False, *st)
            passes += 1
            span = max(st[7], default=0)  # b_end
            if best is None or span < best[0]:
                best = (span, st, passes)
        st, passes = best[1], best[2]
    b_start, b_end, d_first, d_last, d_cyc, c_cyc = (
        np.asarray(x, dtype=np.int64).reshape(ncores, nn) for x in st[6:12])
    none = d_first < 0
    return ChipSchedule(start=b_start, end=b_end, dram_start=np.where(none, b_start, d_first),
                        dram_end=np.where(none, b_start, d_last),
                        dram_cycles=d_cyc, compute_cycles=c_cyc,
                        makespan=int(b_end.max()) if b_end.size else 0, passes=passes)


def chip_schedule(nodes: Sequence[Sequence[ChipNode]], paths: Sequence[Sequence[int]], *,
                  dram_bytes_per_cycle: float, link_bytes_per_cycle: float,
                  double_buffered: bool | Sequence[bool] = True, overlap: bool | Sequence[bool] = True,
                  engine: str = "analytic") -> ChipSchedule:
    """Schedule every core's nodes on the chip (module docstring): a plan (each core with a DRAM channel of
    its own at ``dram_bytes_per_cycle / cores``), then up to :data:`MAX_PASSES` passes on the shared channel,
    each serving every resource in the order of the previous pass's ready times; the shortest is kept.

    Parameters
    ----------
    nodes : sequence (cores) of sequences (nodes, program order) of ChipNode
        Every core has one block per node (a node a core has no part of: ``ChipNode(unit, 1, 0)``).
    paths : sequence (cores) of sequences of int
        The links (ids from 0) between ``hub`` and each core.
    dram_bytes_per_cycle : float
        Bandwidth of each DRAM channel (``math.inf``: unbounded).
    link_bytes_per_cycle : float
        Bandwidth of every link (``math.inf``: unbounded).
    double_buffered, overlap : bool or one per core
        Two tile slots per direction (else one); the core's vector unit runs beside its array (else they take
        turns).
    engine : {"analytic", "simpy"}

    Returns
    -------
    ChipSchedule

    Raises
    ------
    ValueError
        Mismatched lengths, a core without nodes, tiles < 1, negative cycles or bytes, a dependency on a later
        node, a bandwidth not > 0, an unknown engine.
    """
    if not (dram_bytes_per_cycle > 0 and link_bytes_per_cycle > 0):
        raise ValueError("bandwidths must be > 0")
    if engine not in ("analytic", "simpy"):
        raise ValueError(f"engine must be 'analytic' or 'simpy', not {engine!r}")
    db, ov = _check(nodes, paths, double_buffered, overlap)
    if engine == "analytic":
        return _analytic(nodes, paths, db, ov, dram_bytes_per_cycle, link_bytes_per_cycle)
    kw = dict(link_bytes_per_cycle=link_bytes_per_cycle, double_buffered=db, overlap=ov)
    if len(nodes) == 1:
        tasks = chip_tasks(nodes, paths, dram_bytes_per_cycle=dram_bytes_per_cycle, **kw)
        start, end = schedule_tasks(*tasks[:3], engine="simpy")
        return _from_tasks(nodes, start, end, tasks[0], tasks[1], tasks[3], 1)
    tasks = chip_tasks(nodes, paths, private_dram=True,
                       dram_bytes_per_cycle=dram_bytes_per_cycle / len(nodes), **kw)
    result, passes, order, best = None, 0, None, None
    while passes < MAX_PASSES:
        start, end = schedule_tasks(*tasks[:3], engine="simpy") if result is None else result
        ready = {lab[:3]: max((end[d] for d in dep), default=0) for lab, dep in zip(tasks[3], tasks[2],
                                                                                     strict=True)}
        nxt = chip_tasks(nodes, paths, planned=ready, dram_bytes_per_cycle=dram_bytes_per_cycle, **kw)
        labels = [lab[:3] for lab in nxt[3]]
        if order is not None and labels == order:
            break  # a fixpoint: every resource serves its tasks in the order they become ready
        order, tasks = labels, nxt
        result = schedule_tasks(*tasks[:3], engine="simpy")
        passes += 1
        span = max(result[1], default=0)
        if best is None or span < best[0]:
            best = (span, result, tasks, passes)
    _, (start, end), tasks, passes = best
    return _from_tasks(nodes, start, end, tasks[0], tasks[1], tasks[3], passes)


def warm_up_chip() -> None:
    """Load (or compile) the numba kernel of the analytic engine now, so that timing a model does not count
    it."""
    _analytic([[ChipNode(0, 2, 3, 0, 5, 5)]], [[0]], [True], [True], 4.0, 4.0, force_numba=True)
