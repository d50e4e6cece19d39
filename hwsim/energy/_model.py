"""Per-action energy: action counts from the mapping x energy per action from the technology table.

Assumptions (first cut; ``hwsim/tech/horowitz_45nm.yaml`` states the derivations):

* MAC = one multiply at the operand widths the PE uses (bit fusion rounds them up to its bricks) plus one add
  at the accumulator width. A bit-serial PE does one accumulator add per serial step.
* SRAM energy per access of the buffer's ``word_bits``; operands are packed (a 64-bit access carries 8 int8 or
  16 int4 operands). Reads feed the array; writes fill the buffer from DRAM (ifmap, filter) or take the array's
  outputs and partial sums (ofmap). Reads and writes are counted apart; a write costs what a read costs unless
  overridden.
* DRAM energy per bit moved, reads and writes alike.
* Requantization: one per output element.

Not yet charged (see the energy issue): PE registers and inter-PE links, zero-point cross terms, leakage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..mapping import LayerMapping
from ..spec import ArchSpec, SramConfig
from ._tech import load_tech

__all__ = ["ActionEnergies", "action_energies", "layer_energy", "ENERGY_COMPONENTS"]

ENERGY_COMPONENTS = ("mac", "sram_ifmap", "sram_filter", "sram_ofmap", "dram", "requant")


@dataclass(frozen=True)
class ActionEnergies:
    """Energy per action for one arch, pJ, and where each number came from (``sources``)."""

    mult_8b_pj: float
    add_acc_pj: float
    requant_pj: float
    sram_read_pj: dict[str, float]
    sram_write_pj: dict[str, float]
    dram_pj_per_bit: float
    technology: str
    sources: dict[str, str] = field(default_factory=dict)

    def mult_pj(self, a_bits: int, w_bits: int) -> float:
        """One ``a_bits`` x ``w_bits`` multiply: ``mult_8b_pj * a_bits * w_bits / 64``, pJ."""
        return self.mult_8b_pj * a_bits * w_bits / 64.0


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
    add32 = ov.add_32b_pj
    add_acc = tech.add_pj(arch.pe.acc_bits, add_32b_pj=add32)
    src["add_acc_pj"] = ("arch energy.add_32b_pj" if add32 is not None else tag) + \
        f" at {arch.pe.acc_bits} bits (derived: piecewise linear in bits)"
    if ov.requant_pj is not None:
        requant = ov.requant_pj
        src["requant_pj"] = "arch energy.requant_pj"
    else:
        requant = tech.int_mult_pj.get(32, tech.mult_pj(32, 32)) + tech.add_pj(32)
        src["requant_pj"] = f"{tag} (derived: one 32-bit multiply + one 32-bit add)"
    reads, writes = {}, {}
    for op in ("ifmap", "filter", "ofmap"):
        s: SramConfig = getattr(arch.memory, f"{op}_sram")
        base = tech.sram_access_pj(s.size_kib, s.word_bits)
        reads[op] = s.read_pj if s.read_pj is not None else base
        writes[op] = s.write_pj if s.write_pj is not None else (s.read_pj if s.read_pj is not None else base)
        src[f"sram_{op}_read_pj"] = (f"arch memory.{op}_sram.read_pj" if s.read_pj is not None else
                                     f"{tag} (derived: {s.size_kib} KiB, {s.word_bits}-bit access)")
        src[f"sram_{op}_write_pj"] = (f"arch memory.{op}_sram.write_pj" if s.write_pj is not None else
                                      src[f"sram_{op}_read_pj"] + " (write = read)")
    d = arch.memory.dram.pj_per_bit
    dram = d if d is not None else tech.dram_pj_per_bit
    src["dram_pj_per_bit"] = "arch memory.dram.pj_per_bit" if d is not None else f"{tag} (64-bit read / 64)"
    return ActionEnergies(mult_8b_pj=mult8, add_acc_pj=add_acc, requant_pj=requant, sram_read_pj=reads,
                          sram_write_pj=writes, dram_pj_per_bit=dram, technology=tech.name, sources=src)


def _accesses(nbytes: int, word_bits: int) -> int:
    return -(-nbytes * 8 // word_bits)


def layer_energy(m: LayerMapping, arch: ArchSpec, ae: ActionEnergies) -> dict[str, float]:
    """Energy of one mapped layer by component (keys of ``ENERGY_COMPONENTS``), pJ.

    mac = macs * (mult(b_a', b_w') + steps * add(acc_bits)); sram_X = reads * E_read + writes * E_write per
    access; dram = 8 * bytes * pJ/bit; requant = outputs * E_requant.
    """
    pf = m.precision
    mac = m.macs * (ae.mult_pj(pf.a_bits_eff, pf.w_bits_eff) + pf.cycles_per_step * ae.add_acc_pj)
    mem = arch.memory
    ifmap = (m.sram_ifmap_read_accesses * ae.sram_read_pj["ifmap"]
             + _accesses(m.dram_ifmap_read_bytes, mem.ifmap_sram.word_bits) * ae.sram_write_pj["ifmap"])
    filt = (m.sram_filter_read_accesses * ae.sram_read_pj["filter"]
            + _accesses(m.dram_filter_read_bytes, mem.filter_sram.word_bits) * ae.sram_write_pj["filter"])
    # ofmap: array writes + partial-sum reads, then the reads that send outputs (and spilled psums) to DRAM,
    # and the writes of psums coming back
    ow = mem.ofmap_sram.word_bits
    ofmap = ((m.sram_ofmap_write_accesses + _accesses(m.dram_psum_read_bytes, ow)) * ae.sram_write_pj["ofmap"]
             + (m.sram_ofmap_read_accesses + _accesses(m.dram_write_bytes, ow)) * ae.sram_read_pj["ofmap"])
    dram = 8 * (m.dram_read_bytes + m.dram_write_bytes) * ae.dram_pj_per_bit
    requant = m.outputs * ae.requant_pj
    return {"mac": mac, "sram_ifmap": ifmap, "sram_filter": filt, "sram_ofmap": ofmap, "dram": dram,
            "requant": requant}
