"""hwsim verify on real networks quantized by onnxruntime: MiniLM (quantize_dynamic, quantize_static;
TorchScript and dynamo exports) and MobileNetV2 with 4-bit weights (com.microsoft Q/DQ at opset 17,
ai.onnx at opset 21).

    PYTHONPATH=. python3 bench/bench_verify_models.py [--out DIR] [--only minilm|mobilenet] [--no-dynamo]

Prints one row per model: integer elements compared and their mismatches, float tensors compared bit for bit
and within the tolerance (largest |diff| / max|onnxruntime|), the end-to-end float output difference against
onnxruntime's default session (not counted), and the time of ``verify``. Needs torch==2.13.0, the two weight
wheels, onnxruntime and (dynamo) onnxscript. The figures are in docs/verification.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build_minilm(d: Path, dynamo: bool) -> list[tuple[str, Path, Path]]:
    import torch
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    from hwsim.models.minilm import CALIB_SENTENCES, SENTENCES, tokenize
    from hwsim.models.torch_export import export_onnx, minilm_module

    m = minilm_module()
    ids, _ = tokenize(SENTENCES[:1])[0]
    x = torch.from_numpy(ids[None])
    inp = d / "minilm_in.npz"
    np.savez(inp, input_ids=ids[None], attention_mask=np.ones_like(ids[None]))
    axes = {"input_ids": {0: "b", 1: "n"}, "attention_mask": {0: "b", 1: "n"}}
    out = []
    for kind in (["torchscript", "dynamo"] if dynamo else ["torchscript"]):
        src = d / f"minilm_{kind}.onnx"
        export_onnx(m, (x, torch.ones_like(x)), src, input_names=["input_ids", "attention_mask"],
                    output_names=["sentence_embedding"], dynamic_axes=axes, dynamo=kind == "dynamo")
        quantize_dynamic(str(src), str(d / f"minilm_{kind}_dynamic.onnx"), weight_type=QuantType.QInt8)
        out.append((f"MiniLM {kind} quantize_dynamic (u8 x s8)", d / f"minilm_{kind}_dynamic.onnx", inp))

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.it = iter([{"input_ids": i[None], "attention_mask": np.ones_like(i[None])}
                                for i, _ in tokenize(CALIB_SENTENCES)])

            def get_next(self):
                return next(self.it, None)
        quantize_static(str(src), str(d / f"minilm_{kind}_static.onnx"), Reader(),
                        quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        out.append((f"MiniLM {kind} quantize_static QDQ u8/s8", d / f"minilm_{kind}_static.onnx", inp))
    return out


def build_mobilenet(d: Path) -> list[tuple[str, Path, Path]]:
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from hwsim.models import mobilenet_v2 as mv
    from hwsim.models.torch_export import export_onnx, mobilenet_v2_module

    m = mobilenet_v2_module()
    cal = mv.calib_images()[:8].astype(np.float32)
    inp = d / "mnv2_in.npz"
    np.savez(inp, x=mv.eval_images()[:1].astype(np.float32))
    out = []
    for opset in (17, 21):
        src = d / f"mnv2_{opset}.onnx"
        export_onnx(m, (torch.from_numpy(cal[:1]),), src, input_names=["x"], output_names=["logits"],
                    opset=min(opset, 20))
        if opset == 21:  # the TorchScript exporter stops at 20; the graph is valid at 21 as it is
            import onnx

            mm = onnx.load(str(src))
            for o in mm.opset_import:
                if o.domain in ("", "ai.onnx"):
                    o.version = 21
            mm.ir_version = 10
            onnx.save(mm, str(src))

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.it = iter([{"x": c[None]} for c in cal])

            def get_next(self):
                return next(self.it, None)
        dst = d / f"mnv2_w4_{opset}.onnx"
        quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt4, per_channel=True)
        out.append((f"MobileNetV2 QInt4 weights per channel, u8 activations, opset {opset}", dst, inp))
    return out


def row(name: str, model: Path, inp: Path) -> dict:
    from hwsim.onnxq import verify

    t = time.perf_counter()
    rep = verify(model, inputs=inp)
    dt = time.perf_counter() - t
    ft = rep.data["float_tensors"]
    tol = [f for f in ft if f["compare"] == "tolerance"]
    ints = [t for t in rep.data["tensors"]]
    e2e = max((c.get("max_rel_diff", 0.0) for c in rep.data["default_session_float_outputs"].values()),
              default=float("nan"))
    r = {"model": name, "mismatches": rep.mismatches, "elements": rep.elements,
         "integer_tensors": len(ints), "integer_mismatches": sum(t["mismatches"] for t in ints),
         "float_exact": len(ft) - len(tol), "float_tolerance": len(tol),
         "float_mismatches": sum(f["mismatches"] for f in ft),
         "worst_rel": max((f.get("max_rel_diff", 0.0) for f in tol), default=0.0), "end_to_end_rel": e2e,
         "seconds": dt}
    print(f"| {name} | {r['integer_tensors']} / {r['integer_mismatches']} | {r['float_exact']} | "
          f"{r['float_tolerance']} ({r['worst_rel']:.2g}) | {r['float_mismatches']} | "
          f"{r['mismatches']} of {r['elements']:,} | {e2e:.2g} | {dt:.1f} s |", flush=True)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--out", default=None, help="keep the models in this folder (default: a temporary one)")
    ap.add_argument("--only", choices=("minilm", "mobilenet"), default=None)
    ap.add_argument("--no-dynamo", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(a.out or tmp)
        d.mkdir(parents=True, exist_ok=True)
        models = []
        if a.only in (None, "minilm"):
            models += build_minilm(d, not a.no_dynamo)
        if a.only in (None, "mobilenet"):
            models += build_mobilenet(d)
        print("| model | integer tensors / mismatches | float exact | float within tolerance (worst rel) | "
              "float mismatches | verdict | end to end rel (not counted) | verify time |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, model, inp in models:
            row(name, model, inp)


if __name__ == "__main__":
    main()
