"""Loading a quantized ONNX model and lowering its QDQ groups to integer (QOperator) nodes.

:func:`load_model` reads and checks the file with ``onnx`` (shape inference included), folds ``Constant``
nodes into initializers and gives every node a display name. :func:`lower_qdq` then rewrites each
``DequantizeLinear -> op -> QuantizeLinear`` group into the integer node that onnxruntime's CPU execution
provider runs for it (``onnxruntime/core/optimizer/qdq_transformer/selectors_actions/``:
``qdq_selector_action_transformer.cc``, ``qdq_selectors.cc``), so that hwsim executes the same integer
operations as the reference:

=====================================  =====================================================================
group                                  lowered to (conditions as ORT's selectors)
=====================================  =====================================================================
DQ x, DQ w, [DQ b] -> Conv -> Q        QLinearConv (x and y of one type; int8 x needs int8 w; int32 b)
DQ a, DQ b -> MatMul -> Q              QLinearMatMul (a and y of one type; int8 a needs int8 b)
DQ A, DQ B, [DQ C] -> Gemm -> [Q]      com.microsoft QGemm (int8 A needs int8 B; beta = 1 with C)
DQ a, DQ b -> Add / Mul -> Q          com.microsoft QLinearAdd / QLinearMul (all three of one type)
DQ x -> AveragePool / GlobalAvg.. /    com.microsoft QLinearAveragePool / QLinearGlobalAveragePool /
LeakyRelu / Sigmoid / Softmax -> Q     QLinearLeakyRelu / QLinearSigmoid / QLinearSoftmax (x and y of one
                                       type; Softmax's ``opset`` attribute: its since-version, 1, 11 or 13)
DQ x_i -> Concat -> Q                  com.microsoft QLinearConcat (all of one type)
DQ -> MaxPool/Reshape/Flatten/         the op on the integer codes (DQ and Q with the same constant scalar
Transpose/Squeeze/Unsqueeze -> Q       scale and zero point; MaxPool: opset >= 12 and a positive scale)
op -> Relu/Clip -> Q                   the Relu/Clip is dropped when Q's range already clamps it
=====================================  =====================================================================

8-bit types only (ORT 1.32 fuses no 4- or 16-bit group on CPU; such groups are listed in a note naming the
type). Q/DQ of the ai.onnx and com.microsoft domains both match. Equal QuantizeLinear nodes of one tensor
(``DedicatedQDQPair``) are merged first (:func:`merge_duplicate_q`). A group that does not qualify stays as
written: its DequantizeLinear and QuantizeLinear nodes run on their own and the op between them runs in
float32 (``hwsim/onnxq/_ops_float.py``: exactly or compared within a tolerance).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import external_data_helper, helper, numpy_helper, serialization, shape_inference

from ..errors import Found, SpecError, input_file

__all__ = ["QGraph", "load_model", "lower_qdq", "merge_duplicate_q", "INT8_TYPES", "FLOAT_OPS",
           "display_name"]

_T = onnx.TensorProto
INT8_TYPES = (_T.INT8, _T.UINT8)
INT_TYPES = (_T.INT8, _T.UINT8, _T.INT16, _T.UINT16, _T.INT32, _T.UINT32, _T.INT64, _T.UINT64)
#: Float ops between DequantizeLinear and QuantizeLinear that hwsim runs in float32 with ORT's exact result.
FLOAT_OPS = ("Relu", "Add", "Sub", "Mul", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze",
             "Identity", "Concat", "MaxPool")
#: onnxruntime's QDQ selectors match Q/DQ of both domains (com.microsoft ones are written by its quantizer
#: for 4-bit types below opset 21; ``qdq_selectors.cc`` ``QDQ::MatchQNode``/``MatchDQNode``).
_QDQ_DOMAINS = ("", "ai.onnx", "com.microsoft")
_DROP_OPS = ("MaxPool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze")
#: One-input groups onnxruntime's CPU provider replaces by ``com.microsoft`` ``QLinear<op>``
#: (``qdq_selector_action_transformer.cc``, ``UnaryOpQDQRules``).
_UNARY_OPS = ("AveragePool", "GlobalAveragePool", "LeakyRelu", "Sigmoid", "Softmax")


def display_name(node: onnx.NodeProto, index: int) -> str:
    """A node's name, or ``<op_type>#<index>`` for an unnamed node."""
    return node.name if node.name else f"{node.op_type}#{index}"


@dataclass
class QGraph:
    """A loaded model: nodes in topological order, initializers as arrays, element types and shapes.

    ``types[name]`` is the ONNX ``TensorProto`` element type of a value (from the graph's inputs, outputs,
    initializers and shape inference); ``shapes[name]`` its static shape where known (None entries for
    symbolic dims).
    """

    path: str
    model: onnx.ModelProto
    nodes: list[onnx.NodeProto]
    names: list[str]
    inits: dict[str, np.ndarray]
    types: dict[str, int]
    shapes: dict[str, tuple | None]
    inputs: list[str]
    outputs: list[str]
    opset: int
    producer: dict[str, int] = field(default_factory=dict)
    consumers: dict[str, list[int]] = field(default_factory=dict)
    lowered_from: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    ort_x86_float: dict[str, str] = field(default_factory=dict)

    def reindex(self) -> None:
        self.producer = {}
        self.consumers = {}
        for i, n in enumerate(self.nodes):
            for o in n.output:
                if o:
                    self.producer[o] = i
            for v in n.input:
                if v:
                    self.consumers.setdefault(v, []).append(i)

    def node_where(self, i: int) -> str:
        return f"node {self.names[i]!r} ({self.nodes[i].op_type})"


def _dims(tp: onnx.TypeProto) -> tuple | None:
    if not tp.tensor_type.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in tp.tensor_type.shape.dim)


def _external(g: onnx.GraphProto) -> bool:
    """True when an initializer or a node's tensor attribute (this graph and its subgraphs) keeps its data
    in an external file."""
    if any(external_data_helper.uses_external_data(t) for t in g.initializer):
        return True
    for n in g.node:
        for a in n.attribute:
            if (a.HasField("t") and external_data_helper.uses_external_data(a.t)) \
                    or any(external_data_helper.uses_external_data(t) for t in a.tensors) \
                    or (a.HasField("g") and _external(a.g)) or any(_external(x) for x in a.graphs):
                return True
    return False


def load_model(path) -> QGraph:
    """Read, check and shape-infer an ONNX model.

    Raises
    ------
    SpecError
        The file is missing or not a valid ONNX model (message names the file).
    """
    p = Path(input_file(path, "an existing ONNX model file"))
    try:
        # onnx.load's own search for external data walks every tensor in Python; _external walks them once
        model = onnx.load(str(p), load_external_data=False)
        ext = _external(model.graph)
        if ext:
            external_data_helper.load_external_data_for_model(model, str(p.parent))
    except Exception as e:  # onnx raises several exception types
        raise SpecError(str(p), "", "a valid ONNX model",
                        Found(f"{type(e).__name__}: {str(e).splitlines()[0]}")) from None
    # the checker and shape inference take the file's own bytes (each would serialize the model again; a
    # model with external data is passed whole)
    binary = (serialization.registry.get_format_from_file_extension(p.suffix) or "protobuf") == "protobuf"
    src = p.read_bytes() if binary and not ext else model
    notes = []
    try:
        onnx.checker.check_model(src)
    except Exception as e:  # e.g. graph outputs without a shape, which onnxruntime accepts: note it and go on
        notes.append(f"onnx.checker: {str(e).splitlines()[0]}")
    try:
        model = shape_inference.infer_shapes(src, strict_mode=False)
    except Exception as e:
        raise SpecError(str(p), "", "a model that ONNX shape inference accepts",
                        Found(f"{type(e).__name__}: {str(e).splitlines()[0]}")) from None
    g = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    types, shapes = {}, {}
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        types[vi.name] = vi.type.tensor_type.elem_type
        shapes[vi.name] = _dims(vi.type)
    for i in g.initializer:
        types[i.name] = i.data_type
        shapes[i.name] = tuple(i.dims)
    nodes, names = [], []
    for idx, n in enumerate(g.node):
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
            a = n.attribute[0]
            if a.name != "value":
                raise SpecError(str(p), f"node {display_name(n, idx)!r}", "a Constant with a 'value' tensor",
                                Found(f"attribute {a.name!r}"))
            arr = numpy_helper.to_array(a.t)
            inits[n.output[0]] = arr
            types[n.output[0]] = a.t.data_type
            shapes[n.output[0]] = tuple(arr.shape)
            continue
        nodes.append(n)
        names.append(display_name(n, idx))
    for n in nodes:  # ONNX shape inference does not know com.microsoft Q/DQ (4-bit below opset 21)
        if n.domain == "com.microsoft" and n.op_type in ("QuantizeLinear", "DequantizeLinear") \
                and not types.get(n.output[0]):
            zt = types.get(n.input[2]) if len(n.input) > 2 and n.input[2] else _T.UINT8
            types[n.output[0]] = zt if n.op_type == "QuantizeLinear" else _T.FLOAT
            shapes[n.output[0]] = shapes.get(n.input[0])
    inputs = [v.name for v in g.input if v.name not in inits]
    q = QGraph(path=str(p), model=model, nodes=nodes, names=names, inits=inits, types=types, shapes=shapes,
               inputs=inputs, outputs=[v.name for v in g.output], opset=opset, notes=notes)
    q.reindex()
    return q


# -- QDQ lowering --------------------------------------------------------------------------------------------

def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _const(q: QGraph, name: str):
    return q.inits.get(name) if name else None


def _dq_of(q: QGraph, value: str, target: int):
    """The DequantizeLinear node index producing ``value`` if it can join a group feeding ``target``."""
    i = q.producer.get(value)
    if i is None or q.nodes[i].op_type != "DequantizeLinear" or q.nodes[i].domain not in _QDQ_DOMAINS:
        return None
    if value in q.outputs:
        return None
    if _attr(q.nodes[i], "block_size", 0):
        return None
    return i


def _single_q(q: QGraph, i: int):
    """(Q node index, redundant Relu/Clip index or None) following node ``i``, or (None, None)."""
    out = q.nodes[i].output[0]
    if out in q.outputs:
        return None, None
    cons = q.consumers.get(out, [])
    if len(cons) != 1:
        return None, None
    j = cons[0]
    clip = None
    if q.nodes[j].op_type in ("Relu", "Clip"):
        o2 = q.nodes[j].output[0]
        c2 = q.consumers.get(o2, [])
        if o2 in q.outputs or len(c2) != 1:
            return None, None
        clip, j = j, c2[0]
    if q.nodes[j].op_type != "QuantizeLinear" or q.nodes[j].domain not in _QDQ_DOMAINS:
        return None, None
    if clip is not None and not _clip_redundant(q, clip, j):
        return None, None
    return j, clip


def _qp_scalar(q: QGraph, node) -> tuple | None:
    """(scale, zero point, elem type) of a Q/DQ node with constant scalar parameters, else None."""
    s = _const(q, node.input[1])
    z = _const(q, node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if s is None or s.size != 1 or (len(node.input) > 2 and node.input[2] and z is None):
        return None
    zt = q.types.get(node.input[2]) if z is not None else _T.UINT8
    return float(s.reshape(-1)[0]), (0 if z is None else int(z.reshape(-1)[0])), zt


def _clip_redundant(q: QGraph, ci: int, qi: int) -> bool:
    """ORT ``IsClipMadeRedundantByQ``: Relu when Q's zero point is the type minimum; Clip when Q's range lies
    within [min, max]."""
    p = _qp_scalar(q, q.nodes[qi])
    if p is None:
        return False
    s, z, zt = p
    lo, hi = (-128, 127) if zt == _T.INT8 else (0, 255)
    c = q.nodes[ci]
    if c.op_type == "Relu":
        return z == lo
    mn = _const(q, c.input[1]) if len(c.input) > 1 and c.input[1] else None
    mx = _const(q, c.input[2]) if len(c.input) > 2 and c.input[2] else None
    if (len(c.input) > 1 and c.input[1] and mn is None) or (len(c.input) > 2 and c.input[2] and mx is None):
        return False
    qlo = np.float32(s) * np.float32(lo - z)
    qhi = np.float32(s) * np.float32(hi - z)
    return (mn is None or float(mn) <= qlo) and (mx is None or float(mx) >= qhi)


def _elem(q: QGraph, name: str):
    return q.types.get(name)


def _same_qparams(q: QGraph, a, b) -> bool:
    pa, pb = _qp_scalar(q, a), _qp_scalar(q, b)
    return pa is not None and pa == pb


_WEIGHT_OPS = ("MatMul", "Conv", "Gemm")


def _s8_to_u8_pairs(q: QGraph) -> set[str]:
    """Q outputs whose int8 Q -> DQ pair onnxruntime's x86 ``QDQS8ToU8Transformer`` rewrites to uint8.

    ORT (``qdq_s8_to_u8.cc``): a QuantizeLinear with exactly one output edge, to a DequantizeLinear, both with
    equal constant scalar int8 zero points. ``EnsureUniqueDQForNodeUnit`` has first given each further
    consumer of a shared DQ its own copy, so a pair whose DQ feeds several nodes is left as int8.
    """
    out = set()
    for n in q.nodes:
        if n.op_type != "QuantizeLinear" or len(n.input) < 3 or not n.input[2]:
            continue
        o = n.output[0]
        cons = q.consumers.get(o, [])
        if o in q.outputs or len(cons) != 1:
            continue
        d = q.nodes[cons[0]]
        if d.op_type != "DequantizeLinear" or len(d.input) < 3 or not d.input[2]:
            continue
        if len(q.consumers.get(d.output[0], [])) > 1:
            continue
        zq, zd = _const(q, n.input[2]), _const(q, d.input[2])
        if zq is None or zd is None or zq.size != 1 or zd.size != 1:
            continue
        if q.types.get(n.input[2]) != _T.INT8 or q.types.get(d.input[2]) != _T.INT8 or int(zq) != int(zd):
            continue
        out.add(o)
    return out


def _ort_x86_type(q: QGraph, dq_index: int | None, converted: set[str]):
    """The element type onnxruntime's x86 fusion sees at a DQ input after its int8 -> uint8 rewrites."""
    if dq_index is None:
        return None
    d = q.nodes[dq_index]
    t = _elem(q, d.input[0])
    if t != _T.INT8:
        return t
    if d.input[0] in converted:
        return _T.UINT8
    if d.input[0] in q.inits and not any(q.nodes[c].op_type in _WEIGHT_OPS
                                         for c in q.consumers.get(d.output[0], [])):
        return _T.UINT8  # a lone constant DQ not feeding MatMul/Conv/Gemm (ConvertS8WeightToU8)
    return t


def _ort_x86_fuses(q: QGraph, op: str, dqs: list, qi, converted: set[str]) -> str | None:
    """None if onnxruntime's default x86 optimizer fuses this group, else the reason it does not.

    ``QDQIsInt8Allowed()`` is false off ARM: int8 Conv/MatMul groups fuse only after their int8 pairs became
    uint8, and every group needs its (rewritten) types to agree (``qdq_selectors.cc``)."""
    din = [_ort_x86_type(q, d, converted) for d in dqs]
    dout = None
    if qi is not None:
        t = _elem(q, q.nodes[qi].output[0])
        dout = _T.UINT8 if (t == _T.INT8 and q.nodes[qi].output[0] in converted) else t
    if op in ("Conv", "MatMul"):
        if din[0] == _T.INT8:
            return ("int8 activations that onnxruntime could not rewrite to uint8 (int8 Conv/MatMul fuse "
                    "only on ARM)")
        if din[0] != dout:
            return "its input and output types differ after onnxruntime's int8 -> uint8 rewrite"
    elif op == "Gemm":
        if din[0] == _T.INT8 and din[1] != _T.INT8:
            return "int8 A with a uint8-rewritten B"
        if qi is not None and dout != din[0]:
            return "its input and output types differ after onnxruntime's int8 -> uint8 rewrite"
    else:
        types = [t for t in din if t is not None] + ([dout] if dout is not None else [])
        if len(set(types)) > 1:
            return "its input and output types differ after onnxruntime's int8 -> uint8 rewrite"
    return None


def rewrite_s8_to_u8(q: QGraph) -> QGraph:
    """The int8 -> uint8 rewrite of onnxruntime's default x86 session (``qdq_s8_to_u8.cc``,
    ``QDQS8ToU8Transformer``; :func:`_s8_to_u8_pairs` says which pairs): each such int8 QuantizeLinear ->
    DequantizeLinear pair gets the uint8 zero point ``z + 128`` (its codes become ``q + 128``), and a lone
    constant int8 DequantizeLinear not feeding MatMul/Conv/Gemm gets uint8 values and zero point
    (``ConvertS8WeightToU8``). The arithmetic after the rewrite is that of uint8 kernels: the u8 x s8 GEMMs
    (int16 pair sums on AVX2), the zero point before rounding of QLinearAveragePool. Tensor names are kept."""
    converted = _s8_to_u8_pairs(q)
    nodes = []
    for n in q.nodes:
        c = onnx.NodeProto()
        c.CopyFrom(n)
        nodes.append(c)
    inits, types = dict(q.inits), dict(q.types)

    def u8_init(name: str) -> str:
        new = f"{name}/hwsim_u8"
        if new not in inits:
            inits[new] = (q.inits[name].astype(np.int16) + 128).astype(np.uint8)
            types[new] = _T.UINT8
        return new

    for i, n in enumerate(q.nodes):
        if n.op_type == "QuantizeLinear" and n.output[0] in converted:
            j = q.consumers[n.output[0]][0]
            nodes[i].input[2] = u8_init(n.input[2])
            nodes[j].input[2] = u8_init(q.nodes[j].input[2])
            types[n.output[0]] = _T.UINT8
        elif n.op_type == "DequantizeLinear" and n.input[0] in q.inits and len(n.input) > 2 and n.input[2] \
                and _ort_x86_type(q, i, converted) == _T.UINT8 and q.types.get(n.input[0]) == _T.INT8:
            nodes[i].input[0] = u8_init(n.input[0])
            nodes[i].input[2] = u8_init(n.input[2])
    out = QGraph(path=q.path, model=q.model, nodes=nodes, names=list(q.names), inits=inits, types=types,
                 shapes=q.shapes, inputs=q.inputs, outputs=q.outputs, opset=q.opset, notes=q.notes)
    out.reindex()
    return out


def lower_qdq(q: QGraph, *, keep_float: dict[str, str] | None = None) -> QGraph:
    """Rewrite the QDQ groups of ``q`` as onnxruntime's CPU provider does (see the module docstring).

    ``keep_float`` (group op name -> reason, e.g. the ``ort_x86_float`` of the unrewritten model's lowering)
    keeps those groups as written (DequantizeLinear, the float op, QuantizeLinear): applied to
    :func:`rewrite_s8_to_u8`'s graph, this runs a model as onnxruntime's default x86 session does.

    Returns a new :class:`QGraph` whose nodes are the lowered ones; ``lowered_from[name]`` lists the original
    node names each lowered node replaces. Every qualifying group is lowered, int8 ones included (the integer
    op the group denotes, as onnxruntime fuses it on ARM or with ``session.qdqisint8allowed=1``);
    ``ort_x86_float[name]`` says why onnxruntime's default x86 optimizer would instead leave a group in
    float32 (it rewrites int8 Q/DQ pairs to uint8 only where it sees the pair whole, ``qdq_s8_to_u8.cc``).
    Tensors keep their names, so every integer tensor of the original graph that survives is produced under
    its original name.
    """
    q = merge_duplicate_q(q)
    consumed: set[int] = set()
    replace: dict[int, onnx.NodeProto] = {}
    sources: dict[int, list[int]] = {}
    converted = _s8_to_u8_pairs(q)
    narrow: dict[str, str] = {}
    ort_float: dict[str, str] = {}
    for i, n in enumerate(q.nodes):
        if n.domain not in ("", "ai.onnx") or i in consumed:
            continue
        if keep_float is not None and q.names[i] in keep_float:
            ort_float[q.names[i]] = keep_float[q.names[i]]
            continue
        op = n.op_type
        if op not in ("Conv", "MatMul", "Gemm", "Add", "Mul", "Concat") + _UNARY_OPS + _DROP_OPS:
            continue
        qi, clip = _single_q(q, i)
        data_idx = {"Conv": [0, 1, 2], "MatMul": [0, 1], "Gemm": [0, 1, 2], "Add": [0, 1], "Mul": [0, 1]}.get(
            op, list(range(len(n.input))) if op == "Concat" else [0])
        dqs = []
        ok = True
        for k in data_idx:
            if k >= len(n.input) or not n.input[k]:
                if op in ("Conv", "Gemm") and k == 2:
                    dqs.append(None)
                    continue
                ok = False
                break
            d = _dq_of(q, n.input[k], i)
            if d is None:
                ok = False
                break
            dqs.append(d)
        if not ok:
            continue
        if qi is None and op != "Gemm":
            continue
        din = [_elem(q, q.nodes[d].input[0]) if d is not None else None for d in dqs]
        dout = _elem(q, q.nodes[qi].output[0]) if qi is not None else None
        if any(t is not None and t not in INT8_TYPES + (_T.INT32,) for t in din + [dout]):
            odd = sorted({_T.DataType.Name(t) for t in din + [dout] if t is not None
                          and t not in INT8_TYPES + (_T.INT32,)})
            narrow[q.names[i]] = (f"{op} group with {'/'.join(odd)} codes: onnxruntime's CPU provider fuses "
                                  f"only 8-bit groups and runs this one as DequantizeLinear -> float32 {op} "
                                  f"-> QuantizeLinear")
            continue
        new = None
        if op == "Conv":
            if din[0] not in INT8_TYPES or din[0] != dout or (din[0] == _T.INT8 and din[1] != _T.INT8) \
                    or din[1] not in INT8_TYPES or (dqs[2] is not None and din[2] != _T.INT32):
                continue
            new = _mk_qlinear(q, n, "QLinearConv", [dqs[0], dqs[1]], qi, bias_dq=dqs[2])
        elif op == "MatMul":
            if din[0] not in INT8_TYPES or din[0] != dout or din[1] not in INT8_TYPES \
                    or (din[0] == _T.INT8 and din[1] != _T.INT8):
                continue
            new = _mk_qlinear(q, n, "QLinearMatMul", dqs, qi)
        elif op == "Gemm":
            if (din[0] not in INT8_TYPES or din[1] not in INT8_TYPES
                    or (din[0] == _T.INT8 and din[1] != _T.INT8)):
                continue
            if qi is not None and dout != din[0]:
                continue
            if dqs[2] is not None and (din[2] != _T.INT32 or float(_attr(n, "beta", 1.0)) != 1.0):
                continue
            new = _mk_qgemm(q, n, dqs, qi)
        elif op in ("Add", "Mul"):
            if not (din[0] == din[1] == dout) or din[0] not in INT8_TYPES:
                continue
            new = _mk_qlinear(q, n, "QLinear" + op, dqs, qi, domain="com.microsoft")
        elif op in _UNARY_OPS:
            if din[0] != dout or din[0] not in INT8_TYPES:
                continue
            new = _mk_qlinear(q, n, "QLinear" + op, dqs, qi, domain="com.microsoft")
        elif op == "Concat":
            if any(t != dout for t in din) or dout not in INT8_TYPES:
                continue
            new = _mk_qconcat(q, n, dqs, qi)
        else:  # drop DQ/Q around a data-movement op
            if clip is not None or din[0] != dout or din[0] not in INT8_TYPES:
                continue
            if not _same_qparams(q, q.nodes[dqs[0]], q.nodes[qi]):
                continue
            if op == "MaxPool" and (q.opset < 12 or _qp_scalar(q, q.nodes[qi])[0] <= 0):
                continue
            ins = [q.nodes[dqs[0]].input[0]] + list(n.input[1:])
            new = helper.make_node(op, ins, [q.nodes[qi].output[0]], name=q.names[i], domain="",
                                   **{a.name: helper.get_attribute_value(a) for a in n.attribute})
        if new is None:
            continue
        why = _ort_x86_fuses(q, op, dqs, qi, converted)
        if why is not None and keep_float is None:
            ort_float[q.names[i]] = why
        group = [d for d in dqs if d is not None] + [i] + ([clip] if clip is not None else []) + \
            ([qi] if qi is not None else [])
        replace[i] = new
        sources[i] = group
        consumed.update(j for j in group if j != i)
    # DQ nodes used by a group may still feed other nodes: keep those that do
    still_needed: set[int] = set()
    for i, n in enumerate(q.nodes):
        if i in consumed:
            continue
        for v in replace.get(i, n).input:
            j = q.producer.get(v)
            if j is not None and j in consumed and q.nodes[j].op_type == "DequantizeLinear":
                still_needed.add(j)
    for v in q.outputs:
        j = q.producer.get(v)
        if j is not None and j in consumed and q.nodes[j].op_type == "DequantizeLinear":
            still_needed.add(j)
    nodes, names, lowered_from = [], [], {}
    for i, n in enumerate(q.nodes):
        if i in consumed and i not in still_needed:
            continue
        if i in replace:
            nodes.append(replace[i])
            names.append(q.names[i])
            lowered_from[q.names[i]] = [q.names[j] for j in sources[i]]
        else:
            nodes.append(n)
            names.append(q.names[i])
    notes = list(q.notes)
    if narrow:
        notes.append(f"{len(narrow)} QDQ group(s) left in float32 as onnxruntime runs them (" +
                     "; ".join(f"{k}: {v}" for k, v in sorted(narrow.items())[:4]) +
                     ("; ..." if len(narrow) > 4 else "") + ")")
    out = QGraph(path=q.path, model=q.model, nodes=nodes, names=names, inits=q.inits, types=dict(q.types),
                 shapes=q.shapes, inputs=q.inputs, outputs=q.outputs, opset=q.opset,
                 lowered_from=lowered_from, notes=notes, ort_x86_float=ort_float)
    out.reindex()
    return out


def _same_input(q: QGraph, a: str, b: str) -> bool:
    if a == b:
        return True
    ca, cb = _const(q, a), _const(q, b)
    return ca is not None and cb is not None and ca.dtype == cb.dtype and ca.shape == cb.shape \
        and bool(np.array_equal(ca, cb))


def duplicate_quantize_nodes(q: QGraph) -> dict[int, int]:
    """``{i: j}``: QuantizeLinear node ``i`` quantizes the same tensor with equal parameters as the earlier
    node ``j`` (``DedicatedQDQPair`` models give each consumer its own Q -> DQ pair), the repeats
    onnxruntime's common subexpression elimination merges (``onnxruntime/core/optimizer/
    common_subexpression_elimination.cc``). Not when ``j``'s output is a graph output: onnxruntime then
    neither merged nor fused them (a review's DedicatedQDQPair model with that output exposed)."""
    first: dict[tuple, int] = {}
    dup: dict[int, int] = {}
    for i, n in enumerate(q.nodes):
        if n.op_type != "QuantizeLinear" or n.domain not in _QDQ_DOMAINS:
            continue
        key = (n.domain, n.input[0], tuple(sorted((a.name, str(helper.get_attribute_value(a)))
                                                   for a in n.attribute)))
        j = first.get(key)
        if j is None:
            first[key] = i
            continue
        m = q.nodes[j]
        same = all(_same_input(q, a, b) for a, b in zip(m.input[1:], n.input[1:], strict=False))
        if len(m.input) == len(n.input) and same:
            if m.output[0] not in q.outputs:
                dup[i] = j
        else:
            first[key] = i
    return dup


def merge_duplicate_q(q: QGraph) -> QGraph:
    """Merge the repeated QuantizeLinear nodes of :func:`duplicate_quantize_nodes`: the first keeps its place,
    each other one becomes an ``Identity`` of its output, as onnxruntime merges them before fusing, so that
    the op before them has a single QuantizeLinear consumer and its group fuses. Returns ``q`` itself when
    nothing is merged."""
    dup = duplicate_quantize_nodes(q)
    if not dup:
        return q
    nodes = [helper.make_node("Identity", [q.nodes[dup[i]].output[0]], [n.output[0]], name=q.names[i])
             if i in dup else n for i, n in enumerate(q.nodes)]
    out = QGraph(path=q.path, model=q.model, nodes=nodes, names=list(q.names), inits=q.inits,
                 types=dict(q.types), shapes=q.shapes, inputs=q.inputs, outputs=q.outputs, opset=q.opset,
                 notes=list(q.notes) + [f"{len(dup)} duplicate QuantizeLinear node(s) merged as "
                                        "onnxruntime's common subexpression elimination does "
                                        "(DedicatedQDQPair)"],
                 ort_x86_float=dict(q.ort_x86_float))
    out.reindex()
    return out


def _dq_triplet(q: QGraph, d: int) -> list[str]:
    n = q.nodes[d]
    return [n.input[0], n.input[1], n.input[2] if len(n.input) > 2 else ""]


def _q_pair(q: QGraph, qi: int) -> list[str]:
    n = q.nodes[qi]
    return [n.input[1], n.input[2] if len(n.input) > 2 else ""]


def _attrs(n) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in n.attribute}


def _mk_qlinear(q: QGraph, n, op: str, dqs: list[int], qi: int, *, bias_dq=None, domain: str = ""):
    ins = []
    for d in dqs:
        ins += _dq_triplet(q, d)
    ins += _q_pair(q, qi)
    if op == "QLinearConv" and bias_dq is not None:
        ins.append(q.nodes[bias_dq].input[0])
    attrs = _attrs(n)
    if op in ("QLinearAveragePool", "QLinearGlobalAveragePool"):
        attrs.setdefault("channels_last", 0)
    if op == "QLinearSoftmax":  # the Softmax's since-version (qdq_actions.cc, UnaryReplaceWithQLinear)
        attrs["opset"] = 13 if q.opset >= 13 else 11 if q.opset >= 11 else 1
        # a node made by the optimizer has no schema default filled in: without an axis the kernel takes
        # Softmax's own default, 1 below opset 13 (qlinear_softmax.cc); written out, as a loaded
        # QLinearSoftmax without one would read the contrib schema's -1
        attrs.setdefault("axis", 1 if q.opset < 13 else -1)
    return helper.make_node(op, ins, [q.nodes[qi].output[0]], name=n.name or n.op_type, domain=domain,
                            **attrs)


def _mk_qgemm(q: QGraph, n, dqs: list, qi):
    ins = _dq_triplet(q, dqs[0]) + _dq_triplet(q, dqs[1])
    ins.append(q.nodes[dqs[2]].input[0] if dqs[2] is not None else "")
    if qi is not None:
        ins += _q_pair(q, qi)
        out = q.nodes[qi].output[0]
    else:
        out = n.output[0]
    attrs = {k: v for k, v in _attrs(n).items() if k in ("alpha", "transA", "transB")}
    return helper.make_node("QGemm", ins, [out], name=n.name or "Gemm", domain="com.microsoft", **attrs)


def _mk_qconcat(q: QGraph, n, dqs: list[int], qi: int):
    ins = _q_pair(q, qi)
    for d in dqs:
        ins += _dq_triplet(q, d)
    return helper.make_node("QLinearConcat", ins, [q.nodes[qi].output[0]], name=n.name or "Concat",
                            domain="com.microsoft", axis=_attr(n, "axis"))
