"""Record ZigZag 3.9.1's per-layer latency on its tpu_like and edge_tpu_like (zigzag_latency.csv, here).

Recipe (zigzag-dse is not a test dependency; run this once where it is installed):

    pip install zigzag-dse==3.9.1 six      # six: an undeclared dependency of zigzag-dse
    python3 tests/data/zigzag/record_zigzag_latency.py [--pickles DIR]

For each network it calls ``zigzag.api.get_hardware_performance_zigzag(model, hardware/<hw>.yaml,
mapping/<hw>.yaml, opt="latency", lpf_limit=6)`` (the call of docs/validation_energy.md), with ZigZag's own
shape-only ONNX files (``zigzag/inputs/workload/{resnet18,mobilenetv2}.onnx``) and onnx's
``onnx/backend/test/data/light/light_resnet50.onnx``, and ZigZag's hardware and mapping files as shipped in
the wheel (``zigzag/inputs/{hardware,mapping}/``, copies in ../shared/reference/zigzag/). ZigZag writes
``<dump>/list_of_cmes.pickle``; with ``--pickles DIR`` the pickles of earlier runs
(``DIR/out_<net>_<hw>/list_of_cmes.pickle``) are read instead of running ZigZag again (about 2 to 10 minutes
per network on 2 cores). Each row: ZigZag's ``latency_total2`` (cycles incl. on- and off-loading),
``latency_total0`` (compute incl. stalls), ``ideal_temporal_cycle`` (temporal iterations at its spatial
mapping) and ``mac_spatial_utilization``, with the layer's shape read by hwsim's ONNX reader so that the test
needs neither ZigZag nor its files.
"""

from __future__ import annotations

import argparse
import csv
import logging
import pickle
from pathlib import Path

NETS = {"resnet18": ("zigzag", "inputs/workload/resnet18.onnx"),
        "mobilenetv2": ("zigzag", "inputs/workload/mobilenetv2.onnx"),
        "resnet50": ("onnx", "backend/test/data/light/light_resnet50.onnx")}
HW = ("tpu_like", "edge_tpu_like")
COLS = ["net", "hw", "layer", "op", "in_channels", "out_channels", "in_h", "in_w", "kernel_h", "kernel_w",
        "stride_h", "stride_w", "pad_top", "pad_bottom", "pad_left", "pad_right", "groups", "m", "k", "n",
        "zz_latency_total2", "zz_latency_total0", "zz_ideal_temporal_cycle", "zz_mac_spatial_utilization"]


def _model_path(net: str) -> Path:
    import importlib
    pkg, rel = NETS[net]
    return Path(importlib.import_module(pkg).__file__).parent / rel


def _zigzag_model(net: str):
    """The ONNX model as ZigZag's parser takes it: shapes inferred; onnx's ResNet-50 computes its weights with
    ConstantOfShape nodes, which ZigZag counts as layer inputs, so they become shape-only initializers
    (external data that is never read)."""
    import onnx
    from onnx import TensorProto

    m = onnx.shape_inference.infer_shapes(onnx.load(_model_path(net), load_external_data=False))
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in m.graph.value_info}
    keep, inits = [], []
    for n in m.graph.node:
        if n.op_type != "ConstantOfShape":
            keep.append(n)
            continue
        t = TensorProto(name=n.output[0], data_type=TensorProto.FLOAT, dims=shapes[n.output[0]])
        t.data_location = TensorProto.EXTERNAL
        e = t.external_data.add()
        e.key, e.value = "location", "none.bin"
        inits.append(t)
    if inits:
        del m.graph.node[:]
        m.graph.node.extend(keep)
        m.graph.initializer.extend(inits)
        m = onnx.shape_inference.infer_shapes(m)
    return m


def _cmes(net: str, hw: str, pickles: Path | None, dump: Path):
    if pickles is not None:
        return pickle.load(open(pickles / f"out_{net}_{hw}" / "list_of_cmes.pickle", "rb"))
    import zigzag
    from zigzag.api import get_hardware_performance_zigzag
    base = Path(zigzag.__file__).parent / "inputs"
    logging.disable(logging.CRITICAL)
    model = _zigzag_model(net)
    out = dump / f"out_{net}_{hw}"
    get_hardware_performance_zigzag(model, str(base / f"hardware/{hw}.yaml"),
                                    str(base / f"mapping/{hw}.yaml"), opt="latency", lpf_limit=6,
                                    dump_folder=str(out), loma_show_progress_bar=False)
    return pickle.load(open(out / "list_of_cmes.pickle", "rb"))


def main() -> None:
    from hwsim.frontends import read_onnx_shapes
    from hwsim.spec import Conv2d

    ap = argparse.ArgumentParser()
    ap.add_argument("--pickles", type=Path, default=None)
    ap.add_argument("--dump", type=Path, default=Path("zigzag_runs"))
    args = ap.parse_args()
    rows = []
    for net in NETS:
        shapes = {layer.name: layer for layer in read_onnx_shapes(_model_path(net)).layers}
        for hw in HW:
            done = args.pickles is None or (args.pickles / f"out_{net}_{hw}/list_of_cmes.pickle").is_file()
            if not done:
                print(f"no run of {net} on {hw} in {args.pickles}: skipped")
                continue
            for cme in _cmes(net, hw, args.pickles, args.dump):
                layer = shapes[cme.layer.name]
                r = {"net": net, "hw": hw, "layer": layer.name, "op": layer.op,
                     "zz_latency_total2": cme.latency_total2, "zz_latency_total0": cme.latency_total0,
                     "zz_ideal_temporal_cycle": cme.ideal_temporal_cycle,
                     "zz_mac_spatial_utilization": cme.mac_spatial_utilization}
                if isinstance(layer, Conv2d):
                    (kh, kw), (sh, sw), pads = layer.kernel_hw, layer.stride_hw, layer.pads
                    r.update(in_channels=layer.in_channels, out_channels=layer.out_channels, in_h=layer.in_h,
                             in_w=layer.in_w, kernel_h=kh, kernel_w=kw, stride_h=sh, stride_w=sw,
                             pad_top=pads[0], pad_bottom=pads[1], pad_left=pads[2], pad_right=pads[3],
                             groups=layer.n_groups)
                else:
                    r.update(m=layer.m, k=layer.k, n=layer.n)
                rows.append(r)
    out = Path(__file__).with_name("zigzag_latency.csv")
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLS)
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {len(rows)} rows to {out}")


if __name__ == "__main__":
    main()
