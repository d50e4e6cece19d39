"""Where each tensor lives: an exact placement of tensors in on-chip levels over their lifetimes.

The problem (a 0/1 program, solved by HiGHS through :func:`scipy.optimize.milp` to proven optimality): choose
for every tensor ``T`` at most one option ``(L, footprint)`` among its candidates (an on-chip level, holding
the whole tensor or, when fused, a band of it) to

    maximize   sum_T saving_T * x_T          (DRAM bits not moved; ties: the innermost level)
    subject to for every step i and level L:
               sum_{T live at i in L} bits_T(L) x_T  +  reserve(i, L)  -  sum_{r freed by T} r x_T  <=  S_L

where a tensor is live from the step that produces it to the step that last reads it, ``reserve(i, L)`` is
what step i's own tiles need in L (:func:`hwsim.schedule.schedule_tensors`) and a reserve is freed when the
operand it buffers is the resident tensor itself. Because the optimum is exact, a larger capacity never
lowers the bits saved (the old optimum stays feasible), the property the tests check on random graphs.

``objective="latency"`` (``timing.objective: latency``) solves the same constraints lexicographically: first
minimize ``sum_T cycles_T * x_T`` (``Option.cycles``: the modelled cycles an option adds, negative when it
saves some), then, with that sum held at its optimum, the program above. An option that only costs cycles
(a fused band whose tiles' fill and drain outweigh the DRAM time it saves) is then taken only when it frees
room for options that save more. The same exactness argument holds for the first key: a larger capacity
never raises the modelled cycles of the optimum (up to the sum's assumption, see ``Option.cycles``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Option", "Placement", "Reserve", "place_tensors"]


@dataclass(frozen=True)
class Option:
    """One way to keep tensor ``tensor`` on chip: in ``level``, occupying ``bits`` at each step of
    ``steps`` (its lifetime), saving ``saving_bits`` of DRAM traffic. ``kind``: ``whole`` or ``band``
    (a fused row band). ``rank`` breaks ties between equal savings only (it must stay below the level count
    + 1): the level's index, plus for a band a fraction growing with its tile count (fewer tiles: less fill
    and drain)."""

    tensor: str
    level: str
    bits: int
    steps: tuple[int, ...]
    saving_bits: int
    rank: float = 0.0
    kind: str = "whole"
    #: a band's depth-first tiling: output rows of the consumer per tile and the number of tiles
    tile_rows: int = 0
    tiles: int = 1
    #: DRAM bits of weights fetched again per tile (already taken off ``saving_bits``)
    refetch_bits: int = 0
    #: ``(step, bits)``: reserve of ``level`` this option gives back when chosen (a band's producer
    #: accumulates one tile of partial sums, not its whole output)
    credits: tuple[tuple[int, int], ...] = ()
    #: ``objective="latency"``: the modelled array cycles this option adds to the layers that produce and
    #: consume the tensor (negative: saved), each option measured alone against the tensor in DRAM; the
    #: placement takes the sum over the chosen options as the schedule's (an estimate: a layer with two
    #: resident operands, or in two fused bands, is not re-timed jointly). 0: not estimated.
    cycles: int = 0


@dataclass(frozen=True)
class Reserve:
    """``bits`` of level ``level`` that step ``step`` needs for its tiles; freed when tensor ``freed_by``
    is resident in that level (``None``: never)."""

    step: int
    level: str
    bits: int
    freed_by: str | None = None


@dataclass
class Placement:
    """The chosen option of every tensor kept on chip (``chosen[tensor]``; absent: DRAM), the occupancy of
    each level at each step (bits: ``resident[level][step]`` tensors, ``reserved[level][step]`` tiles), and
    the solver's status."""

    chosen: dict[str, Option]
    resident: dict[str, list[int]]
    reserved: dict[str, list[int]]
    status: str
    saved_bits: int
    solver_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    #: the sum of the chosen options' ``cycles`` (the modelled cycles they add; 0 when not estimated)
    cycles: int = 0


def place_tensors(options: list[Option], reserves: list[Reserve], capacity_bits: dict[str, float],
                  n_steps: int, *, time_limit_s: float = 10.0, objective: str = "dram") -> Placement:
    """Solve the placement (module docstring).

    Parameters
    ----------
    options : list of Option
        The candidates, any number per tensor (at most one is chosen).
    reserves : list of Reserve
        The tiles each step needs in each level.
    capacity_bits : dict
        Level name -> capacity, bits.
    n_steps : int
        Steps (nodes) of the schedule.
    objective : {"dram", "latency"}
        ``dram``: the most DRAM bits saved (ties: ``rank``); ``latency``: the fewest ``Option.cycles`` in
        total first, then as ``dram`` (module docstring).

    Returns
    -------
    Placement
        ``status`` is ``optimal``, or ``time limit`` (the best found; a note says so).
    """
    import time

    levels = list(capacity_bits)
    fixed = {lv: np.zeros(n_steps, dtype=np.float64) for lv in levels}
    for r in reserves:
        fixed[r.level][r.step] += r.bits
    reserved_total = {lv: fixed[lv].astype(np.int64).tolist() for lv in levels}
    opts = [o for o in options if o.saving_bits > 0 and o.level in capacity_bits]
    resident = {lv: [0] * n_steps for lv in levels}
    if not opts:
        return Placement({}, resident, reserved_total, "optimal", 0)
    t0 = time.process_time()
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix

    nl = len(levels) + 1
    c = np.array([-float(o.saving_bits) * (nl + 1) + o.rank for o in opts])
    rows, cols, vals, ub = [], [], [], []
    # one option per tensor
    by_t: dict[str, list[int]] = {}
    for j, o in enumerate(opts):
        by_t.setdefault(o.tensor, []).append(j)
    r = 0
    for js in by_t.values():
        if len(js) > 1:
            rows += [r] * len(js)
            cols += js
            vals += [1.0] * len(js)
            ub.append(1.0)
            r += 1
    # capacity at every step of every level
    freed: dict[tuple[int, str], list[tuple[str, int]]] = {}
    for rs in reserves:
        if rs.freed_by is not None:
            freed.setdefault((rs.step, rs.level), []).append((rs.freed_by, rs.bits))
    cell: dict[tuple[int, str], dict[int, float]] = {}
    for j, o in enumerate(opts):
        for s in o.steps:
            cell.setdefault((s, o.level), {})[j] = cell.get((s, o.level), {}).get(j, 0.0) + o.bits
        for s in o.steps:
            for t, b in freed.get((s, o.level), ()):
                if t == o.tensor:
                    cell[(s, o.level)][j] -= b
        for s, b in o.credits:
            cell.setdefault((s, o.level), {})[j] = cell.get((s, o.level), {}).get(j, 0.0) - b
    for (s, lv), coef in sorted(cell.items()):
        free = capacity_bits[lv] - fixed[lv][s]
        if sum(v for v in coef.values() if v > 0) <= free:
            continue  # cannot bind
        for j, v in coef.items():
            rows.append(r)
            cols.append(j)
            vals.append(v)
        ub.append(free)
        r += 1
    n = len(opts)
    cons = []
    if r:
        A = coo_matrix((vals, (rows, cols)), shape=(r, n)).tocsr()
        cons = [LinearConstraint(A, -np.inf, np.array(ub))]
    cyc = np.array([float(o.cycles) for o in opts])
    notes = []
    if objective == "latency" and cyc.any():
        # first key: the fewest modelled cycles (integers, so the optimum is held exactly by the + 0.5)
        first = milp(cyc, constraints=cons, integrality=np.ones(n), bounds=Bounds(0, 1),
                     options={"time_limit": time_limit_s, "mip_rel_gap": 0.0})
        if first.x is not None:
            best = float(np.round(first.x) @ cyc)
            cons = [*cons, LinearConstraint(cyc[None, :], -np.inf, best + 0.5)]
            if first.status != 0:
                notes.append(f"the placement solver stopped at its time limit ({time_limit_s:g} s) on the "
                             f"cycles: best found")
    res = milp(c, constraints=cons, integrality=np.ones(n), bounds=Bounds(0, 1),
               options={"time_limit": time_limit_s, "mip_rel_gap": 0.0})
    if res.x is None:
        x = np.zeros(n)
        status = "no solution"
        notes.append(f"the placement solver found no solution ({res.message}); every tensor goes to DRAM")
    else:
        x = np.round(res.x)
        status = "optimal" if res.status == 0 else "time limit"
        if res.status != 0:
            notes.append(f"the placement solver stopped at its time limit ({time_limit_s:g} s): best found")
    chosen: dict[str, Option] = {}
    for j in np.flatnonzero(x > 0.5):
        o = opts[int(j)]
        chosen[o.tensor] = o
        for s in o.steps:
            resident[o.level][s] += o.bits
    for rs in reserves:
        o = chosen.get(rs.freed_by) if rs.freed_by is not None else None
        if o is not None and o.level == rs.level and rs.step in o.steps:
            reserved_total[rs.level][rs.step] -= rs.bits
    for o in chosen.values():
        for s, b in o.credits:
            reserved_total[o.level][s] -= b
    saved = sum(o.saving_bits for o in chosen.values())
    return Placement(chosen, resident, reserved_total, status, saved, time.process_time() - t0, notes,
                     cycles=sum(o.cycles for o in chosen.values()))
