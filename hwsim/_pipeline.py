"""The whole pipeline in one place: spec -> bits -> mapping -> event model -> energy -> results.

Each stage is a plain function of the one before (``../shared/DESIGN.md``, "One picture"):

1. resolve each layer's (weight_bits, act_bits, out_bits)          ``resolve_bits``
2. map the layer onto the array: folds, cycles, accesses, bytes    :func:`hwsim.mapping.map_layer`
3. run the SimPy event model over its tiles: stalls, total cycles  :func:`hwsim.sim.simulate_tiles`
4. price every action                                              :func:`hwsim.energy.layer_energy`
5. collect one row per layer and the totals                        :class:`SimResult`
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .energy import ENERGY_COMPONENTS, ActionEnergies, action_energies, layer_energy
from .errors import SpecError
from .mapping import LayerMapping, map_layer
from .sim import LayerTiming, simulate_tiles, split_even
from .spec import ArchSpec, Workload

__all__ = ["SimResult", "resolve_bits", "simulate_workload", "LAYER_COLUMNS"]

LAYER_COLUMNS = (
    "layer", "op", "m", "k", "n", "groups", "macs", "weight_bits", "act_bits", "out_bits", "dataflow",
    "row_folds", "col_folds", "folds", "fill_cycles", "steady_cycles", "drain_cycles", "compute_cycles",
    "stall_cycles", "total_cycles", "latency_us", "utilization", "mapping_efficiency",
    "sram_ifmap_reads", "sram_filter_reads", "sram_ofmap_writes", "sram_ofmap_reads",
    "sram_ifmap_read_accesses", "sram_filter_read_accesses", "sram_ofmap_write_accesses",
    "sram_ofmap_read_accesses", "dram_ifmap_read_bytes", "dram_filter_read_bytes", "dram_psum_read_bytes",
    "dram_read_bytes", "dram_ofmap_write_bytes", "dram_psum_write_bytes", "dram_write_bytes", "energy_pj",
    *(f"energy_{c}_pj" for c in ENERGY_COMPONENTS),
)


@dataclass
class SimResult:
    """What ``hwsim simulate`` computes: one row per layer (``LAYER_COLUMNS``) and the totals.

    Units are in the column names or documented: cycles are array clock cycles, energies pJ, bytes bytes,
    SRAM reads/writes operand elements (``*_accesses``: accesses of the buffer's word), utilization a fraction.
    """

    arch: ArchSpec
    workload: Workload
    bits: dict[str, tuple[int, int, int]]
    rows: list[dict[str, Any]]
    energies: ActionEnergies
    model_cpu_s: float
    totals: dict[str, float] = field(default_factory=dict)


def resolve_bits(workload: Workload, *, bits: dict[str, tuple[int, int]] | None = None,
                 weight_bits: int | None = None, act_bits: int | None = None,
                 source: str = "<bits>") -> dict[str, tuple[int, int, int]]:
    """Each layer's (weight_bits, act_bits, out_bits).

    Precedence: ``bits[layer]`` > uniform ``weight_bits``/``act_bits`` > the layer's own > the workload's
    defaults. A layer's outputs are written at the next layer's act_bits (the last layer: its own act_bits):
    layers are taken as a chain in file order.

    Raises
    ------
    SpecError
        ``bits`` names a layer the workload does not have.
    """
    bits = bits or {}
    names = [layer.name for layer in workload.layers]
    for k in bits:
        if k not in names:
            raise SpecError(source, k, f"a layer of workload {workload.name!r} ({', '.join(names[:6])}"
                            f"{', ...' if len(names) > 6 else ''})", k)
    wa: list[tuple[int, int]] = []
    for layer in workload.layers:
        w, a = workload.bits(layer)
        if weight_bits is not None:
            w = weight_bits
        if act_bits is not None:
            a = act_bits
        if layer.name in bits:
            w, a = bits[layer.name]
        wa.append((int(w), int(a)))
    out: dict[str, tuple[int, int, int]] = {}
    for i, name in enumerate(names):
        nxt = wa[i + 1][1] if i + 1 < len(wa) else wa[i][1]
        out[name] = (wa[i][0], wa[i][1], nxt)
    return out


def _timing(m: LayerMapping, arch: ArchSpec) -> LayerTiming:
    n = max(1, min(m.folds, arch.timing.max_tiles_per_layer))
    return simulate_tiles(split_even(m.compute_cycles, n), split_even(m.dram_read_bytes, n),
                          split_even(m.dram_write_bytes, n),
                          bandwidth_bytes_per_cycle=arch.memory.dram.bandwidth,
                          double_buffered=arch.memory.double_buffered)


def simulate_workload(arch: ArchSpec, workload: Workload, *, bits: dict[str, tuple[int, int]] | None = None,
                      weight_bits: int | None = None, act_bits: int | None = None,
                      source: str = "<arch>") -> SimResult:
    """Time and price every layer of ``workload`` on ``arch``.

    Raises
    ------
    SpecError, InfeasibleError
        Bits that name no layer, or operand widths the PE cannot take.
    """
    t0 = time.process_time()
    resolved = resolve_bits(workload, bits=bits, weight_bits=weight_bits, act_bits=act_bits)
    ae = action_energies(arch)
    R, C = arch.array.rows, arch.array.cols
    rows: list[dict[str, Any]] = []
    for layer in workload.layers:
        w, a, o = resolved[layer.name]
        m = map_layer(layer, arch, weight_bits=w, act_bits=a, out_bits=o, where=source)
        tm = _timing(m, arch)
        e = layer_energy(m, arch, ae)
        peak = R * C * m.precision.macs_per_pe_cycle / m.precision.cycles_per_step
        row: dict[str, Any] = {
            "layer": m.layer, "op": m.op, "m": m.m, "k": m.k, "n": m.n, "groups": m.groups, "macs": m.macs,
            "weight_bits": w, "act_bits": a, "out_bits": o, "dataflow": m.dataflow,
            "row_folds": m.row_folds, "col_folds": m.col_folds, "folds": m.folds,
            "fill_cycles": m.fill_cycles, "steady_cycles": m.steady_cycles, "drain_cycles": m.drain_cycles,
            "compute_cycles": tm.compute_cycles, "stall_cycles": tm.stall_cycles,
            "total_cycles": tm.total_cycles, "latency_us": tm.total_cycles / arch.clock_mhz,
            "utilization": m.macs / (tm.total_cycles * peak) if tm.total_cycles else 0.0,
            "mapping_efficiency": m.mapping_efficiency,
            "sram_ifmap_reads": m.sram_ifmap_reads, "sram_filter_reads": m.sram_filter_reads,
            "sram_ofmap_writes": m.sram_ofmap_writes, "sram_ofmap_reads": m.sram_ofmap_reads,
            "sram_ifmap_read_accesses": m.sram_ifmap_read_accesses,
            "sram_filter_read_accesses": m.sram_filter_read_accesses,
            "sram_ofmap_write_accesses": m.sram_ofmap_write_accesses,
            "sram_ofmap_read_accesses": m.sram_ofmap_read_accesses,
            "dram_ifmap_read_bytes": m.dram_ifmap_read_bytes, "dram_filter_read_bytes": m.dram_filter_read_bytes,
            "dram_psum_read_bytes": m.dram_psum_read_bytes, "dram_read_bytes": m.dram_read_bytes,
            "dram_ofmap_write_bytes": m.dram_ofmap_write_bytes, "dram_psum_write_bytes": m.dram_psum_write_bytes,
            "dram_write_bytes": m.dram_write_bytes, "energy_pj": sum(e.values()),
        }
        row.update({f"energy_{c}_pj": e[c] for c in ENERGY_COMPONENTS})
        rows.append(row)
    cpu = time.process_time() - t0
    res = SimResult(arch=arch, workload=workload, bits=resolved, rows=rows, energies=ae, model_cpu_s=cpu)
    res.totals = _totals(res)
    return res


def _totals(res: SimResult) -> dict[str, float]:
    rows = res.rows
    s = {k: sum(r[k] for r in rows) for k in (
        "macs", "compute_cycles", "stall_cycles", "total_cycles", "dram_read_bytes", "dram_write_bytes",
        "sram_ifmap_reads", "sram_filter_reads", "sram_ofmap_writes", "energy_pj",
        *(f"energy_{c}_pj" for c in ENERGY_COMPONENTS))}
    arch = res.arch
    s["latency_us"] = s["total_cycles"] / arch.clock_mhz
    s["utilization"] = (sum(r["utilization"] * r["total_cycles"] for r in rows) / s["total_cycles"]
                        if s["total_cycles"] else 0.0)
    s["pj_per_mac"] = s["energy_pj"] / s["macs"] if s["macs"] else 0.0
    # TOPS/W = (2 ops per MAC) / (energy per MAC): 2 / (pJ/MAC) gives TOPS/W
    s["tops_per_w"] = 2.0 / s["pj_per_mac"] if s["pj_per_mac"] else 0.0
    s["model_cpu_s"] = res.model_cpu_s
    return s
