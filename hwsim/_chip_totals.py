"""The chip-level cycle totals of several cores on one time base, the makespan (docs/multicore_llm.md,
"Totals"): used by both multi-core schedules (:mod:`hwsim._multicore`, :mod:`hwsim._multicore_pipeline`)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["CYCLE_KEYS", "core_cycle_sums", "chip_cycle_totals", "core_roofline", "retime_row",
           "union_cycles"]

#: The cycle totals of the rows that one array sums (with several cores each also kept as ``KEY_core_sum``).
CYCLE_KEYS = ("compute_cycles", "stall_cycles", "dram_stall_cycles", "onchip_stall_cycles")
_UNIT_KEYS = ("array_cycles", "vector_cycles")


def core_cycle_sums(rows: list[dict[str, Any]], vector_rows: list[dict[str, Any]]) -> dict[str, int]:
    """One core's rows (its GEMM parts, its vector nodes) summed: ``node_compute_cycles``,
    ``node_stall_cycles`` (each row's window minus its compute), ``node_dram_stall_cycles``,
    ``node_onchip_stall_cycles`` (GEMM rows: a vector row has neither), ``node_array_cycles`` /
    ``node_vector_cycles`` (the GEMM / vector rows' windows: the time its array / vector unit is taken)."""
    out = {f"node_{k}": int(sum(r.get(k, 0) or 0 for r in rows + vector_rows)) for k in CYCLE_KEYS}
    out["node_array_cycles"] = int(sum(r["total_cycles"] for r in rows))
    out["node_vector_cycles"] = int(sum(r["total_cycles"] for r in vector_rows))
    return out


def retime_row(row: dict[str, Any], total: int, busy: int, a: Any, *, vector: bool) -> None:
    """A node's row with the cycles a chip schedule gave it (both multi-core schedules): ``total`` (its
    window: its first task's start to its last task's end), ``busy`` (its tiles' array or vector phases,
    each ``max(compute, on-chip floor)``, summed): ``stall_cycles = total - compute_cycles``, (GEMM)
    ``dram_stall_cycles = total - busy``, ``latency_us``, ``utilization`` and ``compute_utilization``
    follow (as :func:`hwsim.simulate_workload` counts them; ``a``: the core's :class:`hwsim.spec.ArchSpec`).
    Modifies ``row`` in place."""
    comp = int(row["compute_cycles"])
    row["total_cycles"] = total
    row["stall_cycles"] = total - comp
    if vector:
        return
    row["dram_stall_cycles"] = total - busy
    row["latency_us"] = total / a.clock_mhz
    peak = row["peak_macs_per_cycle"]
    taken = total + (row["groups"] if a.timing.convention == "scalesim" else 0)
    row["utilization"] = row["macs"] / (taken * peak) if taken and peak else 0.0
    row["compute_utilization"] = (row["macs"] / ((taken - row["stall_cycles"]) * peak)
                                  if taken > row["stall_cycles"] and peak else 0.0)


def union_cycles(windows: list[tuple[int, int]]) -> int:
    """The cycles covered by at least one of the half-open ``[start, stop)`` windows (at most the span from
    the first start to the last stop; overlapping windows counted once)."""
    out, end = 0, None
    for s, e in sorted(windows):
        if end is None or s >= end:
            out += e - s
            end = e
        elif e > end:
            out += e - end
            end = e
    return out


def chip_cycle_totals(totals: dict[str, Any], cores: list[dict[str, int]], makespan: int) -> None:
    """Put the chip's cycle totals on one time base, the makespan (docs/multicore_llm.md, "Totals").

    ``cores``: per core, :func:`core_cycle_sums`. The per-core sums go to ``KEY_core_sum``
    (:data:`CYCLE_KEYS`); then, with the busiest core ``b`` (the most compute cycles; ties: the first),

    * ``compute_cycles`` = ``b``'s compute cycles (its array and vector nodes, as one array counts them);
    * ``stall_cycles`` = ``total_cycles - compute_cycles`` (0 if ``b``'s overlapped array and vector compute
      exceed the makespan), so that ``compute_cycles + stall_cycles = total_cycles``;
    * ``dram_stall_cycles`` + ``onchip_stall_cycles`` = ``stall_cycles``, split in the ratio of ``b``'s own
      DRAM and on-chip stalls (all DRAM when it has neither: its stall is then waiting for other cores'
      data, which comes through DRAM or the network).

    ``array_cycles`` / ``vector_cycles``: the longest any core's array / vector unit is taken (its nodes'
    windows; at most the makespan), their sums in ``..._core_sum``. ``busiest_core`` is ``b``'s index in
    ``cores.list``. Modifies ``totals`` in place.
    """
    for k in CYCLE_KEYS + _UNIT_KEYS:
        totals[f"{k}_core_sum"] = sum(c[f"node_{k}"] for c in cores)
    for k in _UNIT_KEYS:  # the unit of its kind taken longest (each core's array runs its nodes in turn)
        totals[k] = max(c[f"node_{k}"] for c in cores)
    b = max(range(len(cores)), key=lambda i: (cores[i]["node_compute_cycles"], -i))
    comp = cores[b]["node_compute_cycles"]
    stall = max(0, int(makespan) - comp)
    d, o = cores[b]["node_dram_stall_cycles"], cores[b]["node_onchip_stall_cycles"]
    dram = stall if d + o <= 0 else stall * d // (d + o)
    totals.update({"compute_cycles": comp, "stall_cycles": stall, "dram_stall_cycles": dram,
                   "onchip_stall_cycles": stall - dram, "busiest_core": b})


def core_roofline(peak: int, share: float, macs: int, dram_bytes: int, makespan: int) -> dict[str, Any]:
    """One core's roofline columns of ``cores.csv`` (both schedules; docs/multicore_llm.md, "Outputs").

    ``peak``: the core's MACs per cycle (rows x cols); ``share``: its DRAM bytes per cycle (the chip's
    bandwidth over the cores, :meth:`hwsim.spec.ArchSpec.core_archs`; ``inf`` when unbounded); ``macs`` and
    ``dram_bytes``: its work; ``makespan``: the chip's cycles. Returns ``intensity_macs_per_byte`` (MACs per
    DRAM byte; ``inf`` with no DRAM byte), ``ridge_macs_per_byte`` (``peak / share``; 0 when unbounded),
    ``bound``, ``peak_macs_per_cycle``, ``dram_share_bytes_per_cycle``, ``achieved_macs_per_cycle`` (MACs
    over the makespan) and ``roof_macs_per_cycle`` (``min(peak, intensity x share)``; the classic roofline,
    Williams et al., CACM 52(4), 2009).
    """
    ridge = peak / share if share != math.inf else 0.0
    inten = macs / dram_bytes if dram_bytes else math.inf
    return {"intensity_macs_per_byte": inten, "ridge_macs_per_byte": ridge,
            "bound": "memory" if inten < ridge else "compute", "peak_macs_per_cycle": peak,
            "dram_share_bytes_per_cycle": share,
            "achieved_macs_per_cycle": macs / makespan if makespan else 0.0,
            "roof_macs_per_cycle": min(peak, inten * share) if share != math.inf else peak}


def chip_area(archs: list[tuple[str, Any]], *, source: str = "<arch>") -> tuple[Any, list[float]]:
    """The die area of a chip of several cores (``archs``: :meth:`hwsim.spec.ArchSpec.core_archs`) and of each
    core, from :func:`hwsim.energy.area_breakdown` of each core's arch.

    Assumptions: the chip is the sum of its cores (each its own array, buffers and requantizers, as
    ``area_breakdown`` counts one array; the vector unit is counted in neither); the network (links,
    routers) and the ``hub`` have no area model and are not counted (``sources["noc"]`` says so); DRAM is
    off chip. Returns ``(breakdown, per-core mm^2)``: the breakdown's components are the one-array ones
    (``mac``, each memory level, ``requant``), each summed over the cores (``units`` too); ``unit_um2`` is
    ``um2 / units``, the area of one unit when the cores are of one type, their average otherwise.

    Raises
    ------
    SpecError
        ``energy.technology`` names no shipped table.
    """
    from .energy import AreaBreakdown, area_breakdown

    parts = [area_breakdown(a, source=source) for _, a in archs]
    um2: dict[str, float] = {}
    units: dict[str, int] = {}
    src: dict[str, str] = {}
    for p in parts:
        for k, v in p.um2.items():
            um2[k] = um2.get(k, 0.0) + v
            units[k] = units.get(k, 0) + p.units[k]
        for k, v in p.sources.items():
            src.setdefault(k, v)
    names = ", ".join(n for n, _ in archs)
    types = len({id(a) for _, a in archs})
    for k in src:
        if k in um2:
            src[k] += (f"; summed over cores {names}" + (" (um^2 per unit: the average over the core types)"
                                                        if types > 1 else ""))
    src["noc"] = "not counted: the network's links and routers and the hub have no area model"
    unit = {k: um2[k] / units[k] if units[k] else 0.0 for k in um2}
    return AreaBreakdown(um2=um2, unit_um2=unit, units=units, sources=src), [p.total_mm2 for p in parts]
