"""Float ONNX graphs as workloads: layer shapes from shape inference, ONNX attribute semantics."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwsim.errors import ShapeWarning, SpecError
from hwsim.frontends._onnx import read_onnx_shapes

from .utils import ROOT


def _model(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8, 15, 15])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w1 = numpy_helper.from_array(np.zeros((16, 8, 3, 3), np.float32), "w1")
    w2 = numpy_helper.from_array(np.zeros((16, 1, 3, 3), np.float32), "w2")
    wf = numpy_helper.from_array(np.zeros((10, 16 * 8 * 8), np.float32), "wf")
    nodes = [
        # stride 2, pads [top, left, bottom, right] = [1, 0, 1, 2] -> out h = (15+2-3)//2+1 = 8, w =
        # (15+2-3)//2+1 = 8
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="c1", strides=[2, 2], pads=[1, 0, 1, 2]),
        # depthwise, SAME_UPPER on 8x8 stride 1 -> 8x8
        helper.make_node("Conv", ["c1", "w2"], ["c2"], name="dw", group=16, auto_pad="SAME_UPPER"),
        helper.make_node("Flatten", ["c2"], ["f"]),
        helper.make_node("Gemm", ["f", "wf"], ["y"], name="fc", transB=1),
    ]
    g = helper.make_graph(nodes, "tiny", [x], [y], initializer=[w1, w2, wf])
    p = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), str(p))
    return p


def test_shapes_and_attributes(tmp_path):
    w = read_onnx_shapes(_model(tmp_path))
    c1, dw, fc = w.layers
    assert (c1.batch, c1.in_channels, c1.out_channels, c1.pads, c1.out_hw) == (2, 8, 16, (1, 1, 0, 2), (8, 8))
    # GEMM view of c1: M = 2*8*8 = 128, K = 8*3*3 = 72, N = 16
    assert (c1.gemm.m, c1.gemm.k, c1.gemm.n) == (128, 72, 16)
    # SAME_UPPER, 3x3 stride 1: total padding 2, split 1/1
    assert (dw.n_groups, dw.pads, dw.out_hw, dw.gemm.k) == (16, (1, 1, 1, 1), (8, 8), 9)
    # Gemm with transB: A is (2, 1024), B is (10, 1024) -> M=2, K=1024, N=10
    assert (fc.op, fc.m, fc.k, fc.n) == ("fc", 2, 1024, 10)


def test_not_onnx_is_a_clear_error(tmp_path):
    p = tmp_path / "bad.onnx"
    p.write_bytes(b"not a protobuf at all")
    with pytest.raises(SpecError, match=r"bad\.onnx: expected a valid ONNX model, found '"):
        read_onnx_shapes(p)


def test_zigzag_resnet18_matches_our_yaml():
    # ZigZag ships a shape-only ResNet-18 (initializers point at missing external data): 20 Conv + 1 Gemm.
    from hwsim.spec import load_workload_yaml

    w = read_onnx_shapes(ROOT / "tests/data/zigzag/workload/resnet18.onnx")
    ours = load_workload_yaml(ROOT / "workloads/resnet18.yaml")
    assert len(w.layers) == 21
    assert [(layer.gemm.m, layer.gemm.k, layer.gemm.n) for layer in w.layers] == \
        [(layer.gemm.m, layer.gemm.k, layer.gemm.n) for layer in ours.layers]
    assert w.total_macs == ours.total_macs == 1_814_073_344


def _save(tmp_path, nodes, inits, x_shape, name, opset=17, x_type=TensorProto.FLOAT):
    x = helper.make_tensor_value_info("x", x_type, x_shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    g = helper.make_graph(nodes, name, [x], [y], initializer=inits)
    p = tmp_path / f"{name}.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", opset),
                                                  helper.make_opsetid("com.microsoft", 1)]), str(p))
    return p


def _q(name, value, dtype=np.uint8):
    return numpy_helper.from_array(np.array(value, dtype), name)


def test_qoperator_contrib_gemms_are_layers(tmp_path):
    # onnxruntime's QOperator export: com.microsoft QGemm (the fc) after QLinearAdd, and a
    # DynamicQuantizeMatMul; before the fix QGemm was dropped (the trial's cnn_qop_pt: 138,240 of 148,480
    # MACs)
    inits = [_q("s", 0.1, np.float32), _q("z", 0), _q("wz", 0, np.int8),
             numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.int8), "wc"),
             numpy_helper.from_array(np.zeros((10, 256), np.int8), "wf"),
             numpy_helper.from_array(np.zeros((10, 6), np.float32), "wd")]
    ms = "com.microsoft"
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
        helper.make_node("QLinearConv", ["xq", "s", "z", "wc", "s", "wz", "s", "z"], ["c"], name="conv",
                         pads=[1, 1, 1, 1]),
        helper.make_node("QLinearAdd", ["c", "s", "z", "c", "s", "z", "s", "z"], ["a"], name="add",
                         domain=ms),
        helper.make_node("Flatten", ["a"], ["f"]),
        helper.make_node("QGemm", ["f", "s", "z", "wf", "s", "wz", "", "s", "z"], ["g"], name="fc",
                         transB=1, domain=ms),
        helper.make_node("DequantizeLinear", ["g", "s", "z"], ["gd"]),
        helper.make_node("Reshape", ["gd", "shape"], ["r"]),
        helper.make_node("DynamicQuantizeMatMul", ["r", "wq6", "s", "wz"], ["y"], name="dqmm", domain=ms),
    ]
    inits += [numpy_helper.from_array(np.array([1, 10], np.int64), "shape"),
              numpy_helper.from_array(np.zeros((10, 6), np.int8), "wq6")]
    w = read_onnx_shapes(_save(tmp_path, nodes, inits, [1, 3, 8, 8], "qop"))
    assert [(x.name, x.op) for x in w.nodes] == [("conv", "conv2d"), ("add", "add"), ("fc", "fc"),
                                                 ("dqmm", "gemm")]
    conv, _, fc, dqmm = w.nodes
    # conv: 3x3 pad 1 keeps 8x8: M = 64, K = 3*9 = 27, N = 4 -> 6,912 MACs; QGemm: A (1, 256) = flatten of
    # 4x8x8, B (10, 256) transB -> M 1, K 256, N 10 -> 2,560; DynamicQuantizeMatMul (1, 10) x (10, 6) -> 60
    assert [(x.gemm.m, x.gemm.k, x.gemm.n) for x in (conv, fc, dqmm)] == [(64, 27, 4), (1, 256, 10),
                                                                         (1, 10, 6)]
    assert w.total_macs == 6912 + 2560 + 60
    assert [(x.weight_bits, x.act_bits) for x in (conv, fc, dqmm)] == [(8, 8)] * 3


def test_every_other_node_is_a_vector_op_or_named(tmp_path):
    # the trial's odd.onnx: Sigmoid, Resize, Tanh and CumSum vanished without a note
    inits = [numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.float32), "w"),
             numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
             numpy_helper.from_array(np.array(3, np.int64), "axis")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Sigmoid", ["c"], ["s"], name="sig"),
             helper.make_node("Resize", ["s", "", "scales"], ["r"], name="up", mode="nearest"),
             helper.make_node("Tanh", ["r"], ["t"], name="tanh"),
             helper.make_node("CumSum", ["t", "axis"], ["cs"], name="cs"),
             helper.make_node("Exp", ["cs"], ["y"], name="myexp")]
    with pytest.warns(ShapeWarning) as rec:
        w = read_onnx_shapes(_save(tmp_path, nodes, inits, [1, 3, 8, 8], "odd"))
    assert [str(r.message) for r in rec] == [
        f"{tmp_path / 'odd.onnx'}: 1 node(s) not timed, priced or counted in DRAM traffic (no hwsim op for "
        "them; their output is taken as their input tensor): myexp (Exp)"]
    # conv output 1x4x8x8 = 256 elements; Resize x2 in H and W -> 1x4x16x16 = 1,024
    assert [(x.name, x.op, x.elements) for x in w.nodes[1:]] == [
        ("sig", "sigmoid", 256), ("up", "copy", 1024), ("tanh", "tanh", 1024), ("cs", "cumsum", 1024)]
    g = w.graph()
    assert g.tensors["up"].elements == 1024 and g.tensors["up"].chw is None


def test_bits_from_qdq_types_and_contrib_int4(tmp_path):
    # quantize_static(weight_type=QInt4) at opset 17 writes com.microsoft Q/DQ, unknown to onnx's shape
    # inference: before the fix 'expected inferable input shapes, found None and None'. Weights int4 -> 4
    # bits, activations uint16 -> 16 bits (the zero point's type sets the codes' type)
    ms = "com.microsoft"
    inits = [_q("s", 0.1, np.float32), _q("z16", 0, np.uint16),
             helper.make_tensor("w4", TensorProto.INT4, [4, 3, 3, 3], [0] * 108),
             helper.make_tensor("wz4", TensorProto.INT4, [], [0]),
             numpy_helper.from_array(np.zeros((3, 4), np.int8), "w8"), _q("z8", 0, np.int8)]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z16"], ["xq"], domain=ms),
             helper.make_node("DequantizeLinear", ["xq", "s", "z16"], ["xd"], domain=ms),
             helper.make_node("DequantizeLinear", ["w4", "s", "wz4"], ["wd"], domain=ms),
             helper.make_node("Conv", ["xd", "wd"], ["c"], name="conv"),
             helper.make_node("DequantizeLinear", ["w8", "s", "z8"], ["w8d"]),
             helper.make_node("Transpose", ["w8d"], ["w8t"]),
             helper.make_node("MatMul", ["c", "w8t"], ["y"], name="mm")]
    w = read_onnx_shapes(_save(tmp_path, nodes, inits, [1, 3, 6, 6], "w4"))
    conv, mm = w.layers
    # conv 3x3 no pad on 6x6 -> (1, 4, 4, 4): M 16, K 27, N 4; MatMul (1, 4, 4, 4) x (3, 4)^T = (4, 3):
    # count 1*4 = 4, M 4, K 4, N 3
    assert (conv.gemm.m, conv.gemm.k, conv.gemm.n) == (16, 27, 4)
    assert (mm.count, mm.m, mm.k, mm.n) == (4, 4, 4, 3)
    assert (conv.weight_bits, conv.act_bits) == (4, 16)
    # the MatMul's A is the float Conv output (no DQ in front): default bits; B int8 through a Transpose
    assert (mm.weight_bits, mm.act_bits) == (8, None)


def test_elementwise_ops_with_a_constant_are_vector_ops(tmp_path):
    # the trial's const_ops.onnx: MatMul -> Add c -> Mul c -> Div c -> Sub c -> Pow c -> Sqrt -> MatMul.
    # Add, Mul and Sub with one constant operand were dropped with no row and no warning; now each is a
    # vector op sized by the activation (MatMul (1, 4, 8) x (8, 8): 32 elements) with its constant's
    # elements (bias 8, scalars 1; Sub's constant a Constant node of shape [1]); Div is a division, Sqrt
    # x * rsqrt(x); Pow (no op class for x^y) stays in the warning and passes its input through
    from hwsim._pipeline import simulate_workload

    from .utils import make_arch

    f32 = np.float32
    inits = [numpy_helper.from_array(np.zeros((8, 8), f32), "w1"),
             numpy_helper.from_array(np.ones(8, f32), "b"), numpy_helper.from_array(np.array(2, f32), "s"),
             numpy_helper.from_array(np.array(3, f32), "d"), numpy_helper.from_array(np.array(2, f32), "p"),
             numpy_helper.from_array(np.zeros((8, 4), f32), "w2")]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["m"], name="mm1"),
             helper.make_node("Add", ["m", "b"], ["a"], name="add"),
             helper.make_node("Mul", ["s", "a"], ["u"], name="mul"),
             helper.make_node("Div", ["u", "d"], ["v"], name="div"),
             helper.make_node("Constant", [], ["e"], value=numpy_helper.from_array(np.ones(1, f32), "e")),
             helper.make_node("Sub", ["v", "e"], ["t"], name="sub"),
             helper.make_node("Pow", ["t", "p"], ["q"], name="pow"),
             helper.make_node("Sqrt", ["q"], ["r"], name="sqrt"),
             helper.make_node("MatMul", ["r", "w2"], ["y"], name="mm2")]
    with pytest.warns(ShapeWarning) as rec:
        w = read_onnx_shapes(_save(tmp_path, nodes, inits, [1, 4, 8], "const_ops"))
    assert [str(r.message) for r in rec] == [
        f"{tmp_path / 'const_ops.onnx'}: 1 node(s) not timed, priced or counted in DRAM traffic (no hwsim op "
        "for them; their output is taken as their input tensor): pow (Pow)"]
    assert [(x.name, x.op, getattr(x, "elements", None), getattr(x, "constant", None), x.inputs)
            for x in w.nodes] == [
        ("mm1", "gemm", None, None, ("input",)), ("add", "add", 32, 8, ("mm1",)),
        ("mul", "mul", 32, 1, ("add",)), ("div", "div", 32, 1, ("mul",)), ("sub", "add", 32, 1, ("div",)),
        ("sqrt", "sqrt", 32, None, ("sub",)), ("mm2", "gemm", None, None, ("sqrt",))]
    vu = {"lanes": 4, "arithmetic": "int", "int_bits": 32, "latency_cycles": 2,
          "throughput": {"add": 1, "mul": 1, "max": 1, "exp": 1, "divide": 0.25, "rsqrt": 0.25}}
    res = simulate_workload(make_arch(vector_unit=vu), w)
    v = {r["node"]: r for r in res.vector_rows}
    # n = 32, 4 lanes, 2 cycles of latency: add/mul/sub ceil(32 / 4) + 2 = 10; div 32 divides at 0.25 per
    # lane: ceil(32 / 1) + 2 = 34; sqrt rsqrt 32 (32 cycles) + mul 32 (8) + 2 = 42
    assert {k: (r["ops_add"], r["ops_mul"], r["ops_divide"], r["ops_rsqrt"], r["compute_cycles"])
            for k, r in v.items()} == {"add": (32, 0, 0, 0, 10), "mul": (0, 32, 0, 0, 10),
                                       "div": (0, 0, 32, 0, 34), "sub": (32, 0, 0, 0, 10),
                                       "sqrt": (0, 32, 0, 32, 42)}
    # reuse none, 8-bit tensors: each node reads its 32 B input and writes 32 B; the constant is read once
    # from DRAM: + 8 B (add's bias), + 1 B (the scalars)
    assert {k: (r["dram_read_bytes"], r["dram_write_bytes"]) for k, r in v.items()} == {
        "add": (40, 32), "mul": (33, 32), "div": (33, 32), "sub": (33, 32), "sqrt": (32, 32)}
    # DRAM energy: horowitz_45nm 1300 pJ per 64-bit access = 162.5 pJ per byte: add (40 + 32) B = 11,700 pJ
    assert v["add"]["energy_dram_pj"] == pytest.approx(72 * 162.5)


def _dynamic_cnn(tmp_path):
    """A float Conv(3->4, 3x3, pad 1) - Relu - Flatten - MatMul(256 x 10) - Add model on a 1x3x8x8 input,
    quantized by onnxruntime's own quantize_dynamic (QInt8 weights): DynamicQuantizeLinear in front of a
    ConvInteger and a MatMulInteger, each followed by Cast, Mul(the product of the two scales), Add(bias)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    rng = np.random.default_rng(0)
    f32 = np.float32
    inits = [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(f32), "wc"),
             numpy_helper.from_array(rng.standard_normal(4).astype(f32), "bc"),
             numpy_helper.from_array(rng.standard_normal((256, 10)).astype(f32), "wf"),
             numpy_helper.from_array(rng.standard_normal(10).astype(f32), "bf")]
    nodes = [helper.make_node("Conv", ["x", "wc", "bc"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Flatten", ["r"], ["f"], name="flat"),
             helper.make_node("MatMul", ["f", "wf"], ["m"], name="fc"),
             helper.make_node("Add", ["m", "bf"], ["y"], name="bias")]
    g = helper.make_graph(nodes, "dyn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], initializer=inits)
    f = tmp_path / "f32.onnx"
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(f))
    q = tmp_path / "dyn.onnx"
    quantize_dynamic(str(f), str(q), weight_type=QuantType.QInt8)
    return q


def test_dynamic_quantization_is_gemms_and_vector_ops(tmp_path):
    # The trial's mlp_dyn.onnx / d17.onnx (quantize_dynamic): before the fix 'layers[0].elements: expected
    # the element count of the network input (a non-GEMM node reads it), found nothing (node
    # ..._quant_scales_mul)': DynamicQuantizeLinear passed its input through to its scale output too, and the
    # scalar Mul(x_scale, w_scale) became a vector node reading the network input
    from hwsim._pipeline import simulate_workload

    from .utils import make_arch

    p = _dynamic_cnn(tmp_path)
    ops = [n.op_type for n in onnx.load(str(p)).graph.node]
    assert {"DynamicQuantizeLinear", "ConvInteger", "MatMulInteger"} <= set(ops)
    w = read_onnx_shapes(p)
    kinds = [x.op for x in w.nodes]
    # quantize, conv, dequantize mul, bias add, quantize (Relu and Flatten pass through), gemm, mul, add
    assert kinds == ["quantize", "conv2d", "mul", "add", "quantize", "gemm", "mul", "add"]
    conv, fc = w.layers
    # ConvInteger 3x3 pad 1 keeps 8x8: M = 64, K = 3*9 = 27, N = 4 -> 6,912 MACs; MatMulInteger (1, 256) x
    # (256, 10): M 1, K 256, N 10 -> 2,560 MACs; uint8 activations, int8 weights
    assert (conv.gemm.m, conv.gemm.k, conv.gemm.n) == (64, 27, 4)
    assert (fc.m, fc.k, fc.n, fc.count) == (1, 256, 10, 1)
    assert w.total_macs == 6_912 + 2_560
    assert [(x.weight_bits, x.act_bits) for x in (conv, fc)] == [(8, 8), (8, 8)]
    q0, _, mul0, add0, q1, _, mul1, add1 = w.nodes
    # DynamicQuantizeLinear over its input: 1*3*8*8 = 192 and the conv's 4*8*8 = 256 elements, to uint8
    assert (q0.elements, q0.bits, q0.inputs) == (192, 8, ("input",))
    assert (q1.elements, q1.bits, q1.inputs) == (256, 8, (add0.name,))
    # the dequantizing multiply by the run-time scalar x_scale * w_scale (1 element) and the bias (4, 10)
    assert (mul0.elements, mul0.constant, add0.constant) == (256, 1, 4)
    assert (mul1.elements, mul1.constant, add1.constant) == (10, 1, 10)
    vu = {"lanes": 4, "arithmetic": "int", "int_bits": 32, "latency_cycles": 2,
          "throughput": {"add": 1, "mul": 1, "max": 1, "exp": 1, "divide": 0.25, "rsqrt": 0.25}}
    res = simulate_workload(make_arch(vector_unit=vu), w)
    v = {r["node"]: r for r in res.vector_rows}[q0.name]
    # quantize, n = 192: min and max (max 2n) + clamp (max 2n) = 768, mul 192, add 192, one divide (the
    # reciprocal of the scale). 4 lanes: max 768/4 = 192, mul 48, add 48, divide 1 / (4 lanes * 0.25) = 1
    # cycle, + 2 latency = 291 cycles
    assert (v["ops_max"], v["ops_mul"], v["ops_add"], v["ops_divide"]) == (768, 192, 192, 1)
    assert v["compute_cycles"] == 192 + 48 + 48 + 1 + 2


def test_simulate_cli_takes_a_dynamic_quantized_model(tmp_path, capsys):
    from hwsim.cli import main

    p = _dynamic_cnn(tmp_path)
    assert main(["simulate", str(ROOT / "arch/tpu_v1.yaml"), str(p), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr()
    # 6,912 + 2,560 MACs (test_dynamic_quantization_is_gemms_and_vector_ops); 6 non-GEMM nodes on TPU v1's
    # vector unit, none named in a warning
    assert ": 2 layers, 9,472 MACs," in out.out and "; 6 non-GEMM nodes," in out.out
    assert "warning" not in out.err


def test_symbolic_input_dims_bound_to_one_or_given(tmp_path):
    # the trial's dyn.onnx (torch export with dynamic_axes={"x": {0: "b"}}): before the fix 'expected
    # inferable input shapes, found [0, 3, 10, 10] and ...'. Now 'b' is bound to 1 with a warning naming it,
    # or to dims={"b": N}
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 3, 10, 10])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 4])
    inits = [numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "w"),
             numpy_helper.from_array(np.zeros((8, 4), np.float32), "wf")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("GlobalAveragePool", ["c"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "wf"], ["y"], name="fc")]
    p = tmp_path / "sym.onnx"
    onnx.save(helper.make_model(helper.make_graph(nodes, "sym", [x], [y], initializer=inits),
                                opset_imports=[helper.make_opsetid("", 17)]), str(p))
    with pytest.warns(ShapeWarning) as rec:
        w = read_onnx_shapes(p)
    assert [str(r.message) for r in rec] == [
        f"{p}: symbolic input dimension(s) bound to 1: x[0] 'b' (another value: read_onnx_shapes(dims=...), "
        "or fix it in the file with python -m onnxruntime.tools.make_dynamic_shape_fixed --dim_param NAME "
        "--dim_value N IN OUT)"]
    # batch 1: conv 3x3 valid on 10x10 -> 8x8: M = 64, K = 27, N = 8; fc (1, 8) x (8, 4)
    conv, fc = w.layers
    assert (conv.batch, conv.gemm.m, conv.gemm.k, conv.gemm.n, fc.m, fc.k, fc.n) == (1, 64, 27, 8, 1, 8, 4)
    import warnings as _w

    with _w.catch_warnings():
        _w.simplefilter("error")
        w5 = read_onnx_shapes(p, dims={"b": 5})
    conv, fc = w5.layers
    # batch 5: M = 5 * 64 = 320; fc M = 5
    assert (conv.batch, conv.gemm.m, fc.m) == (5, 320, 5)
    with pytest.raises(SpecError, match=r"sym\.onnx: dims\.batch: expected a symbolic dimension of the "
                                        r"model's inputs \(b\), found 'batch'"):
        read_onnx_shapes(p, dims={"batch": 5})


def test_symbolic_height_bound_to_one_that_contradicts_the_weights_is_refused(tmp_path):
    # the second trial's cnn_hw.onnx, reduced: x [b, 3, h, w], conv 3 -> 4 (3x3, pad 1), flatten, fc whose
    # weight is (10, 64): only h = w = 4 gives the 4 * 4 * 4 = 64 features it reads. Bound to 1, the flatten
    # gives 4 and the Gemm's K (4) contradicts the weight's 64: refused (it reported 4x fewer fc MACs)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 3, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 10])
    inits = [numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.float32), "w"),
             numpy_helper.from_array(np.zeros((10, 64), np.float32), "wf")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Flatten", ["c"], ["f"]),
             helper.make_node("Gemm", ["f", "wf"], ["y"], name="fc", transB=1)]
    p = tmp_path / "hw.onnx"
    onnx.save(helper.make_model(helper.make_graph(nodes, "hw", [x], [y], initializer=inits),
                                opset_imports=[helper.make_opsetid("", 17)]), str(p))
    with pytest.raises(SpecError) as e:
        read_onnx_shapes(p)
    assert str(e.value) == (
        f"{p}: dims: expected values of the symbolic input dimensions that agree with the model's weights "
        "(read_onnx_shapes(dims=...), or fix them in the file with python -m "
        "onnxruntime.tools.make_dynamic_shape_fixed), found \"x[0] 'b', x[2] 'h', x[3] 'w' bound to 1\" "
        "(Gemm, node name: fc: [ShapeInferenceError] Dimension mismatch in unification between 64 and 4)")
    import warnings as _w

    with _w.catch_warnings():
        _w.simplefilter("error")
        fc = read_onnx_shapes(p, dims={"b": 1, "h": 4, "w": 4}).layers[1]
    assert (fc.m, fc.k, fc.n) == (1, 64, 10)
