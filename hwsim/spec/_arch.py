"""The accelerator description: a systolic array, its PE precision, its memories and energy overrides.

The YAML (``arch/*.yaml``) is validated into these frozen pydantic models; unknown keys, wrong types and
non-positive sizes are errors naming the key path. Every unit is in the key name (``size_kib``,
``word_bits``, ``bandwidth_bytes_per_cycle``, ``clock_mhz``, ``*_pj``).
"""

from __future__ import annotations

import copy
import math
import re
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from ..errors import SpecError
from ._base import SpecModel
from ._cores import CoresConfig
from ._loader import load_yaml, validate

__all__ = ["ArchSpec", "ArrayConfig", "ArrayUnroll", "LOOP_DIMS", "PEConfig", "SramConfig", "DramConfig",
           "MemoryConfig", "MemoryLevel",
           "OPERANDS",
           "EnergyOverrides", "AreaOverrides", "TimingConfig", "VectorUnitConfig", "VECTOR_OP_CLASSES",
           "load_arch"]


_Frozen = SpecModel

#: The smallest bandwidth a memory may have, per cycle (bytes for DRAM, bits on chip): 2**-10. Slower ones
#: are no real memory, and their transfer times (bytes / bandwidth) would overflow the cycle counters.
MIN_BANDWIDTH = 2.0 ** -10


LOOP_DIMS: tuple[str, ...] = ("B", "K", "C", "OY", "OX", "FY", "FX")


def _unroll_axis(v: Any) -> Any:
    """``[C, FY, FX]`` (the dims flattened into one index, folded by the axis size), ``{C: 8, OX: 4}`` (each
    dim folded by its own factor) or the normalized form, pairs ``(dim, factor)`` with factor 0 for a list."""
    if isinstance(v, dict):
        pairs = list(v.items())
        for d, f in pairs:
            if isinstance(f, bool) or not isinstance(f, int) or f < 1:
                raise ValueError(f"a whole unroll factor >= 1 for {d}; found {f!r}")
    elif isinstance(v, (list, tuple)):
        pairs = [tuple(x) if isinstance(x, (list, tuple)) else (x, 0) for x in v]
    else:
        raise ValueError(f"a list of loop dimensions or a mapping of dimension to factor; found {v!r}")
    if not pairs:
        raise ValueError("at least one loop dimension; found none")
    for p in pairs:
        if len(p) != 2 or p[0] not in LOOP_DIMS:
            bad = p[0] if len(p) == 2 else p
            raise ValueError(f"loop dimensions among {', '.join(LOOP_DIMS)}; found {bad!r}")
    return tuple((str(d), int(f)) for d, f in pairs)


class ArrayUnroll(_Frozen):
    """Which loop dimensions each array axis unrolls (``array.unroll``), ZigZag's ``spatial_mapping``.

    Loop dimensions (ZigZag's names): ``B`` batch, ``K`` output channels, ``C`` input channels (per group),
    ``OY``/``OX`` output rows/columns, ``FY``/``FX`` filter rows/columns; a GEMM (M, K) x (K, N) has
    ``B = M``, ``C = K``, ``K = N``. An axis lists dims (``rows: [C, FY, FX]``: flattened into one index that
    is folded by the number of rows, SCALE-Sim's im2col) or gives factors (``rows: {C: 8, OX: 4, OY: 4}``:
    each dim folded by its own factor; the factors multiply to at most the axis size). A dim on no axis is
    temporal. Stored as ``(dim, factor)`` pairs, factor 0 for a listed dim.
    """

    rows: tuple[tuple[str, int], ...]
    cols: tuple[tuple[str, int], ...]

    @field_validator("rows", "cols", mode="before")
    @classmethod
    def _axis(cls, v: Any) -> Any:
        return _unroll_axis(v)

    @model_validator(mode="after")
    def _once(self) -> ArrayUnroll:
        names = [d for d, _ in self.rows + self.cols]
        dup = sorted({d for d in names if names.count(d) > 1})
        if dup:
            raise ValueError(f"each loop dimension on at most one axis, once; found {', '.join(dup)} twice")
        for axis in (self.rows, self.cols):
            if len({f == 0 for _, f in axis}) > 1:
                raise ValueError("an axis either lists dims or gives every dim a factor; found both in "
                                 f"{[d if f == 0 else f'{d}: {f}' for d, f in axis]}")
        return self


class ArrayConfig(_Frozen):
    """The PE array: ``rows`` x ``cols`` PEs and the dataflow.

    ``dataflow``: ``ws`` (weight stationary: a K x N weight tile stays in the array), ``os`` (output
    stationary: an M x N output tile), ``is`` (input stationary: a K x M input tile).

    ``unroll`` (optional, :class:`ArrayUnroll`): which loop dimensions the rows and columns unroll, e.g.
    ``{rows: [C], cols: [K]}`` for ZigZag's tpu_like. Omitted or ``im2col``: SCALE-Sim's GEMM view (ws and is
    rows: C x FY x FX; os rows: B x OY x OX; columns: K, or B x OY x OX for is). Streamed within a fold:
    ws B, OY, OX; os C, FY, FX; is K; every other dim not unrolled repeats the fold.

    ``systolic`` (default both axes, as SCALE-Sim): the axes along which operands and partial sums move from
    PE to PE, so that every fold fills and drains along them (:mod:`hwsim.mapping._plan`). An axis left out
    broadcasts its operands in one cycle and adds no fill or drain (ZigZag's ``systolic_dimensions``: its
    edge_tpu_like has none).
    """

    rows: int = Field(gt=0, description="PE rows (SCALE-Sim ArrayHeight)")
    cols: int = Field(gt=0, description="PE columns (SCALE-Sim ArrayWidth)")
    dataflow: Literal["ws", "os", "is"]
    unroll: ArrayUnroll | None = None
    systolic: tuple[Literal["rows", "cols"], ...] = Field(
        default=("rows", "cols"), description="axes along which operands move PE to PE (fill and drain "
        "cycles); an axis not listed broadcasts (ZigZag's systolic_dimensions)")

    @field_validator("unroll", mode="before")
    @classmethod
    def _im2col(cls, v: Any) -> Any:
        if isinstance(v, str):
            if v != "im2col":
                raise ValueError(f"'im2col' or a mapping with rows and cols; found {v!r}")
            return None
        return v

    @model_validator(mode="after")
    def _fits(self) -> ArrayConfig:
        if len(set(self.systolic)) != len(self.systolic):
            raise ValueError(f"each axis listed once in systolic; found {list(self.systolic)}")
        if self.unroll is not None:
            for axis, size in (("rows", self.rows), ("cols", self.cols)):
                pairs = getattr(self.unroll, axis)
                prod = math.prod(f for _, f in pairs if f)
                if prod > size:
                    raise ValueError(f"unroll factors on {axis} multiplying to at most {axis} ({size}); "
                                     "found "
                                     f"{' x '.join(f'{d} {f}' for d, f in pairs)} = {prod}")
        return self


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

    ``mult_bits`` (optional, integer datapath only: ``hwsim verify``): the signed width of each multiplier
    operand *after* the zero point is subtracted. 8-bit codes with a zero point need 9 bits (``x - z`` spans
    [-255, 255]); with fewer, out-of-range operands wrap (two's complement) and ``verify`` counts them per
    layer. Omitted: wide enough. Timing and energy do not use it.

    ``acc_bits`` is at least ``2 * operand_bits`` (a narrower accumulator cannot hold one product of two
    full-range operands: an error). Narrower than ``b_a + b_w + ceil(log2 K)`` for a layer's reduction length
    ``K`` is legal hardware whose sums may wrap or saturate (``acc_mode``): ``hwsim simulate`` notes it
    (timing and energy are unaffected), ``hwsim verify --arch`` runs it and counts the events per node.
    """

    operand_bits: int = Field(gt=0, le=32, description="native operand width, bits")
    mult_bits: int | None = Field(default=None, ge=2, le=33,
                                  description="signed multiplier operand width after "
                                  "zero-point subtraction, bits (integer datapath; default: wide enough)")
    acc_bits: int = Field(gt=0, le=64, description="accumulator width, bits")
    acc_mode: Literal["wrap", "saturate"] = "wrap"
    precision_mode: Literal["fixed", "bit_fusion", "bit_serial"] = "fixed"
    min_bits: int = Field(default=1, gt=0, le=32, description="smallest operand width the PE accepts, bits")
    brick_bits: int = Field(default=2, gt=0, le=32, description="bit_fusion only: BitBrick width, bits")
    serial_operands: tuple[Literal["act", "weight"], ...] = ("act",)
    bits_per_cycle: int = Field(default=1, gt=0, le=32, description="bit_serial only: bits fed per cycle")

    @field_validator("acc_bits")
    @classmethod
    def _acc_holds_a_product(cls, v: int, info: ValidationInfo) -> int:
        n = info.data.get("operand_bits")  # validated first (declared first); absent if it was bad
        if n is not None and v < 2 * n:  # not even one full-range product fits: always a mistake
            raise ValueError(f"at least 2 * operand_bits = {2 * n} (one product of two {n}-bit operands); "
                             f"found {v}")
        return v

    @model_validator(mode="after")
    def _check(self) -> PEConfig:
        if self.min_bits > self.operand_bits:
            raise ValueError(f"min_bits <= operand_bits ({self.operand_bits}); found {self.min_bits}")
        if self.precision_mode == "bit_fusion":
            ratio = self.operand_bits // self.brick_bits
            if self.operand_bits % self.brick_bits or ratio & (ratio - 1):
                raise ValueError("for bit_fusion, operand_bits equal to brick_bits times a power of two; "
                                 f"found operand_bits={self.operand_bits}, brick_bits={self.brick_bits}")
        if not self.serial_operands:
            raise ValueError("serial_operands to name at least one of 'act', 'weight'; found none")
        given = self.model_fields_set
        for key, mode, default in (("brick_bits", "bit_fusion", 2), ("bits_per_cycle", "bit_serial", 1),
                                   ("serial_operands", "bit_serial", ("act",))):
            if key in given and self.precision_mode != mode and getattr(self, key) != default:
                raise ValueError(f"{key} only with precision_mode {mode}; found {key}={getattr(self, key)!r} "
                                 f"with precision_mode {self.precision_mode}")
        if self.bits_per_cycle > self.operand_bits:
            raise ValueError(f"bits_per_cycle <= operand_bits ({self.operand_bits}); found "
                             f"{self.bits_per_cycle}")
        return self


class SramConfig(_Frozen):
    """One on-chip SRAM buffer.

    ``size_kib`` is the total capacity in KiB (1024 bytes); when the memory is double buffered, each half
    holds one tile (SCALE-Sim's active fraction 0.5). ``word_bits`` is the width of one access: an access of
    64 bits carries 8 int8 operands or 16 int4 operands; a word narrower than an operand is legal (an 8-bit
    word delivers a 32-bit partial sum in 4 accesses: the energy model counts ``ceil(bits / word_bits)``
    accesses; timing is bounded by bandwidth, not by ``word_bits``). ``read_pj``/``write_pj`` (pJ per
    access) and ``area_mm2`` (mm^2) override the technology table.
    """

    size_kib: float = Field(gt=0)
    word_bits: int = Field(default=64, gt=0, le=65536)
    read_pj: float | None = Field(default=None, ge=0)
    write_pj: float | None = Field(default=None, ge=0)
    area_mm2: float | None = Field(default=None, ge=0, description="area of the buffer, mm^2 (replaces the "
                                   "technology table's)")


class DramConfig(_Frozen):
    """The off-chip memory: bandwidth in bytes per array clock cycle (reads and writes share it).

    ``bandwidth_bytes_per_cycle: unbounded`` removes every bandwidth stall. ``pj_per_bit`` overrides the
    technology table.
    """

    bandwidth_bytes_per_cycle: float | Literal["unbounded"] = Field(default=16.0)
    pj_per_bit: float | None = Field(default=None, ge=0)

    @field_validator("bandwidth_bytes_per_cycle", mode="before")
    @classmethod
    def _bw_inf(cls, v: Any) -> Any:
        return "unbounded" if isinstance(v, float) and math.isinf(v) and v > 0 else v

    @field_validator("bandwidth_bytes_per_cycle")
    @classmethod
    def _bw(cls, v: Any) -> Any:
        if v != "unbounded" and not (v >= MIN_BANDWIDTH):
            raise ValueError(f"a bandwidth of at least 2**-10 bytes/cycle (one byte per 1,024 cycles) or "
                             f"'unbounded'; found {v!r}")
        if v != "unbounded" and math.isinf(v):
            return "unbounded"
        return v

    @property
    def bandwidth(self) -> float:
        """Bytes per cycle as a float (``inf`` when unbounded)."""
        bw = self.bandwidth_bytes_per_cycle
        return math.inf if bw == "unbounded" else float(bw)


Operand = Literal["ifmap", "filter", "ofmap"]
OPERANDS: tuple[str, ...] = ("ifmap", "filter", "ofmap")


class MemoryLevel(_Frozen):
    """One level of the memory hierarchy (``memory.levels``, innermost first, DRAM last).

    ``kind``: ``rf`` (a register file in every PE: ``instances: per_pe``), ``sram`` (an on-chip buffer, one
    instance shared by the array unless ``per_pe``) or ``dram`` (off-chip; exactly one, last, named ``dram``).
    ``operands`` lists what the level holds; an operand a level does not list bypasses it. A shared level's
    capacity is split among its operands by ``share`` (fractions; default equal). ``size_kib`` or
    ``size_bytes`` give the capacity (of one instance); ``banks`` split it (an access touches one bank, so its
    energy is that of a ``size/banks`` array). ``read_bw_bits_per_cycle``/``write_bw_bits_per_cycle`` bound
    on-chip traffic (default unbounded, as in SCALE-Sim); DRAM has one ``bandwidth_bytes_per_cycle`` shared by
    reads and writes. ``read_pj``/``write_pj`` (pJ per access of ``word_bits``, DRAM included), ``pj_per_bit``
    (DRAM, reads and writes) and ``area_mm2`` (one instance; not allowed on DRAM, which has no die area)
    override the technology table.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    kind: Literal["rf", "sram", "dram"]
    operands: tuple[Operand, ...] = Field(min_length=1)
    size_kib: float | None = Field(default=None, gt=0)
    size_bytes: int | None = Field(default=None, gt=0)
    word_bits: int = Field(default=64, gt=0, le=65536)
    banks: int = Field(default=1, gt=0)
    instances: Literal["shared", "per_pe"] = "shared"
    double_buffered: bool | None = Field(
        default=None, description="on-chip levels only (default true): each operand's share holds two tiles "
        "of half the size; on a level DRAM fills, also whether DMA loads and write-backs overlap compute "
        "(MemoryConfig.dma_double_buffered). Not allowed on the dram level")
    share: dict[Operand, float] | None = None
    read_bw_bits_per_cycle: float | Literal["unbounded"] = "unbounded"
    write_bw_bits_per_cycle: float | Literal["unbounded"] = "unbounded"
    bandwidth_bytes_per_cycle: float | Literal["unbounded"] | None = None
    read_pj: float | None = Field(default=None, ge=0)
    write_pj: float | None = Field(default=None, ge=0)
    pj_per_bit: float | None = Field(default=None, ge=0)
    area_mm2: float | None = Field(default=None, ge=0, description="area of one instance, mm^2 (replaces the "
                                   "technology table's)")

    @model_validator(mode="before")
    @classmethod
    def _db_default(cls, data: Any) -> Any:
        # on-chip levels default to double buffered; the dram level has no buffer slots of its own (the
        # on-chip levels it fills decide whether transfers overlap compute), so it takes no flag
        if isinstance(data, dict) and data.get("kind") != "dram" and data.get("double_buffered") is None:
            data = {**data, "double_buffered": True}
        return data

    @model_validator(mode="after")
    def _check(self) -> MemoryLevel:
        if len(set(self.operands)) != len(self.operands):
            raise ValueError(f"each operand listed once; found {list(self.operands)}")
        for k in ("read_bw_bits_per_cycle", "write_bw_bits_per_cycle", "bandwidth_bytes_per_cycle"):
            v = getattr(self, k)
            if v is not None and v != "unbounded" and not v >= MIN_BANDWIDTH:
                raise ValueError(f"{k} of at least 2**-10 (one byte or bit per 1,024 cycles) or 'unbounded'; "
                                 f"found {v!r}")
        if self.kind == "dram":
            if self.double_buffered is not None:
                raise ValueError("no double_buffered on the dram level (whether DMA transfers overlap "
                                 "compute is set by the on-chip levels DRAM fills: their double_buffered); "
                                 f"found {self.double_buffered!r}")
            if self.area_mm2 is not None:
                raise ValueError("no area_mm2 on the dram level (off-chip: hwsim counts die area only); "
                                 f"found {self.area_mm2!r}")
            if self.bandwidth_bytes_per_cycle is None:
                raise ValueError("a dram level with bandwidth_bytes_per_cycle (a number or 'unbounded'); "
                                 "found none")
            if self.name != "dram" or set(self.operands) != set(OPERANDS):
                raise ValueError("the dram level named 'dram' and holding ifmap, filter and ofmap; found "
                                 f"name {self.name!r}, operands {list(self.operands)}")
        else:
            if (self.size_kib is None) == (self.size_bytes is None):
                raise ValueError(f"exactly one of size_kib, size_bytes for {self.kind} level {self.name!r}; "
                                 f"found {'both' if self.size_kib is not None else 'neither'}")
            if self.bandwidth_bytes_per_cycle is not None:
                raise ValueError("bandwidth_bytes_per_cycle only on the dram level (on-chip levels take "
                                 "read_bw_bits_per_cycle / write_bw_bits_per_cycle); found it on "
                                 f"{self.name!r}")
            if self.banks > 1 and self.banks * self.word_bits > self.size_bits:
                raise ValueError("banks of at least one word each (banks x word_bits <= size); found "
                                 f"{self.banks} banks of {self.word_bits}-bit words in {self.size_bits:,.0f} "
                                 "bits")
            if self.kind == "rf" and self.instances != "per_pe":
                raise ValueError(f"instances: per_pe for rf level {self.name!r}; found {self.instances!r}")
        if self.share is not None:
            extra = set(self.share) - set(self.operands)
            if extra or any(v <= 0 for v in self.share.values()) or sum(self.share.values()) > 1 + 1e-9:
                raise ValueError("share fractions > 0 for operands the level holds, summing to at most 1; "
                                 f"found {dict(self.share)}")
        return self

    @property
    def size_bits(self) -> float:
        """Capacity of one instance, bits (``inf`` for DRAM)."""
        if self.kind == "dram":
            return math.inf
        return self.size_kib * 8192 if self.size_kib is not None else self.size_bytes * 8

    def capacity_bits(self, operand: str) -> float:
        """Bits ``operand`` may use for one tile: its share, halved when double buffered."""
        if operand not in self.operands:
            return 0.0
        frac = self.share.get(operand, 0.0) if self.share else 1.0 / len(self.operands)
        return self.size_bits * frac * (0.5 if self.double_buffered else 1.0)

    @staticmethod
    def _bw(v: Any) -> float:
        return math.inf if v in ("unbounded", None) else float(v)

    @property
    def read_bw(self) -> float:
        """Read bandwidth, bits per cycle (``inf`` when unbounded)."""
        if self.kind == "dram":
            return self._bw(self.bandwidth_bytes_per_cycle) * 8
        return self._bw(self.read_bw_bits_per_cycle)

    @property
    def write_bw(self) -> float:
        """Write bandwidth, bits per cycle (``inf`` when unbounded)."""
        if self.kind == "dram":
            return self._bw(self.bandwidth_bytes_per_cycle) * 8
        return self._bw(self.write_bw_bits_per_cycle)


class MemoryConfig(_Frozen):
    """The memory hierarchy, in one of two forms.

    Shorthand (SCALE-Sim's shape): per-operand ``ifmap_sram``, ``filter_sram``, ``ofmap_sram`` and ``dram``.
    General: ``levels``, a list of :class:`MemoryLevel` innermost first with the DRAM last.
    :meth:`hierarchy` gives both as levels.
    """

    ifmap_sram: SramConfig | None = None
    filter_sram: SramConfig | None = None
    ofmap_sram: SramConfig | None = None
    dram: DramConfig | None = None
    double_buffered: bool | None = Field(
        default=None, description="shorthand form only (default true): the three SRAMs' double_buffered "
        "(half of each holds a tile; DMA loads and write-backs overlap compute). With levels, each on-chip "
        "level takes its own")
    levels: tuple[MemoryLevel, ...] | None = None

    @model_validator(mode="before")
    @classmethod
    def _db_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("levels") is None and data.get("double_buffered") is None:
            data = {**data, "double_buffered": True}
        return data

    @model_validator(mode="after")
    def _check(self) -> MemoryConfig:
        short = [k for k in ("ifmap_sram", "filter_sram", "ofmap_sram") if getattr(self, k) is not None]
        if self.levels is not None:
            if short or self.dram is not None:
                raise ValueError("either levels or the ifmap_sram/filter_sram/ofmap_sram/dram shorthand; "
                                 f"found both (levels and {short + (['dram'] if self.dram else [])})")
            if self.double_buffered is not None:
                raise ValueError("double_buffered on each on-chip level with levels (memory.double_buffered "
                                 "belongs to the ifmap_sram/filter_sram/ofmap_sram shorthand); found "
                                 f"memory.double_buffered: {str(self.double_buffered).lower()}")
            names = [lv.name for lv in self.levels]
            if len(set(names)) != len(names):
                raise ValueError(f"unique level names; found {names}")
            kinds = [lv.kind for lv in self.levels]
            if kinds.count("dram") != 1 or kinds[-1] != "dram":
                raise ValueError(f"exactly one dram level, listed last; found kinds {kinds}")
        elif len(short) != 3:
            missing = sorted({"ifmap_sram", "filter_sram", "ofmap_sram"} - set(short))
            raise ValueError(f"ifmap_sram, filter_sram and ofmap_sram (or levels); found {missing} missing")
        return self

    @cached_property
    def _hierarchy(self) -> tuple[MemoryLevel, ...]:
        return self._build_hierarchy()

    def hierarchy(self) -> tuple[MemoryLevel, ...]:
        """The levels, innermost first, DRAM last (the shorthand becomes three SRAM levels and ``dram``)."""
        return self._hierarchy

    def _build_hierarchy(self) -> tuple[MemoryLevel, ...]:
        if self.levels is not None:
            return self.levels
        out = []
        for op in OPERANDS:
            s: SramConfig = getattr(self, f"{op}_sram")
            out.append(MemoryLevel(name=f"{op}_sram", kind="sram", operands=(op,), size_kib=s.size_kib,
                                   word_bits=s.word_bits, double_buffered=self.double_buffered,
                                   read_pj=s.read_pj, write_pj=s.write_pj, area_mm2=s.area_mm2))
        d = self.dram or DramConfig()
        out.append(MemoryLevel(name="dram", kind="dram", operands=OPERANDS, word_bits=64,
                               bandwidth_bytes_per_cycle=d.bandwidth_bytes_per_cycle,
                               pj_per_bit=d.pj_per_bit))
        return tuple(out)

    @property
    def dram_level(self) -> MemoryLevel:
        return self.hierarchy()[-1]

    @cached_property
    def dma_levels(self) -> tuple[MemoryLevel, ...]:
        """The on-chip buffers DRAM transfers fill and drain: for each operand, the outermost shared
        on-chip level that holds it. Per-PE levels (``instances: per_pe``, register files) are not among
        them: the array fills them as operands stream through it, inside a tile's compute; an operand held
        by no shared level adds none."""
        out: list[MemoryLevel] = []
        onchip = [lv for lv in self.hierarchy()[:-1] if lv.instances == "shared"]
        for op in OPERANDS:
            holders = [lv for lv in onchip if op in lv.operands]
            if holders and holders[-1] not in out:
                out.append(holders[-1])
        return tuple(out)

    @property
    def dma_double_buffered(self) -> bool:
        """Whether the event model gives DMA loads and write-backs two buffer slots (they overlap compute)
        or one (a tile's load waits until the previous tile is computed and written back: loads, compute
        and writes serialize). True only when every level of :attr:`dma_levels` is double buffered (one
        single-buffered level DRAM fills makes the array wait on its transfers); true with no such level."""
        return all(bool(lv.double_buffered) for lv in self.dma_levels)


class EnergyOverrides(_Frozen):
    """Energy per action. ``technology`` names a table in ``hwsim/tech/``; any other key replaces the table's.

    Units: pJ. ``mult_8b_pj``: one 8b x 8b integer multiply (the table's multiplier curve, ~ b_a*b_w, is
    scaled to it); ``add_32b_pj``: one 32-bit add (the adder curve, ~ bits, is scaled to it; accumulators,
    zero-point and requantization adds use it); ``requant_pj``: requantizing one output. Memories take
    ``read_pj`` / ``write_pj`` (per access) and DRAM ``pj_per_bit`` on their level.
    """

    technology: str = "horowitz_45nm"
    mult_8b_pj: float | None = Field(default=None, ge=0)
    add_32b_pj: float | None = Field(default=None, ge=0)
    requant_pj: float | None = Field(default=None, ge=0)


class AreaOverrides(_Frozen):
    """Area per unit, um^2; each key given replaces the technology table's (``energy.technology``).

    ``pe_um2``: one PE (multiplier, accumulator adder and registers, whatever the precision mode);
    ``mult_8b_um2``: one 8b x 8b multiplier (the table's multiplier curve scaled to it); ``add_32b_um2``: one
    32-bit adder (the adder curve scaled); ``requant_um2``: one requantization unit (one per array column).
    Memory levels take ``area_mm2`` per instance.
    """

    pe_um2: float | None = Field(default=None, ge=0)
    mult_8b_um2: float | None = Field(default=None, ge=0)
    add_32b_um2: float | None = Field(default=None, ge=0)
    requant_um2: float | None = Field(default=None, ge=0)


class TimingConfig(_Frozen):
    """Timing conventions.

    ``max_tiles_per_layer`` sets the event model's granularity and ``engine`` which of its two (equal, tested)
    engines runs it: ``analytic`` (a numba recurrence, fast) or ``simpy`` (SimPy processes, the reference);
    see :mod:`hwsim.sim`.
    ``convention: hwsim`` counts cycles (a fold of c cycles adds c). ``convention: scalesim`` reproduces
    SCALE-Sim 3.0.0's "Total Cycles", which is the index of the last cycle, i.e. one less per GEMM
    (``shared/reference/scalesim.md`` §2-3; scalesim-project/SCALE-Sim#125).
    ``objective`` is what the mapper minimizes first when it picks a weight-stationary layer's M tile
    (:mod:`hwsim.mapping._traffic`): ``dram`` (DRAM bytes, then the latency estimate; growing a buffer never
    adds DRAM bytes) or ``latency`` (the estimate ``max(compute, DRAM bits read and written / bandwidth)``,
    then DRAM bytes; fewer bits on a fixed-precision PE never raise it). It also ranks the tensor placement
    (``reuse`` other than ``none``, :mod:`hwsim.schedule`): ``dram`` keeps the options that save the most
    DRAM bytes (``fused``: then the fewest tiles, whatever their fill and drain cost), ``latency`` the fewest
    modelled cycles first (each option's layers re-timed with it), then the most DRAM bytes, so a fused band
    whose tiles cost more cycles than it saves is not taken (the edge runs as under ``inter_layer``).
    """

    convention: Literal["hwsim", "scalesim"] = "hwsim"
    reuse: Literal["none", "inter_layer", "fused"] = Field(
        default="none", description="none: every tensor goes through DRAM (SCALE-Sim's convention); "
        "inter_layer: a tensor stays in an on-chip level for its whole lifetime when it fits "
        "(hwsim.schedule); fused: also runs stacks of layers depth-first in row tiles whose footprint fits")
    fused_tile_rows: int | None = Field(
        default=None, gt=0, description="fused: output rows per depth-first tile of every fused band "
        "(default: searched per edge, ranked by timing.objective: dram = the fewest DRAM bytes, then the "
        "fewest tiles; latency = the fewest modelled cycles, then the fewest DRAM bytes)")
    max_tiles_per_layer: int = Field(default=256, gt=0,
                                     description="event-model granularity: a layer's folds "
                                     "are grouped into at most this many DMA tiles")
    engine: Literal["analytic", "simpy"] = "analytic"
    objective: Literal["dram", "latency"] = Field(
        default="dram", description="the mapper's choice of a weight-stationary layer's M tile: dram = the "
        "fewest DRAM bytes, then the lowest latency estimate max(compute, DRAM bits in and out / bandwidth); "
        "latency = the lowest latency estimate, then the fewest DRAM bytes (hwsim.mapping._traffic); and the "
        "tensor placement's (reuse, fused tile heights): dram = the most DRAM bytes saved, latency = the "
        "fewest modelled cycles first (hwsim.schedule)")


#: The op classes of a vector unit (throughput and energy are given per class).
VECTOR_OP_CLASSES = ("add", "mul", "max", "exp", "divide", "rsqrt")


class VectorUnitConfig(_Frozen):
    """The vector unit that runs the non-GEMM nodes (pooling, residual adds, softmax, LayerNorm, GELU, ...).

    ``lanes`` elements per cycle, each lane doing ``throughput[class]`` ops of that class per cycle (0.25:
    one every 4 cycles); the classes are ``add`` (add, subtract, shift), ``mul``, ``max`` (compare, min,
    max), ``exp`` (exponential or a LUT), ``divide`` and ``rsqrt``. A class a node needs but ``throughput``
    lacks is an error naming the node. ``arithmetic``: ``int`` (integer-only, I-BERT's polynomials, Kim et
    al., ICML 2021, at ``int_bits``) or ``fp16`` / ``fp32``. ``latency_cycles``: pipeline depth, paid once per
    node. ``overlap``: the unit runs concurrently with the array (a node waits only for its inputs), or not
    (array and vector unit take turns). ``energy_pj`` overrides the technology table's energy per op.
    """

    lanes: int = Field(gt=0)
    arithmetic: Literal["int", "fp16", "fp32"] = "int"
    int_bits: int = Field(default=32, ge=2, le=64, description="width of the integer ops, bits")
    throughput: dict[Literal["add", "mul", "max", "exp", "divide", "rsqrt"], float]
    latency_cycles: int = Field(default=0, ge=0)
    overlap: bool = True
    energy_pj: dict[Literal["add", "mul", "max", "exp", "divide", "rsqrt"], float] | None = None

    @model_validator(mode="after")
    def _check(self) -> VectorUnitConfig:
        for k, v in {**self.throughput, **(self.energy_pj or {})}.items():
            if not v > 0 and not (self.energy_pj and k in self.energy_pj and v == 0):
                raise ValueError(f"positive throughputs (ops per lane per cycle) and energies; found {k}: "
                                 f"{v!r}")
        return self


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
    area: AreaOverrides = AreaOverrides()
    timing: TimingConfig = TimingConfig()
    vector_unit: VectorUnitConfig | None = None
    cores: CoresConfig | None = Field(default=None,
                                      description="several cores sharing the DRAM over an on-chip "
                                      "network (hwsim.spec._cores); none: one array")

    def core_archs(self, source: str = "<arch>") -> list[tuple[str, ArchSpec]]:
        """Each core of ``cores.list`` as a one-array arch: this arch without ``cores``, its core type's
        overrides merged in (``cores.arrays.T.array`` replaces keys of ``array``, and so on), and the DRAM
        bandwidth shared equally (``bandwidth / number of cores``: every core streaming at once). No
        ``cores``: ``[("core0", self)]``.

        Raises
        ------
        SpecError
            An override that does not validate, naming ``cores.arrays.T.key``.
        """
        if self.cores is None:
            return [("core0", self)]
        base = self.model_dump(mode="python", exclude={"cores"})
        n = len(self.cores.list)
        built: dict[str, ArchSpec] = {}
        out = []
        types = list(dict.fromkeys([c.array for c in self.cores.list] + list(self.cores.arrays)))
        for t in types:
            data = _merge(copy.deepcopy(base), self.cores.arrays.get(t, {}))
            mem = data["memory"]
            dram = mem["levels"][-1] if mem.get("levels") else (mem.get("dram") or {})
            bw = dram.get("bandwidth_bytes_per_cycle", 16.0)
            if n > 1 and bw != "unbounded":
                dram["bandwidth_bytes_per_cycle"] = float(bw) / n
                if not mem.get("levels"):
                    mem["dram"] = dram
            prefix = f"cores.arrays.{t}" if t != "main" else ""
            built[t] = validate(ArchSpec, data, source, prefix=prefix)
        for c in self.cores.list:
            out.append((c.name, built[c.array]))
        return out

    def replace(self, **dotted: Any) -> ArchSpec:
        """A copy with dotted keys replaced, validated again, e.g. ``replace(**{"array.rows": 16})``.

        A list item is named by its index or, for items with a ``name`` (``memory.levels``, ``cores.list``),
        by that name: ``memory.levels[3].size_kib`` and ``memory.levels.sram_2mb.size_kib`` are both keys.

        Raises
        ------
        SpecError
            A key that does not exist, or a value that does not validate.
        """
        data = self.model_dump(mode="python")
        for key, value in dotted.items():
            steps = _key_steps(data, key)
            parent: Any = None
            node: Any = data
            at: str | int = ""
            for st in steps:
                if isinstance(node, tuple):  # (model_dump keeps tuples) made writable in place
                    node = list(node)
                    parent[at] = node
                parent, at = node, st
                node = node[st]
            parent[at] = value
        return validate(ArchSpec, data, f"<arch {self.name}>")


    def key_path(self, key: str) -> str:
        """The canonical spelling of a dotted arch key: list items by index, e.g.
        ``memory.levels[3].size_kib`` for ``memory.levels.sram_2mb.size_kib``; two keys that name one value
        have one ``key_path``.

        Raises
        ------
        SpecError
            A key that does not exist.
        """
        out = ""
        for st in _key_steps(self.model_dump(mode="python"), key):
            out += f"[{st}]" if isinstance(st, int) else f".{st}"
        return out.lstrip(".")


def _key_steps(data: dict, key: str) -> list[str | int]:
    """The path of a dotted key into ``data`` (an arch's ``model_dump``), list items named by index or by
    their ``name``, resolved to indices. Raises SpecError for a key that does not exist."""
    steps: list[str | int] = []
    for part in key.split("."):
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[[0-9]+\])*)", part)
        if m is None:
            raise SpecError("<arch>", key, "an existing arch key", key)
        steps.append(m.group(1))
        steps.extend(int(i) for i in re.findall(r"[0-9]+", m.group(2)))
    node: Any = data
    out: list[str | int] = []
    for st in steps:
        if isinstance(node, (list, tuple)) and isinstance(st, str):  # a list item by its name
            hit = [i for i, it in enumerate(node) if isinstance(it, dict) and it.get("name") == st]
            if not hit:
                raise SpecError("<arch>", key, "an existing arch key", key)
            st = hit[0]
        ok = (isinstance(node, dict) and isinstance(st, str) and st in node) or \
            (isinstance(node, (list, tuple)) and isinstance(st, int) and st < len(node))
        if not ok:
            raise SpecError("<arch>", key, "an existing arch key", key)
        out.append(st)
        node = node[st]
    return out


def _merge(base: dict, over: dict) -> dict:
    """``base`` with ``over``'s keys replaced recursively (mappings merged, anything else replaced)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


def load_arch(path: str | Path) -> ArchSpec:
    """Load and validate an arch YAML.

    Raises
    ------
    SpecError
        Missing file, bad YAML, unknown key, wrong type or non-positive size; the message names the file and
        the key path.
    """
    data = load_yaml(path)
    arch = validate(ArchSpec, data, str(path))
    if arch.cores is not None:
        arch.core_archs(str(path))  # every core type's overrides validate
    return arch
