"""The graph's schedule over units: every node runs on one unit (the array, the vector unit) once its inputs
are done, each unit taking its nodes in program order (in-order issue, as a simple accelerator sequencer).
``overlap=False`` makes the units one: array and vector unit take turns.

Two engines, equal by construction and tested equal on random graphs: :func:`schedule_nodes` with
``engine="simpy"`` (one SimPy process per unit waiting on its nodes' input events) and ``engine="analytic"``
(the recurrence ``start_i = max(end of its inputs, end of the unit's previous node)``).
"""

from __future__ import annotations

__all__ = ["schedule_nodes"]


def _analytic(durations, units, deps):
    n = len(durations)
    start, end = [0] * n, [0] * n
    free: dict[str, int] = {}
    for i in range(n):
        s = free.get(units[i], 0)
        for d in deps[i]:
            s = max(s, end[d])
        start[i], end[i] = s, s + int(durations[i])
        free[units[i]] = end[i]
    return start, end


def _simpy(durations, units, deps):
    import simpy

    env = simpy.Environment()
    n = len(durations)
    done = [env.event() for _ in range(n)]
    start, end = [0] * n, [0] * n

    def unit(idx):
        for i in idx:
            for d in deps[i]:
                yield done[d]
            start[i] = int(env.now)
            if durations[i]:
                yield env.timeout(int(durations[i]))
            end[i] = int(env.now)
            done[i].succeed()

    order: dict[str, list[int]] = {}
    for i in range(n):
        order.setdefault(units[i], []).append(i)
    for idx in order.values():
        env.process(unit(idx))
    env.run()
    return start, end


def schedule_nodes(durations: list[int], units: list[str], deps: list[tuple[int, ...]], *,
                   overlap: bool = True, engine: str = "analytic") -> tuple[list[int], list[int]]:
    """Start and end cycle of every node.

    Parameters
    ----------
    durations : list of int
        Cycles of each node, in program order.
    units : list of str
        The unit each node runs on.
    deps : list of tuple of int
        The earlier nodes whose outputs each node reads (indices smaller than its own).
    overlap : bool
        Units run concurrently (True) or take turns (False: one shared unit).
    engine : {"analytic", "simpy"}

    Raises
    ------
    ValueError
        Lists of different lengths, a dependency on a later node, a negative duration, an unknown engine.
    """
    n = len(durations)
    if len(units) != n or len(deps) != n:
        raise ValueError("durations, units and deps must have one length")
    if any(d < 0 for d in durations):
        raise ValueError("durations must be non-negative")
    if any(d >= i or d < 0 for i, ds in enumerate(deps) for d in ds):
        raise ValueError("a node may depend only on earlier nodes")
    if engine not in ("analytic", "simpy"):
        raise ValueError(f"engine must be 'analytic' or 'simpy', not {engine!r}")
    u = list(units) if overlap else ["unit"] * n
    return (_simpy if engine == "simpy" else _analytic)(durations, u, deps)
