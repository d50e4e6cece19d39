"""Which core runs each node when layers are pipelined over cores (``cores.schedule: pipeline``).

Every GEMM layer (conv, fc, gemm) runs *whole* on one core, as Stream's layer-core allocation does
(``stream/classes/opt/allocation/genetic_algorithm/fitness_evaluator.py``: one core id per layer):

* ``cores.allocation: {layer: core, ...}``: every GEMM layer named once (a core name or its index in
  ``cores.list``); a non-GEMM (vector) node may be named too.
* ``cores.allocation: [core, ...]``: one entry per GEMM layer, in layer order (Stream's GA individual, e.g.
  ``[2, 0, 0, 3, 1]``).
* ``cores.allocation: auto`` (the default): a greedy balance, deterministic: the GEMM layers in program order,
  each to the core where ``load[c] + cycles[c][layer]`` is least (``load``: the cycles already given to the
  core; ``cycles``: the layer alone on that core's arch; ties to the lower core index). It balances the busy
  time of the cores, which bounds a pipeline's throughput; it ignores the transfers and the dependencies
  (a list scheduler's classic LPT-like rule in program order, not an optimum: Stream searches with a genetic
  algorithm instead).

A vector node not named follows the core of its first input's producer (core 0 for the network input): its
data is already there.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import Found, SpecError
from ..spec import INPUT, VectorOp, Workload

__all__ = ["allocate_layers"]


def allocate_layers(workload: Workload, cores: Sequence[str], allocation: object,
                    cycles: Sequence[Sequence[int]] | None = None, *, source: str = "<arch>") -> list[int]:
    """The core index of every node of ``workload`` (program order), as the module docstring says.

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
    out = []
    for i, _nd in enumerate(nodes):
        if i in fixed:
            out.append(fixed[i])
            continue
        src = graph.inputs[i][0]
        out.append(0 if src == INPUT else out[idx[src]])
    return out
