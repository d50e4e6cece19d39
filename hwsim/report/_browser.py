"""Check a report the way a reader sees it: open it in headless Chromium, count the figures that rendered,
collect console errors, save a screenshot. Needs Debian's ``chromium`` (``apt-get install chromium``)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BrowserCheck", "check_in_browser", "find_chromium"]

_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass(frozen=True)
class BrowserCheck:
    """What the browser saw: plotly figure divs, how many drew an SVG, console messages, the screenshot."""

    figures: int
    rendered: int
    console: list[str]
    screenshot: Path | None

    @property
    def errors(self) -> list[str]:
        return [m for m in self.console if re.search(r"error|uncaught|failed", m, re.I)]


def find_chromium() -> str | None:
    """The Chromium binary, or ``None``."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


def _run(binary: str, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([binary, *_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=timeout)


def check_in_browser(html: str | Path, *, screenshot: str | Path | None = None, width: int = 1300,
                     height: int = 3000, timeout: float = 120.0) -> BrowserCheck:
    """Open ``html`` (a file) in headless Chromium; count rendered figures and console messages.

    Raises
    ------
    FileNotFoundError
        No Chromium binary, or no such HTML file.
    """
    binary = find_chromium()
    if binary is None:
        raise FileNotFoundError("chromium not found: apt-get install chromium")
    page = Path(html).resolve()
    if not page.is_file():
        raise FileNotFoundError(str(page))
    url = page.as_uri()
    dom = _run(binary, ["--enable-logging=stderr", "--v=0", "--virtual-time-budget=15000", "--dump-dom", url],
               timeout)
    figures = len(re.findall(r'class="[^"]*plotly-graph-div', dom.stdout))
    # a drawn plotly figure holds <svg class="main-svg"> elements; count the figure divs that have one
    parts = re.split(r'(?=<div[^>]*class="[^"]*plotly-graph-div)', dom.stdout)[1:]
    rendered = sum(1 for p in parts if 'class="main-svg"' in p.split("plotly-graph-div", 2)[1][:200000])
    console = [m.group(1) for m in re.finditer(r"CONSOLE[^\]]*\] (.*)", dom.stderr)]
    shot = None
    if screenshot is not None:
        shot = Path(screenshot).resolve()
        _run(binary, [f"--window-size={width},{height}", "--virtual-time-budget=15000",
                      f"--screenshot={shot}", url],
             timeout)
    return BrowserCheck(figures=figures, rendered=rendered, console=console, screenshot=shot)
