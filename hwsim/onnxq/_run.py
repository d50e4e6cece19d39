"""Executing a lowered quantized graph on hwsim's integer datapath.

:func:`execute` runs the nodes in order with :data:`hwsim.onnxq._ops.KERNELS` and keeps every value;
:func:`check_supported` refuses, before anything runs, a node hwsim has no kernel for (naming the node and
listing the supported ops).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import Found, SpecError
from ._config import DatapathConfig
from ._graph import QGraph
from ._ops import FLOAT_GROUP_KERNELS, KERNELS, SUPPORTED_OPS, NodeStats, OpError
from ._ops_float import float_kernel, is_tolerance_op, refusal_reason

__all__ = ["RunResult", "execute", "check_supported"]


@dataclass
class RunResult:
    """Every value of one run (graph inputs, initializers excluded) and per-node datapath statistics.

    ``values[name]`` is the array computed for tensor ``name``; ``stats[node]`` the :class:`NodeStats` of each
    node; ``producer[name]`` the name of the node that computed ``name``.
    """

    values: dict[str, np.ndarray] = field(default_factory=dict)
    stats: dict[str, NodeStats] = field(default_factory=dict)
    producer: dict[str, str] = field(default_factory=dict)
    op: dict[str, str] = field(default_factory=dict)
    #: tensors of :data:`hwsim.onnxq._ops_float.TOLERANCE_OPS` nodes (compared within a tolerance)
    tolerance: set[str] = field(default_factory=set)
    #: hwsim's own value of each tensor replaced by ``execute(anchor=...)``
    own: dict[str, np.ndarray] = field(default_factory=dict)


def _key(node) -> tuple[str, str]:
    d = node.domain
    return ("" if d in ("", "ai.onnx") else d, node.op_type)


def check_supported(g: QGraph) -> None:
    """Raise :class:`SpecError` naming the first node whose op hwsim cannot run.

    A float Conv/MatMul/Gemm/AveragePool left after :func:`lower_qdq` (a group onnxruntime would not fuse)
    is refused too: hwsim runs them only as integer ops.
    """
    for i, n in enumerate(g.nodes):
        if _key(n) not in KERNELS and not (g.names[i] in g.ort_x86_float and _key(n) in FLOAT_GROUP_KERNELS):
            why = refusal_reason(n, g.opset)
            if why is None:
                continue
            raise SpecError(g.path, f"node {g.names[i]!r}",
                            f"an op hwsim supports ({'; '.join(SUPPORTED_OPS)})",
                            Found(f"op {_key(n)[0] or 'ai.onnx'}:{n.op_type}"), detail=why)


def _needed(g: QGraph, only, available) -> set[int]:
    """Indices of the nodes named in ``only`` and of the nodes producing inputs they cannot take from
    ``available`` (transitively)."""
    producer = {o: i for i, n in enumerate(g.nodes) for o in n.output if o}
    index = {nm: i for i, nm in enumerate(g.names)}
    need, stack = set(), [index[nm] for nm in only if nm in index]
    while stack:
        i = stack.pop()
        if i in need:
            continue
        need.add(i)
        for v in g.nodes[i].input:
            if v and v not in available and v not in g.inits and v in producer:
                stack.append(producer[v])
    return need


def execute(g: QGraph, feeds: dict[str, np.ndarray], cfg: DatapathConfig, *,
            inputs_from: dict[str, np.ndarray] | None = None, only=None,
            anchor: dict[str, np.ndarray] | None = None) -> RunResult:
    """Run the graph on the integer datapath.

    Parameters
    ----------
    g : QGraph
        A lowered graph (:func:`hwsim.onnxq.lower_qdq`).
    feeds : dict of str to numpy.ndarray
        One array per graph input.
    cfg : DatapathConfig
        Accumulator, multiplier and requantizer.
    inputs_from : dict, optional
        "Local" mode: each node reads its inputs from here when present (e.g. onnxruntime's values), so that a
        node's result reflects its own semantics and not differences that reached it from upstream.
    only : collection of str, optional
        Node names: run only these and the nodes that produce inputs of theirs missing from ``inputs_from``
        (the values of the others are the same as in a full run; used for verify's local reruns).
    anchor : dict, optional
        Values (onnxruntime's) that replace the outputs of float ops compared with a tolerance
        (:data:`hwsim.onnxq._ops_float.TOLERANCE_OPS`) once computed: the nodes after them then run on the
        reference's floats, so that their integer results can be compared bit for bit; hwsim's own values
        are kept in ``RunResult.own``.

    Returns
    -------
    RunResult

    Raises
    ------
    SpecError
        A node hwsim cannot run, or whose inputs contradict its attributes (names the node).
    """
    res = RunResult()
    env: dict[str, np.ndarray] = dict(feeds)
    run = None if only is None else _needed(g, only, set(feeds) | set(inputs_from or ()))
    for i, n in enumerate(g.nodes):
        if run is not None and i not in run:
            continue
        name = g.names[i]
        args = []
        for v in n.input:
            if not v:
                args.append(None)
            elif inputs_from is not None and v in inputs_from:
                args.append(inputs_from[v])
            elif v in env:
                args.append(env[v])
            elif v in g.inits:
                args.append(g.inits[v])
            else:
                raise SpecError(g.path, f"node {name!r}", f"input {v!r} to be computed before this node",
                                Found("no such value (the graph is not in topological order)"))
        kern = KERNELS.get(_key(n))
        if kern is None and name in g.ort_x86_float:
            kern = FLOAT_GROUP_KERNELS.get(_key(n))
        if kern is None:
            kern = float_kernel(n, g.opset)
        if kern is None:
            check_supported(g)
        try:
            outs, stats = kern(n, args, cfg)
        except OpError as e:
            raise SpecError(g.path, f"node {name!r} ({n.op_type})", "inputs and attributes hwsim supports",
                            Found(str(e))) from None
        except (ValueError, TypeError, IndexError) as e:
            raise SpecError(g.path, f"node {name!r} ({n.op_type})", "inputs consistent with the node",
                            Found(f"{type(e).__name__}: {e}")) from None
        tol = is_tolerance_op(n)
        for o, v in zip(n.output, outs, strict=False):
            if o and tol:
                res.tolerance.add(o)
                if anchor is not None and o in anchor:
                    res.own[o] = v
                    v = np.asarray(anchor[o])
            if o:
                env[o] = v
                res.values[o] = v
                res.producer[o] = name
                res.op[o] = n.op_type
        res.stats[name] = stats
    return res
