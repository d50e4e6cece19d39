"""Area per component: units x area per unit, from the technology table with the arch's overrides.

Components (the energy components that have die area; DRAM is off chip and counts none):

* ``mac``: ``rows * cols`` PEs. One PE (rules in ``hwsim/tech/horowitz_45nm.yaml``): its multiplier
  (``fixed``: ``n x n``; ``bit_fusion``: ``(n/brick)^2`` bricks of ``brick x brick`` plus the shift-add
  tree's ``(n/brick)^2 - 1`` adders; ``bit_serial``: the serial operand(s) at ``bits_per_cycle`` wide), the
  accumulator adder at ``acc_bits``, and flip-flops for the two operand registers and the accumulator
  (``2n + acc_bits``).
  The multiplier area scales with ``b_a*b_w`` and the adder with bits, as their energies do.
* each on-chip memory level: ``instances`` (``per_pe``: ``rows * cols``) x one instance. SRAM: bits x area
  per bit of an array of the bank's size (``size / banks``; CACTI 7 at 45 nm in the default table, log-log in
  size); register files (``kind: rf``): bits x one flip-flop (read multiplexers and decoders not counted).
* ``requant``: one requantization unit per array column (``acc_bits x 32`` multiplier and an ``acc_bits``
  adder). The zero-point row-sum adders are not counted separately.

Any ``area.*`` key of the arch and any level's ``area_mm2`` replaces the table's number; ``sources`` says
where each came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..spec import ArchSpec
from ._tech import load_tech

__all__ = ["AreaBreakdown", "area_breakdown"]


@dataclass(frozen=True)
class AreaBreakdown:
    """Die area of one arch by component, um^2 (``um2``), the area of one unit (``unit_um2``: one PE, one
    instance of each level, one requant unit) and the count of units (``units``), and each number's source.
    """

    um2: dict[str, float]
    unit_um2: dict[str, float]
    units: dict[str, int]
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def mm2(self) -> dict[str, float]:
        """Area by component, mm^2."""
        return {k: v / 1e6 for k, v in self.um2.items()}

    @property
    def total_mm2(self) -> float:
        """Total die area of the components, mm^2."""
        return sum(self.um2.values()) / 1e6


def area_breakdown(arch: ArchSpec, *, source: str = "<arch>") -> AreaBreakdown:
    """Area of every on-chip component of ``arch`` (module docstring), um^2, with sources.

    Raises
    ------
    SpecError
        ``energy.technology`` names no shipped table (naming ``source`` and the key).
    """
    tech = load_tech(arch.energy.technology, source=source)
    ov = arch.area
    tag = f"table {tech.name}"
    src: dict[str, str] = {}
    t8 = tech.mult_um2(8, 8)
    ms = ov.mult_8b_um2 / t8 if ov.mult_8b_um2 is not None and t8 > 0 else 1.0
    t32 = tech.add_um2(32)
    as_ = ov.add_32b_um2 / t32 if ov.add_32b_um2 is not None and t32 > 0 else 1.0
    scaled = ((" scaled to arch area.mult_8b_um2" if ov.mult_8b_um2 is not None else "")
              + (" scaled to arch area.add_32b_um2" if ov.add_32b_um2 is not None else ""))
    pe = arch.pe
    n, acc = pe.operand_bits, pe.acc_bits
    dff = tech.dff_bit_um2
    regs = (2 * n + acc) * dff
    add_acc = tech.add_um2(acc) * as_
    if pe.precision_mode == "bit_fusion":
        bricks = (n // pe.brick_bits) ** 2
        mult = (bricks * tech.mult_um2(pe.brick_bits, pe.brick_bits) * ms
                + (bricks - 1) * tech.fusion_tree_add_um2)
        what = (f"{bricks} {pe.brick_bits}x{pe.brick_bits} bricks + {bricks - 1} shift-add tree adders "
                f"({tech.area['fusion_tree_add'].provenance(tech.name)})")
    elif pe.precision_mode == "bit_serial":
        sa = pe.bits_per_cycle if "act" in pe.serial_operands else n
        sw = pe.bits_per_cycle if "weight" in pe.serial_operands else n
        mult = tech.mult_um2(sa, sw) * ms
        what = f"{sa}x{sw} bit-serial multiplier"
    else:
        mult = tech.mult_um2(n, n) * ms
        what = f"{n}x{n} multiplier"
    R, C = arch.array.rows, arch.array.cols
    if ov.pe_um2 is not None:
        pe_um2 = ov.pe_um2
        src["mac"] = "arch area.pe_um2, per PE"
    else:
        pe_um2 = mult + add_acc + regs
        src["mac"] = (f"{tag} (derived: {what} + {acc}-bit adder + {2 * n + acc} flip-flops per PE; "
                      f"multiplier ~ b_a*b_w, adder ~ bits{scaled})")
    um2 = {"mac": R * C * pe_um2}
    unit = {"mac": pe_um2}
    units = {"mac": R * C}
    short = arch.memory.levels is None
    for i, lv in enumerate(arch.memory.hierarchy()):
        if lv.kind == "dram":
            src[lv.name] = "off chip: no die area counted"
            continue
        key = f"arch memory.{lv.name}" if short else f"arch memory.levels[{i}]"
        count = R * C if lv.instances == "per_pe" else 1
        if lv.area_mm2 is not None:
            one = lv.area_mm2 * 1e6
            src[lv.name] = f"{key}.area_mm2, per instance"
        elif lv.kind == "rf":
            one = lv.size_bits * dff
            dff_src = tech.area["dff_bit"].provenance(tech.name)
            src[lv.name] = f"{tag} (derived: {lv.size_bits:g} bits x {dff_src}; register file of flip-flops)"
        else:
            bank_kib = lv.size_bits / 8192 / lv.banks
            one = lv.size_bits * tech.sram_bit_um2(bank_kib)
            src[lv.name] = (f"{tag} sram_bit (derived: {lv.size_bits:g} bits x "
                            f"{tech.sram_bit_um2(bank_kib):.4g} um^2/bit of a {bank_kib:g} KiB bank, "
                            "log-log in size)")
        if count > 1:
            src[lv.name] += f"; x {count} instances (one per PE)"
        um2[lv.name] = count * one
        unit[lv.name] = one
        units[lv.name] = count
    if ov.requant_um2 is not None:
        rq = ov.requant_um2
        src["requant"] = "arch area.requant_um2, per unit; one unit per array column"
    else:
        rq = tech.mult_um2(acc, 32) * ms + add_acc
        src["requant"] = (f"{tag} (derived: {acc} x 32 multiplier + {acc}-bit adder per unit{scaled}; one "
                          "unit per array column)")
    um2["requant"] = C * rq
    unit["requant"] = rq
    units["requant"] = C
    return AreaBreakdown(um2=um2, unit_um2=unit, units=units, sources=src)
