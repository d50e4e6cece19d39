"""How hwsim's integer datapath runs an ONNX graph: :class:`DatapathConfig` (accumulator, multiplier,
requantizer, reproduced CPU target)."""

from __future__ import annotations

from dataclasses import dataclass

from ._targets import ort_int16_pairs

__all__ = ["DatapathConfig"]


@dataclass(frozen=True)
class DatapathConfig:
    """How hwsim's integer datapath runs: accumulator, multiplier, requantizer.

    ``acc_bits``/``acc_mode`` (``wrap``/``saturate``): the accumulator register (``pe.acc_bits``,
    ``pe.acc_mode``); ``mult_bits``: signed width of the multiplier operands after zero-point shifting
    (``None``: wide enough); ``int16_pairs``: a PE that sums every product pair with int16 saturation
    (``vpmaddubsw``, reduction in NHWC ``(r, s, c)`` order; :func:`hwsim.datapath.conv2d_acc`);
    ``profile``/``rounding``/``seed``: requantization (:func:`hwsim.quant.requantize`); ``operand_bits``: the
    PE's native operand width (``pe.operand_bits``; only checked, for a warning); ``zero_point_mode``:
    ``shift`` (the PE multiplies zero-shifted operands) or ``cross_term`` (raw codes, correction added to the
    register afterwards; :func:`hwsim.datapath.conv2d_acc`); ``target``: the CPU whose onnxruntime kernels
    are reproduced (a name of :data:`hwsim.onnxq.TARGETS`; ``None``: exact integer kernels, as on VNNI): on a
    pair-saturating target the u8 x s8 nodes that onnxruntime runs on ``vpmaddubsw`` get int16 pair sums
    (:func:`hwsim.onnxq.ort_int16_pairs`).
    """

    acc_bits: int = 32
    acc_mode: str = "wrap"
    mult_bits: int | None = None
    int16_pairs: bool = False
    profile: str = "ort_cpu"
    rounding: str | None = None
    seed: int = 0
    operand_bits: int | None = None
    zero_point_mode: str = "shift"
    target: str | None = None

    @property
    def is_reference(self) -> bool:
        """True when this is onnxruntime's own integer semantics (on :attr:`target`)."""
        return (self.acc_bits == 32 and self.acc_mode == "wrap" and self.mult_bits is None
                and not self.int16_pairs and self.profile == "ort_cpu" and self.rounding is None
                and self.zero_point_mode == "shift")

    def pairs_for(self, op: str, a_dtype, w_dtype, *, depthwise: bool = False) -> bool:
        """Whether a GEMM-like node sums int16 pairs: the PE option, or onnxruntime's kernel on the target
        when the accumulator is onnxruntime's (32-bit wrap, full-width multipliers, zero-shifted operands; an
        arch's PE keeps its own arithmetic)."""
        if self.int16_pairs:
            return True
        ort_acc = (self.acc_bits == 32 and self.acc_mode == "wrap" and self.mult_bits is None
                   and self.zero_point_mode == "shift")
        return ort_acc and self.target is not None and ort_int16_pairs(self.target, op, a_dtype, w_dtype,
                                                                       depthwise=depthwise)
