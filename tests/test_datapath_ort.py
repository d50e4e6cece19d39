"""The integer datapath against onnxruntime, bit for bit (shared/reference/bitexact.md §0, §4a, §6)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from onnx import helper, numpy_helper

from hwsim.datapath import qlinear_conv2d, qlinear_matmul
from hwsim.quant import QParams


def run_ort(op: str, inputs: list, out_dtype, attrs: dict | None = None, opset: int = 21):
    """Run one ONNX node on ORT's CPU EP. ``inputs`` is ``[(name, array or None), ...]``: the first is the graph
    input, the others become initializers (``None`` = an omitted optional input)."""
    x_name, x = inputs[0]
    inits = [numpy_helper.from_array(np.asarray(v), n) for n, v in inputs[1:] if v is not None]
    node = helper.make_node(op, [n if v is not None else "" for n, v in inputs], ["y"], **(attrs or {}))
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info(x_name, helper.np_dtype_to_tensor_dtype(x.dtype), x.shape)],
        [helper.make_tensor_value_info("y", helper.np_dtype_to_tensor_dtype(np.dtype(out_dtype)), None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {x_name: x})[0]


def ort_qlinearconv(x, x_qp, w, w_qp, y_qp, bias=None, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1),
                    groups=1):
    """ORT QLinearConv; ``pads`` in hwsim order (top, bottom, left, right)."""
    pt, pb, pl, pr = pads
    wz = w_qp.zero_point.astype(w.dtype)
    inputs = [("x", x), ("xs", x_qp.scale), ("xz", x_qp.zero_point.astype(x.dtype)), ("w", w),
              ("ws", w_qp.scale), ("wz", wz), ("ys", y_qp.scale),
              ("yz", y_qp.zero_point.astype(y_qp.storage_dtype)), ("B", None if bias is None else bias.astype(np.int32))]
    attrs = dict(strides=list(stride), pads=[pt, pl, pb, pr], dilations=list(dilation), group=groups)
    return run_ort("QLinearConv", inputs, y_qp.storage_dtype, attrs)


def test_qlinear_conv2d_u8_per_channel_stride2_odd_padding_zp():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (1, 8, 15, 15)).astype(np.uint8)
    w = rng.integers(-128, 128, (16, 8, 3, 3)).astype(np.int8)
    b = rng.integers(-20000, 20000, 16).astype(np.int32)
    x_qp = QParams(np.float32(0.02), 7, 8, False)
    w_qp = QParams(rng.uniform(0.001, 0.01, 16).astype(np.float32), np.zeros(16, np.int32), 8, True, axis=0)
    y_qp = QParams(np.float32(0.5), 100, 8, False)
    kw = dict(bias=b, stride=(2, 2), pads=(1, 1, 1, 1))
    y = qlinear_conv2d(x, w, x_qp=x_qp, w_qp=w_qp, y_qp=y_qp, **kw)
    ref = ort_qlinearconv(x, x_qp, w, w_qp, y_qp, **kw)
    assert y.dtype == np.uint8 and y.shape == (1, 16, 8, 8)
    np.testing.assert_array_equal(y, ref)


def test_qlinear_matmul_s8_per_column():
    rng = np.random.default_rng(2)
    a = rng.integers(-128, 128, (24, 40)).astype(np.int8)
    b = rng.integers(-128, 128, (40, 12)).astype(np.int8)
    a_qp = QParams(np.float32(0.03), -5, 8, True)
    b_qp = QParams(rng.uniform(0.002, 0.02, 12).astype(np.float32), np.zeros(12, np.int32), 8, True, axis=1)
    y_qp = QParams(np.float32(0.4), 3, 8, True)
    y = qlinear_matmul(a, b, a_qp=a_qp, b_qp=b_qp, y_qp=y_qp)
    ref = run_ort("QLinearMatMul", [("a", a), ("as", a_qp.scale), ("az", np.int8(-5)), ("b", b),
                                    ("bs", b_qp.scale.reshape(1, 12)), ("bz", np.zeros((1, 12), np.int8)),
                                    ("ys", y_qp.scale), ("yz", np.int8(3))], np.int8)
    np.testing.assert_array_equal(y, ref)
