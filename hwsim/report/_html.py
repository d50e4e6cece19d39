"""Self-contained HTML pages of plotly figures: plotly.js is inlined once, so the page works offline."""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

__all__ = ["write_page", "table_html"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1200px;
  color:#222}
h1{font-size:1.5em} h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em} td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f4} td:first-child,th:first-child{text-align:left} .note{color:#555;font-size:.9em}
.tw{overflow-x:auto;max-width:100%} td.long{max-width:40em;white-space:normal;text-align:left;font-size:.9em}
"""


def table_html(rows: list[dict], columns: Iterable[str] | None = None, *, floatfmt: str = "{:,.4g}",
               raw: set[str] = frozenset()) -> str:
    """An HTML table of ``rows`` (dicts), in ``columns`` order (default: the first row's keys); cells of the
    ``raw`` columns are inserted as HTML, every other cell is escaped."""
    if not rows:
        return "<p class='note'>(no rows)</p>"
    cols = list(columns) if columns is not None else list(rows[0])

    def fmt(v):
        if isinstance(v, float):
            if v.is_integer() and abs(v) < 1e15:
                return f"{int(v):,}"
            return f"{v:,.0f}" if abs(v) >= 1e4 else floatfmt.format(v)
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:,}"
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{r.get(c, '') if c in raw else fmt(r.get(c, ''))}</td>"
                                    for c in cols)
                   + "</tr>" for r in rows)
    return f"<div class='tw'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def write_page(path: str | Path, title: str, sections: list[tuple[str, object]], *, intro: str = "") -> Path:
    """Write one HTML page: a title, an intro paragraph, then (heading, content) sections.

    ``content`` is a plotly figure, an HTML string, or a list of either. The page embeds plotly.js (no CDN),
    so it renders with no network.
    """
    parts = [f"<h1>{html.escape(title)}</h1>"]
    if intro:
        parts.append(f"<p class='note'>{intro}</p>")
    n = 0
    for heading, content in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        for item in content if isinstance(content, list) else [content]:
            if isinstance(item, go.Figure):
                n += 1
                parts.append(item.to_html(full_html=False, include_plotlyjs=False, div_id=f"fig{n}",
                                          config={"displaylogo": False}))
            else:
                parts.append(str(item))
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style><script type='text/javascript'>{get_plotlyjs()}</script></head>"
            f"<body>{''.join(parts)}</body></html>")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(page, encoding="utf-8")
    return p
