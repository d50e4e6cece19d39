"""The numerics that quantizers, the integer datapath and the ONNX executor share: affine quantization
parameters and integer ranges, rounding modes, and the requantization profiles of the public runtimes.

A leaf package: it imports nothing else from hwsim, so ``quant``, ``datapath`` and ``onnxq`` can all depend
on it without a cycle (``tests/test_layout.py`` walks the imports). Formulas and their sources are in each
function's docstring (``docs/verification.md`` for the runtimes' exact semantics).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:  # the lazy names, for type checkers
    from ._affine import (
        QParams,
        as_float32,
        asymmetric_per_tensor,
        check_bits,
        dequantize,
        minmax_calibrate,
        qrange,
        quantize,
        symmetric_per_channel,
    )
    from ._requant import (
        PROFILES,
        ROUNDING_MODES,
        check_profile,
        dyadic_multiplier,
        fbgemm_bias_addend,
        quantize_multiplier,
        requant_multiplier,
        requantize,
        round_values,
    )

__all__ = [
    # _affine
    "QParams", "qrange", "check_bits", "as_float32", "symmetric_per_channel", "asymmetric_per_tensor",
    "minmax_calibrate", "quantize", "dequantize",
    # _requant
    "PROFILES", "ROUNDING_MODES", "check_profile", "requant_multiplier", "requantize", "quantize_multiplier",
    "dyadic_multiplier", "round_values", "fbgemm_bias_addend",
]

#: name -> the module that defines it (the names of ``__all__``, imported on first use: PEP 562; the profile
#: and rounding names without numpy or numba)
_WHERE = {**dict.fromkeys(("QParams", "qrange", "check_bits", "as_float32", "symmetric_per_channel",
                           "asymmetric_per_tensor", "minmax_calibrate", "quantize", "dequantize"), "_affine"),
          **dict.fromkeys(("check_profile", "requant_multiplier", "requantize", "quantize_multiplier",
                           "dyadic_multiplier", "round_values", "fbgemm_bias_addend"), "_requant"),
          "PROFILES": "_modes", "ROUNDING_MODES": "_modes"}


__getattr__, __dir__ = lazy_names(__name__, _WHERE, __all__)
