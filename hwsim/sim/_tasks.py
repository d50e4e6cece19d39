"""Tasks on resources: the generic engine of the chip model (:mod:`hwsim.sim._chip`), reusable by any
schedule that can be written as tasks holding resources, with dependencies.

Every task has a duration (cycles), a set of resources it holds for all of its duration (a transfer holds the
DRAM channel and every network link on its path at once: cut-through, at the slowest one's rate, folded into
its duration by the caller) and the earlier tasks it waits for.

**Service discipline: in order.** Each resource serves its tasks in task-index order (program order, as an
in-order sequencer or a statically ordered DMA queue does): a task starts when all of its dependencies have
ended and every resource it holds has finished the task before it in that resource's order. Deterministic, and
free of deadlock because a dependency is always an earlier task. A task of zero duration holding no resource
is a join (it ends when its last dependency does).

Two engines, equal by construction and tested equal on random task systems (``tests/test_sim_chip.py``):

* ``engine="simpy"``: one SimPy process per task over :class:`simpy.Resource` objects of capacity 1; a task
  requests a resource only once the task before it in that resource's order has been granted it (so the
  resource's FIFO queue holds them in order), then holds all of its resources for its duration (the
  reference);
* ``engine="analytic"``: the recurrence ``start_i = max(end of its dependencies, max over its resources of
  the end of the resource's previous task)``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

__all__ = ["schedule_tasks"]


def _check(durations, resources, deps, engine):
    n = len(durations)
    if len(resources) != n or len(deps) != n:
        raise ValueError(f"durations, resources and deps must have one length, not {n}, {len(resources)}, "
                         f"{len(deps)}")
    if any(d < 0 for d in durations):
        raise ValueError("durations must be non-negative")
    for i, ds in enumerate(deps):
        for d in ds:
            if not 0 <= d < i:
                raise ValueError(f"task {i} depends on task {d}: a task may depend only on earlier tasks")
    if engine not in ("analytic", "simpy"):
        raise ValueError(f"engine must be 'analytic' or 'simpy', not {engine!r}")


def _analytic(durations, resources, deps):
    n = len(durations)
    start, end = [0] * n, [0] * n
    free: dict[Hashable, int] = {}
    for i in range(n):
        s = 0
        for d in deps[i]:
            if end[d] > s:
                s = end[d]
        for r in resources[i]:
            f = free.get(r, 0)
            if f > s:
                s = f
        e = s + int(durations[i])
        start[i], end[i] = s, e
        for r in resources[i]:
            free[r] = e
    return start, end


def _simpy(durations, resources, deps):
    import simpy

    env = simpy.Environment()
    n = len(durations)
    res: dict[Hashable, simpy.Resource] = {}
    order: dict[Hashable, list[int]] = {}
    for i in range(n):
        for r in resources[i]:
            if r not in res:
                res[r] = simpy.Resource(env, capacity=1)
            order.setdefault(r, []).append(i)
    done = [env.event() for _ in range(n)]
    # granted[(r, i)]: task i holds resource r; the next task in r's order requests r only after it
    granted = {(r, i): env.event() for r, idx in order.items() for i in idx}
    before = {(r, i): (idx[k - 1] if k else None) for r, idx in order.items() for k, i in enumerate(idx)}
    start, end = [0] * n, [0] * n

    def task(i):
        for d in deps[i]:
            yield done[d]
        reqs = []
        for r in resources[i]:
            prev = before[(r, i)]
            if prev is not None:
                yield granted[(r, prev)]
            req = res[r].request()
            yield req
            granted[(r, i)].succeed()
            reqs.append((r, req))
        start[i] = int(env.now)
        if durations[i]:
            yield env.timeout(int(durations[i]))
        end[i] = int(env.now)
        for r, req in reqs:
            res[r].release(req)
        done[i].succeed()

    for i in range(n):
        env.process(task(i))
    env.run()
    return start, end


def schedule_tasks(durations: Sequence[int], resources: Sequence[Sequence[Hashable]],
                   deps: Sequence[Sequence[int]], *, engine: str = "analytic") -> tuple[list[int], list[int]]:
    """Start and end cycle of every task (module docstring: in-order service on every resource).

    Parameters
    ----------
    durations : sequence of int
        Cycles of each task (non-negative), in task order (the order every resource serves them in).
    resources : sequence of sequences of hashable
        The resources each task holds for its whole duration (any hashable names, e.g. ``("dram", 0)``);
        empty for a join or a task on nothing shared.
    deps : sequence of sequences of int
        The earlier tasks (indices smaller than its own) each task waits for.
    engine : {"analytic", "simpy"}

    Returns
    -------
    (start, end) : two lists of int, one entry per task, in cycles from 0.

    Raises
    ------
    ValueError
        Lists of different lengths, a negative duration, a dependency on a later task (or itself), an unknown
        engine.
    """
    _check(durations, resources, deps, engine)
    resources = [tuple(dict.fromkeys(r)) for r in resources]  # a resource named twice is held once
    return (_simpy if engine == "simpy" else _analytic)(durations, resources, deps)
