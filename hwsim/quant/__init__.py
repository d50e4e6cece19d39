"""Quantization toolbox: uniform affine quantizers, calibration, and runtime-exact requantization.

Public names, grouped by implementation module (Gholami et al. 2021 survey; exact semantics from
``docs/verification.md``).
"""

# the basics live in hwsim.numerics (below quant, datapath and onnxq, which all use them); re-exported here
from ..numerics import (
    PROFILES,
    ROUNDING_MODES,
    QParams,
    asymmetric_per_tensor,
    dequantize,
    dyadic_multiplier,
    fbgemm_bias_addend,
    minmax_calibrate,
    qrange,
    quantize,
    quantize_multiplier,
    requant_multiplier,
    requantize,
    round_values,
    symmetric_per_channel,
)

__all__ = [
    # hwsim.numerics
    "QParams", "qrange", "symmetric_per_channel", "asymmetric_per_tensor", "minmax_calibrate", "quantize",
    "dequantize",
    "PROFILES", "ROUNDING_MODES", "requant_multiplier", "requantize", "quantize_multiplier",
    "dyadic_multiplier", "round_values", "fbgemm_bias_addend",
]

# The survey's toolbox beyond the affine basics (quantizers, calibration, PTQ methods, fake quantization).
from ._calibrate import (
    CALIBRATION_METHODS,
    aciq_alpha,
    aciq_range,
    calibrate,
    calibrate_range,
    entropy_range,
    entropy_threshold,
    minmax_range,
    mse_range,
    percentile_range,
)
from ._fakequant import (
    conv_windows,
    exact_conv2d_acc,
    exact_gemm_acc,
    fake_quant_conv2d,
    fake_quant_linear,
    fake_quantize,
    float_conv2d,
    qdq_conv2d,
    quantize_bias,
)
from ._granular import (
    GroupQuant,
    asymmetric_qparams,
    dequantize_per_group,
    dynamic_qparams,
    dynamic_quantize,
    group_gemm,
    quantize_per_group,
    symmetric_qparams,
    tensor_range,
)
from ._ibert import EXP_COEFFS, GELU_COEFFS, i_erf, i_exp, i_gelu, i_layernorm, i_poly, i_softmax, i_sqrt
from ._nonuniform import (
    Pow2Quant,
    binary_quantize,
    pow2_dequantize,
    pow2_quantize,
    pow2_to_int,
    shift_gemm_acc,
    ternary_quantize,
)
from ._ptq import (
    ADAROUND_GAMMA,
    ADAROUND_ZETA,
    adaround,
    bias_correction,
    equalize_pair,
    fold_batchnorm,
    weight_range_mse,
)
from ._qat import (
    QAT_METHODS,
    QATConfig,
    QATResult,
    check_qat_bits,
    config_error,
    is_config_int,
    is_config_number,
    lsq_quantize,
    pact_quantize,
    qat_forward,
    train_qat,
)
from ._qat_linear import QATGemm
from ._sensitivity import (
    SensitivityTable,
    hessian_top_eigenvalue,
    hutchinson_trace,
    layer_sensitivity,
    output_sqnr_db,
    read_sensitivity,
)

__all__ += [
    # _granular
    "symmetric_qparams", "asymmetric_qparams", "tensor_range", "dynamic_qparams", "dynamic_quantize",
    "GroupQuant", "quantize_per_group", "dequantize_per_group", "group_gemm",
    # _ibert (integer-only transformer nonlinearities)
    "i_poly", "i_erf", "i_gelu", "i_exp", "i_softmax", "i_sqrt", "i_layernorm", "GELU_COEFFS", "EXP_COEFFS",
    # _nonuniform
    "Pow2Quant", "pow2_quantize", "pow2_dequantize", "pow2_to_int", "shift_gemm_acc", "binary_quantize",
    "ternary_quantize",
    # _calibrate
    "CALIBRATION_METHODS", "minmax_range", "percentile_range", "mse_range", "entropy_threshold",
    "entropy_range", "aciq_alpha", "aciq_range", "calibrate_range", "calibrate",
    # _ptq
    "fold_batchnorm", "equalize_pair", "bias_correction", "adaround", "ADAROUND_ZETA", "ADAROUND_GAMMA",
    "weight_range_mse",
    # _fakequant
    "fake_quantize", "conv_windows", "float_conv2d", "exact_conv2d_acc", "exact_gemm_acc",
    "fake_quant_conv2d", "fake_quant_linear", "qdq_conv2d", "quantize_bias",
    # _qat (torch imported only when training)
    "QAT_METHODS", "QATConfig", "QATResult", "train_qat", "qat_forward", "check_qat_bits", "config_error",
    "is_config_int", "is_config_number",
    "lsq_quantize", "pact_quantize",
    # _qat_linear (a transformer's trainable quantized GEMMs)
    "QATGemm",
    # _sensitivity
    "layer_sensitivity", "output_sqnr_db", "hutchinson_trace", "hessian_top_eigenvalue", "SensitivityTable",
    "read_sensitivity",
]
