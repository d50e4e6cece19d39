"""How many local worker processes a sweep may take (a module of its own: the command line checks
``--workers`` while it parses options, before the runner's imports)."""

from __future__ import annotations

import os

__all__ = ["max_workers"]


def max_workers() -> int:
    """The most local worker processes a sweep takes: 8 per core (``os.cpu_count()``). More only adds
    process start-up and memory (the points are CPU-bound; a 432-point sweep took 73 s on 100,000 workers,
    14 s on 1); a cluster is ``scheduler``'s job."""
    return 8 * (os.cpu_count() or 1)
