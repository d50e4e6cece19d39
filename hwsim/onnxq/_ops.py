"""The registry of the ONNX kernels hwsim executes: :data:`KERNELS` ((domain, op_type) -> kernel),
:data:`FLOAT_GROUP_KERNELS` and :data:`SUPPORTED_OPS`.

Each kernel takes the node, its input arrays (``None`` for an omitted optional input) and the
:class:`~hwsim.onnxq.DatapathConfig`, and returns its output arrays plus a :class:`NodeStats` record. The
kernels live by job: :mod:`._ops_quantize` (QuantizeLinear/DequantizeLinear), :mod:`._ops_gemm` (QLinearConv,
QLinearMatMul, QGemm, ConvInteger, MatMulInteger on :mod:`hwsim.datapath`, and the float Conv/MatMul/Gemm of
QDQ groups), :mod:`._ops_elementwise` (float32-exact element-wise ops), :mod:`._ops_pool` (pooling),
:mod:`._ops_shape` (shape ops), :mod:`._ops_softmax` (QLinearSoftmax), :mod:`._ops_dynamic`
(DynamicQuantizeLinear), :mod:`._ops_common` (errors,
stats, attribute readers). With the defaults (32-bit wrap, ``ort_cpu``) every kernel reproduces onnxruntime's
CPU kernel bit for bit. Sources per op are in the kernel docstrings; ``docs/verification.md`` has the
measured ones.
"""

from __future__ import annotations

from ._ops_common import NodeStats, OpError
from ._ops_dynamic import DYNAMIC_KERNELS
from ._ops_elementwise import (
                               clip,
                               float_binary,
                               qlinear_add,
                               qlinear_concat,
                               qlinear_leaky_relu,
                               qlinear_mul,
                               qlinear_sigmoid,
                               relu,
)
from ._ops_gemm import (
                               conv_integer,
                               float_conv,
                               float_matmul,
                               matmul_integer,
                               qgemm,
                               qlinear_conv,
                               qlinear_matmul,
                               reduction_bound_bits,
)
from ._ops_pool import maxpool, qlinear_average_pool, qlinear_global_average_pool
from ._ops_quantize import dequantize_linear, quantize_linear
from ._ops_shape import concat, flatten, identity, reshape, squeeze, transpose, unsqueeze
from ._ops_softmax import qlinear_softmax

__all__ = ["NodeStats", "KERNELS", "FLOAT_GROUP_KERNELS", "SUPPORTED_OPS", "OpError",
           "reduction_bound_bits"]

#: Float kernels for the QDQ groups that onnxruntime's default x86 session leaves in float (only those nodes).
FLOAT_GROUP_KERNELS = {("", "Conv"): float_conv, ("", "MatMul"): float_matmul, ("", "Gemm"): float_matmul}

#: (domain, op_type) -> kernel.
KERNELS = {
    ("", "QuantizeLinear"): quantize_linear,
    ("", "DequantizeLinear"): dequantize_linear,
    ("", "QLinearConv"): qlinear_conv,
    ("", "QLinearMatMul"): qlinear_matmul,
    ("", "ConvInteger"): conv_integer,
    ("", "MatMulInteger"): matmul_integer,
    ("com.microsoft", "QGemm"): qgemm,
    ("com.microsoft", "QLinearAdd"): qlinear_add,
    ("com.microsoft", "QLinearMul"): qlinear_mul,
    ("com.microsoft", "QLinearLeakyRelu"): qlinear_leaky_relu,
    ("com.microsoft", "QLinearSigmoid"): qlinear_sigmoid,
    ("com.microsoft", "QLinearSoftmax"): qlinear_softmax,
    ("com.microsoft", "QLinearAveragePool"): qlinear_average_pool,
    ("com.microsoft", "QLinearGlobalAveragePool"): qlinear_global_average_pool,
    ("com.microsoft", "QLinearConcat"): qlinear_concat,
    ("com.microsoft", "QuantizeLinear"): quantize_linear,
    ("com.microsoft", "DequantizeLinear"): dequantize_linear,
    **DYNAMIC_KERNELS,
    ("", "MaxPool"): maxpool,
    ("", "Relu"): relu,
    ("", "Clip"): clip,
    ("", "Reshape"): reshape,
    ("", "Flatten"): flatten,
    ("", "Transpose"): transpose,
    ("", "Squeeze"): squeeze,
    ("", "Unsqueeze"): unsqueeze,
    ("", "Identity"): identity,
    ("", "Concat"): concat,
    ("", "Add"): float_binary,
    ("", "Sub"): float_binary,
    ("", "Mul"): float_binary,
}

#: The ops hwsim runs, as "op" or "domain:op", sorted (QDQ groups of Conv/MatMul/Gemm/Add/AveragePool/
#: GlobalAveragePool/Concat lower to these).
SUPPORTED_OPS = sorted((f"{d}:{o}" if d else o) for d, o in KERNELS) + [
    "Conv, MatMul, Gemm, Add, Mul, AveragePool, GlobalAveragePool, LeakyRelu, Sigmoid, Concat (inside "
    "DequantizeLinear -> op -> QuantizeLinear)"]
