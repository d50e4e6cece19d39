"""How operand bit-widths change what a PE does per cycle.

Three precision modes (``../shared/DESIGN.md``, "Precision in hardware"):

* ``fixed``: one MAC per PE per cycle for ``min_bits <= b <= operand_bits``.
* ``bit_fusion`` (Sharma et al., ISCA 2018): a PE of ``operand_bits`` fuses into
  ``(operand_bits / b_a') * (operand_bits / b_w')`` MACs per cycle, where ``b'`` is ``b`` rounded up to
  ``brick_bits`` times a power of two (BitBricks fuse in powers of two). The fused MACs reduce along K: the
  public Bit Fusion simulator (hsharma35/bitfusion ``accelerator.py``) divides the input dimension by this
  "perf factor" in the same way.
* ``bit_serial``: Stripes (Judd et al., MICRO 2016) feeds activations ``bits_per_cycle`` bits at a time, so a
  MAC takes ``ceil(b_a / bpc)`` cycles; Loom (Sharify et al., DAC 2018) makes both operands serial:
  ``ceil(b_a / bpc) * ceil(b_w / bpc)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import Found, InfeasibleError
from ..spec import PEConfig

__all__ = ["PrecisionFactors", "precision_factors"]


@dataclass(frozen=True)
class PrecisionFactors:
    """What the PE does with one layer's operands.

    Attributes
    ----------
    macs_per_pe_cycle : int
        MACs one PE completes per cycle along the reduction (K) dimension (>1 only for bit fusion).
    cycles_per_step : int
        Cycles one streamed operand step takes (>1 only for bit-serial PEs).
    a_bits_eff, w_bits_eff : int
        The operand widths the hardware actually uses (bit fusion rounds up), bits.
    """

    macs_per_pe_cycle: int
    cycles_per_step: int
    a_bits_eff: int
    w_bits_eff: int


def _fused_bits(b: int, brick: int) -> int:
    units = math.ceil(b / brick)
    return brick * (1 << (units - 1).bit_length())


def precision_factors(pe: PEConfig, a_bits: int, w_bits: int, *, where: str = "<arch>",
                      layer: str = "") -> PrecisionFactors:
    """Throughput factors of a PE for ``a_bits`` x ``w_bits`` operands.

    Raises
    ------
    InfeasibleError
        An operand is wider than the PE's ``operand_bits`` or narrower than its ``min_bits``.
    """
    for what, b in (("act_bits", a_bits), ("weight_bits", w_bits)):
        if b > pe.operand_bits or b < pe.min_bits:
            raise InfeasibleError(where, "pe",
                                  f"operands of {pe.min_bits}..{pe.operand_bits} bits (min_bits.."
                                  f"operand_bits, precision_mode {pe.precision_mode})",
                                  Found(f"{what} {b}" + (f" in layer {layer}" if layer else "")))
    if pe.precision_mode == "fixed":
        return PrecisionFactors(1, 1, a_bits, w_bits)
    if pe.precision_mode == "bit_fusion":
        ba, bw = _fused_bits(a_bits, pe.brick_bits), _fused_bits(w_bits, pe.brick_bits)
        ba, bw = min(ba, pe.operand_bits), min(bw, pe.operand_bits)
        return PrecisionFactors((pe.operand_bits // ba) * (pe.operand_bits // bw), 1, ba, bw)
    steps = 1
    if "act" in pe.serial_operands:
        steps *= math.ceil(a_bits / pe.bits_per_cycle)
    if "weight" in pe.serial_operands:
        steps *= math.ceil(w_bits / pe.bits_per_cycle)
    return PrecisionFactors(1, steps, a_bits, w_bits)
