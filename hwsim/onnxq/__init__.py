"""Quantized ONNX models on hwsim's integer datapath, verified against onnxruntime.

QOperator form (QLinearConv, QLinearMatMul, com.microsoft QGemm/QLinearAdd/QLinearAveragePool/
QLinearGlobalAveragePool/QLinearConcat, QuantizeLinear, DequantizeLinear, MatMulInteger, ConvInteger and the
integer MaxPool/Relu/Reshape/Flatten/Transpose/Squeeze/Unsqueeze they come with), DynamicQuantizeLinear
(``quantize_dynamic``), QDQ form (lowered to the same integer ops as onnxruntime's CPU provider fuses them;
4/8/16-bit codes), and the float and shape ops of partially quantized and transformer graphs (exact, or within
a stated tolerance). Semantics and sources: ``docs/verification.md``.
"""

from ._config import DatapathConfig
from ._graph import QGraph, load_model, lower_qdq, rewrite_s8_to_u8
from ._ops import SUPPORTED_OPS, NodeStats
from ._reference import run_onnxruntime
from ._run import RunResult, check_supported, execute
from ._targets import (
                       PROBE_EXACT,
                       PROBE_PAIRS16,
                       TARGETS,
                       HostInfo,
                       Target,
                       host_info,
                       ort_int16_pairs,
                       probe_onnxruntime,
                       resolve_target,
)
from ._verify import VerifyReport, config_from_arch, load_expected, load_inputs, random_inputs, verify

__all__ = [
    # _graph
    "QGraph", "load_model", "lower_qdq", "rewrite_s8_to_u8",
    # _config, _ops
    "DatapathConfig", "NodeStats", "SUPPORTED_OPS",
    # _run
    "RunResult", "execute", "check_supported",
    # _reference
    "run_onnxruntime",
    # _targets
    "Target", "TARGETS", "HostInfo", "host_info", "resolve_target", "probe_onnxruntime", "ort_int16_pairs",
    "PROBE_EXACT", "PROBE_PAIRS16",
    # _verify
    "VerifyReport", "verify", "random_inputs", "load_inputs", "load_expected", "config_from_arch",
]
