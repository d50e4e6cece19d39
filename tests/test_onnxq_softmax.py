"""com.microsoft QLinearSoftmax (hwsim/onnxq/_ops_softmax.py) against onnxruntime: one node on random codes
(uint8 and int8, opset 12 and 13, every axis, rows of 1 to 300 codes, output scales from 1/128 to 3e-5), a
quantize_static QOperator model end to end, and values derived by hand."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwsim.onnxq import verify
from hwsim.onnxq._ops_softmax import qlinear_softmax

ort = pytest.importorskip("onnxruntime")


def _node_model(shape, dt, xs, ys, yz, opset, axis):
    t = TensorProto.UINT8 if dt == np.uint8 else TensorProto.INT8
    arr = numpy_helper.from_array
    inits = [arr(np.array(xs, np.float32), "xs"), arr(np.array(0, dt), "xz"),
             arr(np.array(ys, np.float32), "ys"), arr(np.array(yz, dt), "yz")]
    kw = {"opset": opset} if axis is None else {"opset": opset, "axis": axis}
    n = helper.make_node("QLinearSoftmax", ["x", "xs", "xz", "ys", "yz"], ["y"], domain="com.microsoft", **kw)
    g = helper.make_graph([n], "s", [helper.make_tensor_value_info("x", t, list(shape))],
                          [helper.make_tensor_value_info("y", t, list(shape))], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                            helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 8
    return m, n


def _ort(m, x):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, {"x": x})[0]


def _hwsim(n, x, xs, ys, yz):
    ins = [x, np.float32(xs), np.array(0, x.dtype), np.float32(ys), np.array(yz, x.dtype)]
    return qlinear_softmax(n, ins, None)[0][0]


def test_node_equals_onnxruntime_on_random_codes():
    rng = np.random.default_rng(11)
    total = 0
    for case in range(48):
        dt = (np.uint8, np.int8)[case % 2]
        opset = (12, 13)[case // 2 % 2]
        if case % 8 < 2:  # long rows: the float32 sum's rounding matters
            shape = (6, int(rng.integers(100, 300)))
        else:
            shape = tuple(int(v) for v in rng.integers(1, 12, size=int(rng.integers(1, 4))))
        axis = None if case % 3 == 0 else int(rng.integers(-len(shape), len(shape)))
        xs = float(10 ** rng.uniform(-3, 0))
        ys = (1 / 256, 1 / 255, 3e-5, 1e-4, 1 / 128)[case % 5]
        yz = 0 if dt == np.uint8 else -128
        m, n = _node_model(shape, dt, xs, ys, yz, opset, axis)
        info = np.iinfo(dt)
        x = rng.integers(info.min, info.max + 1, size=shape).astype(dt)
        np.testing.assert_array_equal(_hwsim(n, x, xs, ys, yz), _ort(m, x), err_msg=str((case, shape, axis)))
        total += x.size
    assert total > 2000


def test_values_derived_by_hand():
    # two equal codes: each entry is T[255], the sum 2*T[255] exactly (float32 doubling), so y = rint(Y/2)
    # with Y = floor(1 / y_scale) = 256 for y_scale 1/256: 128
    m, n = _node_model((1, 2), np.uint8, 0.05, 1 / 256, 0, 13, None)
    x = np.array([[200, 200]], np.uint8)
    assert _hwsim(n, x, 0.05, 1 / 256, 0).tolist() == [[128, 128]] == _ort(m, x).tolist()
    # one code per row: y = rint(T*Y/T) = Y, with Y = floor(1 / f32(1/255)); f32(1/255) = 0.0039215688...
    # is above 1/255 = 0.0039215686..., so 1 / it is 254.99999...: Y = 254, not 255
    m, n = _node_model((3, 1), np.uint8, 0.05, 1 / 255, 0, 13, None)
    x = np.array([[0], [100], [255]], np.uint8)
    assert _hwsim(n, x, 0.05, 1 / 255, 0).tolist() == [[254]] * 3 == _ort(m, x).tolist()
    # int8 saturates: one code, Y = 256 for 1/256, y = 256 - 128 = 128 -> 127
    m, n = _node_model((1, 1), np.int8, 0.05, 1 / 256, -128, 13, None)
    x = np.array([[5]], np.int8)
    assert _hwsim(n, x, 0.05, 1 / 256, -128).tolist() == [[127]] == _ort(m, x).tolist()


def test_quantize_static_qoperator_model_verifies(tmp_path):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    rng = np.random.default_rng(0)
    w = rng.standard_normal((16, 10)).astype(np.float32)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["h"]),
                           helper.make_node("Softmax", ["h"], ["y"], axis=-1)], "mmsm",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 10])],
                          [numpy_helper.from_array(w, "W")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    f = tmp_path / "mmsm.onnx"
    onnx.save(m, f)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.d = iter([{"x": rng.standard_normal((4, 16)).astype(np.float32)} for _ in range(8)])

        def get_next(self):
            return next(self.d, None)

    q = tmp_path / "mmsm_q.onnx"
    quantize_static(str(f), str(q), Reader(), quant_format=QuantFormat.QOperator,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    assert "QLinearSoftmax" in {n.op_type for n in onnx.load(q).graph.node}
    rep = verify(q, seed=3)
    assert rep.passed, rep.lines
    sm = [t for t in rep.data["tensors"] if t["op"] == "QLinearSoftmax"]
    assert len(sm) == 1 and sm[0]["mismatches"] == 0 and sm[0]["elements"] == 40
