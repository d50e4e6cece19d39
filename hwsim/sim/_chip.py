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
* **All-gather** (``gather_bytes``): before its start, a block receives the other cores' slices of its input
  through ``hub``: a task on its path's links (array stream) of ``ceil(2 x bytes / link bytes per cycle)``
  (in to ``hub`` and out again over each link, as the byte count of :func:`hwsim.simulate_multicore`),
  after the blocks it depends on.
* **Service discipline: in order** (:func:`hwsim.sim.schedule_tasks`): every resource serves its tasks in one
  fixed order, the chip's task order: node by node in program order; within a node, round-robin over the
  cores by position in each block's sequence ``gather, start, (loads, computes, writes in the DMA order of
  :func:`hwsim.sim.dma_order`), end``. A statically ordered DMA schedule (as a compiler emits): symmetric
  cores interleave their tiles on the DRAM channel; with unequal cores a slow core's transfer holds up the
  later ones of the others (pessimistic).

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
           "ARRAY_UNIT", "VECTOR_UNIT"]

#: Above this many tasks the analytic engine runs compiled by numba (below, plain Python: no compiler loaded).
NUMBA_TASKS = 20_000

#: ``ChipNode.unit`` of a node on the array and on the vector unit.
ARRAY_UNIT, VECTOR_UNIT = 0, 1
ARRAY, VECTOR = ARRAY_UNIT, VECTOR_UNIT
_GATHER, _START, _LOAD, _COMPUTE, _WRITE, _END = range(6)


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
    """Per block (shape ``(cores, nodes)``, int64 cycles): ``start``, ``end`` of its window; ``gather_start``,
    ``gather_end`` of its all-gather (equal to ``start`` when none); ``dram_start``, ``dram_end`` of its first
    and last transfer (``start`` when none), ``dram_cycles`` the sum of its transfers' durations,
    ``compute_cycles`` of its tiles' array phases. ``makespan``: the last end."""

    start: np.ndarray
    end: np.ndarray
    gather_start: np.ndarray
    gather_end: np.ndarray
    dram_start: np.ndarray
    dram_end: np.ndarray
    dram_cycles: np.ndarray
    compute_cycles: np.ndarray
    makespan: int


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


def chip_tasks(nodes: Sequence[Sequence[ChipNode]], paths: Sequence[Sequence[int]], *,
               dram_bytes_per_cycle: float, link_bytes_per_cycle: float,
               double_buffered: bool | Sequence[bool] = True, overlap: bool | Sequence[bool] = True):
    """The chip model as explicit tasks (module docstring), in the order every resource serves them.

    Returns
    -------
    (durations, resources, deps, labels) : lists, one entry per task; ``labels[t] = (core, node, kind,
    tile)`` with kind 0 gather, 1 start, 2 load, 3 compute, 4 write, 5 end. The inputs of
    :func:`hwsim.sim.schedule_tasks`.
    """
    db, ov = _check(nodes, paths, double_buffered, overlap)
    ncores, nn = len(nodes), len(nodes[0])
    seqs = {}
    for c in range(ncores):
        for i, nd in enumerate(nodes[c]):
            seqs[(c, i)] = [(_GATHER, 0), (_START, 0), *_pattern(nd.tiles, 2 if db[c] else 1), (_END, 0)]
    durations, resources, deps, labels = [], [], [], []
    where: dict[tuple[int, int, int, int], int] = {}
    last_on_unit: dict[tuple[int, int], int] = {}
    for i in range(nn):
        width = max(len(seqs[(c, i)]) for c in range(ncores))
        for p in range(width):
            for c in range(ncores):
                seq = seqs[(c, i)]
                if p >= len(seq):
                    continue
                kind, k = seq[p]
                nd = nodes[c][i]
                n, s = nd.tiles, min(2 if db[c] else 1, nd.tiles)
                unit = nd.unit if ov[c] else ARRAY
                me = (c, i)
                ends = [where[(dc, dn, _END, 0)] for dc, dn in nd.deps]
                dur, res, dep = 0, (), []
                if kind == _GATHER:
                    dur = _ceil_div(2 * nd.gather_bytes, link_bytes_per_cycle)
                    res = tuple(("link", ln, ARRAY) for ln in paths[c]) if dur else ()
                    dep = ends
                elif kind == _START:
                    dep = [where[(c, i, _GATHER, 0)], *ends]
                    if (c, unit) in last_on_unit:
                        dep.append(where[(*last_on_unit[(c, unit)], _END, 0)])
                elif kind in (_LOAD, _WRITE):
                    b = _part(nd.read_bytes if kind == _LOAD else nd.write_bytes, n, k)
                    dur = max(_ceil_div(b, dram_bytes_per_cycle), _ceil_div(b, link_bytes_per_cycle))
                    res = (("dram", nd.unit), *(("link", ln, nd.unit) for ln in paths[c])) if dur else ()
                    if kind == _LOAD:
                        dep = [where[(c, i, _START, 0)] if k < s else where[(c, i, _COMPUTE, k - s)]]
                    else:
                        dep = [where[(c, i, _COMPUTE, k)]]
                elif kind == _COMPUTE:
                    dur = max(_part(nd.compute_cycles, n, k), _part(nd.onchip_cycles, n, k))
                    res = (("unit", c, unit),)
                    dep = [where[(c, i, _START, 0)] if k == 0 else where[(c, i, _COMPUTE, k - 1)],
                           where[(c, i, _LOAD, k)]]
                    if k >= s:
                        dep.append(where[(c, i, _WRITE, k - s)])
                else:
                    dep = [where[(c, i, _COMPUTE, n - 1)]] + [where[(c, i, _WRITE, j)] for j in range(n - s, n)]
                    last_on_unit[(c, unit)] = me
                where[(c, i, kind, k)] = len(durations)
                durations.append(dur)
                resources.append(res)
                deps.append(sorted(set(dep)))
                labels.append((c, i, kind, k))
    return durations, resources, deps, labels


def _from_tasks(nodes, start, end, durations, labels) -> ChipSchedule:
    shape = (len(nodes), len(nodes[0]))
    out = {k: np.zeros(shape, dtype=np.int64) for k in ("start", "end", "gather_start", "gather_end",
                                                          "dram_start", "dram_end", "dram_cycles",
                                                          "compute_cycles")}
    first = np.full(shape, -1, dtype=np.int64)
    for t, (c, i, kind, _k) in enumerate(labels):
        if kind == _GATHER:
            out["gather_start"][c, i], out["gather_end"][c, i] = start[t], end[t]
        elif kind == _START:
            out["start"][c, i] = start[t]
        elif kind == _END:
            out["end"][c, i] = end[t]
        elif kind == _COMPUTE:
            out["compute_cycles"][c, i] += durations[t]
        elif durations[t]:
            if first[c, i] < 0:
                first[c, i] = start[t]
            out["dram_end"][c, i] = max(out["dram_end"][c, i], end[t])
            out["dram_cycles"][c, i] += durations[t]
    none = first < 0
    out["dram_start"] = np.where(none, out["start"], first)
    out["dram_end"] = np.where(none, out["start"], out["dram_end"])
    g0 = out["gather_start"] == out["gather_end"]
    out["gather_start"] = np.where(g0, out["start"], out["gather_start"])
    out["gather_end"] = np.where(g0, out["start"], out["gather_end"])
    return ChipSchedule(**out, makespan=int(out["end"].max()) if out["end"].size else 0)


def _body(ncores, nn, unit, ntiles, slots, comp, onch, rd, wd, gb, dptr, didx, lptr, lidx, ovl, pkind, ptile,
          poff, toff, dram_bw, dram_int, link_bw, link_int, free, comp_end, load_end, write_end, b_start, b_end,
          g_start, g_end, d_first, d_last, d_cyc, c_cyc, last_unit):
    """The recurrence of :func:`chip_tasks` + :func:`hwsim.sim.schedule_tasks` (analytic), block by block,
    without building the tasks: the state (the last eight arguments and ``free``, ``*_end``) is filled in
    place. One source: plain Python on lists, or compiled by numba on int64 arrays."""
    lbase = 2 * ncores + 2  # resources: 2c + u (core c's units), 2C + stream (DRAM), lbase + 2 l + stream
    for i in range(nn):
        width = 0
        for c in range(ncores):
            w = 3 * ntiles[c * nn + i] + 3
            if w > width:
                width = w
        for p in range(width):
            for c in range(ncores):
                b = c * nn + i
                n = ntiles[b]
                if p >= 3 * n + 3:
                    continue
                s = slots[b] if slots[b] < n else n
                u = unit[b] if ovl[c] else 0
                t0 = toff[b]
                if p == 0:  # the all-gather: after the blocks it depends on, on the path's links
                    st = 0
                    for q in range(dptr[b], dptr[b + 1]):
                        if b_end[didx[q]] > st:
                            st = b_end[didx[q]]
                    dur = 0
                    if gb[b] > 0 and link_bw > 0:
                        if link_int:
                            dur = (2 * gb[b] + int(link_bw) - 1) // int(link_bw)
                        else:
                            dur = int(math.ceil(2 * gb[b] / link_bw))
                    if dur > 0:
                        for q in range(lptr[c], lptr[c + 1]):
                            if free[lbase + 2 * lidx[q]] > st:
                                st = free[lbase + 2 * lidx[q]]
                        for q in range(lptr[c], lptr[c + 1]):
                            free[lbase + 2 * lidx[q]] = st + dur
                    g_start[b] = st
                    g_end[b] = st + dur
                elif p == 1:  # the window opens: gather done, inputs done, the unit's previous node done
                    st = g_end[b]
                    for q in range(dptr[b], dptr[b + 1]):
                        if b_end[didx[q]] > st:
                            st = b_end[didx[q]]
                    lu = last_unit[2 * c + u]
                    if lu >= 0 and b_end[lu] > st:
                        st = b_end[lu]
                    b_start[b] = st
                elif p == 3 * n + 2:  # the window closes: last tile computed, last writes done
                    e = comp_end[t0 + n - 1]
                    for j in range(n - s, n):
                        if write_end[t0 + j] > e:
                            e = write_end[t0 + j]
                    b_end[b] = e
                    last_unit[2 * c + u] = b
                else:
                    kind = pkind[poff[b] + p - 2]
                    k = ptile[poff[b] + p - 2]
                    if kind == 3:  # a tile's array phase on the core's unit
                        st = b_start[b] if k == 0 else comp_end[t0 + k - 1]
                        if load_end[t0 + k] > st:
                            st = load_end[t0 + k]
                        if k >= s and write_end[t0 + k - s] > st:
                            st = write_end[t0 + k - s]
                        x = (k + 1) * comp[b] // n - k * comp[b] // n
                        y = (k + 1) * onch[b] // n - k * onch[b] // n
                        dur = x if x > y else y
                        r = 2 * c + u
                        if free[r] > st:
                            st = free[r]
                        free[r] = st + dur
                        comp_end[t0 + k] = st + dur
                        c_cyc[b] += dur
                    else:  # a load (2) or a write (4): the DRAM channel and the path's links at once
                        tot = rd[b] if kind == 2 else wd[b]
                        x = (k + 1) * tot // n - k * tot // n
                        dur = 0
                        if x > 0:
                            if dram_bw > 0:
                                if dram_int:
                                    dur = (x + int(dram_bw) - 1) // int(dram_bw)
                                else:
                                    dur = int(math.ceil(x / dram_bw))
                            ld = 0
                            if link_bw > 0:
                                if link_int:
                                    ld = (x + int(link_bw) - 1) // int(link_bw)
                                else:
                                    ld = int(math.ceil(x / link_bw))
                            if ld > dur:
                                dur = ld
                        if kind == 2:
                            st = b_start[b] if k < s else comp_end[t0 + k - s]
                        else:
                            st = comp_end[t0 + k]
                        if dur > 0:
                            sk = unit[b]
                            if free[2 * ncores + sk] > st:
                                st = free[2 * ncores + sk]
                            for q in range(lptr[c], lptr[c + 1]):
                                if free[lbase + 2 * lidx[q] + sk] > st:
                                    st = free[lbase + 2 * lidx[q] + sk]
                            free[2 * ncores + sk] = st + dur
                            for q in range(lptr[c], lptr[c + 1]):
                                free[lbase + 2 * lidx[q] + sk] = st + dur
                            if d_first[b] < 0:
                                d_first[b] = st
                            if st + dur > d_last[b]:
                                d_last[b] = st + dur
                            d_cyc[b] += dur
                        if kind == 2:
                            load_end[t0 + k] = st + dur
                        else:
                            write_end[t0 + k] = st + dur


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
    toff, t = [], 0
    for n in ntiles:
        toff.append(t)
        t += n
    pk, pt, poff, o = [], [], [], 0
    for b in range(nb):
        key = (ntiles[b], slots[b])
        if key not in _patterns:
            pat = _pattern(*key)
            _patterns[key] = (np.array([k for k, _ in pat], np.int64), np.array([j for _, j in pat], np.int64))
        pk.append(_patterns[key][0])
        pt.append(_patterns[key][1])
        poff.append(o)
        o += len(pk[-1])
    dram_int = not math.isinf(dram_bw) and float(dram_bw).is_integer()
    link_int = not math.isinf(link_bw) and float(link_bw).is_integer()
    dbw = 0.0 if math.isinf(dram_bw) else float(dram_bw)  # 0: unbounded, transfers take no DRAM time
    lbw = 0.0 if math.isinf(link_bw) else float(link_bw)
    nres = 2 * ncores + 2 + 2 * nlinks
    big = max([max(c, default=0) for c in cols], default=0)
    use = (3 * t + 3 * nb > NUMBA_TASKS) if force_numba is None else force_numba
    if big * (max(ntiles) + 1) >= 2**62:
        use = False  # int64 would overflow in the compiled kernel; Python integers do not
    if use:
        arr = lambda v: np.asarray(v, dtype=np.int64)  # noqa: E731
        state = [np.zeros(nres, np.int64), *(np.zeros(t, np.int64) for _ in range(3)),
                 *(np.zeros(nb, np.int64) for _ in range(4)), np.full(nb, -1, np.int64),
                 *(np.zeros(nb, np.int64) for _ in range(3)), np.full(2 * ncores, -1, np.int64)]
        _numba_body()(ncores, nn, arr(unit), arr(ntiles), arr(slots), *(arr(c) for c in cols), arr(dptr),
                      arr(didx), arr(lptr), arr(lidx), np.asarray(ov, dtype=np.bool_),
                      np.concatenate(pk), np.concatenate(pt), arr(poff), arr(toff), dbw, dram_int, lbw,
                      link_int, *state)
    else:
        pkl = [int(v) for a in pk for v in a]
        ptl = [int(v) for a in pt for v in a]
        state = [[0] * nres, [0] * t, [0] * t, [0] * t, [0] * nb, [0] * nb, [0] * nb, [0] * nb, [-1] * nb,
                 [0] * nb, [0] * nb, [0] * nb, [-1] * (2 * ncores)]
        _body(ncores, nn, unit, ntiles, slots, *cols, dptr, didx, lptr, lidx, list(ov), pkl, ptl, poff, toff,
              dbw, dram_int, lbw, link_int, *state)
    b_start, b_end, g_start, g_end, d_first, d_last, d_cyc, c_cyc = (
        np.asarray(x, dtype=np.int64).reshape(ncores, nn) for x in state[4:12])
    none = d_first < 0
    return ChipSchedule(start=b_start, end=b_end, gather_start=np.where(g_start == g_end, b_start, g_start),
                        gather_end=np.where(g_start == g_end, b_start, g_end),
                        dram_start=np.where(none, b_start, d_first), dram_end=np.where(none, b_start, d_last),
                        dram_cycles=d_cyc, compute_cycles=c_cyc,
                        makespan=int(b_end.max()) if b_end.size else 0)


def chip_schedule(nodes: Sequence[Sequence[ChipNode]], paths: Sequence[Sequence[int]], *,
                  dram_bytes_per_cycle: float, link_bytes_per_cycle: float,
                  double_buffered: bool | Sequence[bool] = True, overlap: bool | Sequence[bool] = True,
                  engine: str = "analytic") -> ChipSchedule:
    """Schedule every core's nodes on the chip (module docstring).

    Parameters
    ----------
    nodes : sequence (cores) of sequences (nodes, program order) of ChipNode
        Every core has one block per node (a node a core has no part of: ``ChipNode(unit, 1, 0)``).
    paths : sequence (cores) of sequences of int
        The links (ids from 0) between ``hub`` and each core.
    dram_bytes_per_cycle : float
        Bandwidth of each DRAM channel (``math.inf``: unbounded).
    link_bytes_per_cycle : float
        Bandwidth of every link.
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
    durations, resources, deps, labels = chip_tasks(nodes, paths, dram_bytes_per_cycle=dram_bytes_per_cycle,
                                                    link_bytes_per_cycle=link_bytes_per_cycle,
                                                    double_buffered=db, overlap=ov)
    start, end = schedule_tasks(durations, resources, deps, engine="simpy")
    return _from_tasks(nodes, start, end, durations, labels)


def warm_up_chip() -> None:
    """Load (or compile) the numba kernel of the analytic engine now, so that timing a model does not count
    it."""
    _analytic([[ChipNode(0, 2, 3, 0, 5, 5)]], [[0]], [True], [True], 4.0, 4.0, force_numba=True)
