"""The event model: tiles moving between DRAM and the on-chip buffers while the array computes.

One layer at a time (SCALE-Sim keeps no data on chip between layers either, its issue #121). The layer's folds
are grouped into at most ``timing.max_tiles_per_layer`` tiles, in execution order; each tile carries its share
of the layer's compute cycles and of its DRAM read and write bytes (spread evenly: a first-cut assumption).

Hardware assumed: **one in-order DMA engine** moves every tile between DRAM and the buffers over one DRAM
channel of ``bandwidth_bytes_per_cycle`` (reads and writes share it; a transfer of b bytes takes
``ceil(b / bandwidth)`` cycles). It serves transfers in a fixed order, each when its buffer slot is ready::

    load 0, ..., load s-1, then for i = s..n-1: (write i-s, load i), then the last s writes

with ``s`` = 2 slots per direction when double buffered (1 otherwise). Load i waits until tile i-s has been
computed (its input slot is free); write i waits until tile i is computed. The array computes tile i once its
inputs are loaded, tile i-1 is done and tile i-s's outputs are written (its output slot is free); a tile's
array phase lasts ``max(compute, onchip)`` cycles, where ``onchip`` is what its on-chip traffic needs at the
slowest on-chip level's bandwidth. Transfers of zero bytes take no DMA time and hold nothing up.

Two engines compute this schedule and are tested equal on hundreds of random cases:

* :func:`simulate_tiles` with ``engine="simpy"``: SimPy processes (a DMA process over a
  :class:`simpy.Resource`, an array process) and events, the reference;
* ``engine="analytic"``: the same schedule as a max-plus recurrence in numba, for sweeps.

``total_cycles`` is when the last tile is computed and written; ``stall_cycles = total_cycles -
compute_cycles``, split into ``onchip_stall_cycles`` (on-chip traffic took longer than compute) and
``dram_stall_cycles`` (waiting for the DMA). With unbounded bandwidth every transfer takes 0 cycles, so stalls
are 0 and the layer takes exactly its compute cycles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["LayerTiming", "simulate_tiles", "split_even", "dma_order"]


@dataclass(frozen=True)
class LayerTiming:
    """Cycles of one layer (array clock cycles)."""

    compute_cycles: int
    stall_cycles: int
    total_cycles: int
    dram_busy_cycles: int
    tiles: int
    onchip_stall_cycles: int = 0
    dram_stall_cycles: int = 0


def split_even(total: int, parts: int) -> np.ndarray:
    """Split a non-negative integer into ``parts`` integers (int64 array) that differ by at most 1 and sum to
    ``total``."""
    edges = (np.arange(parts + 1, dtype=np.int64) * total) // parts if total < 2**62 // max(parts, 1) else \
        np.array([total * i // parts for i in range(parts + 1)], dtype=np.int64)
    return np.diff(edges)


def dma_order(n: int, slots: int) -> list[tuple[str, int]]:
    """The DMA engine's fixed order of transfers: ``("load", i)`` and ``("write", i)`` for ``n`` tiles."""
    s = min(slots, n)
    order = [("load", i) for i in range(s)]
    for i in range(s, n):
        order += [("write", i - s), ("load", i)]
    order += [("write", i) for i in range(n - s, n)]
    return order


def _durations(nbytes: np.ndarray, bw: float) -> np.ndarray:
    """DMA cycles of each transfer: ``ceil(bytes / bandwidth)``, 0 for 0 bytes or unbounded bandwidth."""
    b = np.asarray(nbytes, dtype=np.int64)
    if math.isinf(bw):
        return np.zeros(len(b), dtype=np.int64)
    if float(bw).is_integer():
        return (b + int(bw) - 1) // int(bw)
    return np.ceil(b / bw).astype(np.int64)


def _simpy_schedule(busy: np.ndarray, rd: np.ndarray, wd: np.ndarray, slots: int) -> tuple[int, int]:
    import simpy

    n = len(busy)
    env = simpy.Environment()
    dma = simpy.Resource(env, capacity=1)
    loaded = [env.event() for _ in range(n)]
    computed = [env.event() for _ in range(n)]
    written = [computed[i] if wd[i] == 0 else env.event() for i in range(n)]
    dram_busy = [0]

    def dma_engine():
        for kind, i in dma_order(n, slots):
            if kind == "load":
                if i >= slots and rd[i] > 0:
                    yield computed[i - slots]
                if rd[i] > 0:
                    with dma.request() as req:
                        yield req
                        yield env.timeout(int(rd[i]))
                        dram_busy[0] += int(rd[i])
                loaded[i].succeed()
            elif wd[i] > 0:
                yield computed[i]
                with dma.request() as req:
                    yield req
                    yield env.timeout(int(wd[i]))
                    dram_busy[0] += int(wd[i])
                written[i].succeed()

    def array():
        for i in range(n):
            yield loaded[i]
            if i >= slots:
                yield computed[i - slots]  # (already: tile i-1 is done) and its input slot was released
                yield written[i - slots]
            if busy[i]:
                yield env.timeout(int(busy[i]))
            computed[i].succeed()

    env.process(dma_engine())
    env.process(array())
    env.run()
    return int(env.now), dram_busy[0]


def _analytic_schedule(busy: np.ndarray, rd: np.ndarray, wd: np.ndarray, slots: int) -> tuple[int, int]:
    from ._recurrence import schedule

    return schedule(busy, rd, wd, slots)


def simulate_tiles(compute: list[int], read_bytes: list[int], write_bytes: list[int], *,
                   bandwidth_bytes_per_cycle: float, double_buffered: bool = True,
                   onchip_cycles: list[int] | None = None, engine: str = "analytic") -> LayerTiming:
    """Run the event model on a list of tiles.

    Parameters
    ----------
    compute : list of int
        Compute cycles of each tile, in order.
    read_bytes, write_bytes : list of int
        DRAM bytes each tile reads before it computes and writes after, same length as ``compute``.
    bandwidth_bytes_per_cycle : float
        DRAM bandwidth shared by reads and writes (``math.inf`` for unbounded).
    double_buffered : bool
        Two buffer slots per direction (loads and writes overlap compute) or one.
    onchip_cycles : list of int, optional
        The cycles each tile needs at least for its on-chip traffic; a tile's array phase lasts
        ``max(compute, onchip)``, the excess counted as on-chip stall.
    engine : {"analytic", "simpy"}
        Which engine computes the schedule (the same one; see the module docstring).

    Raises
    ------
    ValueError
        The lists differ in length, are empty, or hold negative numbers; the bandwidth is not positive; an
        unknown engine.
    """
    compute, read_bytes, write_bytes = (np.asarray(v, dtype=np.int64) for v in (compute, read_bytes,
                                                                                write_bytes))
    n = len(compute)
    if n == 0 or len(read_bytes) != n or len(write_bytes) != n:
        raise ValueError(f"compute, read_bytes and write_bytes must be non-empty lists of one length, not "
                         f"{len(compute)}, {len(read_bytes)}, {len(write_bytes)}")
    if compute.min() < 0 or read_bytes.min() < 0 or write_bytes.min() < 0:  # (numpy's min: no Python loop)
        raise ValueError("compute cycles and byte counts must be non-negative")
    if not bandwidth_bytes_per_cycle > 0:
        raise ValueError(f"bandwidth_bytes_per_cycle must be > 0, not {bandwidth_bytes_per_cycle!r}")
    if engine not in ("analytic", "simpy"):
        raise ValueError(f"engine must be 'analytic' or 'simpy', not {engine!r}")
    if onchip_cycles is not None and len(onchip_cycles) != n:
        raise ValueError(f"onchip_cycles must have {n} entries, not {len(onchip_cycles)}")
    c = compute
    busy = c if onchip_cycles is None else np.maximum(c, np.asarray(onchip_cycles, dtype=np.int64))
    rd = _durations(read_bytes, bandwidth_bytes_per_cycle)
    wd = _durations(write_bytes, bandwidth_bytes_per_cycle)
    slots = 2 if double_buffered else 1
    run = _simpy_schedule if engine == "simpy" else _analytic_schedule
    total, dram_busy = run(busy, rd, wd, slots)
    csum, bsum = int(c.sum()), int(busy.sum())
    return LayerTiming(compute_cycles=csum, stall_cycles=total - csum, total_cycles=total,
                       dram_busy_cycles=dram_busy, tiles=n, onchip_stall_cycles=bsum - csum,
                       dram_stall_cycles=total - bsum)
