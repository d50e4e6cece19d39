"""onnxruntime's quantize_static on a small float CNN with the ops of mobile networks (strided conv, depthwise
conv, residual Add, Concat, AveragePool, GlobalAveragePool, Reshape, Gemm), built with onnx.helper, calibrated
on seeded data: hwsim verify reports 0 mismatches in QOperator and QDQ form."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwsim.onnxq import host_info, load_model, random_inputs, verify

quantization = pytest.importorskip("onnxruntime.quantization")


def mobile_float_onnx(path, seed=0):
    rng = np.random.default_rng(seed)

    def w(*shape, scale=0.3):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    inits = {"w1": w(8, 3, 3, 3), "b1": w(8, scale=0.1), "wd": w(8, 1, 3, 3), "bd": w(8, scale=0.1),
             "wp": w(8, 8, 1, 1), "bp": w(8, scale=0.1), "wb": w(4, 8, 1, 1), "bb": w(4, scale=0.1),
             "wf": w(5, 12, scale=0.2), "bf": w(5, scale=0.1), "shape": np.array([0, -1], np.int64)}
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1], name="stem"),
        helper.make_node("Relu", ["c1"], ["r1"], name="stem_relu"),
        helper.make_node("Conv", ["r1", "wd", "bd"], ["cd"], group=8, pads=[1, 1, 1, 1], name="dw"),
        helper.make_node("Relu", ["cd"], ["rd"], name="dw_relu"),
        helper.make_node("Conv", ["rd", "wp", "bp"], ["cp"], name="pw"),
        helper.make_node("Add", ["cp", "r1"], ["res"], name="residual"),
        helper.make_node("Conv", ["res", "wb", "bb"], ["cb"], name="branch"),
        helper.make_node("Concat", ["res", "cb"], ["cat"], axis=1, name="concat"),
        helper.make_node("AveragePool", ["cat"], ["ap"], kernel_shape=[2, 2], strides=[2, 2], name="avgpool"),
        helper.make_node("GlobalAveragePool", ["ap"], ["gap"], name="gap"),
        helper.make_node("Reshape", ["gap", "shape"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "wf", "bf"], ["y"], transB=1, name="fc"),
    ]
    g = helper.make_graph(nodes, "mobile", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                          [2, 3, 16, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5])],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    path.write_bytes(m.SerializeToString())


class Reader(quantization.CalibrationDataReader):
    def __init__(self):
        rng = np.random.default_rng(1)
        self._it = iter([{"x": rng.standard_normal((2, 3, 16, 16)).astype(np.float32)} for _ in range(8)])

    def get_next(self):
        return next(self._it, None)


@pytest.mark.parametrize("fmt", ["QOperator", "QDQ"])
@pytest.mark.parametrize("act", ["QUInt8", "QInt8"])
def test_mobile_cnn_quantize_static(tmp_path, fmt, act):
    f = tmp_path / "f.onnx"
    mobile_float_onnx(f)
    q = tmp_path / "q.onnx"
    quantization.quantize_static(str(f), str(q), Reader(), quant_format=getattr(quantization.QuantFormat,
                                                                                fmt),
                                 per_channel=True, activation_type=getattr(quantization.QuantType, act),
                                 weight_type=quantization.QuantType.QInt8)
    for seed in (0, 1):
        rep = verify(q, seed=seed, out=tmp_path / f"v{seed}")
        assert rep.mismatches == 0, rep.lines
    x86_float = rep.data["onnxruntime_x86_float_groups"]
    assert set(x86_float) == (set() if act == "QUInt8" or fmt == "QOperator" else
                              {"stem", "dw", "residual", "branch", "concat"})
    # what the user deploys: the default session's outputs. With int8 activations hwsim runs them as that
    # session does on x86 (int8 pairs rewritten to uint8: u8 x s8 kernels; the five groups it cannot rewrite
    # in float32) and gets them equal too here (reported, not counted: see the next test)
    assert rep.data["default_session_outputs_equal"] == {"y": True}
    if x86_float:
        assert [t["name"] for t in rep.data["tensors"] if t.get("session") == "default"] == ["y"]
    ops = {t["op"] for t in rep.data["tensors"]}
    assert {"QLinearConv", "QLinearAdd", "QLinearConcat", "QLinearAveragePool",
            "QLinearGlobalAveragePool"} <= ops, ops
    assert rep.elements > 2 * (8 * 64 * 4 + 12 * 16)


def _fork_float_onnx(path):
    """Conv 16 -> 64 (3x3) read by two convs whose outputs are added: one shared tensor, c1."""
    rng = np.random.default_rng(5)
    inits = {"w1": (rng.standard_normal((64, 16, 3, 3)) * 0.2).astype(np.float32),
             "w2": (rng.standard_normal((64, 64, 3, 3)) * 0.05).astype(np.float32),
             "w3": (rng.standard_normal((64, 64, 1, 1)) * 0.05).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Conv", ["c1", "w2"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
             helper.make_node("Conv", ["c1", "w3"], ["c3"], name="conv3"),
             helper.make_node("Add", ["c2", "c3"], ["y"], name="add")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 40, 40])
    g = helper.make_graph(nodes, "fork", [x],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    path.write_bytes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())


def test_dedicated_qdq_pairs_compared_as_the_default_session_fuses_them(tmp_path):
    # quantize_static(extra_options={"DedicatedQDQPair": True}) gives each reader of a shared tensor its own
    # Q -> DQ pair: identical QuantizeLinear nodes that onnxruntime merges (common-subexpression elimination)
    # and then fuses into QLinearConv. Requested as outputs of the instrumented session they stayed unmerged,
    # conv1 ran in float32 there, and verify counted codes of a session that is not the default one (this
    # model: 89 mismatches on seed 0, the default session's output equal; a trial's MobileNetV2: 77,517)
    class Calib(quantization.CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(2)
            self._it = iter([{"x": rng.standard_normal((1, 16, 40, 40)).astype(np.float32)}
                             for _ in range(4)])

        def get_next(self):
            return next(self._it, None)

    f, q = tmp_path / "f.onnx", tmp_path / "q.onnx"
    _fork_float_onnx(f)
    quantization.quantize_static(str(f), str(q), Calib(), quant_format=quantization.QuantFormat.QDQ,
                                 per_channel=True, activation_type=quantization.QuantType.QUInt8,
                                 extra_options={"DedicatedQDQPair": True})
    for seed in (0, 1):
        rep = verify(q, seed=seed)
        assert rep.mismatches == 0, rep.lines
        assert rep.data["default_session_outputs_equal"] == {"y": True}
    (note,) = [x for x in rep.lines if "output(s) of repeated nodes" in x]
    assert note.startswith("note: 2 output(s) of repeated nodes (c1_QuantizeLinear_Output_1, "
                           "c1_QuantizeLinear_Output_2) are not compared"), note
    # the readers of c1 are compared: both convs and the Add
    assert {"conv2", "conv3", "add"} <= {t["node"] for t in rep.data["tensors"]}, rep.data["tensors"]
    # a narrow accumulator (18 bits) breaks conv1, whose output is not returned: its readers differ, and
    # their local re-run (on onnxruntime's inputs elsewhere) says it could not use onnxruntime's c1
    from hwsim.onnxq import DatapathConfig

    rep = verify(q, seed=0, config=DatapathConfig(acc_bits=18))
    bad = [t for t in rep.data["tensors"] if t["mismatches"]]
    assert rep.mismatches > 0 and bad
    readers = [t for t in bad if t["node"] in ("conv2", "conv3")]
    assert readers and all("local_mismatches" not in t and t["local_inputs_not_returned"] for t in readers)
    # the first Q of the pair made a graph output: onnxruntime then merges nothing and leaves conv1 in
    # float32 (a review measured 125 false mismatches while hwsim still merged); hwsim merges nothing either
    import onnx

    m = onnx.load(str(q))
    m.graph.output.append(onnx.helper.make_tensor_value_info("c1_QuantizeLinear_Output_1",
                                                             TensorProto.UINT8, None))
    q2 = tmp_path / "q2.onnx"
    onnx.save(m, str(q2))
    rep = verify(q2, seed=0)
    assert rep.mismatches == 0, rep.lines
    assert not any("output(s) of repeated nodes" in x or "duplicate QuantizeLinear" in x for x in rep.lines)


def test_default_session_through_float_groups_is_reported_not_counted(tmp_path, monkeypatch):
    # MobileNetV2 with int8 activations (quantize_static's default) kept 25 groups in float32 in the default
    # session, and hwsim's float Conv differs from MLAS's in the last bits: codes after them moved and grew
    # (843 of 1000 logits, up to 10 codes) while every integer tensor matched: a false failure. Here the
    # float Conv of the float groups is perturbed by one part in 2^12 (far above float rounding, so codes move
    # for sure): the default session's output differs, the verdict counts only the integer tensors.
    import onnxruntime as ort

    from hwsim.onnxq import _ops, _run

    f, q = tmp_path / "f.onnx", tmp_path / "q.onnx"
    mobile_float_onnx(f)
    quantization.quantize_static(str(f), str(q), Reader(), quant_format=quantization.QuantFormat.QDQ,
                                 per_channel=True, activation_type=quantization.QuantType.QInt8)
    conv = _ops.FLOAT_GROUP_KERNELS[("", "Conv")]

    def nudged(n, ins, cfg):
        outs, st = conv(n, ins, cfg)
        return [o * np.float32(1 + 2 ** -12) for o in outs], st

    monkeypatch.setitem(_run.FLOAT_GROUP_KERNELS, ("", "Conv"), nudged)
    rep = verify(q, seed=0)
    nd = sum(t["mismatches"] for t in rep.data["tensors"] if t.get("session") == "default")
    assert rep.data["default_session_outputs_equal"] == {"y": False} and nd > 0
    assert rep.mismatches == 0 and rep.data["result"] == "pass"
    (t,) = [t for t in rep.data["tensors"] if t.get("session") == "default"]
    assert t["counted"] is False and rep.elements == sum(x["elements"] for x in rep.data["tensors"]
                                                         if x.get("counted", True)) + sum(
        x["elements"] for x in rep.data["float_tensors"])
    assert f"y (DequantizeLinear {t['node']!r}) (default session, through float32 groups: not counted): " \
           f"{nd} of {t['elements']} differ" in rep.lines
    assert any(x.startswith("note: output 'y' of the default session differs") for x in rep.lines)
    assert t["max_rel_diff"] < 0.2 and not any(x.startswith("warning:") for x in rep.lines)
    # a recording of the default session (this host's onnxruntime) is all a recorded comparison has: counted
    # (not counting would pass the model on nothing), with a note naming the float32 groups
    x = random_inputs(load_model(q), 0)
    y = ort.InferenceSession(str(q), providers=["CPUExecutionProvider"]).run(None, x)[0]
    np.savez(tmp_path / "x.npz", **x)
    np.savez(tmp_path / "y.npz", y=y)
    rec = verify(q, inputs=tmp_path / "x.npz", expected=tmp_path / "y.npz", target=host_info().target)
    assert rec.mismatches == nd and rec.elements == y.size and rec.data["tensors"][0]["counted"] is True
    (n,) = [ln for ln in rec.lines if ln.startswith("note: the default session computes 5 QDQ group(s)")]
    assert "(branch, concat, dw, residual, ...)" in n
    # a gross error of hwsim's float32-group model (half the Conv's value): still not counted live, but warned
    monkeypatch.setitem(_run.FLOAT_GROUP_KERNELS, ("", "Conv"),
                        lambda n, ins, cfg: ([o * np.float32(0.5) for o in conv(n, ins, cfg)[0]],
                                             conv(n, ins, cfg)[1]))
    rep = verify(q, seed=0)
    assert rep.mismatches == 0
    (w,) = [x for x in rep.lines
            if x.startswith("warning: output 'y' of the default session differs by up to")]
    assert "hwsim's model of the float32 groups may be wrong" in w


@pytest.mark.parametrize("act", ["QUInt8", "QInt8"])
def test_qdq_lowering_matches_onnxruntimes_fusion(tmp_path, act):
    """hwsim lowers the QDQ groups to the integer ops onnxruntime's graph optimizer fuses them into (extended
    level, with int8 groups allowed), and predicts which groups onnxruntime's *default* x86 optimizer leaves
    in float32: with int8 activations, the residual's shared tensors keep their int8 Q/DQ pairs, which ORT
    does not rewrite to uint8, so the convs and the Add/Concat next to them stay float."""
    import onnx
    import onnxruntime as ort

    from hwsim.onnxq import load_model, lower_qdq

    f = tmp_path / "f.onnx"
    mobile_float_onnx(f)
    q = tmp_path / "q.onnx"
    quantization.quantize_static(str(f), str(q), Reader(), quant_format=quantization.QuantFormat.QDQ,
                                 per_channel=True, activation_type=getattr(quantization.QuantType, act))

    def optimized(int8_allowed):
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        so.optimized_model_filepath = str(tmp_path / "opt.onnx")
        if int8_allowed:
            so.add_session_config_entry("session.qdqisint8allowed", "1")
        ort.InferenceSession(str(q), so, providers=["CPUExecutionProvider"])
        return onnx.load(str(tmp_path / "opt.onnx")).graph.node

    lowered = lower_qdq(load_model(q))
    ours = [n.op_type for n in lowered.nodes]
    theirs = [n.op_type for n in optimized(True)]
    fused = ("QLinearConv", "QLinearMatMul", "QGemm", "QLinearAdd", "QLinearConcat", "QLinearAveragePool",
             "QLinearGlobalAveragePool", "QuantizeLinear", "DequantizeLinear", "Conv", "Add", "Gemm")
    assert {o: ours.count(o) for o in fused} == {o: theirs.count(o) for o in fused}, (ours, theirs)
    left_float = {n.name for n in optimized(False) if n.op_type in ("Conv", "Add", "Concat", "Gemm",
                                                                    "MatMul")}
    assert set(lowered.ort_x86_float) == left_float
    assert left_float == (set() if act == "QUInt8" else {"stem", "dw", "residual", "branch", "concat"})


def silu_float_onnx(path, seed=2):
    """Conv -> SiLU (x * Sigmoid(x)) -> Conv -> LeakyRelu -> GlobalAveragePool: YOLO-style activations."""
    rng = np.random.default_rng(seed)
    inits = {"w1": (rng.standard_normal((8, 3, 3, 3)) * 0.4).astype(np.float32),
             "w2": (rng.standard_normal((6, 8, 1, 1)) * 0.4).astype(np.float32)}
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Sigmoid", ["c1"], ["s1"], name="sigmoid"),
        helper.make_node("Mul", ["c1", "s1"], ["m1"], name="silu"),
        helper.make_node("Conv", ["m1", "w2"], ["c2"], name="conv2"),
        helper.make_node("LeakyRelu", ["c2"], ["l2"], alpha=0.1, name="leaky"),
        helper.make_node("GlobalAveragePool", ["l2"], ["y"], name="gap"),
    ]
    g = helper.make_graph(nodes, "silu", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                        [2, 3, 12, 12])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    path.write_bytes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())


class SiluReader(quantization.CalibrationDataReader):
    def __init__(self):
        rng = np.random.default_rng(3)
        self._it = iter([{"x": rng.standard_normal((2, 3, 12, 12)).astype(np.float32)} for _ in range(4)])

    def get_next(self):
        return next(self._it, None)


@pytest.mark.parametrize("fmt", ["QOperator", "QDQ"])
def test_silu_leaky_relu_network(tmp_path, fmt):
    f = tmp_path / "f.onnx"
    silu_float_onnx(f)
    q = tmp_path / "q.onnx"
    quantization.quantize_static(str(f), str(q), SiluReader(),
                                 quant_format=getattr(quantization.QuantFormat, fmt),
                                 per_channel=True, activation_type=quantization.QuantType.QUInt8)
    rep = verify(q, seed=0, out=tmp_path / "v")
    assert rep.mismatches == 0, rep.lines
    ops = {t["op"] for t in rep.data["tensors"]}
    assert {"QLinearSigmoid", "QLinearMul", "QLinearLeakyRelu", "QLinearGlobalAveragePool"} <= ops, ops
