"""Energy per op of the vector unit, by op class, at its arithmetic's operand bits.

From the technology table (``hwsim/tech/horowitz_45nm.yaml``: Horowitz, ISSCC 2014, 45 nm), ``b`` the unit's
``int_bits`` (integer) or 16 / 32 (fp16 / fp32):

=========  =====================================  ==========================================================
 class      integer (b bits)                       floating point (16 or 32 bits)
=========  =====================================  ==========================================================
 add        int_add(b)            [H]              fp_add(b)                                   [H]
 mul        int_mult(b x b)       [H]              fp_mult(b)                                  [H]
 max        int_add(b)  (derived: a compare is a b-bit subtract)       int_add(b) (derived: a float compare is
                                                   an integer compare of the bit patterns)
 divide     b x int_add(b)  (derived: restoring    5 fp_mult + 2 fp_add (derived: Newton-Raphson reciprocal,
            division, one subtract per quotient    2 iterations of 2 mul + 1 add, then one multiply)
            bit)
 rsqrt      4 x (int divide + 2 int_add) (derived: 6 fp_mult + 2 fp_add (derived: Newton-Raphson, 2
            I-BERT's i-sqrt, up to 4 Newton        iterations of 3 mul + 1 add)
            steps of one divide and two adds)
 exp        3 int_mult + 4 int_add (derived:       5 fp_mult + 5 fp_add (derived: range reduction by ln2,
            I-BERT's i-exp polynomial)             1 mul + 1 add, a degree-4 polynomial by Horner, 4 + 4)
=========  =====================================  ==========================================================

``vector_unit.energy_pj`` replaces any of them. Not charged: the unit's control, register files and leakage.
"""

from __future__ import annotations

from ..spec import VECTOR_OP_CLASSES, ArchSpec
from ._tech import load_tech

__all__ = ["vector_op_energies"]


def vector_op_energies(arch: ArchSpec, *, source: str = "<arch>") -> dict[str, tuple[float, str]]:
    """Energy of one op of each class on ``arch``'s vector unit, pJ, with where it came from.

    Returns
    -------
    dict
        Op class -> (pJ, source text); empty when the arch has no vector unit.

    Raises
    ------
    SpecError
        The technology table cannot be loaded (naming ``source``).
    """
    vu = arch.vector_unit
    if vu is None:
        return {}
    tech = load_tech(arch.energy.technology, source=source)
    out: dict[str, tuple[float, str]] = {}
    tag = f"table {tech.name}"
    if vu.arithmetic == "int":
        b = vu.int_bits
        add, mul = tech.add_pj(b), tech.mult_pj(b, b)
        div = b * add
        base = {"add": (add, f"{tag} int_add at {b} bits [H]"),
                "mul": (mul, f"{tag} int_mult at {b}x{b} bits [H]"),
                "max": (add, f"{tag} (derived: a compare = one {b}-bit subtract)"),
                "divide": (div, f"{tag} (derived: restoring division, {b} subtracts of {b} bits)"),
                "rsqrt": (4 * (div + 2 * add), f"{tag} (derived: I-BERT i-sqrt, 4 Newton steps of one divide "
                                              "and two adds)"),
                "exp": (3 * mul + 4 * add, f"{tag} (derived: I-BERT i-exp polynomial, 3 mul + 4 add)")}
    else:
        b = 16 if vu.arithmetic == "fp16" else 32
        if "fp_add" not in tech.energy or "fp_mult" not in tech.energy:
            from ..errors import SpecError

            raise SpecError(source, "vector_unit.arithmetic", f"a technology table with fp_add and fp_mult "
                            f"for {vu.arithmetic}", f"table {tech.name} without them")
        add, mul = tech.fp_pj("add", b), tech.fp_pj("mult", b)
        base = {"add": (add, f"{tag} fp_add at {b} bits [H]"),
                "mul": (mul, f"{tag} fp_mult at {b} bits [H]"),
                "max": (tech.add_pj(b), f"{tag} (derived: a compare of the bit patterns = int_add({b}))"),
                "divide": (5 * mul + 2 * add, f"{tag} (derived: Newton-Raphson reciprocal, 5 mul + 2 add)"),
                "rsqrt": (6 * mul + 2 * add, f"{tag} (derived: Newton-Raphson rsqrt, 6 mul + 2 add)"),
                "exp": (5 * mul + 5 * add, f"{tag} (derived: range reduction + degree-4 Horner, 5 mul + 5 add)")}
    for c in VECTOR_OP_CLASSES:
        if vu.energy_pj and c in vu.energy_pj:
            out[c] = (float(vu.energy_pj[c]), f"arch vector_unit.energy_pj.{c}")
        else:
            out[c] = base[c]
    return out
