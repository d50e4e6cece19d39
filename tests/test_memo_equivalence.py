"""The speed-ups that must not change a number: simulate_workload's per-shape memo and verify's protobuf
tail for the instrumented session. Each is compared with the plain computation it replaces."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

import hwsim._pipeline as pipeline
from hwsim.onnxq._reference import _with_outputs
from hwsim.spec import load_arch, load_workload_yaml

ROOT = Path(__file__).resolve().parents[1]


def _everything(res) -> list:
    t = {k: v for k, v in res.totals.items() if k != "model_cpu_s"}
    return [res.rows, res.vector_rows, res.tensor_rows, res.energy_records, res.timeline, res.occupancy, t]


@pytest.mark.parametrize("workload,reuse", [("resnet50", "inter_layer"), ("mobilenet_v2", "fused")])
def test_shape_memo_gives_the_unmemoized_result(monkeypatch, workload, reuse):
    # ResNet-50 repeats shapes (54 GEMM layers, 25 keys) and inter_layer reuse maps some layers again with
    # resident operands; fused bands add their tiles' costs to layers of repeated shapes (MobileNetV2 on the
    # edge array fuses several conv -> conv edges). With _shape_key -> None every layer is mapped, timed and
    # priced on its own (the code before the memo): every row, record, tensor row and total must be the same,
    # names included
    arch = load_arch(ROOT / "arch" / "edge_32x32.yaml")
    arch = arch.model_copy(update={"timing": arch.timing.model_copy(update={"reuse": reuse})})
    wl = load_workload_yaml(ROOT / "workloads" / f"{workload}.yaml")
    memo = pipeline.simulate_workload(arch, wl)
    if workload == "resnet50":
        keys = {pipeline._shape_key(nd, (8, 8, 8), None) for nd in wl.layers}
        assert len(wl.layers) == 54 and len(keys) == 25
    else:
        assert sum(n.startswith("fused ") for n in memo.notes) >= 2, memo.notes
    monkeypatch.setattr(pipeline, "_shape_key", lambda *a: None)
    plain = pipeline.simulate_workload(arch, wl)
    assert _everything(memo) == _everything(plain)
    gemms = [nd.name for nd in wl.graph().nodes if nd.name in {r["layer"] for r in plain.rows}]
    assert [r["layer"] for r in memo.rows] == gemms


def test_shape_key_tells_fields_apart():
    wl = load_workload_yaml(ROOT / "workloads" / "resnet50.yaml")
    a, b = wl.layers[4], wl.layers[4].model_copy(update={"name": "other"})
    assert pipeline._shape_key(a, (8, 8, 8), None) == pipeline._shape_key(b, (8, 8, 8), None)
    assert pipeline._shape_key(a, (8, 8, 8), None) != pipeline._shape_key(a, (8, 8, 4), None)
    assert pipeline._shape_key(a, (8, 8, 8), None) != pipeline._shape_key(a, (8, 8, 8), {"ifmap": "sram"})
    c = a.model_copy(update={"stride": 2})
    assert pipeline._shape_key(a, (8, 8, 8), None) != pipeline._shape_key(c, (8, 8, 8), None)


def test_protobuf_tail_appends_outputs_as_a_copy_would():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Neg", ["r"], ["y"])],
                          "g", [x], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    extra = [helper.make_tensor_value_info("r", TensorProto.FLOAT, None)]
    copy = onnx.ModelProto()
    copy.CopyFrom(m)
    copy.graph.output.extend(extra)
    got = onnx.load_from_string(_with_outputs(m.SerializeToString(), extra))
    assert got == copy
    assert [o.name for o in got.graph.output] == ["y", "r"]
    assert got.graph.name == "g" and len(got.graph.node) == 2
    assert _with_outputs(b"abc", []) == b"abc"
