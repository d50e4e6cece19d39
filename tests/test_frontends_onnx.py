"""Float ONNX graphs as workloads: layer shapes from shape inference, ONNX attribute semantics."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwsim.errors import SpecError
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
