"""Which core runs each node when layers are pipelined over cores (``cores.schedule: pipeline``).

Every GEMM layer (conv, fc, gemm) runs *whole* on one core, as Stream's layer-core allocation does
(``stream/classes/opt/allocation/genetic_algorithm/fitness_evaluator.py``: one core id per layer):

* ``cores.allocation: {layer: core, ...}``: every GEMM layer named once (a core name or its index in
  ``cores.list``); a non-GEMM (vector) node may be named too.
* ``cores.allocation: [core, ...]``: one entry per GEMM layer, in layer order (Stream's GA individual, e.g.
  ``[2, 0, 0, 3, 1]``).
* ``cores.allocation: auto`` (the default): the best of a few candidate allocations, each timed by the
  pipeline model itself (:func:`hwsim.simulate_workload`; the candidates from :func:`auto_candidates`):

  1. the *greedy balance* (hwsim before: :func:`allocate_layers` with ``auto``): the GEMM layers in program
     order, each to the core where ``load[c] + cycles[c][layer]`` is least (``load``: the cycles already
     given to the core; ``cycles``: the layer alone on that core's arch; ties to the lower core index). It
     balances the busy time of the cores, which bounds a pipeline's *throughput*; alone it ignored the
     dependencies, so on a chain (one inference, one decode step: a layer waits for its producer) it put
     layers on slow cores for nothing (GPT-2 decode on a 16x16 OS and a 32x8 WS core: 11.16 M cycles at
     context 128, 9.99 M at 256; every layer on the 16x16 core: 8.26 M and 8.46 M);
  2. *every layer on one core*, for each core (one per core type and hop count: the others are the same);
  3. *each layer on its fastest core* (least ``cycles[c][layer]``; ties to the lower index).

  The candidate with the fewest makespan cycles is kept (ties: the first in that order), so ``auto`` is
  never slower, in this model, than the greedy balance or any one core running everything. What it
  optimises: the latency of one pass of the workload (the makespan), nothing else (not energy, not a
  stream of inputs' throughput). Limits: a handful of candidates, not a search (Stream searches with a
  genetic algorithm: ``stream/classes/opt/allocation/genetic_algorithm``); it costs up to ``cores + 2``
  schedules of the pipeline instead of one.

A vector node not named follows the core of its first input's producer (core 0 for the network input): its
data is already there.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import Found, SpecError
from ..spec import INPUT, VectorOp, Workload

__all__ = ["allocate_layers", "auto_candidates"]


def allocate_layers(workload: Workload, cores: Sequence[str], allocation: object,
                    cycles: Sequence[Sequence[int]] | None = None, *, source: str = "<arch>") -> list[int]:
    """The core index of every node of ``workload`` (program order), as the module docstring says; for
    ``"auto"`` the greedy balance (candidate 1: the choice among the candidates, which needs the schedule,
    is :func:`hwsim.simulate_workload`'s).

    Parameters
    ----------
    workload : Workload
    cores : sequence of str
        The core names (``cores.list`` order).
    allocation : dict, tuple or ``"auto"``
        ``cores.allocation`` (core names or indices, already checked against ``cores`` by the spec).
    cycles : sequence of sequences of int, optional
        ``cycles[c][i]``: node ``i`` alone on core ``c`` (needed for ``auto`` only).

    Raises
    ------
    SpecError
        ``cores.allocation``: a name that is no node of the workload, a GEMM layer not allocated, a list whose
        length is not the number of GEMM layers.
    """
    graph = workload.graph()
    nodes = graph.nodes
    idx = graph.node_index()
    gemm = [i for i, nd in enumerate(nodes) if not isinstance(nd, VectorOp)]

    def core_of(v: str | int) -> int:
        return v if isinstance(v, int) else list(cores).index(v)

    fixed: dict[int, int] = {}
    if isinstance(allocation, dict):
        for name, v in allocation.items():
            if name not in idx:
                raise SpecError(source, f"cores.allocation.{name}",
                                f"a node of workload {workload.name!r}", Found(f"no node {name!r}"))
            fixed[idx[name]] = core_of(v)
        missing = [nodes[i].name for i in gemm if i not in fixed]
        if missing:
            raise SpecError(source, "cores.allocation", "a core for every GEMM layer",
                            Found(f"no core for layer {missing[0]!r}"
                                  + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")))
    elif isinstance(allocation, tuple):
        if len(allocation) != len(gemm):
            raise SpecError(source, "cores.allocation",
                            f"one core per GEMM layer ({len(gemm)}, in layer order)",
                            Found(f"a list of {len(allocation)}"))
        fixed = {i: core_of(v) for i, v in zip(gemm, allocation, strict=True)}
    else:
        if cycles is None:
            raise ValueError("allocation 'auto' needs the cycles of every node on every core")
        load = [0] * len(cores)
        for i in gemm:
            best = min(range(len(cores)), key=lambda c: (load[c] + int(cycles[c][i]), c))
            fixed[i] = best
            load[best] += int(cycles[best][i])
    return _complete(workload, fixed)


def _complete(workload: Workload, fixed: dict[int, int]) -> list[int]:
    """Every node's core: ``fixed`` (node index -> core), a vector node not in it following its first input's
    producer (core 0 for the network input)."""
    graph = workload.graph()
    idx = graph.node_index()
    out: list[int] = []
    for i, _nd in enumerate(graph.nodes):
        if i in fixed:
            out.append(fixed[i])
            continue
        src = graph.inputs[i][0]
        out.append(0 if src == INPUT else out[idx[src]])
    return out


def auto_candidates(workload: Workload, cores: Sequence[str], cycles: Sequence[Sequence[int]],
                    same: Sequence[object] | None = None) -> list[tuple[str, list[int]]]:
    """The allocations ``cores.allocation: auto`` times (module docstring), each as ``(label, core index of
    every node)``, in order: the greedy balance, every layer on each core, each layer on its fastest core;
    an allocation equal to an earlier one is left out.

    Parameters
    ----------
    cycles : sequence of sequences of int
        ``cycles[c][i]``: node ``i`` alone on core ``c`` (cycles).
    same : sequence, optional
        Per core, a key equal for cores that are interchangeable (same arch, same path from ``hub``): only
        the first of those gets an every-layer candidate.
    """
    graph = workload.graph()
    gemm = [i for i, nd in enumerate(graph.nodes) if not isinstance(nd, VectorOp)]
    out: list[tuple[str, list[int]]] = [("greedy balance", allocate_layers(workload, cores, "auto", cycles))]
    seen_keys = set()
    for c, name in enumerate(cores):
        key = same[c] if same is not None else c
        if key in seen_keys:
            continue
        seen_keys.add(key)
        out.append((f"every layer on {name}", _complete(workload, dict.fromkeys(gemm, c))))
    fast = {i: min(range(len(cores)), key=lambda c: (int(cycles[c][i]), c)) for i in gemm}
    out.append(("each layer on its fastest core", _complete(workload, fast)))
    uniq: list[tuple[str, list[int]]] = []
    for label, alloc in out:
        if all(alloc != a for _, a in uniq):
            uniq.append((label, alloc))
    return uniq
