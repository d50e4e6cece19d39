"""The event model's schedule as a max-plus recurrence: the same in-order DMA engine and array as the SimPy
processes of :mod:`hwsim.sim._event`, computed without an event queue.

One source, two ways to run it: plain Python (``hwsim simulate``: no compiler loaded, small memory) and, for
sweeps that evaluate thousands of points, the same function compiled by numba (:func:`use_numba`).
"""

from __future__ import annotations

__all__ = ["schedule", "use_numba", "warm_up"]


def _schedule(busy, rd, wd, slots):
    n = len(busy)
    s = min(slots, n)
    load_end = [0] * n
    comp_end = [0] * n
    write_end = [0] * n
    done = 0  # tiles whose compute end is known
    t = 0  # when the DMA engine is next free
    dram_busy = 0
    # transfers in the DMA order: load 0..s-1, then (write i-s, load i) for i = s..n-1, then the last writes;
    # one more step (kind 2, no transfer) settles the compute ends no transfer waited for
    for step in range(2 * n + 1):
        if step == 2 * n:
            kind, i = 2, n - 1
        elif step < s:
            kind, i = 0, step
        elif step < 2 * n - s:
            j = step - s
            if j % 2 == 0:
                kind, i = 1, j // 2
            else:
                kind, i = 0, s + j // 2
        else:
            kind, i = 1, n - s + (step - (2 * n - s))
        # the compute ends this transfer waits for belong to tiles whose own transfers came before it
        need = i - s if kind == 0 else i
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
        elif kind == 1:
            if wd[i] > 0:
                st = t if t > comp_end[i] else comp_end[i]
                t = st + wd[i]
                dram_busy += wd[i]
                write_end[i] = t
            else:
                write_end[i] = comp_end[i]
    total = comp_end[n - 1]
    for i in range(n):
        if write_end[i] > total:
            total = write_end[i]
    return total, dram_busy


_compiled = None


def use_numba(on: bool = True) -> None:
    """Run the recurrence compiled by numba from now on (sweeps), or in plain Python (``on=False``)."""
    global _compiled
    if not on:
        _compiled = None
        return
    if _compiled is None:
        from numba import njit

        _compiled = njit(cache=True)(_schedule)


def warm_up() -> None:
    """Load (or compile) the numba kernel now when it is in use, so that timing a model does not count it."""
    if _compiled is not None:
        import numpy as np

        one = np.ones(1, dtype=np.int64)
        _compiled(one, one, one, 2)


def schedule(busy, rd, wd, slots: int) -> tuple[int, int]:
    """(total cycles, DRAM busy cycles) of the in-order DMA schedule.

    Parameters
    ----------
    busy, rd, wd : ndarray of int64, shape (n,)
        Array cycles, DMA load cycles and DMA write cycles of each tile.
    slots : int
        Buffer slots per direction (2 when double buffered).
    """
    if _compiled is not None:
        import numpy as np

        total, dram = _compiled(np.ascontiguousarray(busy, dtype=np.int64),
                                np.ascontiguousarray(rd, dtype=np.int64),
                                np.ascontiguousarray(wd, dtype=np.int64), int(slots))
    else:
        total, dram = _schedule(busy.tolist(), rd.tolist(), wd.tolist(), int(slots))
    return int(total), int(dram)
