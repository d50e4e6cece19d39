"""Plotly figures and self-contained (offline) HTML reports."""

from ._html import table_html, write_page
from ._simulate import cycles_figure, energy_figure, simulate_report

__all__ = ["table_html", "write_page", "cycles_figure", "energy_figure", "simulate_report", "sweep_report"]


def __getattr__(name: str):
    # the sweep report needs pandas; imported on first use so that `hwsim simulate` stays light
    if name == "sweep_report":
        from ._sweep import sweep_report

        return sweep_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
