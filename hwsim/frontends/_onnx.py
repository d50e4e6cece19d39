"""Layer shapes from an ONNX graph: every Conv, Gemm and MatMul becomes a layer of a :class:`Workload`.

Shapes come from ONNX shape inference (``onnx.shape_inference.infer_shapes``); weights are never read, so
shape-only models whose initializers point at missing external data (ZigZag's ``resnet18.onnx``) load too.
onnxruntime's com.microsoft ops that onnx does not know (the Q/DQ ``quantize_static`` writes for 4-bit weights
below opset 21, QGemm, QLinearAdd, QLinearSigmoid, ...) are inferred on a copy of the graph in which each is
its standard equivalent with the same output shape (``_SHAPE_AS``). Quantized forms (QLinearConv,
QLinearMatMul, ConvInteger, MatMulInteger, and com.microsoft QGemm, FusedConv, FusedGemm, FusedMatMul,
DynamicQuantizeMatMul, MatMulIntegerToFloat) give the same layers, with ``weight_bits``/``act_bits`` from
their operands' quantized types (int4/uint4 4, int8/uint8 8, int16/uint16 16; a QDQ model's from the
DequantizeLinear in front of the operand; a float operand keeps the workload default). Operators with MACs
that hwsim has no layer kind for yet (ConvTranspose, recurrent cells, Einsum, Attention) are listed in a
:class:`~hwsim.errors.ShapeWarning`, never dropped silently. Attribute semantics follow the ONNX operator spec
(``onnx/defs/nn/defs.cc``): ``pads`` is ``[top, left, bottom, right]``, ``auto_pad`` SAME_UPPER puts the odd
pixel at the end (bottom/right), SAME_LOWER at the start.

The graph is kept: every layer's ``inputs`` name the layers (or non-GEMM nodes) that produce its tensors,
through operators that only reshape, cast, quantize or apply an element-wise activation folded into the
layer before (``_PASS_THROUGH``: Relu, LeakyRelu, Clip, BatchNormalization, Reshape, Flatten, Transpose,
QuantizeLinear, DequantizeLinear, ...: the tensor passes through). These become non-GEMM nodes
(:class:`hwsim.spec.VectorOp`, ``_VECTOR``): Add/Sum/Sub and QLinearAdd (``add``), Mul and QLinearMul
(``mul``), Div (``div``) of two activations, or of one activation and a constant (a bias, a scale, a divisor:
the node is sized by the activation, the constant's elements are its ``constant``, read once), Sqrt
(``sqrt``), MaxPool / AveragePool / GlobalAveragePool / GlobalMaxPool and their
QLinear forms (pools, with the input shape), Concat and QLinearConcat (``concat``), Softmax (``softmax``),
LayerNormalization (``layernorm``), Gelu and its contrib forms (``gelu``), Sigmoid / QLinearSigmoid /
HardSigmoid (``sigmoid``), Tanh (``tanh``), CumSum (``cumsum``), Resize / Upsample / Pad / Tile /
DepthToSpace / SpaceToDepth (``copy``, the output's elements), DynamicQuantizeLinear (``quantize`` over its
input's elements, ``bits`` from its output type; its scale and zero point are run-time scalars taken as
constants, so the scalar ``Mul(x_scale, w_scale)`` that ``quantize_dynamic`` writes before each
ConvInteger/MatMulInteger is folded and the dequantizing ``Mul`` after it is a ``mul`` with a 1-element
constant). Symbolic input dimensions (``dim_param``) take ``dims[name]``, else 1 with a
:class:`~hwsim.errors.ShapeWarning` naming them. Any other node that reads an activation also
passes it through, and is named in one :class:`~hwsim.errors.ShapeWarning` (not timed, priced or counted).
The second input of a MatMul of two activations (attention's K^T, V) is kept as the layer's second input.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from pathlib import Path

from ..errors import ShapeWarning, SpecError, input_file
from ..spec import Workload, validate

__all__ = ["read_onnx_shapes"]


def _shape(name: str, shapes: dict[str, list[int]], inits: dict[str, list[int]]) -> list[int] | None:
    return shapes.get(name) or inits.get(name)


# node -> (index of the activation input, index of the weight/second input); com.microsoft contrib ops
# (onnxruntime/core/graph/contrib_ops/quantization_defs.cc, contrib_defs.cc) included
_OPERANDS = {"Conv": (0, 1), "Gemm": (0, 1), "MatMul": (0, 1), "ConvInteger": (0, 1), "MatMulInteger": (0, 1),
             "QLinearConv": (0, 3), "QLinearMatMul": (0, 3), "QGemm": (0, 3), "FusedConv": (0, 1),
             "FusedGemm": (0, 1), "FusedMatMul": (0, 1), "DynamicQuantizeMatMul": (0, 1),
             "MatMulIntegerToFloat": (0, 1)}
_CONV_OPS = ("Conv", "QLinearConv", "ConvInteger", "FusedConv")
_GEMM_OPS = ("Gemm", "QGemm", "FusedGemm")
_UNSUPPORTED_MAC_OPS = ("ConvTranspose", "LSTM", "GRU", "RNN", "Einsum", "Attention", "MultiHeadAttention",
                        "QAttention", "QLinearConvTranspose")
# non-GEMM nodes: ONNX op -> (hwsim op, indices of the activation inputs)
_VECTOR = {"Add": ("add", (0, 1)), "Sum": ("add", (0, 1)), "QLinearAdd": ("add", (0, 3)),
           "Sub": ("add", (0, 1)), "Mul": ("mul", (0, 1)), "QLinearMul": ("mul", (0, 3)),
           "Div": ("div", (0, 1)), "Sqrt": ("sqrt", (0,)),
           "MaxPool": ("maxpool", (0,)), "AveragePool": ("avgpool", (0,)),
           "QLinearAveragePool": ("avgpool", (0,)),
           "GlobalAveragePool": ("avgpool", (0,)), "QLinearGlobalAveragePool": ("avgpool", (0,)),
           "GlobalMaxPool": ("maxpool", (0,)), "Concat": ("concat", None), "QLinearConcat": ("concat", None),
           "Softmax": ("softmax", (0,)), "QLinearSoftmax": ("softmax", (0,)),
           "LayerNormalization": ("layernorm", (0,)), "SkipLayerNormalization": ("layernorm", (0,)),
           "Gelu": ("gelu", (0,)), "FastGelu": ("gelu", (0,)), "BiasGelu": ("gelu", (0,)),
           "QuickGelu": ("gelu", (0,)), "Sigmoid": ("sigmoid", (0,)), "QLinearSigmoid": ("sigmoid", (0,)),
           "HardSigmoid": ("sigmoid", (0,)), "Tanh": ("tanh", (0,)), "CumSum": ("cumsum", (0,)),
           "Resize": ("copy", (0,)), "Upsample": ("copy", (0,)), "Pad": ("copy", (0,)),
           "Tile": ("copy", (0,)), "DepthToSpace": ("copy", (0,)), "SpaceToDepth": ("copy", (0,)),
           "DynamicQuantizeLinear": ("quantize", (0,))}
# operators whose output is the input tensor itself for the timing model: layout, shape, cast, quantize
# (folded into the producer's requantization) and activations folded into the layer before
_PASS_THROUGH = frozenset({
    "Relu", "LeakyRelu", "QLinearLeakyRelu", "Clip", "BatchNormalization", "Reshape", "Flatten", "Transpose",
    "Squeeze", "Unsqueeze", "Identity", "Dropout", "Cast", "CastLike", "QuantizeLinear", "DequantizeLinear",
    "Constant", "ConstantOfShape", "Shape", "Size", "Gather", "Slice", "Split",
    "Expand", "Range"})
# contrib ops onnx's shape inference does not know: (standard op with the same output shape, the inputs it
# takes, the attributes kept) for the copy that is only used to infer shapes
_SHAPE_AS = {"QuantizeLinear": ("QuantizeLinear", None, None),
             "DequantizeLinear": ("DequantizeLinear", None, None),
             "QGemm": ("Gemm", (0, 3), ("transA", "transB")), "QLinearAdd": ("Add", (0, 3), ()),
             "QLinearMul": ("Mul", (0, 3), ()), "QLinearSigmoid": ("Identity", (0,), ()),
             "QLinearLeakyRelu": ("Identity", (0,), ()), "QLinearSoftmax": ("Identity", (0,), ()),
             "QLinearGlobalAveragePool": ("GlobalAveragePool", (0,), ()),
             "QLinearAveragePool": ("AveragePool", (0,), ("kernel_shape", "strides", "pads", "auto_pad",
                                                           "ceil_mode", "count_include_pad")),
             "FusedConv": ("Conv", (0, 1, 2), ("kernel_shape", "strides", "pads", "auto_pad", "dilations",
                                               "group")),
             "FusedGemm": ("Gemm", (0, 1, 2), ("transA", "transB")), "FusedMatMul": ("MatMul", (0, 1), ()),
             "DynamicQuantizeMatMul": ("MatMul", (0, 1), ()), "MatMulIntegerToFloat": ("MatMul", (0, 1), ()),
             "Gelu": ("Identity", (0,), ()), "FastGelu": ("Identity", (0,), ()),
             "QuickGelu": ("Identity", (0,), ()), "BiasGelu": ("Identity", (0,), ()),
             "SkipLayerNormalization": ("Identity", (0,), ())}
# element type (onnx.TensorProto) -> bits of a quantized operand (int4/uint4, int8/uint8, int16/uint16)
_QBITS = {2: 8, 3: 8, 4: 16, 5: 16, 21: 4, 22: 4}


def _shape_model(model):
    """A copy of ``model`` in which the com.microsoft nodes of ``_SHAPE_AS`` are their standard
    equivalents (same output shapes), so that ``onnx.shape_inference`` follows the graph through them."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    for node in m.graph.node:
        sub = _SHAPE_AS.get(node.op_type) if node.domain == "com.microsoft" else None
        if sub is None:
            continue
        op, pos, keep = sub
        node.domain = ""
        node.op_type = op
        if pos is not None:
            ins = [node.input[i] if i < len(node.input) else "" for i in pos]
            while ins and not ins[-1]:
                ins.pop()
            del node.input[:]
            node.input.extend(ins)
        if keep is not None:
            kept = [a for a in node.attribute if a.name in keep]
            del node.attribute[:]
            node.attribute.extend(kept)
    return m


def _bind_symbolic_dims(model, dims: Mapping[str, int], source: str) -> list[str]:
    """Give every graph input dimension without a value one: ``dims[name]`` (``name`` its ``dim_param``, or
    ``input[axis]`` for an unnamed one), else 1; a named dimension takes the value everywhere it appears
    (inputs, ``value_info``, outputs). Returns the dimensions bound to the default 1, as ``x[0] 'b'``.

    Raises
    ------
    SpecError
        ``dims`` naming no symbolic dimension of the model's inputs.
    """
    inits = {i.name for i in model.graph.initializer}
    found: dict[str, int] = {}
    defaulted: list[str] = []
    for vi in model.graph.input:
        if vi.name in inits or not vi.type.tensor_type.HasField("shape"):
            continue
        for axis, d in enumerate(vi.type.tensor_type.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                continue
            key = d.dim_param or f"{vi.name}[{axis}]"
            value = dims.get(key, 1)
            if key not in dims:
                defaulted.append(f"{vi.name}[{axis}]" + (f" {d.dim_param!r}" if d.dim_param else ""))
            found[key] = value
            d.dim_value = value
    unknown = sorted(set(dims) - set(found))
    if unknown:
        raise SpecError(source, f"dims.{unknown[0]}", "a symbolic dimension of the model's inputs ("
                        + (", ".join(sorted(found)) or "it has none") + ")", unknown[0])
    for vi in list(model.graph.value_info) + list(model.graph.output):
        if vi.type.tensor_type.HasField("shape"):
            for d in vi.type.tensor_type.shape.dim:
                if d.dim_param in found:
                    d.dim_value = found[d.dim_param]
    return defaulted


def read_onnx_shapes(path: str | Path, *, name: str | None = None,
                     dims: Mapping[str, int] | None = None) -> Workload:
    """Read an ONNX model's GEMM layers and non-GEMM nodes (float, QDQ or QOperator, or dynamically
    quantized).

    ``dims``: values of the inputs' symbolic dimensions, by ``dim_param`` (``{"batch": 8}``) or, for an
    unnamed one, ``"input[axis]"``; a symbolic dimension not given is bound to 1 with a warning naming it
    (``hwsim simulate`` has no option for it: fix it in the file with onnxruntime's
    ``python -m onnxruntime.tools.make_dynamic_shape_fixed --dim_param b --dim_value 8 in.onnx out.onnx``).

    Returns
    -------
    Workload
        One layer per Conv (``conv2d``, depthwise as groups), Gemm (``fc``: M = rows of A) and MatMul
        (``gemm``; leading dimensions become ``count``), in graph order, with the non-GEMM nodes; bits from
        the quantized types, else 8 (module docstring).

    Warns
    -----
    ShapeWarning
        Naming the nodes with MACs but no layer kind, the nodes that are not timed, and the symbolic input
        dimensions bound to 1.

    Raises
    ------
    SpecError
        Missing file, not an ONNX model, a node whose shapes cannot be inferred (named by node), or ``dims``
        naming no symbolic input dimension (``dims.NAME``).
    """
    import onnx
    from onnx import shape_inference

    p = input_file(path, "an existing ONNX file")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as e:  # onnx raises DecodeError...
        raise SpecError(str(p), "", "a valid ONNX model", type(e).__name__, detail=str(e)[:200]) from None
    defaulted = _bind_symbolic_dims(model, dict(dims or {}), str(p))
    why = ""
    if defaulted:  # a height, width or length bound to 1 can contradict the weights (a Gemm's K): refused
        try:
            shape_inference.infer_shapes(_shape_model(model), strict_mode=True)
        except Exception as e:  # InferenceError: "Dimension mismatch in unification between 2048 and 32"
            why = " ".join(str(e).split("(op_type:")[-1].split()).rstrip(")").replace("): [", ": [")
            if "mismatch" not in why:  # strict mode's other complaints (ops it cannot infer) are not ours
                why = ""
        if why:
            raise SpecError(str(p), "dims", "values of the symbolic input dimensions that agree with the "
                            "model's weights (read_onnx_shapes(dims=...), or fix them in the file with "
                            "python -m onnxruntime.tools.make_dynamic_shape_fixed)",
                            f"{', '.join(defaulted)} bound to 1", detail=why[:160]) from None
    if defaulted:
        warnings.warn(f"{p}: symbolic input dimension(s) bound to 1: {', '.join(defaulted)} (another value: "
                      "read_onnx_shapes(dims=...), or fix it in the file with python -m "
                      "onnxruntime.tools.make_dynamic_shape_fixed --dim_param NAME --dim_value N IN OUT)",
                      ShapeWarning, stacklevel=2)
    try:
        inferred = shape_inference.infer_shapes(_shape_model(model))
    except Exception as e:  # onnx raises ValidationError, InferenceError...
        raise SpecError(str(p), "", "a valid ONNX model", type(e).__name__, detail=str(e)[:200]) from None
    g = model.graph
    shapes: dict[str, list[int]] = {}
    etype: dict[str, int] = {}
    for vi in (list(g.input) + list(g.value_info) + list(g.output) + list(inferred.graph.value_info)
               + list(inferred.graph.output)):
        t = vi.type.tensor_type
        if t.HasField("shape") and vi.name not in shapes:
            shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else 0 for d in t.shape.dim]
        if t.elem_type and vi.name not in etype:
            etype[vi.name] = t.elem_type
    inits = {i.name: list(i.dims) for i in g.initializer}
    etype.update({i.name: i.data_type for i in g.initializer})
    made_by = {o: node for node in g.node for o in node.output}
    for node in g.node:  # a Constant's type
        if node.op_type == "Constant" and node.attribute and node.attribute[0].HasField("t"):
            etype[node.output[0]] = node.attribute[0].t.data_type

    def qbits(x: str, zp: str = "") -> int | None:
        """Bits of a quantized tensor ``x`` (its zero point's type when given)."""
        return _QBITS.get(etype.get(zp or x, 0))

    def dq_bits(t: str) -> int | None:
        """Bits of the codes a QDQ model dequantizes into tensor ``t`` (through layout-only nodes)."""
        for _ in range(8):
            nd = made_by.get(t)
            if nd is None or not nd.input:
                return None
            if nd.op_type == "DequantizeLinear":
                return qbits(nd.input[0], nd.input[2] if len(nd.input) > 2 else "")
            if nd.op_type not in ("Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"):
                return None
            t = nd.input[0]
        return None

    def layer_bits(node, ia: int, ib: int) -> dict[str, int]:
        op, ins = node.op_type, list(node.input)

        def at(i: int) -> str:
            return ins[i] if i < len(ins) else ""

        if op in ("QLinearConv", "QLinearMatMul", "QGemm"):
            a, w = qbits(at(ia), at(ia + 2)), qbits(at(ib), at(ib + 2))
        elif op in ("ConvInteger", "MatMulInteger", "MatMulIntegerToFloat"):
            a, w = qbits(at(ia)), qbits(at(ib))
        elif op == "DynamicQuantizeMatMul":  # A is quantized to uint8 at run time (contrib_defs.cc)
            a, w = 8, qbits(at(ib))
        else:
            a, w = dq_bits(at(ia)), dq_bits(at(ib))
        return {k: v for k, v in (("act_bits", a), ("weight_bits", w)) if v is not None}
    layers: list[dict] = []
    used: set[str] = set()
    skipped: dict[str, int] = {}
    untimed: list[str] = []
    # ONNX tensor -> the hwsim node that produces it ("input" for graph inputs); None: a constant
    producer: dict[str, str | None] = {i.name: None for i in g.initializer}
    for vi in g.input:
        if vi.name not in producer:
            producer[vi.name] = "input"

    def const_elements(t: str) -> int:
        """Elements of constant tensor ``t`` (an initializer, a Constant node's value, or its inferred
        shape; 1, a scalar, when none of them is known)."""
        for table in (inits, shapes):
            if t in table and 0 not in table[t]:
                return max(math.prod(table[t]), 1)
        nd = made_by.get(t)
        if nd is not None and nd.op_type == "Constant" and nd.attribute and nd.attribute[0].HasField("t"):
            return max(math.prod(nd.attribute[0].t.dims), 1)
        return 1

    def src(t: str) -> str | None:
        return producer.get(t) if t else None

    def activations(node) -> list[str]:
        return [x for x in (src(t) for t in node.input) if x is not None]

    for idx, node in enumerate(g.node):
        if node.op_type in _UNSUPPORTED_MAC_OPS:
            skipped[node.op_type] = skipped.get(node.op_type, 0) + 1
        if node.op_type not in _OPERANDS:
            acts = activations(node)
            vec = _VECTOR.get(node.op_type)
            constant = None
            if vec is not None:
                op, pos = vec
                at = [i for i in (pos or range(len(node.input))) if i < len(node.input) and node.input[i]]
                consts = [node.input[i] for i in at if src(node.input[i]) is None]
                ins = [x for x in (src(node.input[i]) for i in at) if x is not None]
                if op in ("add", "mul", "div") and len(ins) == 1 and consts:
                    constant = const_elements(consts[0])  # a bias, a scale, a divisor: read once
                elif op in ("add", "mul", "div") and len(ins) != 2:
                    vec = None  # constants only: folded, a constant
                elif not ins:
                    vec = None
            if vec is None:
                if (acts and node.op_type not in _VECTOR and node.op_type not in _PASS_THROUGH
                        and node.op_type not in _UNSUPPORTED_MAC_OPS):
                    untimed.append(f"{node.name or node.op_type + '_' + str(idx)} ({node.op_type})")
                for o in node.output:  # passes through (a constant when it reads none, or only a shape)
                    producer[o] = acts[0] if acts and node.op_type not in ("Shape", "Size") else None
                continue
            vname = node.name or f"{node.op_type.lower()}_{idx}"
            while vname in used:
                vname += "_"
            used.add(vname)
            entry: dict = {"name": vname, "op": op, "inputs": ins}
            if constant is not None:
                entry["constant"] = constant
            if op == "quantize" and qbits(node.output[0]):
                entry["bits"] = qbits(node.output[0])
            out_shape = shapes.get(node.output[0])
            if out_shape and 0 not in out_shape:
                entry["elements"] = math.prod(out_shape)
                if op in ("softmax", "layernorm"):
                    entry["row"] = out_shape[-1]
            if op in ("maxpool", "avgpool"):
                a_shape = shapes.get(node.input[0])
                if not a_shape or len(a_shape) != 4 or 0 in a_shape:
                    raise SpecError(str(p), f"node {vname} ({node.op_type})",
                                    "an inferable (N, C, H, W) input", a_shape)
                attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
                entry.update({"channels": a_shape[1], "in_h": a_shape[2], "in_w": a_shape[3]})
                if "kernel_shape" in attrs:
                    pads = attrs.get("pads", [0, 0, 0, 0])
                    entry.update({"kernel": list(attrs["kernel_shape"]), "stride": list(attrs.get("strides",
                                                                                            [1, 1])),
                                  "padding": [pads[0], pads[1]]})
            layers.append(entry)
            for o in node.output:
                producer[o] = vname
            if op == "quantize":  # its scale and zero point: run-time scalars, taken as constants
                for o in node.output[1:]:
                    producer[o] = None
            continue
        lname = node.name or f"{node.op_type.lower()}_{idx}"
        while lname in used:
            lname += "_"
        used.add(lname)
        for o in node.output:
            producer[o] = lname
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        ia, ib = _OPERANDS[node.op_type]
        ins = [src(node.input[ia]) or "input"]
        if src(node.input[ib]) is not None:
            ins.append(src(node.input[ib]))
        a_shape = _shape(node.input[ia], shapes, inits)
        b_shape = _shape(node.input[ib], shapes, inits)
        if not a_shape or not b_shape or 0 in a_shape or 0 in b_shape:
            raise SpecError(str(p), f"node {lname} ({node.op_type})", "inferable input shapes",
                            f"{a_shape} and {b_shape}")
        bits = layer_bits(node, ia, ib)
        if node.op_type in _CONV_OPS:
            if len(a_shape) != 4:
                raise SpecError(str(p), f"node {lname}", "a 2-D convolution (N, C, H, W)", a_shape)
            n, c, h, w = a_shape
            k, _, kh, kw = b_shape
            strides = attrs.get("strides", [1, 1])
            dil = attrs.get("dilations", [1, 1])
            auto = attrs.get("auto_pad", b"NOTSET")
            auto = auto.decode() if isinstance(auto, bytes) else auto
            if auto in ("SAME_UPPER", "SAME_LOWER"):
                pads = []
                for size, s, kk, d in zip((h, w), strides, (kh, kw), dil, strict=False):
                    out = math.ceil(size / s)
                    total = max((out - 1) * s + (kk - 1) * d + 1 - size, 0)
                    small, big = total // 2, total - total // 2
                    pads.append((small, big) if auto == "SAME_UPPER" else (big, small))
                padding = [pads[0][0], pads[0][1], pads[1][0], pads[1][1]]
            elif auto == "VALID":
                padding = [0, 0, 0, 0]
            else:
                pt, pl, pb, pr = attrs.get("pads", [0, 0, 0, 0])
                padding = [pt, pb, pl, pr]
            grp = attrs.get("group", 1)
            layers.append({"name": lname, "op": "conv2d", "in_channels": c, "out_channels": k, "in_h": h,
                           "in_w": w, "kernel": [kh, kw], "stride": list(strides), "padding": padding,
                           "dilation": list(dil), "groups": grp, "batch": n, "inputs": ins[:1],
                           **bits})
        elif node.op_type in _GEMM_OPS:
            m_, k_ = (a_shape[1], a_shape[0]) if attrs.get("transA", 0) else (a_shape[0], a_shape[1])
            n_ = b_shape[0] if attrs.get("transB", 0) else b_shape[1]
            layers.append({"name": lname, "op": "fc", "m": m_, "k": k_, "n": n_, "inputs": ins[:1], **bits})
        else:  # MatMul and its integer forms: numpy semantics; leading dims of A are independent products
            k_, n_ = b_shape[-2], b_shape[-1]
            m_ = a_shape[-2] if len(a_shape) >= 2 else 1
            count = math.prod(a_shape[:-2]) if len(a_shape) > 2 else 1
            if len(b_shape) > 2 and node.input[ib] not in inits:
                count = max(count, math.prod(b_shape[:-2]))
            layers.append({"name": lname, "op": "gemm", "m": m_, "k": k_, "n": n_, "count": count,
                           "inputs": ins[:2], **bits})
    if skipped:
        warnings.warn(f"{p}: nodes left out of the timing and energy model (no hwsim layer kind for them "
                      "yet): "
                      + ", ".join(f"{n} x{k}" for n, k in sorted(skipped.items())), ShapeWarning,
                      stacklevel=2)
    if untimed:
        warnings.warn(f"{p}: {len(untimed)} node(s) not timed, priced or counted in DRAM traffic (no hwsim "
                      "op for them; their output is taken as their input tensor): " + ", ".join(untimed),
                      ShapeWarning, stacklevel=2)
    if not any(x["op"] in ("conv2d", "fc", "gemm") for x in layers):
        raise SpecError(str(p), "", "at least one Conv, Gemm or MatMul node", "none")
    # non-GEMM nodes before the first layer (e.g. a normalization of the raw input) read "input"
    wl = validate(Workload, {"name": name or (g.name or p.stem), "source": f"ONNX shapes: {p.name}",
                             "layers": layers}, str(p))
    wl.graph(str(p))
    return wl
