"""The report of a sweep: Pareto fronts of quality vs latency and energy, per-layer bits, breakdowns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from ._html import table_html, write_page
from ._simulate import cycles_figure, energy_figure, roofline_figure, utilization_figure

__all__ = ["sweep_report", "pareto_figure"]


def bits_text(r: pd.Series) -> str:
    """``conv1 8/8, conv2 4/4, ...``: weight/activation bits per layer of one point row."""
    layers = [c[2:] for c in r.index if c.startswith("w_")]
    return _bits_join(layers, [r["w_" + n] for n in layers], [r["a_" + n] for n in layers])


def _bits_join(layers: list[str], w: list, a: list) -> str:
    return ", ".join(f"{n} {wb}/{ab}" for n, wb, ab in zip(layers, w, a, strict=True))


def _short(text: str, n: int = 160) -> str:
    return text if len(text) <= n else text[: n - 3] + "... (all in configs/)"


def _hover(df: pd.DataFrame, axes: list[str]) -> list[str]:
    """One hover text per row of ``df``: point index, policy, hardware axes, per-layer bits (cut at 160
    characters). Read column-wise (a sweep has thousands of points; ``iterrows`` took seconds) and the bits
    text formed once per distinct bit assignment."""
    layers = [c[2:] for c in df.columns if c.startswith("w_")]
    col = {c: df[c].tolist() for c in dict.fromkeys(["index", "policy", *axes])}
    bit_rows = list(zip(*(df[f"{p}_{n}"].tolist() for p in ("w", "a") for n in layers), strict=True)) \
        if layers else [()] * len(df)
    texts: dict[tuple, str] = {}
    out = []
    for i, key in enumerate(bit_rows):
        bits = texts.get(key)
        if bits is None:
            bits = _bits_join(layers, list(key[:len(layers)]), list(key[len(layers):]))
            texts[key] = bits if len(bits) <= 160 else bits[:157] + "..."
            bits = texts[key]
        hw = ", ".join(f"{a}={col[a][i]}" for a in axes)
        out.append(f"#{int(col['index'][i])} {col['policy'][i]}<br>{hw}<br>W/A bits: {bits}")
    return out


def pareto_figure(df: pd.DataFrame, x: str, y: str, *, axes: list[str], baselines: list[str], x_title: str,
                  y_title: str, title: str) -> go.Figure:
    """Scatter of every feasible point, the Pareto front as a line, and the uniform baselines marked."""
    ok = df[df["status"] == "ok"]
    fig = go.Figure()
    fig.add_scatter(x=ok[x], y=ok[y], mode="markers", name="design points", text=_hover(ok, axes),
                    hovertemplate="%{text}<br>%{x:,.4g}, %{y:.4f}<extra></extra>",
                    marker=dict(color="#9aa7b8", size=6, opacity=0.6))
    # the 2-D front of this pair of objectives (the pareto column is over all objectives)
    front = ok.sort_values([x, y], ascending=[True, False])
    # a point is on it where its y beats every y before it (smaller x, or equal x and larger y)
    before = front[y].cummax().ffill().shift(1).fillna(-float("inf"))
    f2 = front[front[y] > before]
    fig.add_scatter(x=f2[x], y=f2[y], mode="lines+markers", name=f"Pareto front ({y} vs {x})",
                    text=_hover(f2, axes), hovertemplate="%{text}<br>%{x:,.4g}, %{y:.4f}<extra></extra>",
                    line=dict(color="#d62728"), marker=dict(size=9))
    for b, sym in zip(baselines, ("diamond", "square", "cross", "x"), strict=False):
        sel = ok[ok["policy"] == b]
        if len(sel):
            fig.add_scatter(x=sel[x], y=sel[y], mode="markers", name=f"uniform {b}", text=_hover(sel, axes),
                            hovertemplate="%{text}<br>%{x:,.4g}, %{y:.4f}<extra></extra>",
                            marker=dict(symbol=sym, size=10, line=dict(width=1, color="#222")))
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, xaxis_type="log", height=480)
    return fig


def _bits_figure(df: pd.DataFrame, layers: list[str], chosen: pd.Series | None) -> go.Figure:
    fig = go.Figure()
    if chosen is not None:
        fig.add_bar(name="weight bits", x=layers, y=[chosen[f"w_{n}"] for n in layers])
        fig.add_bar(name="activation bits", x=layers, y=[chosen[f"a_{n}"] for n in layers])
    fig.update_layout(barmode="group", title="Per-layer bit-widths of the chosen point", xaxis_title="layer",
                      yaxis_title="bits", height=380)
    return fig


def sweep_report(rs: Any, df: pd.DataFrame, chosen: pd.Series | None, chosen_rows: list[dict] | None,
                 metric: str | None, path: str | Path, chosen_arch: Any = None) -> Path:
    """Write the sweep's self-contained HTML report."""
    axes = list(rs.spec.axes)
    layers = [layer.name for layer in rs.workload.layers]
    baselines = [f"W{w}A{a}" for w, a in rs.spec.baselines]
    n_ok = int((df["status"] == "ok").sum())
    n_inf = int((df["status"] == "infeasible").sum())
    sections: list[tuple[str, object]] = []
    bf = "; utilization of bit-fusion and bit-serial PEs is against their peak at each layer's bits" \
        if rs.arch.pe.precision_mode != "fixed" or any("precision_mode" in a for a in axes) else ""
    intro = (f"Sweep {rs.spec.name}: {len(df)} design points ({n_ok} feasible, {n_inf} infeasible, "
             f"{len(df) - n_ok - n_inf} failed) over axes {axes or '(none)'} of arch {rs.arch.name} and "
             f"{df['policy'].nunique()} precision policies of workload {rs.workload.name}. "
             f"Quality: {metric or 'none'} from a bit-accurate run of the real network. Cycles are array "
             f"clock cycles, energy pJ (uJ in the plots), area_mm2 the die area in mm^2 (PEs, on-chip "
             f"memories and requantizers from the {rs.arch.energy.technology} technology table; DRAM, the "
             f"network and control not counted). Objectives: {dict(rs.spec.objectives)}{bf}.")
    if metric:
        sections.append((f"{metric} vs latency", pareto_figure(
            df, "total_cycles", metric, axes=axes, baselines=baselines,
            x_title="total cycles (per inference)", y_title=metric, title=f"{metric} vs cycles")))
        sections.append((f"{metric} vs energy", pareto_figure(
            df.assign(energy_uj=df["energy_pj"] / 1e6), "energy_uj", metric, axes=axes, baselines=baselines,
            x_title="energy per inference (uJ)", y_title=metric, title=f"{metric} vs energy")))
    ok = df[df["status"] == "ok"]
    le = go.Figure()
    le.add_scatter(x=ok["total_cycles"], y=ok["energy_pj"] / 1e6, mode="markers", text=_hover(ok, axes),
                   marker=dict(color=ok["pareto"].map({True: "#d62728", False: "#9aa7b8"})),
                   hovertemplate="%{text}<br>%{x:,} cycles, %{y:,.4g} uJ<extra></extra>", name="points")
    le.update_layout(title="Energy vs cycles (red: on the Pareto front of all objectives)", xaxis_type="log",
                     yaxis_type="log", xaxis_title="total cycles", yaxis_title="energy per inference (uJ)",
                     height=440)
    sections.append(("Energy vs latency", le))
    if "area_mm2" in rs.spec.objectives:
        if metric:
            sections.append((f"{metric} vs area", pareto_figure(
                df, "area_mm2", metric, axes=axes, baselines=baselines, x_title="die area (mm^2)",
                y_title=metric, title=f"{metric} vs area")))
        ea = go.Figure()
        ea.add_scatter(x=ok["area_mm2"], y=ok["energy_pj"] / 1e6, mode="markers", text=_hover(ok, axes),
                       marker=dict(color=ok["pareto"].map({True: "#d62728", False: "#9aa7b8"})),
                       hovertemplate="%{text}<br>%{x:,.4g} mm^2, %{y:,.4g} uJ<extra></extra>", name="points")
        ea.update_layout(title="Energy vs area (red: on the Pareto front of all objectives)",
                         xaxis_type="log", yaxis_type="log", xaxis_title="die area (mm^2)",
                         yaxis_title="energy per inference (uJ)", height=440)
        sections.append(("Energy vs area", ea))
    front_cols = ["point", "policy", *axes, *(m for m in [metric] if m), "total_cycles", "latency_us",
                  "energy_uj", "area_mm2", "utilization"]
    front = df[df["pareto"]].sort_values("energy_pj").copy()
    front["point"] = [f"#{int(i)}" for i in front["index"]]
    front["energy_uj"] = front["energy_pj"] / 1e6
    front["W/A bits per layer"] = [_short(bits_text(r)) for _, r in front.iterrows()]
    front["config"] = [f"<a href='configs/point_{int(r['index'])}/arch.yaml'>arch</a> "
                       f"<a href='configs/point_{int(r['index'])}/quant.yaml'>bits</a>" for _,
                       r in front.iterrows()]
    front_cols += ["W/A bits per layer", "config"]
    sections.append(("Pareto points (all objectives)", [
        "<p class='note'>Each point's configuration is in configs/point_N/ (arch.yaml and quant.yaml): "
        "<code>hwsim simulate configs/point_N/arch.yaml WORKLOAD --quant configs/point_N/quant.yaml</code> "
        "reproduces its cycles and energy.</p>",
        table_html(front[front_cols].to_dict("records"), front_cols, raw={"config"})]))
    if chosen is not None:
        desc = ", ".join(f"{a}={chosen[a]}" for a in axes)
        sections.append((f"Chosen point #{int(chosen['index'])} "
                         f"({chosen['policy']}{'; ' + desc if desc else ''})",
                         "<p class='note'>On the front, within 0.01 of the best quality, lowest energy. Full "
                         "per-layer results: chosen/layers.csv.</p>"))
        sections.append(("Per-layer bit-widths", _bits_figure(df, layers, chosen)))
        if chosen_rows:
            sections.append(("Cycles per layer (chosen point)", cycles_figure(chosen_rows)))
            sections.append(("Energy per layer (chosen point)", energy_figure(chosen_rows)))
            sections.append(("Utilization (chosen point)", utilization_figure(chosen_rows)))
            if chosen_arch is not None:
                sections.append(("Roofline (chosen point's arch)", roofline_figure(chosen_arch, chosen_rows)))
    bad = df[df["status"] != "ok"]
    if len(bad):
        sections.append(("Infeasible or failed points", table_html(
            bad[["index", "policy", *axes, "status", "error"]].head(200).to_dict("records"))))
    return write_page(path, f"hwsim sweep: {rs.spec.name}", sections, intro=intro)
