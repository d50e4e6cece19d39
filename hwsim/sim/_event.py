"""The event model: tiles moving between DRAM and the SRAM buffers while the array computes (SimPy).

One layer at a time (SCALE-Sim keeps no data on chip between layers either, its issue #121). The layer's folds
are grouped into at most ``max_tiles`` tiles, in execution order; each tile carries its share of the layer's
compute cycles and of its DRAM read and write bytes (spread evenly: a first-cut assumption, stated).

Processes over resources (SimPy's style):

* ``dram``: one :class:`simpy.Resource` of capacity 1 with ``bandwidth_bytes_per_cycle``: reads and writes
  share it, first come first served; a transfer of b bytes holds it ``ceil(b / bandwidth)`` cycles.
* ``reader``: loads tile i's inputs into an input buffer slot once one is free (2 slots when double buffered:
  tile i waits for tile i-2's compute to end; 1 slot otherwise).
* ``array``: computes tile i once its inputs are loaded, the previous tile is done and an output slot is free.
* ``writer``: writes tile i's outputs to DRAM once computed; the slot frees when the write ends.

``total_cycles`` is when the last write ends; ``stall_cycles = total_cycles - compute_cycles``, split into
``onchip_stall_cycles`` (a tile's on-chip traffic took longer than its compute: an on-chip level could not keep
up) and ``dram_stall_cycles`` (waiting for DRAM). With unbounded
bandwidth every transfer takes 0 cycles, so stalls are 0 and the layer takes exactly its compute cycles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import simpy

__all__ = ["LayerTiming", "simulate_tiles", "split_even"]


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


def split_even(total: int, parts: int) -> list[int]:
    """Split a non-negative integer into ``parts`` integers that differ by at most 1 and sum to ``total``."""
    return [total * (i + 1) // parts - total * i // parts for i in range(parts)]


def _xfer(nbytes: int, bw: float) -> int:
    if nbytes <= 0 or math.isinf(bw):
        return 0
    return math.ceil(nbytes / bw)


def simulate_tiles(compute: list[int], read_bytes: list[int], write_bytes: list[int], *,
                   bandwidth_bytes_per_cycle: float, double_buffered: bool = True,
                   onchip_cycles: list[int] | None = None) -> LayerTiming:
    """Run the event model on a list of tiles.

    Parameters
    ----------
    compute : list of int
        Compute cycles of each tile, in order.
    read_bytes, write_bytes : list of int
        DRAM bytes each tile reads before it computes and writes after, same length as ``compute``.
    bandwidth_bytes_per_cycle : float
        Shared DRAM bandwidth (``math.inf`` for unbounded).
    double_buffered : bool
        Two buffer slots per direction (loads and writes overlap compute) or one.
    onchip_cycles : list of int, optional
        The cycles each tile needs at least for its on-chip traffic (its bits over the slowest on-chip level's
        bandwidth); a tile's array phase lasts ``max(compute, onchip)``, the excess counted as on-chip stall.

    Raises
    ------
    ValueError
        The lists differ in length, are empty, or hold negative numbers; the bandwidth is not positive.
    """
    n = len(compute)
    if n == 0 or len(read_bytes) != n or len(write_bytes) != n:
        raise ValueError(f"compute, read_bytes and write_bytes must be non-empty lists of one length, not "
                         f"{len(compute)}, {len(read_bytes)}, {len(write_bytes)}")
    if min(compute) < 0 or min(read_bytes) < 0 or min(write_bytes) < 0:
        raise ValueError("compute cycles and byte counts must be non-negative")
    if not bandwidth_bytes_per_cycle > 0:
        raise ValueError(f"bandwidth_bytes_per_cycle must be > 0, not {bandwidth_bytes_per_cycle!r}")
    if onchip_cycles is None:
        busy_for = list(compute)
    else:
        if len(onchip_cycles) != n:
            raise ValueError(f"onchip_cycles must have {n} entries, not {len(onchip_cycles)}")
        busy_for = [max(c, o) for c, o in zip(compute, onchip_cycles)]
    slots = 2 if double_buffered else 1
    env = simpy.Environment()
    dram = simpy.Resource(env, capacity=1)
    loaded = [env.event() for _ in range(n)]
    computed = [env.event() for _ in range(n)]
    written = [env.event() for _ in range(n)]
    busy = [0]

    def transfer(nbytes: int):
        t = _xfer(nbytes, bandwidth_bytes_per_cycle)
        if t:
            with dram.request() as req:
                yield req
                yield env.timeout(t)
                busy[0] += t

    def reader():
        for i in range(n):
            if i >= slots:
                yield computed[i - slots]
            yield from transfer(read_bytes[i])
            loaded[i].succeed()

    def array():
        for i in range(n):
            yield loaded[i]
            if i >= slots:
                yield written[i - slots]
            if busy_for[i]:
                yield env.timeout(busy_for[i])
            computed[i].succeed()

    def writer():
        for i in range(n):
            yield computed[i]
            yield from transfer(write_bytes[i])
            written[i].succeed()

    env.process(reader())
    env.process(array())
    env.process(writer())
    env.run()
    total = int(env.now)
    c = sum(compute)
    onchip = sum(busy_for) - c
    return LayerTiming(compute_cycles=c, stall_cycles=total - c, total_cycles=total, dram_busy_cycles=busy[0],
                       tiles=n, onchip_stall_cycles=onchip, dram_stall_cycles=total - c - onchip)
