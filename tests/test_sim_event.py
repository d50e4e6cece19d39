"""The event model: schedules derived by hand, the SimPy and analytic engines equal, and its errors."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from hwsim.sim import dma_order, simulate_tiles, split_even


@pytest.mark.parametrize("engine", ["simpy", "analytic"])
def test_double_buffered_schedule_by_hand(engine):
    # 3 tiles of 10 compute cycles, each reading 40 bytes first, bandwidth 10 bytes/cycle, nothing written.
    # R0 [0,4) -> C0 [4,14); R1 [4,8) into the second slot; R2 waits for C0 to free a slot: [14,18);
    # C1 [14,24); C2 [24,34). Total 34 = 30 compute + 4 exposed by the first load.
    t = simulate_tiles([10, 10, 10], [40, 40, 40], [0, 0, 0], bandwidth_bytes_per_cycle=10, engine=engine)
    assert (t.total_cycles, t.stall_cycles, t.dram_busy_cycles) == (34, 4, 12)


def test_single_buffered_schedule_by_hand():
    # one slot: R0 [0,4), C0 [4,14), R1 [14,18), C1 [18,28), R2 [28,32), C2 [32,42) -> 42
    t = simulate_tiles([10, 10, 10], [40, 40, 40], [0, 0, 0], bandwidth_bytes_per_cycle=10,
                       double_buffered=False)
    assert (t.total_cycles, t.stall_cycles) == (42, 12)


@pytest.mark.parametrize("engine", ["simpy", "analytic"])
def test_reads_and_writes_share_the_in_order_dma(engine):
    # reads of 40 bytes take 10 cycles at 4 bytes/cycle, writes of 10 bytes take ceil(10/4) = 3. DMA order:
    # L0 L1 W0 L2 W1 W2. L0 [0,10), L1 [10,20); C0 [10,20); W0 waits for C0: [20,23); L2 (slot freed by C0 at
    # 20) [23,33); C1 [20,30); W1 ready at 30, DMA free at 33: [33,36); C2 needs L2: [33,43); W2 [43,46).
    # Total 46; DRAM busy 3*10 + 3*3 = 39.
    t = simulate_tiles([10, 10, 10], [40, 40, 40], [10, 10, 10], bandwidth_bytes_per_cycle=4, engine=engine)
    assert (t.total_cycles, t.stall_cycles, t.dram_busy_cycles) == (46, 16, 39)


def test_dma_order():
    assert dma_order(4, 2) == [("load", 0), ("load", 1), ("write", 0), ("load", 2), ("write", 1), ("load", 3),
                               ("write", 2), ("write", 3)]
    assert dma_order(2, 1) == [("load", 0), ("write", 0), ("load", 1), ("write", 1)]


def test_onchip_bandwidth_stretches_tiles():
    # tiles of 10 compute cycles whose on-chip traffic needs 15: each array phase lasts 15 -> 3*15 = 45 with
    # unbounded DRAM; 15 on-chip stall cycles, no DRAM stall
    t = simulate_tiles([10, 10, 10], [0, 0, 0], [0, 0, 0], bandwidth_bytes_per_cycle=math.inf,
                       onchip_cycles=[15, 15, 15])
    assert (t.total_cycles, t.onchip_stall_cycles, t.dram_stall_cycles) == (45, 15, 0)


@pytest.mark.parametrize("compiled", [False, True])
def test_the_two_engines_agree_on_random_schedules(compiled):
    # the analytic engine runs as plain Python (hwsim simulate) or compiled by numba (sweeps): both must equal
    # the SimPy processes
    from hwsim.sim import _recurrence

    _recurrence.use_numba(compiled)
    rng = np.random.default_rng(7)
    for _ in range(400):
        n = int(rng.integers(1, 25))
        c = rng.integers(0, 50, n).tolist()
        r = (rng.integers(0, 200, n) * (rng.random(n) < 0.8)).tolist()
        w = (rng.integers(0, 200, n) * (rng.random(n) < 0.7)).tolist()
        kw = dict(bandwidth_bytes_per_cycle=float(rng.choice([1, 3, 8, 64, math.inf])),
                  double_buffered=bool(rng.random() < 0.5),
                  onchip_cycles=rng.integers(0, 60, n).tolist() if rng.random() < 0.3 else None)
        assert simulate_tiles(c, r, w, engine="simpy", **kw) == simulate_tiles(c, r, w, engine="analytic",
                                                                               **kw)
    _recurrence.use_numba(False)


def test_unbounded_bandwidth_has_no_stall():
    t = simulate_tiles([5, 7, 9], [10**9] * 3, [10**9] * 3, bandwidth_bytes_per_cycle=math.inf)
    assert (t.total_cycles, t.stall_cycles) == (21, 0)


def test_split_even():
    assert split_even(10, 3).tolist() == [3, 3, 4]
    assert sum(split_even(1001, 256)) == 1001


def test_errors():
    with pytest.raises(ValueError,
                       match=re.escape("compute, read_bytes and write_bytes must be non-empty lists "
                                                   "of one length, not 2, 1, 2")):
        simulate_tiles([1, 2], [1], [1, 2], bandwidth_bytes_per_cycle=1)
    with pytest.raises(ValueError, match=r"^bandwidth_bytes_per_cycle must be > 0, not 0$"):
        simulate_tiles([1], [1], [1], bandwidth_bytes_per_cycle=0)
    with pytest.raises(ValueError, match=r"^engine must be 'analytic' or 'simpy', not 'fast'$"):
        simulate_tiles([1], [1], [1], bandwidth_bytes_per_cycle=1, engine="fast")
