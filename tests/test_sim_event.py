"""The SimPy event model: schedules derived by hand, and its errors."""

from __future__ import annotations

import math
import re

import pytest

from hwsim.sim import simulate_tiles, split_even


def test_double_buffered_schedule_by_hand():
    # 3 tiles of 10 compute cycles, each reading 40 bytes first, bandwidth 10 bytes/cycle, nothing written.
    # R0 [0,4) -> C0 [4,14); R1 [4,8) into the second slot; R2 waits for C0 to free a slot: [14,18);
    # C1 [14,24); C2 [24,34). Total 34 = 30 compute + 4 exposed by the first load.
    t = simulate_tiles([10, 10, 10], [40, 40, 40], [0, 0, 0], bandwidth_bytes_per_cycle=10)
    assert (t.total_cycles, t.stall_cycles, t.dram_busy_cycles) == (34, 4, 12)


def test_single_buffered_schedule_by_hand():
    # one slot: R0 [0,4), C0 [4,14), R1 [14,18), C1 [18,28), R2 [28,32), C2 [32,42) -> 42
    t = simulate_tiles([10, 10, 10], [40, 40, 40], [0, 0, 0], bandwidth_bytes_per_cycle=10, double_buffered=False)
    assert (t.total_cycles, t.stall_cycles) == (42, 12)


def test_reads_and_writes_share_the_dram():
    # reads of 40 bytes take 10 cycles at 4 bytes/cycle, writes of 10 bytes take ceil(10/4) = 3.
    # R0 [0,10) C0 [10,20); R1 [10,20) C1 [20,30); at t=20 W0 and R2 both ask for DRAM: W0 [20,23) asked
    # first (C0 ended at 20 before the reader saw the freed slot), R2 [23,33); C2 needs R2: [33,43);
    # W1 (asked at 30) [33,36)... after R2; W2 [43,46). Total 46; DRAM busy 3*10 + 3*3 = 39.
    t = simulate_tiles([10, 10, 10], [40, 40, 40], [10, 10, 10], bandwidth_bytes_per_cycle=4)
    assert (t.total_cycles, t.stall_cycles, t.dram_busy_cycles) == (46, 16, 39)


def test_unbounded_bandwidth_has_no_stall():
    t = simulate_tiles([5, 7, 9], [10**9] * 3, [10**9] * 3, bandwidth_bytes_per_cycle=math.inf)
    assert (t.total_cycles, t.stall_cycles) == (21, 0)


def test_split_even():
    assert split_even(10, 3) == [3, 3, 4]
    assert sum(split_even(1001, 256)) == 1001


def test_errors():
    with pytest.raises(ValueError, match=re.escape("compute, read_bytes and write_bytes must be non-empty lists "
                                                   "of one length, not 2, 1, 2")):
        simulate_tiles([1, 2], [1], [1, 2], bandwidth_bytes_per_cycle=1)
    with pytest.raises(ValueError, match=r"^bandwidth_bytes_per_cycle must be > 0, not 0$"):
        simulate_tiles([1], [1], [1], bandwidth_bytes_per_cycle=0)
