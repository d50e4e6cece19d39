"""The workload as a graph of tensors: who produces each tensor, who consumes it, and how many elements it
has.

Every node produces one tensor named after the node; the network input is the tensor ``input``. A node's
``inputs`` name the tensors it consumes (default: the previous node's output, so a plain layer list is a
chain). Nodes run in file order, which must therefore be a topological order: a tensor consumed before it is
produced (a forward reference, and so any cycle) is an error, as is a name no node produces.

Element counts (all per network run, batch included):

* conv2d / depthwise: ifmap ``batch*C_in*H*W``, output ``batch*C_out*H_out*W_out`` (shape ``(C_out, H_out,
  W_out)``, row ``C_out``); gemm / fc: the ``(M, K)`` operand ``M*K*count``, output ``M*N*count`` (row N);
* element-wise ops, softmax, layernorm: their first input's count and row;
* concat: the sum of its inputs (channels add up when the inputs have one H x W);
* maxpool / avgpool: ``C*H_out*W_out`` from its window (a global pool: ``C``).

A consumer's own declared input size may differ from its producer's output (workloads that leave out a pool
or a flatten); the tensor is the producer's output, which is what is stored and moved. Channels may not
differ in a workload YAML (``check_channels``): a conv2d/depthwise reading a tensor of known ``(C, H, W)`` has
``in_channels = C``; an ``fc`` reading one has ``k = C*H*W`` (the flattened tensor) or a multiple of ``C`` no
larger (a pool left out), and an ``fc`` reading a GEMM's output has ``k`` = its row ``N`` (or ``m*k*count`` =
its elements). ``gemm`` layers (attention heads: reshaped operands) are not checked.
"""

from __future__ import annotations

import graphlib
from dataclasses import dataclass

from ..errors import Found, SpecError
from ._workload import Conv2d, Gemm, VectorOp, Workload

__all__ = ["INPUT", "TensorInfo", "WorkloadGraph", "build_graph"]

#: The name of the network input tensor.
INPUT = "input"


@dataclass(frozen=True)
class TensorInfo:
    """One tensor: its producer (node index, ``-1`` for the network input), its consumers ``(node index,
    input position)``, its element count, its row length (elements of the last axis) and its ``(C, H, W)``
    shape when it has one."""

    name: str
    producer: int
    consumers: tuple[tuple[int, int], ...]
    elements: int
    row: int
    chw: tuple[int, int, int] | None = None

    @property
    def last_use(self) -> int:
        """Index of the last node that reads it (its producer when nothing does)."""
        return max((c for c, _ in self.consumers), default=self.producer)


@dataclass(frozen=True)
class WorkloadGraph:
    """A checked workload graph: ``nodes`` in execution order, ``inputs[i]`` the tensor names node ``i``
    reads, ``tensors`` by name (the network input first, then one per node in order), ``window[i]`` the input
    elements each output of a pool combines (1 for other nodes)."""

    nodes: tuple
    inputs: tuple[tuple[str, ...], ...]
    tensors: dict[str, TensorInfo]
    window: tuple[int, ...]

    @property
    def outputs(self) -> list[str]:
        """The network outputs: tensors that no node consumes."""
        return [t.name for t in self.tensors.values() if t.producer >= 0 and not t.consumers]

    def node_index(self) -> dict[str, int]:
        return {n.name: i for i, n in enumerate(self.nodes)}


def _in_elements(node: Conv2d | Gemm) -> tuple[int, int, tuple[int, int, int] | None]:
    if isinstance(node, Conv2d):
        return (node.batch * node.in_channels * node.in_h * node.in_w, node.in_channels,
                (node.in_channels, node.in_h, node.in_w))
    return node.m * node.k * node.count, node.k, None


def build_graph(wl: Workload, source: str = "<workload>", *, check_channels: bool = False) -> WorkloadGraph:
    """Check ``wl``'s graph and count every tensor's elements (module docstring).

    Raises
    ------
    SpecError
        ``layers[i].inputs`` names no node (nor ``input``), or a node produced later (a cycle or an
        out-of-order file: the detail shows the cycle when there is one); a pool with no input shape; with
        ``check_channels`` (a hwsim workload YAML: ``load_workload_yaml``), a layer whose channels do not
        match the tensor it reads (module docstring; a SCALE-Sim topology CSV lists layers, not a chain, so
        its shortcut convs would not pass).
    """
    nodes = wl.nodes
    index = {n.name: i for i, n in enumerate(nodes)}
    inputs: list[tuple[str, ...]] = []
    for i, n in enumerate(nodes):
        ins = n.inputs if n.inputs is not None else ((nodes[i - 1].name if i else INPUT),)
        for name in ins:
            if name != INPUT and name not in index:
                raise SpecError(source, f"layers[{i}].inputs", f"names of earlier nodes or {INPUT!r}",
                                Found(f"{name!r}, which no node produces"), detail=f"node {n.name}")
            if name != INPUT and index[name] >= i:
                detail = f"node {n.name}"
                try:
                    graphlib.TopologicalSorter(
                        {m.name: set(m.inputs or ()) - {INPUT} for m in nodes}).prepare()
                except graphlib.CycleError as e:
                    detail += "; cycle: " + " -> ".join(reversed(e.args[1]))
                raise SpecError(source, f"layers[{i}].inputs",
                                f"tensors produced before node {n.name!r} (nodes in execution order, no "
                                "cycle)",
                                Found(f"{name!r}, produced by layers[{index[name]}]"), detail=detail)
        inputs.append(tuple(ins))
    cons: dict[str, list[tuple[int, int]]] = {INPUT: []}
    for i, ins in enumerate(inputs):
        for pos, name in enumerate(ins):
            cons.setdefault(name, []).append((i, pos))
    # the network input: the first consumer's declared input
    info: dict[str, tuple[int, int, tuple | None]] = {}
    first = next((c for c, _ in cons[INPUT]), None)
    if first is not None:
        fn = nodes[first]
        if isinstance(fn, VectorOp):
            if fn.elements is None and fn.channels is None:
                raise SpecError(source, f"layers[{first}].elements", "the element count of the network input "
                                "(a non-GEMM node reads it)", None, detail=f"node {fn.name}")
            e = fn.elements or fn.channels * (fn.in_h or 1) * (fn.in_w or 1)
            info[INPUT] = (e, fn.row or e, (fn.channels, fn.in_h or 1, fn.in_w or 1) if fn.channels else None)
        else:
            info[INPUT] = _in_elements(fn)
    window: list[int] = []
    for i, n in enumerate(nodes):
        w = 1
        if isinstance(n, Conv2d):
            oh, ow = n.out_hw
            info[n.name] = (n.batch * n.out_channels * oh * ow, n.out_channels, (n.out_channels, oh, ow))
        elif isinstance(n, Gemm):
            info[n.name] = (n.m * n.n * n.count, n.n, None)
        else:
            src = [info[x] for x in inputs[i]]
            e0, r0, chw0 = src[0]
            if n.op == "concat":
                e = sum(s[0] for s in src)
                chw = None
                if all(s[2] is not None for s in src) and len({s[2][1:] for s in src}) == 1:
                    chw = (sum(s[2][0] for s in src), *chw0[1:])
                info[n.name] = (n.elements or e, r0, chw)
            elif n.op in ("maxpool", "avgpool"):
                c = n.channels or (chw0[0] if chw0 else None)
                h = n.in_h or (chw0[1] if chw0 else None)
                wd = n.in_w or (chw0[2] if chw0 else None)
                if c is None or h is None or wd is None:
                    raise SpecError(source, f"layers[{i}].channels",
                                    "channels, in_h and in_w for a pool whose "
                                    "input has no (C, H, W) shape", None, detail=f"node {n.name}")
                oc, oh, ow = n.pool_out(c, h, wd)
                if n.elements is None and (oh <= 0 or ow <= 0):
                    raise SpecError(source, f"layers[{i}].kernel", f"a window that fits the {h}x{wd} input",
                                    n.kernel, detail=f"node {n.name}")
                w = n.window or h * wd
                info[n.name] = (n.elements or e0 // max(c * h * wd, 1) * oc * oh * ow or oc * oh * ow, oc,
                                (oc, oh, ow) if n.elements is None else None)
            else:
                # a copy (resize, pad) that changes the element count changes the (C, H, W) shape too
                info[n.name] = (n.elements or e0, n.row or r0, chw0 if n.elements in (None, e0) else None)
        window.append(w)
    if check_channels:
        _check_channels(nodes, inputs, info, source)
    tensors: dict[str, TensorInfo] = {}
    if INPUT in info:
        e, r, chw = info[INPUT]
        tensors[INPUT] = TensorInfo(INPUT, -1, tuple(cons[INPUT]), e, r, chw)
    for i, n in enumerate(nodes):
        e, r, chw = info[n.name]
        tensors[n.name] = TensorInfo(n.name, i, tuple(cons.get(n.name, ())), e, r, chw)
    return WorkloadGraph(nodes=tuple(nodes), inputs=tuple(inputs), tensors=tensors, window=tuple(window))


def _check_channels(nodes, inputs, info, source: str) -> None:
    """Channel agreement between each GEMM layer and the tensor it reads (module docstring).

    Raises
    ------
    SpecError
        ``layers[i].in_channels`` or ``layers[i].k``, naming the layer, the producer and both values.
    """
    index = {n.name: i for i, n in enumerate(nodes)}
    for i, n in enumerate(nodes):
        if isinstance(n, VectorOp) or inputs[i][0] == INPUT:
            continue
        src = inputs[i][0]
        e, row, chw = info[src]
        what = f"layers[{index[src]}] ({src})"
        if isinstance(n, Conv2d) and chw is not None and chw[0] != n.in_channels:
            raise SpecError(source, f"layers[{i}].in_channels", f"{chw[0]}, the channels of the tensor "
                                                                "it reads "
                            f"(the output of {what}, {chw[0]}x{chw[1]}x{chw[2]})", n.in_channels,
                            detail=f"layer {n.name}")
        if isinstance(n, Gemm) and n.op == "fc" and (n.inputs is None or len(n.inputs) == 1):
            if chw is not None:
                flat = chw[0] * chw[1] * chw[2]
                if n.k != flat and (n.k % chw[0] or n.k > flat):
                    raise SpecError(source, f"layers[{i}].k", f"{flat}, the flattened output of {what} "
                                    f"({chw[0]}x{chw[1]}x{chw[2]}), or a multiple of its {chw[0]} "
                                    "channels below "
                                    "that (a pool left out)", n.k, detail=f"layer {n.name}")
            elif n.k != row and n.m * n.k * n.count != e:
                raise SpecError(source, f"layers[{i}].k", f"{row}, the row (N) of the output of {what}", n.k,
                                detail=f"layer {n.name}")
