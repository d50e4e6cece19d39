"""The event model's schedule as a max-plus recurrence (numba): the same in-order DMA engine and array as
the SimPy processes of :mod:`hwsim.sim._event`, computed without an event queue."""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["schedule"]


@njit(cache=True)
def _schedule(busy, rd, wd, slots):  # pragma: no cover - compiled
    n = busy.shape[0]
    s = min(slots, n)
    load_end = np.zeros(n, dtype=np.int64)
    comp_end = np.zeros(n, dtype=np.int64)
    write_end = np.zeros(n, dtype=np.int64)
    done = 0  # tiles whose compute end is known
    t = 0  # when the DMA engine is next free
    dram_busy = 0

    # transfers in the DMA order: load 0..s-1, then (write i-s, load i) for i = s..n-1, then the last writes
    for step in range(2 * n):
        if step < s:
            kind, i = 0, step
        elif step < 2 * n - s:
            j = step - s
            if j % 2 == 0:
                kind, i = 1, j // 2
            else:
                kind, i = 0, s + j // 2
        else:
            kind, i = 1, n - s + (step - (2 * n - s))
        # the compute ends this transfer may wait for are those of tiles whose transfers came before
        need = i if kind == 1 else i - s
        while done <= need:
            k = done
            st = load_end[k]
            if k > 0 and comp_end[k - 1] > st:
                st = comp_end[k - 1]
            if k >= s and write_end[k - s] > st:
                st = write_end[k - s]
            comp_end[k] = st + busy[k]
            done += 1
        if kind == 0:
            if rd[i] > 0:
                ready = comp_end[i - s] if i >= s else 0
                st = t if t > ready else ready
                t = st + rd[i]
                dram_busy += rd[i]
                load_end[i] = t
            else:
                load_end[i] = 0
        else:
            if wd[i] > 0:
                st = t if t > comp_end[i] else comp_end[i]
                t = st + wd[i]
                dram_busy += wd[i]
                write_end[i] = t
            else:
                write_end[i] = comp_end[i]
    while done < n:
        k = done
        st = load_end[k]
        if k > 0 and comp_end[k - 1] > st:
            st = comp_end[k - 1]
        if k >= s and write_end[k - s] > st:
            st = write_end[k - s]
        comp_end[k] = st + busy[k]
        done += 1
    total = comp_end[n - 1]
    for i in range(n):
        if write_end[i] > total:
            total = write_end[i]
    return total, dram_busy


def warm_up() -> None:
    """Load (or compile) the kernel now, so that timing a model does not count it."""
    one = np.ones(1, dtype=np.int64)
    _schedule(one, one, one, 2)


def schedule(busy: np.ndarray, rd: np.ndarray, wd: np.ndarray, slots: int) -> tuple[int, int]:
    """(total cycles, DRAM busy cycles) of the in-order DMA schedule.

    Parameters
    ----------
    busy, rd, wd : ndarray of int64, shape (n,)
        Array cycles, DMA load cycles and DMA write cycles of each tile.
    slots : int
        Buffer slots per direction (2 when double buffered).
    """
    total, dram = _schedule(np.ascontiguousarray(busy, dtype=np.int64), np.ascontiguousarray(rd, dtype=np.int64),
                            np.ascontiguousarray(wd, dtype=np.int64), int(slots))
    return int(total), int(dram)
