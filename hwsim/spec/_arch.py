"""The accelerator description: a systolic array, its PE precision, its memories and energy overrides.

The YAML (``arch/*.yaml``) is validated into these frozen pydantic models; unknown keys, wrong types and
non-positive sizes are errors naming the key path. Every unit is in the key name (``size_kib``,
``word_bits``, ``bandwidth_bytes_per_cycle``, ``clock_mhz``, ``*_pj``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..errors import SpecError
from ._loader import load_yaml, validate

__all__ = ["ArchSpec", "ArrayConfig", "PEConfig", "SramConfig", "DramConfig", "MemoryConfig",
           "EnergyOverrides", "TimingConfig", "load_arch"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


PosInt = int  # validated with Field(gt=0) where used


class ArrayConfig(_Frozen):
    """The PE array: ``rows`` x ``cols`` PEs and the dataflow.

    ``dataflow``: ``ws`` (weight stationary: a K x N weight tile stays in the array), ``os`` (output
    stationary: an M x N output tile), ``is`` (input stationary: a K x M input tile).
    """

    rows: int = Field(gt=0, description="PE rows (SCALE-Sim ArrayHeight)")
    cols: int = Field(gt=0, description="PE columns (SCALE-Sim ArrayWidth)")
    dataflow: Literal["ws", "os", "is"]


class PEConfig(_Frozen):
    """Precision of one PE.

    ``precision_mode``:

    * ``fixed``: one MAC per cycle for any operand bits up to ``operand_bits`` (larger is infeasible).
    * ``bit_fusion``: a PE of ``operand_bits`` x ``operand_bits`` fuses into
      ``(operand_bits/b_a') * (operand_bits/b_w')`` MACs per cycle, where b' is b rounded up to a power of two
      times ``brick_bits`` (Sharma et al., ISCA 2018: 2-bit BitBricks fused in powers of two).
    * ``bit_serial``: operands in ``serial_operands`` are fed ``bits_per_cycle`` bits at a time; a MAC takes
      ``ceil(b_a/bpc)`` cycles (Stripes, Judd et al., MICRO 2016, serial activations) or
      ``ceil(b_a/bpc) * ceil(b_w/bpc)`` (Loom, Sharify et al., DAC 2018, both serial).
    """

    operand_bits: int = Field(gt=0, le=32, description="native operand width, bits")
    acc_bits: int = Field(gt=0, le=64, description="accumulator width, bits")
    acc_mode: Literal["wrap", "saturate"] = "wrap"
    precision_mode: Literal["fixed", "bit_fusion", "bit_serial"] = "fixed"
    min_bits: int = Field(default=1, gt=0, le=32, description="smallest operand width the PE accepts, bits")
    brick_bits: int = Field(default=2, gt=0, le=32, description="bit_fusion only: BitBrick width, bits")
    serial_operands: tuple[Literal["act", "weight"], ...] = ("act",)
    bits_per_cycle: int = Field(default=1, gt=0, le=32, description="bit_serial only: bits fed per cycle")

    @model_validator(mode="after")
    def _check(self) -> "PEConfig":
        if self.min_bits > self.operand_bits:
            raise ValueError(f"min_bits <= operand_bits ({self.operand_bits}); found {self.min_bits}")
        if self.precision_mode == "bit_fusion":
            ratio = self.operand_bits // self.brick_bits
            if self.operand_bits % self.brick_bits or ratio & (ratio - 1):
                raise ValueError("for bit_fusion, operand_bits equal to brick_bits times a power of two; "
                                 f"found operand_bits={self.operand_bits}, brick_bits={self.brick_bits}")
        if not self.serial_operands:
            raise ValueError("serial_operands to name at least one of 'act', 'weight'; found none")
        return self


class SramConfig(_Frozen):
    """One on-chip SRAM buffer.

    ``size_kib`` is the total capacity in KiB (1024 bytes); when the memory is double buffered, each half
    holds one tile (SCALE-Sim's active fraction 0.5). ``word_bits`` is the width of one access: an access of
    64 bits carries 8 int8 operands or 16 int4 operands. ``read_pj``/``write_pj`` (pJ per access) override
    the technology table.
    """

    size_kib: float = Field(gt=0)
    word_bits: int = Field(default=64, gt=0, le=65536)
    read_pj: float | None = Field(default=None, ge=0)
    write_pj: float | None = Field(default=None, ge=0)


class DramConfig(_Frozen):
    """The off-chip memory: bandwidth in bytes per array clock cycle (reads and writes share it).

    ``bandwidth_bytes_per_cycle: unbounded`` removes every bandwidth stall. ``pj_per_bit`` overrides the
    technology table.
    """

    bandwidth_bytes_per_cycle: float | Literal["unbounded"] = Field(default=16.0)
    pj_per_bit: float | None = Field(default=None, ge=0)

    @field_validator("bandwidth_bytes_per_cycle")
    @classmethod
    def _bw(cls, v: Any) -> Any:
        if v != "unbounded" and not (v > 0):
            raise ValueError(f"a bandwidth > 0 bytes/cycle or 'unbounded'; found {v!r}")
        if v != "unbounded" and math.isinf(v):
            return "unbounded"
        return v

    @property
    def bandwidth(self) -> float:
        """Bytes per cycle as a float (``inf`` when unbounded)."""
        return math.inf if self.bandwidth_bytes_per_cycle == "unbounded" else float(self.bandwidth_bytes_per_cycle)


class MemoryConfig(_Frozen):
    """Per-operand SRAM buffers (ifmap, filter, ofmap) and DRAM."""

    ifmap_sram: SramConfig
    filter_sram: SramConfig
    ofmap_sram: SramConfig
    dram: DramConfig = DramConfig()
    double_buffered: bool = True


class EnergyOverrides(_Frozen):
    """Energy per action. ``technology`` names a table in ``hwsim/tech/``; any other key replaces the table's.

    Units: pJ. ``mult_8b_pj``: one 8b x 8b integer multiply (scaled by b_a*b_w/64); ``add_32b_pj``: one
    32-bit add (scaled linearly with the accumulator bits); ``requant_pj``: requantizing one output;
    ``dram_pj_per_bit``: one bit moved to or from DRAM.
    """

    technology: str = "horowitz_45nm"
    mult_8b_pj: float | None = Field(default=None, ge=0)
    add_32b_pj: float | None = Field(default=None, ge=0)
    requant_pj: float | None = Field(default=None, ge=0)


class TimingConfig(_Frozen):
    """Timing conventions.

    ``max_tiles_per_layer`` sets the event model's granularity (see :mod:`hwsim.sim`).
    ``convention: hwsim`` counts cycles (a fold of c cycles adds c). ``convention: scalesim`` reproduces
    SCALE-Sim 3.0.0's "Total Cycles", which is the index of the last cycle, i.e. one less per GEMM
    (``shared/reference/scalesim.md`` §2-3; scalesim-project/SCALE-Sim#125).
    """

    convention: Literal["hwsim", "scalesim"] = "hwsim"
    max_tiles_per_layer: int = Field(default=256, gt=0, description="event-model granularity: a layer's folds "
                                     "are grouped into at most this many DMA tiles")


class ArchSpec(_Frozen):
    """A whole accelerator. See ``arch/edge_32x32.yaml`` for a commented example."""

    name: str
    description: str = ""
    source: str = ""
    clock_mhz: float = Field(gt=0, description="array clock, MHz")
    array: ArrayConfig
    pe: PEConfig
    memory: MemoryConfig
    energy: EnergyOverrides = EnergyOverrides()
    timing: TimingConfig = TimingConfig()

    def replace(self, **dotted: Any) -> "ArchSpec":
        """A copy with dotted keys replaced, validated again, e.g. ``replace(**{"array.rows": 16})``.

        Raises
        ------
        SpecError
            A key that does not exist, or a value that does not validate.
        """
        data = self.model_dump(mode="python")
        for key, value in dotted.items():
            node = data
            parts = key.split(".")
            for p in parts[:-1]:
                if not isinstance(node, dict) or p not in node:
                    raise SpecError("<arch>", key, "an existing arch key", key)
                node = node[p]
            if not isinstance(node, dict) or parts[-1] not in node:
                raise SpecError("<arch>", key, "an existing arch key", key)
            node[parts[-1]] = value
        return validate(ArchSpec, data, f"<arch {self.name}>")


def load_arch(path: str | Path) -> ArchSpec:
    """Load and validate an arch YAML.

    Raises
    ------
    SpecError
        Missing file, bad YAML, unknown key, wrong type or non-positive size; the message names the file and
        the key path.
    """
    data = load_yaml(path)
    return validate(ArchSpec, data, str(path))
