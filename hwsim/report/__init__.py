"""Plotly figures and self-contained (offline) HTML reports."""

from ._html import table_html, write_page
from ._simulate import cycles_figure, energy_figure, simulate_report

__all__ = ["table_html", "write_page", "cycles_figure", "energy_figure", "simulate_report"]
