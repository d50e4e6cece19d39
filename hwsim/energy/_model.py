"""Per-action energy: action counts from the mapping x energy per action (Accelergy's "energy reference
table" idea: Wu, Emer, Sze, ICCAD 2019), from a technology table with every override of the arch YAML.

Actions and their energies (``hwsim/tech/horowitz_45nm.yaml`` states the derivations):

* ``mac``: one multiply at the operand widths the PE uses (bit fusion rounds them up to its bricks), plus one
  add at the accumulator width per cycle step (a bit-serial PE adds once per serial step).
* every memory level, by operand and by read or write: accesses of the level's ``word_bits`` (operands are
  packed: a 64-bit access carries 8 int8 or 16 int4 operands) x energy per access of an SRAM of the level's
  bank size (``size / banks``); a write costs what a read costs unless overridden. DRAM: per bit moved.
* ``requant``: one per output element.

Not charged yet (the energy issue): inter-PE links, zero-point cross terms, leakage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..mapping import LayerMapping
from ..spec import ArchSpec
from ._tech import load_tech

__all__ = ["ActionEnergies", "action_energies", "layer_energy", "energy_components", "EnergyRecord"]


@dataclass(frozen=True)
class ActionEnergies:
    """Energy per action for one arch, pJ, and where each number came from (``sources``).

    ``read_pj``/``write_pj`` map a memory level's name to pJ per access of its ``word_bits`` (for DRAM: per
    bit, ``dram_pj_per_bit``).
    """

    mult_8b_pj: float
    add_acc_pj: float
    requant_pj: float
    read_pj: dict[str, float]
    write_pj: dict[str, float]
    dram_pj_per_bit: float
    technology: str
    sources: dict[str, str] = field(default_factory=dict)

    def mult_pj(self, a_bits: int, w_bits: int) -> float:
        """One ``a_bits`` x ``w_bits`` multiply: ``mult_8b_pj * a_bits * w_bits / 64``, pJ."""
        return self.mult_8b_pj * a_bits * w_bits / 64.0


@dataclass(frozen=True)
class EnergyRecord:
    """One line of a layer's energy: ``count`` actions of ``unit`` at ``pj_each`` pJ."""

    component: str
    operand: str
    action: str
    count: float
    unit: str
    pj_each: float

    @property
    def energy_pj(self) -> float:
        return self.count * self.pj_each


def energy_components(arch: ArchSpec) -> tuple[str, ...]:
    """The energy components of an arch: ``mac``, each memory level by name (``dram`` last), ``requant``."""
    return ("mac", *(lv.name for lv in arch.memory.hierarchy()), "requant")


def action_energies(arch: ArchSpec) -> ActionEnergies:
    """Resolve the energy of every action for ``arch``: the arch YAML's numbers where given, else the table's.

    Raises
    ------
    SpecError
        ``energy.technology`` names no shipped table.
    """
    tech = load_tech(arch.energy.technology)
    src: dict[str, str] = {}
    ov = arch.energy
    tag = f"table {tech.name}"
    mult8 = ov.mult_8b_pj if ov.mult_8b_pj is not None else tech.int_mult_pj[8]
    src["mult_8b_pj"] = "arch energy.mult_8b_pj" if ov.mult_8b_pj is not None else tag
    add_acc = tech.add_pj(arch.pe.acc_bits, add_32b_pj=ov.add_32b_pj)
    src["add_acc_pj"] = ("arch energy.add_32b_pj" if ov.add_32b_pj is not None else tag) + \
        f" at {arch.pe.acc_bits} bits (derived: piecewise linear in bits)"
    if ov.requant_pj is not None:
        requant = ov.requant_pj
        src["requant_pj"] = "arch energy.requant_pj"
    else:
        requant = tech.int_mult_pj.get(32, tech.mult_pj(32, 32)) + tech.add_pj(32)
        src["requant_pj"] = f"{tag} (derived: one 32-bit multiply + one 32-bit add)"
    reads, writes = {}, {}
    dram_bit = tech.dram_pj_per_bit
    short = arch.memory.levels is None
    for i, lv in enumerate(arch.memory.hierarchy()):
        key = f"arch memory.{lv.name}" if short else f"arch memory.levels[{i}]"
        if lv.kind == "dram":
            dram_bit = lv.pj_per_bit if lv.pj_per_bit is not None else tech.dram_pj_per_bit
            src["dram_pj_per_bit"] = (f"{key}.pj_per_bit" if lv.pj_per_bit is not None
                                      else f"{tag} (64-bit read / 64)")
            reads[lv.name] = writes[lv.name] = dram_bit
            continue
        bank_kib = lv.size_bits / 8192 / lv.banks
        base = tech.sram_access_pj(bank_kib, lv.word_bits)
        reads[lv.name] = lv.read_pj if lv.read_pj is not None else base
        writes[lv.name] = lv.write_pj if lv.write_pj is not None else (
            lv.read_pj if lv.read_pj is not None else base)
        derived = f"{tag} (derived: {bank_kib:g} KiB bank, {lv.word_bits}-bit access)"
        src[f"{lv.name}_read_pj"] = f"{key}.read_pj" if lv.read_pj is not None else derived
        src[f"{lv.name}_write_pj"] = (f"{key}.write_pj" if lv.write_pj is not None
                                      else src[f"{lv.name}_read_pj"] + " (write = read)")
    return ActionEnergies(mult_8b_pj=mult8, add_acc_pj=add_acc, requant_pj=requant, read_pj=reads,
                          write_pj=writes, dram_pj_per_bit=dram_bit, technology=tech.name, sources=src)


def _accesses(bits: int, word_bits: int) -> int:
    return -(-bits // word_bits)


def layer_energy(m: LayerMapping, arch: ArchSpec, ae: ActionEnergies) -> list[EnergyRecord]:
    """Every action of one mapped layer with its count and energy (sum ``energy_pj`` for the total, pJ).

    mac: ``macs * (mult(b_a', b_w') + steps * add(acc_bits))``; level L, operand X, read or write:
    ``ceil(bits / word_bits)`` accesses x pJ per access (DRAM: bits x pJ per bit); requant: outputs x pJ.
    """
    pf = m.precision
    recs = [EnergyRecord("mac", "", "mac", m.macs,
                         f"MAC {pf.a_bits_eff}b x {pf.w_bits_eff}b + {pf.cycles_per_step} x {arch.pe.acc_bits}b add",
                         ae.mult_pj(pf.a_bits_eff, pf.w_bits_eff) + pf.cycles_per_step * ae.add_acc_pj)]
    for lv in arch.memory.hierarchy():
        for action, table, pj in (("read", m.traffic.reads, ae.read_pj), ("write", m.traffic.writes, ae.write_pj)):
            for op, bits in table[lv.name].items():
                if not bits:
                    continue
                if lv.kind == "dram":
                    recs.append(EnergyRecord(lv.name, op, action, bits, "bit", pj[lv.name]))
                else:
                    recs.append(EnergyRecord(lv.name, op, action, _accesses(bits, lv.word_bits),
                                             f"{lv.word_bits}-bit access", pj[lv.name]))
    recs.append(EnergyRecord("requant", "ofmap", "requant", m.outputs, "output", ae.requant_pj))
    return recs
