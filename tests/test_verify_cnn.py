"""onnxruntime's quantize_static on a small float CNN with the ops of mobile networks (strided conv, depthwise
conv, residual Add, Concat, AveragePool, GlobalAveragePool, Reshape, Gemm), built with onnx.helper, calibrated on
seeded data: hwsim verify reports 0 mismatches in QOperator and QDQ form."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwsim.onnxq import verify

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
    g = helper.make_graph(nodes, "mobile", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 16, 16])],
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
    quantization.quantize_static(str(f), str(q), Reader(), quant_format=getattr(quantization.QuantFormat, fmt),
                                 per_channel=True, activation_type=getattr(quantization.QuantType, act),
                                 weight_type=quantization.QuantType.QInt8)
    for seed in (0, 1):
        rep = verify(q, seed=seed, out=tmp_path / f"v{seed}")
        assert rep.mismatches == 0, rep.lines
    ops = {t["op"] for t in rep.data["tensors"]}
    assert {"QLinearConv", "QLinearAdd", "QLinearConcat", "QLinearAveragePool",
            "QLinearGlobalAveragePool"} <= ops, ops
    assert rep.elements > 2 * (8 * 64 * 4 + 12 * 16)
