"""The chip-level event model (hwsim/sim/_chip.py) and its task engine (hwsim/sim/_tasks.py): the SimPy
reference and the fast recurrence (plain Python and numba) give the same schedule on hundreds of random chips;
one core and one node equal the one-array event model; a hand-derived shared-channel case."""

import math

import numpy as np
import pytest

from hwsim.sim import ChipNode, chip_schedule, chip_tasks, schedule_tasks, simulate_tiles, split_even
from hwsim.sim._chip import _analytic

FIELDS = ("start", "end", "dram_start", "dram_end", "dram_cycles", "compute_cycles", "passes")


def _random_tasks(rng):
    n = int(rng.integers(1, 30))
    names = [("r", j) for j in range(int(rng.integers(1, 5)))]
    durations = [int(rng.integers(0, 20)) * int(rng.integers(0, 2) or rng.integers(0, 2)) for _ in range(n)]
    resources = [[names[j] for j in rng.choice(len(names), size=int(rng.integers(0, len(names) + 1)),
                                               replace=False)] for _ in range(n)]
    deps = [sorted(set(int(x) for x in rng.integers(0, i, size=int(rng.integers(0, 3))))) if i else []
            for i in range(n)]
    return durations, resources, deps


@pytest.mark.parametrize("seed", range(4))
def test_schedule_tasks_engines_agree_and_respect_resources(seed):
    rng = np.random.default_rng(seed)
    for _ in range(100):
        durations, resources, deps = _random_tasks(rng)
        a = schedule_tasks(durations, resources, deps, engine="analytic")
        s = schedule_tasks(durations, resources, deps, engine="simpy")
        assert a == s
        start, end = a
        for i, ds in enumerate(deps):
            assert all(start[i] >= end[d] for d in ds)
        # in order on each resource: a task starts no earlier than the previous one on it ends
        last = {}
        for i, rs in enumerate(resources):
            for r in rs:
                if r in last:
                    assert start[i] >= end[last[r]]
                last[r] = i


def test_schedule_tasks_hand_derived():
    # t0: 5 cycles on A; t1: 3 on B; t2: 4 on A and B (waits for both: starts at 5); t3: 2 on B after t0
    # (B in order: after t2, at 9); t4: a join after t1 (ends at 3)
    start, end = schedule_tasks([5, 3, 4, 2, 0], [["A"], ["B"], ["A", "B"], ["B"], []],
                                [[], [], [], [0], [1]])
    assert (start, end) == ([0, 0, 5, 9, 3], [5, 3, 9, 11, 3])
    with pytest.raises(ValueError, match="only on earlier tasks"):
        schedule_tasks([1, 1], [[], []], [[1], []])


def _random_chip(rng):
    cores = int(rng.integers(1, 5))
    nn = int(rng.integers(1, 6))
    nodes = []
    for _c in range(cores):
        row = []
        for i in range(nn):
            deps = []
            if i:
                for _ in range(int(rng.integers(0, 3))):
                    deps.append((int(rng.integers(0, cores)), int(rng.integers(0, i))))
            def z(hi):
                return int(rng.integers(0, hi)) * int(rng.integers(0, 2) or rng.integers(0, 2))

            row.append(ChipNode(unit=int(rng.integers(0, 2)), tiles=int(rng.integers(1, 7)),
                                compute_cycles=z(60), onchip_cycles=z(60), read_bytes=z(400),
                                write_bytes=z(200), gather_bytes=z(100) if i else 0, deps=tuple(deps)))
        nodes.append(row)
    # a random tree: core c hangs off hub or an earlier core; its path: its link and its parent's
    parent = [-1 if c == 0 else int(rng.integers(-1, c)) for c in range(cores)]
    paths = []
    for c in range(cores):
        p, v = [], c
        while v >= 0:
            p.append(v)  # link id v: between core v and its parent
            v = parent[v]
        paths.append(p)
    bw = float(rng.choice([1.0, 2.5, 8.0, 64.0, math.inf]))
    link = float(rng.choice([1.0, 3.5, 16.0, math.inf]))
    db = [bool(x) for x in rng.integers(0, 2, size=cores)]
    ov = [bool(x) for x in rng.integers(0, 2, size=cores)]
    return nodes, paths, bw, link, db, ov


@pytest.mark.parametrize("seed", range(4))
def test_chip_engines_agree_on_random_chips(seed):
    # 4 x 50 random chips (1-4 cores, 1-5 nodes, 1-6 tiles, random dependencies across cores, a random tree
    # of links, integer, fractional and unbounded bandwidths): the SimPy processes over simpy.Resource, the
    # plain-Python recurrence and the numba-compiled recurrence give every block the same cycles
    rng = np.random.default_rng(100 + seed)
    passes = []
    for _ in range(50):
        nodes, paths, bw, link, db, ov = _random_chip(rng)
        kw = dict(dram_bytes_per_cycle=bw, link_bytes_per_cycle=link, double_buffered=db, overlap=ov)
        ref = chip_schedule(nodes, paths, engine="simpy", **kw)
        fast = chip_schedule(nodes, paths, engine="analytic", **kw)
        jit = _analytic(nodes, paths, db, ov, bw, link, force_numba=True)
        for f in FIELDS:
            assert np.array_equal(getattr(ref, f), getattr(fast, f)), f
            assert np.array_equal(getattr(ref, f), getattr(jit, f)), f
        assert ref.makespan == fast.makespan == jit.makespan
        passes.append(ref.passes)
        # the tasks hold their resources in order and one at a time
        durations, resources, deps, _ = chip_tasks(nodes, paths, **kw)
        start, end = schedule_tasks(durations, resources, deps)
        busy = {}
        for i, rs in enumerate(resources):
            for r in rs:
                busy.setdefault(r, []).append((start[i], end[i]))
        for iv in busy.values():
            assert all(a[1] <= b[0] for a, b in zip(iv, iv[1:], strict=False))


def test_one_block_equals_the_one_array_event_model():
    # one core, one node: the chip model is the event model of hwsim/sim/_event.py (its tiles, DMA order,
    # slots), whatever the bandwidth, the slots and the on-chip floor
    rng = np.random.default_rng(7)
    for _ in range(200):
        n, db = int(rng.integers(1, 9)), bool(rng.integers(2))
        comp, onc = int(rng.integers(0, 100)), int(rng.integers(0, 150)) * int(rng.integers(0, 2))
        rd, wd = int(rng.integers(0, 300)) * int(rng.integers(0, 2)), int(rng.integers(0, 300))
        bw = float(rng.choice([1, 3, 2.5, 64, math.inf]))
        tm = simulate_tiles(split_even(comp, n), split_even(rd, n), split_even(wd, n),
                            bandwidth_bytes_per_cycle=bw, double_buffered=db,
                            onchip_cycles=split_even(onc, n) if onc else None)
        cs = chip_schedule([[ChipNode(0, n, comp, onc, rd, wd)]], [[0]], dram_bytes_per_cycle=bw,
                           link_bytes_per_cycle=math.inf, double_buffered=db)
        assert (cs.makespan, int(cs.dram_cycles[0, 0])) == (tm.total_cycles, tm.dram_busy_cycles)
