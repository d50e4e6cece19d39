"""dask settings for a compute-bound sweep on a small machine.

A dask cluster's own processes do periodic work that a sweep's workers pay for on a machine with few cores:
with dask.distributed 2026.8's defaults, an idle LocalCluster of 2 single-threaded workers used 5.9 % of a
core in the process holding the scheduler and the nannies and 3.8-4.1 % in each worker (15 s, measured with
psutil on this project's 2-core AVX2 host); with the settings below 1.9 % and 0.9 % each. On 2 cores that is
about 5 % of the machine given back to the points. What each setting gives up:

- ``distributed.worker.profile.enabled: False``: the workers' statistical profiler (a thread sampling every
  task thread's stack every 10 ms, shown on the dashboard's profile page) is off;
- ``distributed.admin.tick.interval: 200ms``: the event loop's health check (warnings about a blocked event
  loop) runs every 200 ms instead of 20 ms;
- ``distributed.admin.system-monitor.interval: 2s``: the dashboard's CPU / memory / network series are
  sampled every 2 s instead of 500 ms;
- ``distributed.worker.memory.monitor-interval: 1s``: the nanny checks a worker's memory against its limit
  every second instead of 100 ms (a sweep's workers hold one sweep and one chunk of results: megabytes).

None changes what is computed. Use them with ``dask.config.set(DASK_SWEEP_CONFIG)`` around a
``LocalCluster``, or in the YAML under ``~/.config/dask/`` (or the ``DASK_*`` environment variables) of the
machines that run ``dask scheduler`` and ``dask worker``: they are the cluster's settings, which ``hwsim
sweep --scheduler`` does not change.
"""

from __future__ import annotations

__all__ = ["DASK_SWEEP_CONFIG"]

#: dask configuration keys (dotted) and values for a sweep's cluster: see the module docstring.
DASK_SWEEP_CONFIG: dict[str, object] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "200ms",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
}
