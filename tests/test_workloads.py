"""The shipped workload YAMLs: real layer shapes, checked against published MAC counts and an ONNX graph."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from hwsim.frontends import arch_from_scalesim_cfg
from hwsim.mapping import map_layer
from hwsim.spec import Conv2d, Gemm, load_workload_yaml

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ROOT / "workloads"

# Published totals (multiply-accumulates, batch 1, 224x224):
# * resnet18: 1.814 GMAC. torchvision's model table lists 1.81 "GFLOPS" for ResNet18_Weights.IMAGENET1K_V1,
#   counted as MACs (https://pytorch.org/vision/stable/models.html); the usual 1.8e9 of He et al. (Table 1).
# * resnet50 (v1.5): 4.09 GMAC; torchvision lists 4.09 "GFLOPS" (MACs) for ResNet50_Weights.IMAGENET1K_V1
#   (He et al. Table 1 gives 3.8e9 for v1, whose stride-2 1x1 convs do less work).
# * mobilenet_v2: 300 MMAC; Sandler et al., CVPR 2018, Table 4 (MobileNetV2: 3.4M parameters, 300M MAdds) and
#   torchvision's 0.30 "GFLOPS" (MACs) for MobileNet_V2_Weights.IMAGENET1K_V1.
PUBLISHED_MACS = {"resnet18": 1.814e9, "resnet50": 4.09e9, "mobilenet_v2": 300e6}
# (conv layers incl. depthwise, fc layers, fc K, fc N)
STRUCTURE = {"resnet18": (20, 1, 512, 1000), "resnet50": (53, 1, 2048, 1000),
             "mobilenet_v2": (52, 1, 1280, 1000)}


@pytest.fixture(scope="module", params=sorted(PUBLISHED_MACS))
def workload(request):
    return request.param, load_workload_yaml(WORKLOADS / f"{request.param}.yaml")


def test_total_macs_match_published(workload):
    name, w = workload
    assert abs(w.total_macs - PUBLISHED_MACS[name]) / PUBLISHED_MACS[name] < 0.01, w.total_macs


def test_exact_totals(workload):
    # Summed by hand from the layer tables (sum of H_out*W_out*K*K*C_in/groups*C_out, plus K*N for the fc):
    # exact values guard the files against accidental edits that stay inside the 1% tolerance.
    name, w = workload
    assert w.total_macs == {"resnet18": 1_814_073_344, "resnet50": 4_089_184_256,
                            "mobilenet_v2": 300_774_272}[name]


def test_structure(workload):
    name, w = workload
    n_conv, n_fc, fc_k, fc_n = STRUCTURE[name]
    convs = [layer for layer in w.layers if isinstance(layer, Conv2d)]
    fcs = [layer for layer in w.layers if isinstance(layer, Gemm)]
    assert (len(convs), len(fcs)) == (n_conv, n_fc)
    assert (fcs[0].op, fcs[0].m, fcs[0].k, fcs[0].n) == ("fc", 1, fc_k, fc_n)
    assert w.layers[-1] is fcs[0]
    assert (w.weight_bits, w.act_bits) == (8, 8) and w.source
    first = convs[0]
    assert (first.in_channels, first.in_h, first.in_w) == (3, 224, 224)
    last = convs[-1]
    assert last.out_hw == (7, 7) and last.out_channels == fc_k  # global average pool 7x7 -> fc
    for layer in convs:
        if layer.op == "depthwise":
            assert layer.n_groups == layer.in_channels == layer.out_channels
        else:
            assert layer.n_groups == 1
        kh, kw = layer.kernel_hw
        assert kh == kw and layer.pads == ((kh - 1) // 2,) * 4  # torchvision pads k//2 on every side


def test_consecutive_shapes_chain(workload):
    # Outside the residual side branches (downsample convs read the block input), each conv reads what the
    # previous main-path conv wrote; the only other change is the 3x3/s2 max-pool after the ResNet stem.
    name, w = workload
    convs = [layer for layer in w.layers if isinstance(layer, Conv2d) and "downsample" not in layer.name]
    for prev, cur in pairwise(convs):
        oh, ow = prev.out_hw
        if name.startswith("resnet") and prev.name == "conv1":
            oh, ow = (oh + 2 - 3) // 2 + 1, (ow + 2 - 3) // 2 + 1  # maxpool k3 s2 p1: 112 -> 56
        assert (cur.in_channels, cur.in_h, cur.in_w) == (prev.out_channels, oh, ow), cur.name


def test_mobilenet_v2_depthwise_count():
    w = load_workload_yaml(WORKLOADS / "mobilenet_v2.yaml")
    dws = [layer for layer in w.layers if layer.op == "depthwise"]
    assert len(dws) == 17  # one per inverted-residual block (Sandler et al. Table 2: 1+2+3+4+3+3+1)
    assert [layer.stride_hw[0] for layer in dws].count(2) == 4  # plus the stem: 224 -> 7 takes five stride-2s


def test_every_layer_maps_on_a_scalesim_arch(workload):
    _, w = workload
    arch = arch_from_scalesim_cfg(Path(__file__).parent / "data" / "scalesim" / "scale.cfg")
    total = 0
    for layer in w.layers:
        m = map_layer(layer, arch, weight_bits=8, act_bits=8)
        assert m.macs == layer.gemm.macs and m.compute_cycles > 0
        total += m.macs
    assert total == w.total_macs


def test_resnet50_matches_onnx_light_model():
    """Every conv of workloads/resnet50.yaml against the ResNet-50 graph shipped in the onnx wheel
    (onnx/backend/test/data/light/light_resnet50.onnx, shapes from onnx shape inference; its convs come in the
    same order: branch2a, 2b, 2c, then branch1 = our conv1, conv2, conv3, downsample). That graph (Caffe2
    export) also puts the stride on the 3x3, as torchvision's v1.5 does."""
    onnx = pytest.importorskip("onnx")
    from onnx import helper, shape_inference

    path = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / "light_resnet50.onnx"
    if not path.is_file():
        pytest.skip(f"{path} not in this onnx wheel")
    model = shape_inference.infer_shapes(onnx.load(str(path)))
    infos = {v.name: v for v in list(model.graph.value_info) + list(model.graph.input)}

    def shape(name):
        return [d.dim_value for d in infos[name].type.tensor_type.shape.dim]

    ref = []
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        (_, c, h, w), (n, _, kh, kw) = shape(node.input[0]), shape(node.input[1])
        hb, wb, he, we = attrs.get("pads", [0] * 4)  # ONNX order: H begin, W begin, H end, W end
        ref.append((c, n, h, w, (kh, kw), tuple(attrs.get("strides", [1, 1])), (hb, he, wb, we),
                    tuple(shape(node.output[0])[2:])))
    ours = [(layer.in_channels, layer.out_channels, layer.in_h, layer.in_w, layer.kernel_hw, layer.stride_hw,
             layer.pads, layer.out_hw)
            for layer in load_workload_yaml(WORKLOADS / "resnet50.yaml").layers if isinstance(layer, Conv2d)]
    assert len(ref) == len(ours) == 53
    for i, (a, b) in enumerate(zip(ours, ref, strict=True)):
        assert a == b, f"conv {i}"
