"""hwsim's latency on ZigZag's tpu_like and edge_tpu_like against ZigZag 3.9.1 itself, per layer.

ZigZag's figures are recorded in tests/data/zigzag/zigzag_latency.csv (made by record_zigzag_latency.py next
to it: ZigZag's latency-optimal mapping, ``opt="latency"``, on its own ResNet-18 and MobileNetV2 ONNX files
and onnx's ResNet-50) with each layer's shape, so this test needs neither ZigZag nor its files.

hwsim runs ``arch/zigzag_tpu_like.yaml`` (``array.unroll: {rows: [C], cols: [K]}``, ZigZag's D2 = C, D1 = K)
and ``arch/zigzag_edge_tpu_like_os.yaml`` (rows C 8 x OX 4 x OY 4, columns K 8, output stationary: the order
ZigZag's search returns). The mappings agree on a layer when hwsim's streamed steps (``steady_cycles`` =
folds x streamed steps per fold) equal ZigZag's ``ideal_temporal_cycle`` (its temporal iterations at its
spatial utilization): the same spatial unrolling gives the same count, so this is checked exactly, per layer.
Where they agree, the cycles differ only by what the two models charge beyond the MACs (docs/
validation_timing.md): hwsim's fill and drain on every fold (SCALE-Sim's convention) and its DMA stalls,
ZigZag's on- and off-loading and its memory-bound stalls. Per network the totals must be within 15 %, except
MobileNetV2 on tpu_like, whose depthwise layers make the per-fold fill and drain dominate (asserted
separately, with the share it explains).
"""

from __future__ import annotations

import csv
from functools import cache

import pytest

from hwsim._pipeline import simulate_workload
from hwsim.spec import Conv2d, Gemm, Workload, load_arch

from .utils import ROOT

DATA = ROOT / "tests/data/zigzag/zigzag_latency.csv"
ARCH = {"tpu_like": "zigzag_tpu_like", "edge_tpu_like": "zigzag_edge_tpu_like_os"}


@cache
def _rows():
    return list(csv.DictReader(DATA.open()))


def _layer(r):
    if r["op"] in ("gemm", "fc"):
        return Gemm(name=r["layer"], op=r["op"], m=int(r["m"]), k=int(r["k"]), n=int(r["n"]))
    i = {k: int(r[k]) for k in ("in_channels", "out_channels", "in_h", "in_w", "kernel_h", "kernel_w",
                                "stride_h", "stride_w", "pad_top", "pad_bottom", "pad_left", "pad_right",
                                "groups")}
    return Conv2d(name=r["layer"], op=r["op"], in_channels=i["in_channels"], out_channels=i["out_channels"],
                  in_h=i["in_h"], in_w=i["in_w"], kernel=(i["kernel_h"], i["kernel_w"]),
                  stride=(i["stride_h"], i["stride_w"]),
                  padding=(i["pad_top"], i["pad_bottom"], i["pad_left"], i["pad_right"]), groups=i["groups"])


@cache
def _compare(net: str, hw: str):
    zz = [r for r in _rows() if r["net"] == net and r["hw"] == hw]
    assert zz, (net, hw)
    wl = Workload(name=net, layers=[_layer(r) for r in zz])
    res = simulate_workload(load_arch(ROOT / f"arch/{ARCH[hw]}.yaml"), wl, weight_bits=8, act_bits=8)
    return [(z, h) for z, h in zip(zz, res.rows, strict=True)]


CASES = [(n, h) for n in ("resnet18", "mobilenetv2", "resnet50") for h in ("tpu_like", "edge_tpu_like")]


@pytest.mark.parametrize("net,hw", CASES, ids=[f"{n}-{h}" for n, h in CASES])
def test_spatial_mappings_agree_layer_by_layer(net, hw):
    pairs = _compare(net, hw)
    agree = [h["layer"] for z, h in pairs if h["steady_cycles"] == round(float(z["zz_ideal_temporal_cycle"]))]
    assert len(agree) == len(pairs), sorted({h["layer"] for _, h in pairs} - set(agree))


@pytest.mark.parametrize("net,hw", CASES, ids=[f"{n}-{h}" for n, h in CASES])
def test_latency_within_15_percent_per_network(net, hw):
    pairs = _compare(net, hw)
    ours = sum(h["total_cycles"] for _, h in pairs)
    theirs = sum(float(z["zz_latency_total2"]) for z, _ in pairs)
    # the fill and drain hwsim charges on every fold but one per layer (ZigZag's systolic array fills once)
    extra = sum(h["fill_cycles"] + h["drain_cycles"] - (h["fill_cycles"] + h["drain_cycles"]) // h["folds"]
                for _, h in pairs)
    if (net, hw) == ("mobilenetv2", "tpu_like"):
        # 28.19 M against 22.57 M (+25 %): 9 folds of one PE per depthwise channel, each with 63 + 31 fill and
        # drain cycles around 49 to 196 streamed pixels on the 14 x 14 and 7 x 7 maps; without that per-fold
        # overhead hwsim is within 15 %
        assert ours / theirs == pytest.approx(1.249, abs=0.005)
        assert abs(ours - extra - theirs) / theirs < 0.15
        return
    assert abs(ours - theirs) / theirs < 0.15, (ours, theirs)
