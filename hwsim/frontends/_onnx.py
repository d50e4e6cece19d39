"""Layer shapes from a float ONNX graph: every Conv, Gemm and MatMul becomes a layer of a :class:`Workload`.

Shapes come from ONNX shape inference (``onnx.shape_inference.infer_shapes``); weights are never read, so
shape-only models whose initializers point at missing external data (ZigZag's ``resnet18.onnx``) load too.
Quantized forms (QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger) give the same layers. Operators with
MACs that hwsim has no layer kind for yet (ConvTranspose, recurrent cells, Einsum) are listed in a
:class:`~hwsim.errors.ShapeWarning`, never dropped silently. Attribute semantics follow the ONNX operator spec (``onnx/defs/nn/defs.cc``): ``pads`` is
``[top, left, bottom, right]``, ``auto_pad`` SAME_UPPER puts the odd pixel at the end (bottom/right),
SAME_LOWER at the start. Other operators (Relu, Add, pooling, ...) carry no MACs on the array and are skipped.
"""

from __future__ import annotations

import math
from pathlib import Path

import warnings

from ..errors import ShapeWarning, SpecError, input_file
from ..spec import Workload, validate

__all__ = ["read_onnx_shapes"]


def _shape(name: str, shapes: dict[str, list[int]], inits: dict[str, list[int]]) -> list[int] | None:
    return shapes.get(name) or inits.get(name)


# node -> (index of the activation input, index of the weight/second input)
_OPERANDS = {"Conv": (0, 1), "Gemm": (0, 1), "MatMul": (0, 1), "ConvInteger": (0, 1), "MatMulInteger": (0, 1),
             "QLinearConv": (0, 3), "QLinearMatMul": (0, 3)}
_UNSUPPORTED_MAC_OPS = ("ConvTranspose", "LSTM", "GRU", "RNN", "Einsum", "Attention", "MultiHeadAttention")


def read_onnx_shapes(path: str | Path, *, name: str | None = None) -> Workload:
    """Read a float ONNX model's GEMM layers.

    Returns
    -------
    Workload
        One layer per Conv (``conv2d``, depthwise as groups), Gemm (``fc``: M = rows of A) and MatMul
        (``gemm``; leading dimensions become ``count``), in graph order, 8-bit by default.

    Raises
    ------
    SpecError
        Missing file, not an ONNX model, or a node whose shapes cannot be inferred (named by node).
    """
    import onnx
    from onnx import shape_inference

    p = input_file(path, "an existing ONNX file")
    try:
        model = onnx.load(str(p), load_external_data=False)
        model = shape_inference.infer_shapes(model)
    except Exception as e:  # onnx raises DecodeError, ValidationError, InferenceError...
        raise SpecError(str(p), "", "a valid ONNX model", type(e).__name__, detail=str(e)[:200]) from None
    g = model.graph
    shapes: dict[str, list[int]] = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        t = vi.type.tensor_type
        if t.HasField("shape"):
            shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else 0 for d in t.shape.dim]
    inits = {i.name: list(i.dims) for i in g.initializer}
    layers: list[dict] = []
    used: set[str] = set()
    skipped: dict[str, int] = {}
    for idx, node in enumerate(g.node):
        if node.op_type in _UNSUPPORTED_MAC_OPS:
            skipped[node.op_type] = skipped.get(node.op_type, 0) + 1
            continue
        if node.op_type not in _OPERANDS:
            continue
        lname = node.name or f"{node.op_type.lower()}_{idx}"
        while lname in used:
            lname += "_"
        used.add(lname)
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        ia, ib = _OPERANDS[node.op_type]
        a_shape = _shape(node.input[ia], shapes, inits)
        b_shape = _shape(node.input[ib], shapes, inits)
        if not a_shape or not b_shape or 0 in a_shape or 0 in b_shape:
            raise SpecError(str(p), f"node {lname} ({node.op_type})", "inferable input shapes",
                            f"{a_shape} and {b_shape}")
        if node.op_type in ("Conv", "QLinearConv", "ConvInteger"):
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
                for size, s, kk, d in zip((h, w), strides, (kh, kw), dil):
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
                           "dilation": list(dil), "groups": grp, "batch": n})
        elif node.op_type == "Gemm":
            m_, k_ = (a_shape[1], a_shape[0]) if attrs.get("transA", 0) else (a_shape[0], a_shape[1])
            n_ = b_shape[0] if attrs.get("transB", 0) else b_shape[1]
            layers.append({"name": lname, "op": "fc", "m": m_, "k": k_, "n": n_})
        else:  # MatMul and its integer forms: numpy semantics; leading dims of A are independent products
            k_, n_ = b_shape[-2], b_shape[-1]
            m_ = a_shape[-2] if len(a_shape) >= 2 else 1
            count = math.prod(a_shape[:-2]) if len(a_shape) > 2 else 1
            if len(b_shape) > 2 and node.input[ib] not in inits:
                count = max(count, math.prod(b_shape[:-2]))
            layers.append({"name": lname, "op": "gemm", "m": m_, "k": k_, "n": n_, "count": count})
    if skipped:
        warnings.warn(f"{p}: nodes left out of the timing and energy model (no hwsim layer kind for them yet): "
                      + ", ".join(f"{n} x{k}" for n, k in sorted(skipped.items())), ShapeWarning, stacklevel=2)
    if not layers:
        raise SpecError(str(p), "", "at least one Conv, Gemm or MatMul node", "none")
    return validate(Workload, {"name": name or (g.name or p.stem), "source": f"ONNX shapes: {p.name}",
                               "layers": layers}, str(p))
