"""ZigZag 3.9.1 accelerator (hardware) YAML as an hwsim arch spec.

ZigZag's format (``zigzag/parser/accelerator_validator.py`` in zigzag-dse 3.9.1 holds its schema; examples in
``zigzag/inputs/hardware/``): ``memories`` (innermost first, the last one DRAM), each with ``size`` (bits),
``r_cost`` / ``w_cost`` (pJ per access of ``bandwidth_max`` bits), ``operands`` (I1 activations, I2 weights,
O outputs), ``ports`` and ``served_dimensions``; an ``operational_array`` of ``dimensions`` D1.. with ``sizes``
and ``unit_energy`` (pJ per MAC). The mapping is the hand translation of ``arch/zigzag_tpu_like.yaml`` and
``arch/zigzag_edge_tpu_like.yaml`` (whose comments explain each choice), made a rule:

==================================  =====================================================================
ZigZag                              hwsim
==================================  =====================================================================
operational_array D1 x D2 x ...     ``array.cols = D1`` (ZigZag's examples unroll output channels K on D1),
                                    ``array.rows`` = the product of the other dimensions; ``dataflow`` ws
unit_energy                         ``energy.mult_8b_pj``, with ``add_32b_pj: 0`` (ZigZag's MAC energy
                                    includes the add)
a memory serving every dimension    ``kind: sram`` (shared by the array), or ``dram`` for the last memory
a memory serving fewer              ``kind: rf, instances: per_pe``
size (bits)                         ``size_bytes`` (rf) or ``size_kib`` (sram)
ports' bandwidth_min                ``word_bits`` (ZigZag's access granularity)
ports' bandwidth_max                ``read_bw_bits_per_cycle`` / ``write_bw_bits_per_cycle`` (sram);
                                    ``bandwidth_bytes_per_cycle`` = bandwidth_max / 8 (dram)
r_cost, w_cost                      ``read_pj`` / ``write_pj`` per word: cost x word_bits / bandwidth_max
                                    (ZigZag charges per bandwidth_max-bit access with bandwidth_min
                                    granularity, ``cost_model/cost_model.py``)
the innermost memory holding O      ``pe.acc_bits`` = its word (ZigZag keeps partial sums there), else 32
input_precision                     ``pe.operand_bits`` (default 8: ZigZag's hardware has no precision)
==================================  =====================================================================

What hwsim cannot express is named in a :class:`UserWarning` (and in the arch's ``description``): memories
shared by a subset of the PEs (``served_dimensions`` other than none or all: hwsim's register files are one per
PE), more than two array dimensions (hwsim folds them into rows: ZigZag's spatial output pixels OX/OY have no
hwsim equivalent), ``latency`` other than 1, ``area`` and ``unit_area`` (ZigZag's area has no stated unit),
``dataflows`` (ZigZag's spatial-unrolling hints), the port ``allocation`` (hwsim has one read and one write
bandwidth per level), ``force_double_buffering`` (hwsim double-buffers SRAM and never its register files) and
``mem_type``. In-memory computing (``is_imc``) and CACTI cost extraction without costs are refused.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from ..errors import Found, SpecError, input_file
from ..spec import ArchSpec, load_yaml, validate
from ..spec import SpecModel

__all__ = ["arch_from_zigzag", "is_zigzag_hardware"]

_OPERANDS = {"I1": "ifmap", "I2": "filter", "O": "ofmap"}


class _Port(SpecModel):
    name: str = Field(pattern=r"^[r]?[w]?_port_\d+$")
    type: Literal["read", "write", "read_write"]
    bandwidth_min: int = Field(gt=0)
    bandwidth_max: int = Field(gt=0)
    allocation: tuple[str, ...]


class _Memory(SpecModel):
    size: int = Field(gt=0)
    r_cost: float | None = Field(default=None, ge=0)
    w_cost: float | None = Field(default=None, ge=0)
    area: float | None = Field(default=None, ge=0)
    latency: int = Field(ge=0)
    mem_type: str = "sram"
    auto_cost_extraction: bool = False
    operands: tuple[Literal["I1", "I2", "O"], ...] = Field(min_length=1)
    ports: tuple[_Port, ...] = Field(min_length=1)
    served_dimensions: tuple[str, ...]
    force_double_buffering: bool = False


class _Array(SpecModel):
    dimensions: tuple[str, ...] = Field(min_length=1)
    sizes: tuple[int, ...] = Field(min_length=1)
    is_imc: bool = False
    systolic_dimensions: tuple[str, ...] = ()
    input_precision: tuple[int, int] | None = None
    unit_energy: float | None = Field(default=None, ge=0)
    unit_area: float | None = Field(default=None, ge=0)
    imc_type: Literal["analog", "digital"] | None = None
    adc_resolution: float | None = 0
    bit_serial_precision: float | None = None


class _Hardware(SpecModel):
    name: str
    memories: dict[str, _Memory] = Field(min_length=2)
    operational_array: _Array
    dataflows: dict[str, tuple[str, ...]] | None = None


def is_zigzag_hardware(data: Any) -> bool:
    """Whether a YAML mapping looks like a ZigZag accelerator (``memories`` and ``operational_array``)."""
    return isinstance(data, dict) and "memories" in data and "operational_array" in data


def _level_name(key: str) -> str:
    n = re.sub(r"[^a-z0-9_]", "_", key.lower())
    return n if n[:1].isalpha() else f"m_{n}"


def arch_from_zigzag(path: str | Path, *, clock_mhz: float = 1000.0, dataflow: str = "ws",
                     name: str | None = None) -> ArchSpec:
    """Build an :class:`ArchSpec` from a ZigZag 3.9.1 accelerator YAML (the mapping in the module docstring).

    Parameters
    ----------
    path : str or Path
        The ZigZag hardware YAML, as ZigZag reads it (a key given twice: the last wins, with a warning).
    clock_mhz : float
        The array clock, MHz (ZigZag counts cycles only; 1000 makes a cycle a nanosecond).
    dataflow : str
        ``ws`` (default: ZigZag's tpu_like and edge_tpu_like mappings keep weights stationary), ``os`` or ``is``.
    name : str, optional
        The arch name (default: ``zigzag_<name>``).

    Warns
    -----
    UserWarning
        Naming every feature of the file hwsim does not model.

    Raises
    ------
    SpecError
        Not a ZigZag accelerator, an unknown key, a bad value, an in-memory-computing array, a last memory
        that does not hold I1, I2 and O, or costs left to CACTI (file and key path in the message).
    """
    p = input_file(path, "a ZigZag accelerator YAML file")
    src = str(p)
    data = load_yaml(p, duplicate_keys="last")
    if not is_zigzag_hardware(data):
        raise SpecError(src, "", "a ZigZag accelerator YAML (keys memories and operational_array)",
                        Found(f"keys {sorted(map(str, data))[:8]}"))
    hw = validate(_Hardware, data, src)
    arr = hw.operational_array
    if arr.is_imc:
        raise SpecError(src, "operational_array.is_imc", "a digital array (hwsim has no in-memory computing)",
                        True)
    if len(arr.sizes) != len(arr.dimensions) or min(arr.sizes) <= 0:
        raise SpecError(src, "operational_array.sizes", f"one size > 0 per dimension ({list(arr.dimensions)})",
                        list(arr.sizes))
    dims = set(arr.dimensions)
    dropped: list[str] = []
    if len(arr.sizes) > 2:
        dropped.append(f"array dimensions {list(arr.dimensions[1:])} (sizes {list(arr.sizes[1:])}) folded into "
                       f"{math.prod(arr.sizes[1:])} rows")
    if arr.unit_area:
        dropped.append("operational_array.unit_area")
    if hw.dataflows:
        dropped.append("dataflows")
    mems = list(hw.memories.items())
    levels: list[dict[str, Any]] = []
    acc_bits = None
    for i, (key, m) in enumerate(mems):
        where = f"memories.{key}"
        last = i == len(mems) - 1
        for c, v in (("r_cost", m.r_cost), ("w_cost", m.w_cost)):
            if v is None and m.auto_cost_extraction:
                raise SpecError(src, f"{where}.{c}", "a cost in pJ (auto_cost_extraction runs CACTI, which hwsim "
                                "does not)", None)
        reads = [pt for pt in m.ports if pt.type in ("read", "read_write")]
        writes = [pt for pt in m.ports if pt.type in ("write", "read_write")]
        if not reads or not writes:
            raise SpecError(src, f"{where}.ports", "at least one read and one write port",
                            Found(f"ports of types {[pt.type for pt in m.ports]}"))
        word = min(pt.bandwidth_min for pt in m.ports)
        rbw, wbw = max(pt.bandwidth_max for pt in reads), max(pt.bandwidth_max for pt in writes)
        shared = set(m.served_dimensions) == dims
        if m.served_dimensions and not shared:
            dropped.append(f"{key} served_dimensions {list(m.served_dimensions)} (one per PE in hwsim)")
        if m.latency != 1:
            dropped.append(f"{key} latency {m.latency}")
        if m.area:
            dropped.append(f"{key} area {m.area:g}")
        lv: dict[str, Any] = {"name": _level_name(key), "kind": "dram" if last else ("sram" if shared else "rf"),
                              "operands": [_OPERANDS[o] for o in m.operands], "word_bits": word}
        if m.r_cost is not None:
            lv["read_pj"] = m.r_cost * word / rbw
        if m.w_cost is not None:
            lv["write_pj"] = m.w_cost * word / wbw
        if last:
            if set(m.operands) != set(_OPERANDS):
                raise SpecError(src, f"{where}.operands", "the last memory (DRAM) holding I1, I2 and O",
                                list(m.operands))
            if lv["name"] != "dram":
                dropped.append(f"{key} renamed dram")
            lv["name"] = "dram"
            lv["bandwidth_bytes_per_cycle"] = rbw / 8
            if wbw != rbw:
                dropped.append(f"{key} write bandwidth {wbw} bits/cycle (hwsim's DRAM channel: the read "
                               f"port's {rbw})")
        elif shared:
            lv["size_kib"] = m.size / 8192
            lv["read_bw_bits_per_cycle"], lv["write_bw_bits_per_cycle"] = rbw, wbw
        else:
            lv["instances"] = "per_pe"
            lv["size_bytes"] = max(1, m.size // 8)
            lv["double_buffered"] = False
            if m.size % 8:
                dropped.append(f"{key} size {m.size} bits rounded to {m.size // 8 or 1} bytes")
        if m.force_double_buffering and not shared:
            dropped.append(f"{key} force_double_buffering")
        if "O" in m.operands and acc_bits is None and not last:
            acc_bits = word
        levels.append(lv)
    cols, rows = arr.sizes[0], math.prod(arr.sizes[1:])
    note = "; not modelled: " + "; ".join(dropped) if dropped else ""
    spec = {
        "name": name or f"zigzag_{hw.name}",
        "description": f"ZigZag accelerator {hw.name} ({' x '.join(map(str, arr.sizes))} MACs) in hwsim's terms"
                       + note,
        "source": f"ZigZag 3.9.1 hardware YAML {src} (hwsim import-zigzag)",
        "clock_mhz": clock_mhz,
        "array": {"rows": rows, "cols": cols, "dataflow": dataflow},
        "pe": {"operand_bits": max(arr.input_precision) if arr.input_precision else 8, "min_bits": 1,
               "acc_bits": acc_bits or 32, "acc_mode": "wrap", "precision_mode": "fixed"},
        "memory": {"levels": levels},
        "energy": {"technology": "horowitz_45nm",
                   **({"mult_8b_pj": arr.unit_energy, "add_32b_pj": 0.0} if arr.unit_energy is not None else {})},
    }
    if dropped:
        warnings.warn(f"{src}: not modelled by hwsim: {'; '.join(dropped)}", UserWarning, stacklevel=2)
    return validate(ArchSpec, spec, src)
