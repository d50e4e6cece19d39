"""Preloaded by the local pool's forkserver (:func:`hwsim.explore._runner._forkserver_context`).

Importing it loads the event model's numba kernels (from numba's on-disk cache, or compiles them) in the
server, once: every worker forked from the server inherits them instead of loading them itself before its
first point (0.65 CPU s a worker, measured on a 2-core AMD EPYC host: about a tenth of a 1,296-point
ResNet-50 sweep's time on two workers). The server runs no numba thread pool (these kernels are serial), so
forking from it stays safe.
"""

from __future__ import annotations

from ..sim import use_numba, warm_up

use_numba()
warm_up()
