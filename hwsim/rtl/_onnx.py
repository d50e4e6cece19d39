"""A quantized ONNX node's real operands as vectors (``hwsim vectors ARCH --model M.onnx [--inputs X.npz]``).

The model runs on hwsim's integer datapath (:func:`hwsim.onnxq.execute`, QDQ models lowered as onnxruntime
fuses them, under the arch's ``pe.acc_bits``/``pe.acc_mode``); each selected QLinearConv, ConvInteger,
QLinearMatMul, MatMulInteger or com.microsoft QGemm node (a QDQ Gemm lowers to QGemm) then contributes the
codes it really received (ifmap, weights, zero points, int32 bias) and the output codes hwsim computed for
it. A QGemm's ``transA``/``transB`` are applied to its operands (the array runs ``A' B'``); its ``alpha``
scales only the requantization. A QGemm without ``y_scale`` has float outputs: its vectors then requantize
with a synthetic multiplier, as a workload layer's do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import Found, SpecError
from ..onnxq import (
    DatapathConfig,
    check_supported,
    execute,
    load_inputs,
    load_model,
    lower_qdq,
    random_inputs,
)
from ..spec import ArchSpec, Conv2d, Gemm
from ._vectors import LayerOperands, conv_operands

__all__ = ["onnx_operands", "dump_vectors", "GEMM_OPS"]

#: The ONNX ops whose operands the array runs.
GEMM_OPS = ("QLinearConv", "ConvInteger", "QLinearMatMul", "MatMulInteger", "QGemm")

# input positions: (x, x_zp, w, w_zp, bias, scales x, w, y)
_POS = {"QLinearConv": (0, 2, 3, 5, 8, (1, 4, 6)), "ConvInteger": (0, 2, 1, 3, None, None),
        "QLinearMatMul": (0, 2, 3, 5, None, (1, 4, 6)), "MatMulInteger": (0, 2, 1, 3, None, None),
        "QGemm": (0, 2, 3, 5, 6, (1, 4, 7))}
#: input position of y_zero_point
_YZ = {"QLinearConv": 7, "QLinearMatMul": 7, "QGemm": 8}


def _attr(node, name, default=None):
    """The value of ``node``'s attribute ``name`` (any type: INT, INTS, FLOAT, STRING...; STRING decoded),
    else ``default``."""
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            v = helper.get_attribute_value(a)
            return v.decode() if isinstance(v, bytes) else v
    return default


def _code_info(v: np.ndarray, where: str, what: str) -> tuple[int, bool]:
    if v.dtype == np.uint8:
        return 8, False
    if v.dtype == np.int8:
        return 8, True
    raise SpecError(where, what, "uint8 or int8 codes", Found(f"dtype {v.dtype}"))


def _zp_scalar(z, where: str, what: str) -> int:
    if z is None:
        return 0
    z = np.asarray(z).reshape(-1)
    if z.size and np.any(z != z[0]):
        raise SpecError(where, what, "one zero point for the tensor (the reference RTL's PEs take "
                        "zero-shifted operands from one zero point)",
                        Found(f"{z.size} different zero points"))
    return int(z[0]) if z.size else 0


def onnx_operands(model, arch: ArchSpec, *, inputs=None, nodes=None, seed: int = 0) -> list:
    """[(layer, LayerOperands, None), ...] for the GEMM-like nodes of a quantized ONNX model.

    Parameters
    ----------
    model : path
        Quantized ONNX model (QOperator or QDQ).
    inputs : path, optional
        ``.npz`` with one array per model input (default: seeded random inputs, as ``hwsim verify``).
    nodes : list of str, optional
        Node names (as ``hwsim verify`` names them); default: every node of :data:`GEMM_OPS`.

    Raises
    ------
    SpecError
        A node name the model lacks or whose op the array does not run (key ``--layer``), per-channel weight
        zero points that differ, an unsupported conv attribute, bad inputs (as :func:`hwsim.onnxq.verify`).
    """
    g = lower_qdq(load_model(model))
    check_supported(g)
    feeds = load_inputs(inputs, g) if inputs else random_inputs(g, seed)
    cfg = DatapathConfig(acc_bits=int(arch.pe.acc_bits), acc_mode=str(arch.pe.acc_mode))
    gemm_nodes = [nm for nm, n in zip(g.names, g.nodes, strict=False) if n.op_type in GEMM_OPS]
    if not gemm_nodes:
        ops = sorted({n.op_type for n in g.nodes})
        raise SpecError(g.path, "", f"a model with a {'/'.join(GEMM_OPS)} node (what the array runs)",
                        Found(f"none (ops: {', '.join(ops[:8])}{', ...' if len(ops) > 8 else ''})"))
    wanted = list(nodes) if nodes else gemm_nodes
    for nm in wanted:
        if nm not in gemm_nodes:
            found = (f"node {nm!r} is a {g.nodes[g.names.index(nm)].op_type}" if nm in g.names
                     else repr(nm))
            listed = f"{', '.join(gemm_nodes[:6])}{', ...' if len(gemm_nodes) > 6 else ''}"
            raise SpecError("command line", "--layer", f"a {'/'.join(GEMM_OPS)} node of {g.path} ({listed})",
                            Found(found))
    res = execute(g, feeds, cfg)
    env = {**g.inits, **feeds, **res.values}
    out = []
    for nm in wanted:
        i = g.names.index(nm)
        n = g.nodes[i]
        where = f"{g.path}: node {nm!r} ({n.op_type})"
        px, pxz, pw, pwz, pb, ps = _POS[n.op_type]

        def get(p, n=n):
            return env.get(n.input[p]) if p is not None and p < len(n.input) and n.input[p] else None

        x, w = np.asarray(get(px)), np.asarray(get(pw))
        a_bits, a_signed = _code_info(x, where, "input 0 (ifmap)")
        b_bits, b_signed = _code_info(w, where, "weight input")
        a_zp = _zp_scalar(get(pxz), where, "ifmap zero point")
        b_zp = _zp_scalar(get(pwz), where, "weight zero point")
        bias = get(pb)
        y = np.asarray(env[n.output[0]])
        requant = {"from": f"{n.op_type} node {nm!r} of {g.path}, run on hwsim's datapath",
                   "out_dtype": str(y.dtype)}
        float_out = n.op_type == "QGemm" and get(ps[2]) is None
        if ps is not None and not float_out:
            requant.update({k: np.asarray(get(p)).astype(float).reshape(-1).tolist()
                            for k, p in zip(("x_scale", "w_scale", "y_scale"), ps, strict=False)})
            yz = get(_YZ[n.op_type])
            requant["out_zero_point"] = int(np.asarray(yz).reshape(-1)[0]) if yz is not None else 0
        if n.op_type == "QGemm":
            requant["alpha"] = float(_attr(n, "alpha", 1.0))
            if _attr(n, "transA", 0):
                x = x.T
            if _attr(n, "transB", 0):
                w = w.T
        if n.op_type in ("QLinearConv", "ConvInteger"):
            if _attr(n, "auto_pad", "NOTSET") not in ("NOTSET", "", None):
                raise SpecError(where, "auto_pad", "explicit pads (NOTSET)", _attr(n, "auto_pad"))
            if x.ndim != 4:
                raise SpecError(where, "input 0", "a 4-D NCHW tensor", Found(f"shape {x.shape}"))
            pads = _attr(n, "pads", [0, 0, 0, 0])
            layer = Conv2d(name=nm, op="conv2d", in_channels=int(x.shape[1]), out_channels=int(w.shape[0]),
                           in_h=int(x.shape[2]), in_w=int(x.shape[3]),
                           kernel=(int(w.shape[2]), int(w.shape[3])),
                           stride=tuple(_attr(n, "strides", [1, 1])),
                           dilation=tuple(_attr(n, "dilations", [1, 1])),
                           padding=(pads[0], pads[2], pads[1], pads[3]), groups=int(_attr(n, "group", 1)),
                           batch=int(x.shape[0]))
            b = np.zeros(layer.out_channels, np.int64) if bias is None else np.asarray(bias)
            gv = layer.gemm
            ofm = y.reshape(y.shape[0], gv.groups, gv.n, -1).transpose(1, 0, 3, 2)
            ofm = ofm.reshape(gv.groups, gv.m, gv.n)
            ops = conv_operands(layer, x, w, b, a_zp=a_zp, b_zp=b_zp, a_bits=a_bits, a_signed=a_signed,
                                b_bits=b_bits, b_signed=b_signed, ofmap=ofm, requant=requant)
        else:
            if w.ndim != 2 or x.ndim < 2 or int(np.prod(x.shape[:-2])) != 1:
                raise SpecError(where, "inputs", "a (M, K) x (K, N) product (leading dimensions of 1)",
                                Found(f"shapes {x.shape} x {w.shape}"))
            a2 = x.reshape(x.shape[-2], x.shape[-1]).astype(np.int64)
            layer = Gemm(name=nm, op="gemm", m=int(a2.shape[0]), k=int(a2.shape[1]), n=int(w.shape[1]))
            bvec = np.zeros(w.shape[1], np.int64)
            if bias is not None:  # QGemm's C: int32, one per output column (or one for all)
                bvec = np.broadcast_to(np.asarray(bias).astype(np.int64).reshape(-1), (w.shape[1],)).copy()
            ops = LayerOperands(nm, (a2,), (w.astype(np.int64),), (bvec,), a_zp, b_zp,
                                a_bits, a_signed, b_bits, b_signed,
                                ofmap=None if float_out else y.reshape(1, a2.shape[0], w.shape[1]),
                                requant=None if float_out else requant)
        out.append((layer, ops, None))
    return out


def dump_vectors(model, arch_path, nodes, *, inputs=None, seed: int = 0, out) -> Path:
    """``hwsim verify --dump-vectors NODE``: the vectors of ``nodes`` of ``model`` on the arch ``arch_path``.

    The operands are the ones ``hwsim verify`` ran (same ``inputs`` or the same seeded random inputs).

    Raises
    ------
    SpecError
        No ``--arch`` (the array's size and dataflow come from it), or as :func:`onnx_operands`.
    """
    from ..spec import load_arch
    from ._vectors import write_layer_vectors

    if arch_path is None:
        raise SpecError("command line", "--arch", "an arch YAML with --dump-vectors (the array the vectors "
                        "are for)", None)
    arch = load_arch(arch_path)
    items = onnx_operands(model, arch, inputs=inputs, nodes=nodes, seed=seed)
    header = {"arch_file": str(arch_path), "model": str(model),
              "operands_from": f"hwsim verify's run on {inputs}" if inputs else
              f"hwsim verify's run on seeded random model inputs (seed {seed})"}
    return write_layer_vectors(arch, items, out, header=header, where=str(arch_path))
