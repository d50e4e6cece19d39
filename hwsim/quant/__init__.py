"""Quantization toolbox: uniform affine quantizers, calibration, and runtime-exact requantization.

Public names, grouped by implementation module (Gholami et al. 2021 survey; exact semantics from
``shared/reference/bitexact.md``).
"""

from ._affine import (QParams, asymmetric_per_tensor, dequantize, minmax_calibrate, qrange, quantize,
                      symmetric_per_channel)
from ._requant import (PROFILES, ROUNDING_MODES, dyadic_multiplier, fbgemm_bias_addend, quantize_multiplier,
                       requant_multiplier, requantize, round_values)

__all__ = [
    # _affine
    "QParams", "qrange", "symmetric_per_channel", "asymmetric_per_tensor", "minmax_calibrate", "quantize",
    "dequantize",
    # _requant
    "PROFILES", "ROUNDING_MODES", "requant_multiplier", "requantize", "quantize_multiplier", "dyadic_multiplier",
    "round_values", "fbgemm_bias_addend",
]
