"""The report of one ``hwsim simulate`` run: cycles, utilization, traffic and energy per layer."""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go

from .._pipeline import SimResult
from ._html import table_html, write_page

__all__ = ["simulate_report", "cycles_figure", "energy_figure", "utilization_figure", "roofline_figure",
           "timeline_figure", "occupancy_figure", "core_roofline_figure"]

_UNIT_ORDER = {"array": 0, "vector": 1, "dma": 2, "dram": 3}


def timeline_figure(timeline: list[dict], title: str = "Timeline: array, vector unit and DMA") -> go.Figure:
    """One horizontal bar per node on its unit from its start to its end cycle. One core: the units
    ``array``, ``vector``, ``dma`` (a node's DRAM busy cycles drawn from the node's start: the transfers
    interleave with compute inside it). Several cores (``cores:``): one row per core and unit, ``c0.array``,
    ``c0.vector``, ``c0.dram`` (from a node's first transfer on the shared DRAM channel to its last), in core
    order."""
    def key(u):
        core, _, kind = u.rpartition(".")
        return (core, _UNIT_ORDER.get(kind, 9), kind)

    fig = go.Figure()
    units = sorted(dict.fromkeys(r["unit"] for r in timeline), key=key)
    for unit in units:
        if "." not in unit and unit not in ("array", "vector", "dma"):
            continue
        rs = [r for r in timeline if r["unit"] == unit]
        fig.add_bar(name=unit, y=[unit] * len(rs), x=[r["stop_cycle"] - r["start_cycle"] for r in rs],
                    base=[r["start_cycle"] for r in rs], orientation="h", text=[r["node"] for r in rs],
                    hovertemplate="%{text}: cycles %{base} to %{x}+%{base}<extra></extra>")
    fig.update_layout(barmode="overlay", title=title, xaxis_title="cycle (array clock)", yaxis_title="unit",
                      height=max(300, 60 + 28 * len(units)), showlegend=False,
                      yaxis={"categoryorder": "array", "categoryarray": units[::-1]})
    return fig


def core_roofline_figure(core_rows: list[dict], title: str = "Roofline per core") -> go.Figure:
    """Each core against its own roof: x = its MACs per DRAM byte (``intensity_macs_per_byte`` of
    ``cores.csv``), y = its achieved MACs per cycle over the makespan (``achieved_macs_per_cycle``); the roof
    ``min(peak MACs/cycle, x * its DRAM share in bytes/cycle)`` (the chip's bandwidth over the cores), ridge
    at ``peak / share`` (``ridge_macs_per_byte``). Cores with one roof share one line. A core left of its
    ridge is memory-bound."""
    import numpy as np

    pts = [r for r in core_rows if np.isfinite(r["intensity_macs_per_byte"]) and r["dram_bytes"]]
    fig = go.Figure()
    if pts:
        xs = [r["intensity_macs_per_byte"] for r in pts]
        ridges = [r["ridge_macs_per_byte"] for r in pts if r["ridge_macs_per_byte"]]
        grid = np.geomspace(min(xs + ridges) / 4, max(xs + ridges) * 4, 120)
        roofs: dict[tuple[float, float], list[str]] = {}
        for r in pts:
            key = (r["peak_macs_per_cycle"], r["dram_share_bytes_per_cycle"])
            roofs.setdefault(key, []).append(r["core"])
        for (peak, share), names in roofs.items():
            y = np.minimum(peak, grid * share) if np.isfinite(share) else np.full_like(grid, peak)
            label = (f"roof {', '.join(names)}: {peak:,.0f} MACs/cycle, {share:g} B/cycle, ridge "
                     f"{peak / share:,.0f}" if np.isfinite(share) else f"roof {peak:,.0f}")
            fig.add_scatter(x=grid, y=y, mode="lines", name=label)
        fig.add_scatter(x=xs, y=[r["achieved_macs_per_cycle"] for r in pts], mode="markers+text",
                        text=[r["core"] for r in pts], textposition="top center", name="cores",
                        customdata=[[r["bound"], r["roof_macs_per_cycle"]] for r in pts],
                        hovertemplate="%{text}: %{x:,.3g} MACs/byte, %{y:,.4g} MACs/cycle of a roof of "
                                      "%{customdata[1]:,.4g} (%{customdata[0]}-bound)<extra></extra>")
    fig.update_layout(title=title + ": achieved MACs/cycle (over the makespan) vs MACs per DRAM byte",
                      xaxis_type="log", yaxis_type="log", xaxis_title="MACs per DRAM byte",
                      yaxis_title="MACs per cycle", height=440)
    return fig


def occupancy_figure(occupancy: list[dict], title: str = "On-chip memory occupancy over time") -> go.Figure:
    """Per on-chip level: bytes held by resident tensors and by the running node's tiles, as steps over
    cycles, with the level's capacity (dashed)."""
    fig = go.Figure()
    for lv in dict.fromkeys(r["level"] for r in occupancy):
        rs = [r for r in occupancy if r["level"] == lv]
        xs, res_, til = [], [], []
        for r in rs:
            xs += [r["start_cycle"], r["stop_cycle"]]
            res_ += [r["resident_bytes"]] * 2
            til += [r["resident_bytes"] + r["tile_bytes"]] * 2
        fig.add_scatter(x=xs, y=res_, mode="lines", name=f"{lv}: resident tensors", fill="tozeroy")
        fig.add_scatter(x=xs, y=til, mode="lines", name=f"{lv}: + tiles")
        if xs:
            fig.add_scatter(x=[xs[0], xs[-1]], y=[rs[0]["capacity_bytes"]] * 2, mode="lines",
                            line={"dash": "dash"}, name=f"{lv}: capacity")
    fig.update_layout(title=title, xaxis_title="cycle (array clock)", yaxis_title="bytes", height=420)
    return fig


def cycles_figure(rows: list[dict], title: str = "Cycles per layer") -> go.Figure:
    """Stacked bars per layer: fill, steady state, drain (the compute cycles) and stall cycles."""
    names = [r["layer"] for r in rows]
    fig = go.Figure()
    comp_total = [r["fill_cycles"] + r["steady_cycles"] + r["drain_cycles"] for r in rows]
    # under the scalesim convention compute is one less per GEMM than the phases' sum: show compute, split
    for key, label in (("fill_cycles", "fill"), ("steady_cycles", "steady state"), ("drain_cycles", "drain")):
        vals = [r[key] * (r["compute_cycles"] / ct if ct else 0)
                for r, ct in zip(rows, comp_total, strict=True)]
        fig.add_bar(name=label, x=names, y=vals)
    fig.add_bar(name="stall", x=names, y=[r["stall_cycles"] for r in rows])
    fig.update_layout(barmode="stack", title=title, xaxis_title="layer", yaxis_title="cycles", height=420)
    return fig


def energy_figure(rows: list[dict], title: str = "Energy per layer by component") -> go.Figure:
    """Stacked bars per layer of energy by component, pJ."""
    names = [r["layer"] for r in rows]
    fig = go.Figure()
    comps = [k[len("energy_"):-len("_pj")] for k in rows[0] if k.startswith("energy_") and k != "energy_pj"]
    for c in comps:
        fig.add_bar(name=c, x=names, y=[r[f"energy_{c}_pj"] for r in rows])
    fig.update_layout(barmode="stack", title=title, xaxis_title="layer", yaxis_title="energy (pJ)",
                      height=420)
    return fig


def utilization_figure(rows: list[dict]) -> go.Figure:
    """Utilization (bars) and mapping efficiency (markers) per layer, fractions."""
    names = [r["layer"] for r in rows]
    fig = go.Figure()
    fig.add_bar(name="utilization", x=names, y=[r["utilization"] for r in rows])
    fig.add_scatter(name="mapping efficiency", x=names, y=[r["mapping_efficiency"] for r in rows],
                    mode="markers")
    fig.update_layout(title=("Utilization (MACs / (total cycles x peak MACs per cycle)) and mapping "
                             "efficiency"),
                      xaxis_title="layer", yaxis_title="fraction", yaxis_range=[0, 1.05], height=380)
    return fig


def roofline_figure(arch, rows: list[dict]) -> go.Figure:
    """Roofline of an arch with each layer at its attained MACs/cycle (x: MACs per DRAM byte, y: MACs/cycle).

    The compute roof is the array's peak at the layer's bits (``peak_macs_per_cycle`` of ``layers.csv``:
    rows x cols x MACs per PE per cycle, which a bit-fusion PE multiplies at low bits and a bit-serial PE
    divides): one roof per distinct peak, labelled with the bits that reach it, so that every layer sits under
    its own roof. The slope is the DRAM bandwidth (bytes/cycle).
    """
    import numpy as np

    bw = arch.memory.dram_level.read_bw / 8
    default_peak = arch.array.rows * arch.array.cols
    xs, ys, names, peaks = [], [], [], []
    for r in rows:
        b = r["dram_read_bytes"] + r["dram_write_bytes"]
        if b and r["total_cycles"]:
            xs.append(r["macs"] / b)
            ys.append(r["macs"] / r["total_cycles"])
            names.append(r["layer"])
            peaks.append(r.get("peak_macs_per_cycle", default_peak))
    fig = go.Figure()
    if xs:
        grid = np.geomspace(min(xs) / 2, max(xs) * 2, 100)
        roofs: dict[float, set[str]] = {}
        for r in rows:
            p = r.get("peak_macs_per_cycle", default_peak)
            roofs.setdefault(p, set()).add(f"w{r['weight_bits']}a{r['act_bits']}")
        for p in sorted(roofs, reverse=True):
            roof = np.minimum(p, grid * bw) if bw != float("inf") else np.full_like(grid, p)
            bits = ", ".join(sorted(roofs[p]))
            fig.add_scatter(x=grid, y=roof, mode="lines", name=f"roof {p:,.0f} MACs/cycle ({bits})")
        fig.add_scatter(x=xs, y=ys, mode="markers", text=names, name="layers",
                        customdata=peaks, hovertemplate="%{text}: %{y:,.0f} of %{customdata:,.0f} MACs/cycle")
    fig.update_layout(title=f"Roofline of {arch.name}: attained MACs/cycle vs operational intensity "
                      f"(DRAM {bw:g} bytes/cycle)",
                      xaxis_type="log", yaxis_type="log", xaxis_title="MACs per DRAM byte",
                      yaxis_title="MACs per cycle", height=420)
    return fig


def _area_rows(res: SimResult) -> list[dict]:
    a = res.area
    rows = [{"component": c, "units": a.units[c], "um^2 per unit": a.unit_um2[c], "mm^2": a.um2[c] / 1e6,
             "source": a.sources.get(c, "")} for c in a.um2]
    return rows + [{"component": "total", "units": "", "um^2 per unit": "", "mm^2": a.total_mm2,
                    "source": ""}]


def simulate_report(res: SimResult, path: str | Path) -> Path:
    """Write the self-contained HTML report of one simulation."""
    t = res.totals
    arch = res.arch
    summary = [{
        "arch": arch.name, "workload": res.workload.name, "layers": len(res.rows), "MACs": int(t["macs"]),
        "total cycles": int(t["total_cycles"]), "stall cycles": int(t["stall_cycles"]),
        "latency (us)": t["latency_us"], "energy (uJ)": t["energy_pj"] / 1e6, "pJ/MAC": t["pj_per_mac"],
        "TOPS/W": t["tops_per_w"], "utilization": t["utilization"], "reuse": arch.timing.reuse,
        "DRAM bytes": int(t["dram_read_bytes"] + t["dram_write_bytes"]),
        "vector-unit cycles": int(t.get("vector_cycles", 0)),
        **({"area (mm^2)": t["area_mm2"]} if "area_mm2" in t else {}),
    }]
    cols = ["layer", "op", "m", "k", "n", "groups", "weight_bits", "act_bits", "folds", "compute_cycles",
            "stall_cycles", "total_cycles", "utilization", "dram_read_bytes", "dram_write_bytes", "energy_pj"]
    intro = (f"{arch.name}: {arch.array.rows}x{arch.array.cols} {arch.array.dataflow.upper()} array at "
             f"{arch.clock_mhz:g} MHz, PE {arch.pe.operand_bits}-bit {arch.pe.precision_mode}, "
             f"DRAM {arch.memory.dram_level.bandwidth_bytes_per_cycle} bytes/cycle, memory levels "
             f"{[lv.name for lv in arch.memory.hierarchy()]}. Cycles are array clock cycles; "
             f"energy in pJ from technology table {res.energies.technology}.")
    return write_page(path, f"hwsim simulate: {res.workload.name} on {arch.name}", [
        ("Summary", table_html(summary)),
        ("Cycles", cycles_figure(res.rows)),
        ("Energy", energy_figure(res.rows)),
        *([("Area by component", table_html(_area_rows(res)))] if res.area is not None else []),
        ("Utilization", utilization_figure(res.rows)),
        ("Roofline", roofline_figure(res.arch, res.rows)),
        ("Layers", table_html(res.rows, cols)),
        *([("Roofline per core", core_roofline_figure(res.core_rows)),
           ("Cores", table_html(res.core_rows))] if res.core_rows else []),
        ("Timeline", timeline_figure(res.timeline) if not res.core_rows else timeline_figure(
            res.timeline, "Timeline per core: array, vector unit, transfers on the shared DRAM channel")),
        ("Memory occupancy", occupancy_figure(res.occupancy)),
        (f"Where each tensor lived (timing.reuse: {arch.timing.reuse})", table_html(res.tensor_rows, [
            "tensor", "producer", "consumers", "bytes", "level", "kind", "from_cycle", "to_cycle",
            "written_bytes", "read_bytes", "dram_write_bytes", "dram_read_bytes"])),
        *([("Non-GEMM nodes on the vector unit", table_html(res.vector_rows, [
            "node", "op", "elements", "bits", "arithmetic", "ops_add", "ops_mul", "ops_max", "ops_exp",
            "ops_divide", "ops_rsqrt", "total_cycles", "dram_read_bytes", "dram_write_bytes", "energy_pj"]))]
          if res.vector_rows else []),
    ], intro=intro + (" Notes: " + " ".join(res.notes) if res.notes else ""))
