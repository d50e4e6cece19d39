"""Per-action energy: action counts from the mapping x energy per action (Accelergy's "energy reference
table" idea: Wu, Emer, Sze, ICCAD 2019), from a technology table with every override of the arch YAML.

Actions and their energies (``hwsim/tech/horowitz_45nm.yaml`` states the sources and derivations):

* ``mac``: one MAC at the operand widths the PE uses, by precision mode (``pe.precision_mode``):

  - ``fixed``: ``mult(b_a, b_w) + add(acc_bits)``: the multiplier's switched bits scale with ``b_a*b_w`` (its
    unused upper operand bits held at zero), the accumulator at its own width;
  - ``bit_fusion`` (Sharma et al., ISCA 2018): a unit of ``n``-bit operands built of ``B = (n/brick)^2``
    BitBricks fuses ``f = (n/b_a')*(n/b_w')`` MACs per cycle (``b'``: ``b`` rounded up to a brick times a
    power of two); its bricks switch ``b_a'*b_w'`` partial-product bits per MAC and its shift-add tree
    (``B - 1`` adders) and single accumulator add work once per cycle for all ``f`` MACs:
    ``mult(b_a', b_w') + ((B - 1)*tree_add + add(acc_bits)) / f``. A fused 4x4 on an 8-bit unit therefore
    costs ``16/64`` of the 8x8 multiply plus a quarter of the tree and accumulator (0.05 + 0.3625/4 = 0.141 pJ
    at 45 nm, against 0.5625 pJ for 8x8; the tree adder energy comes from Bit Fusion's own synthesis);
  - ``bit_serial`` (Stripes, Judd et al., MICRO 2016; Loom, Sharify et al., DAC 2018): the same ``b_a*b_w``
    partial-product bits, fed serially, and one accumulator add per serial step:
    ``mult(b_a, b_w) + steps * add(acc_bits)``, ``steps = ceil(b_a/bpc)`` (Stripes) or
    ``ceil(b_a/bpc)*ceil(b_w/bpc)`` (Loom).

* every memory level, by operand and by read or write. Shared buffers and DRAM move packed operands: an access
  of ``word_bits`` carries ``word_bits / b`` operands of ``b`` bits (a 64-bit access: 8 int8 or 16 int4), so
  accesses = ``ceil(bits / word_bits)``, each at the energy of one access to an array of the level's bank size
  (``size / banks``). A per-PE register file is accessed once per operand it serves (one MAC reads the one
  operand it needs): accesses = operands x ``ceil(b / word_bits)``. DRAM is charged per bit moved, reads and
  writes apart.
* ``zero_point`` (asymmetric layers, :meth:`hwsim.spec.Workload.asymmetric`): the cross terms of
  ``sum((x - z_x)(w - z_w)) = sum(xw) - z_w*sum(x) - z_x*sum(w) + K*z_x*z_w``. Asymmetric weights: the window
  sum of every output pixel (``M*K`` adds per group at ``acc_bits``), one ``weight_bits x acc_bits`` multiply
  and one add per output; asymmetric activations: ``z_x*sum(w) - K*z_x*z_w`` is a constant per output channel,
  folded into the bias offline and added once per output.
* ``requant``: one per output element: one ``acc_bits x 32`` multiply (the int32 fixed-point multiplier) and
  one ``acc_bits`` add (the rounding shift).

Not charged: inter-PE links and wires (as in ZigZag, folded into the access energies), leakage, control.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..mapping import LayerMapping
from ..spec import ArchSpec, MemoryLevel
from ._tech import TechTable, load_tech

__all__ = ["ActionEnergies", "action_energies", "layer_energy", "energy_components", "EnergyRecord",
           "mac_energy"]


@dataclass(frozen=True)
class ActionEnergies:
    """Energy per action for one arch, pJ, and where each number came from (``sources``: key -> text).

    ``read_pj``/``write_pj`` map a memory level's name to pJ per access of its ``word_bits`` (for DRAM: pJ
    per bit). ``mult_scale``/``add_scale`` are the arch's ``mult_8b_pj``/``add_32b_pj`` over the table's (1
    without overrides): every multiply and add energy is the table's curve times them.
    """

    mult_8b_pj: float
    add_acc_pj: float
    requant_pj: float
    read_pj: dict[str, float]
    write_pj: dict[str, float]
    dram_pj_per_bit: float
    technology: str
    sources: dict[str, str] = field(default_factory=dict)
    tech: TechTable | None = None
    mult_scale: float = 1.0
    add_scale: float = 1.0
    fusion_tree_add_pj: float = 0.0
    dram_write_pj_per_bit: float | None = None

    def mult_pj(self, a_bits: float, w_bits: float) -> float:
        """One ``a_bits x w_bits`` multiply, pJ (the table's curve, ~ ``b_a*b_w``, times ``mult_scale``)."""
        if self.tech is None:
            return self.mult_8b_pj * a_bits * w_bits / 64.0
        return self.tech.mult_pj(a_bits, w_bits) * self.mult_scale

    def add_pj(self, bits: float) -> float:
        """One ``bits``-wide add, pJ (the table's curve, ~ bits, times ``add_scale``)."""
        if self.tech is None:
            return self.add_acc_pj
        return self.tech.add_pj(bits) * self.add_scale


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
    """The energy components of an arch: ``mac``, each memory level by name (``dram`` last), ``zero_point``,
    ``requant``, and ``vector`` (the vector unit's ops) when the arch has a vector unit."""
    return ("mac", *(lv.name for lv in arch.memory.hierarchy()), "zero_point", "requant",
            *(("vector",) if arch.vector_unit is not None else ()))


def _level_key(arch: ArchSpec, i: int, lv: MemoryLevel) -> str:
    return f"arch memory.{lv.name}" if arch.memory.levels is None else f"arch memory.levels[{i}]"


def action_energies(arch: ArchSpec, *, source: str = "<arch>") -> ActionEnergies:
    """Resolve the energy of every action for ``arch``: the arch YAML's numbers where given, else the table's.

    Raises
    ------
    SpecError
        ``energy.technology`` names no shipped table (naming ``source`` and the key), or the table is broken
        (naming its file and key).
    """
    tech = load_tech(arch.energy.technology, source=source)
    ov = arch.energy
    tag = f"table {tech.name}"
    src: dict[str, str] = {}
    e = tech.energy
    t8 = tech.mult_pj(8, 8)
    mult_scale = ov.mult_8b_pj / t8 if ov.mult_8b_pj is not None and t8 > 0 else 1.0
    mult8 = ov.mult_8b_pj if ov.mult_8b_pj is not None else t8
    src["mult_8b_pj"] = "arch energy.mult_8b_pj" if ov.mult_8b_pj is not None else \
        e["int_mult"].provenance(tech.name)
    src["mult_rule"] = ("multiply b_a x b_w: ~ b_a*b_w (" + tech.rules.get("mult", "hwsim/energy/_tech.py")
                        + ")" + (", scaled to arch energy.mult_8b_pj" if ov.mult_8b_pj is not None else ""))
    t32 = tech.add_pj(32)
    add_scale = ov.add_32b_pj / t32 if ov.add_32b_pj is not None and t32 > 0 else 1.0
    acc = arch.pe.acc_bits
    add_acc = tech.add_pj(acc) * add_scale
    add_src = "arch energy.add_32b_pj" if ov.add_32b_pj is not None else e["int_add"].provenance(tech.name)
    src["add_acc_pj"] = add_src + f"; at the accumulator's {acc} bits (derived: ~ bits, piecewise linear)"
    if ov.requant_pj is not None:
        requant = ov.requant_pj
        src["requant_pj"] = "arch energy.requant_pj"
    else:
        requant = tech.mult_pj(acc, 32) * mult_scale + add_acc
        src["requant_pj"] = (f"{tag} (derived: one {acc} x 32-bit multiply + one {acc}-bit add"
                             + (", with the arch's multiply/add scaling"
                                if ov.mult_8b_pj is not None or ov.add_32b_pj is not None else "")
                             + ")")
    tree = tech.fusion_tree_add_pj
    src["fusion_tree_add_pj"] = e["fusion_tree_add"].provenance(tech.name)
    reads, writes = {}, {}
    dram_r = tech.dram_pj_per_bit
    dram_w = tech.dram_write_pj_per_bit
    for i, lv in enumerate(arch.memory.hierarchy()):
        key = _level_key(arch, i, lv)
        rk, wk = f"{lv.name}_read_pj", f"{lv.name}_write_pj"
        if lv.kind == "dram":
            per_bit = {}
            for action, given, table_pj, k in (("read", lv.read_pj, dram_r, rk),
                                               ("write", lv.write_pj, dram_w, wk)):
                if given is not None:
                    per_bit[action] = given / lv.word_bits
                    src[k] = f"{key}.{action}_pj / word_bits ({lv.word_bits}), per bit"
                elif lv.pj_per_bit is not None:
                    per_bit[action], src[k] = lv.pj_per_bit, f"{key}.pj_per_bit"
                else:
                    per_bit[action] = table_pj
                    src[k] = e[f"dram_{action}_64b"].provenance(tech.name) + " / 64, per bit"
            dram_r, dram_w = per_bit["read"], per_bit["write"]
            reads[lv.name], writes[lv.name] = dram_r, dram_w
            continue
        bank_kib = lv.size_bits / 8192 / lv.banks
        what = f"{bank_kib:g} KiB {'register file' if lv.kind == 'rf' else 'bank'}, {lv.word_bits}-bit access"
        base_r = tech.sram_read_pj(bank_kib, lv.word_bits)
        ratio = 1.0 if lv.kind == "rf" else tech.sram_write_over_read(bank_kib)
        if lv.read_pj is not None:
            reads[lv.name], src[rk] = lv.read_pj, f"{key}.read_pj"
        else:
            reads[lv.name] = base_r
            src[rk] = f"{tag} sram_read_64b (derived: {what}, log-log in size, x word_bits/64)"
        if lv.write_pj is not None:
            writes[lv.name], src[wk] = lv.write_pj, f"{key}.write_pj"
        elif lv.read_pj is not None:
            writes[lv.name], src[wk] = lv.read_pj, f"{key}.read_pj (a write costs the given read)"
        elif lv.kind == "rf":
            writes[lv.name], src[wk] = base_r, src[rk] + " (register file: write = read)"
        else:
            writes[lv.name] = base_r * ratio
            src[wk] = src[rk] + (f" x sram_write_over_read {ratio:.3g} (derived: CACTI 7 ratio at "
                                 f"{bank_kib:g} KiB)")
    return ActionEnergies(mult_8b_pj=mult8, add_acc_pj=add_acc, requant_pj=requant, read_pj=reads,
                          write_pj=writes, dram_pj_per_bit=dram_r, technology=tech.name, sources=src,
                          tech=tech, mult_scale=mult_scale, add_scale=add_scale, fusion_tree_add_pj=tree,
                          dram_write_pj_per_bit=dram_w)


def mac_energy(arch: ArchSpec, ae: ActionEnergies, *, a_bits: int, w_bits: int, macs_per_pe_cycle: int = 1,
               cycles_per_step: int = 1) -> tuple[float, str]:
    """Energy of one MAC, pJ, and its description, for the PE's precision mode (module docstring).

    ``a_bits``/``w_bits`` are the widths the PE uses (bit fusion: rounded up to its bricks);
    ``macs_per_pe_cycle`` the fused MACs per cycle (bit fusion), ``cycles_per_step`` the serial steps
    (bit-serial).
    """
    pe = arch.pe
    acc = pe.acc_bits
    mult = ae.mult_pj(a_bits, w_bits)
    add = ae.add_pj(acc)
    if pe.precision_mode == "bit_fusion":
        bricks = (pe.operand_bits // pe.brick_bits) ** 2
        f = macs_per_pe_cycle
        shared = (bricks - 1) * ae.fusion_tree_add_pj + add
        return (mult + shared / f,
                f"MAC {a_bits}b x {w_bits}b fused ({f} per cycle): multiply + ({bricks - 1} tree adds + "
                f"{acc}b add) / {f}")
    if pe.precision_mode == "bit_serial":
        return (mult + cycles_per_step * add,
                f"MAC {a_bits}b x {w_bits}b bit-serial: multiply + {cycles_per_step} x {acc}b add")
    return mult + add, f"MAC {a_bits}b x {w_bits}b + {acc}b add"


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _words(b: int, wb: int) -> str:
    return f"{wb // b} x {b}-bit" if wb >= b and wb % b == 0 else f"{wb / b:g} of a {b}-bit"


def layer_energy(m: LayerMapping, arch: ArchSpec, ae: ActionEnergies, *, weight_zero_point: bool = False,
                 act_zero_point: bool = False) -> list[EnergyRecord]:
    """Every action of one mapped layer with its count and energy (sum ``energy_pj`` for the total, pJ).

    ``weight_zero_point`` / ``act_zero_point``: the layer's weights / activations have a non-zero zero point
    (asymmetric quantization), which adds the zero-point records (module docstring).
    """
    pf = m.precision
    acc = arch.pe.acc_bits
    pj, desc = mac_energy(arch, ae, a_bits=pf.a_bits_eff, w_bits=pf.w_bits_eff,
                          macs_per_pe_cycle=pf.macs_per_pe_cycle, cycles_per_step=pf.cycles_per_step)
    recs = [EnergyRecord("mac", "", "mac", m.macs, desc, pj)]
    op_bits = {"ifmap": m.act_bits, "filter": m.weight_bits, "ofmap": m.out_bits}
    for lv in arch.memory.hierarchy():
        for action, table, pjs in (("read", m.traffic.reads, ae.read_pj),
                                   ("write", m.traffic.writes, ae.write_pj)):
            for op, bits in table[lv.name].items():
                if not bits:
                    continue
                if lv.kind == "dram":
                    recs.append(EnergyRecord(lv.name, op, action, bits, "bit", pjs[lv.name]))
                elif lv.instances == "per_pe":
                    b = acc if op == "ofmap" else op_bits[op]
                    per = _cdiv(b, lv.word_bits)
                    recs.append(EnergyRecord(lv.name, op, action, (bits // b) * per,
                                             f"{lv.word_bits}-bit access, one {b}-bit operand per "
                                             f"{'access' if per == 1 else f'{per} accesses'}", pjs[lv.name]))
                else:
                    b = op_bits[op]
                    unit = f"{lv.word_bits}-bit access, packed ({_words(b, lv.word_bits)} words"
                    unit += f"; {acc}-bit partial sums)" if op == "ofmap" and m.sram_ofmap_reads else ")"
                    recs.append(EnergyRecord(lv.name, op, action, _cdiv(bits, lv.word_bits), unit,
                                             pjs[lv.name]))
    outputs = m.outputs
    if weight_zero_point:
        recs.append(EnergyRecord("zero_point", "ifmap", "window_sum_add", m.m * m.k * m.groups,
                                 f"{acc}b add (sum of x over each output pixel's window)", ae.add_pj(acc)))
        recs.append(EnergyRecord("zero_point", "ofmap", "zw_times_sum_x", outputs,
                                 f"{m.weight_bits}b x {acc}b multiply + {acc}b add per output",
                                 ae.mult_pj(m.weight_bits, acc) + ae.add_pj(acc)))
    if act_zero_point:
        recs.append(EnergyRecord("zero_point", "ofmap", "zx_constant_add", outputs,
                                 f"{acc}b add per output (z_x*sum(w) - K*z_x*z_w, folded offline)",
                                 ae.add_pj(acc)))
    recs.append(EnergyRecord("requant", "ofmap", "requant", outputs, "output", ae.requant_pj))
    return recs
