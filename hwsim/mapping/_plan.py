"""How one layer lands on the array: folds per dataflow, fill/steady/drain cycles, SRAM accesses, DRAM bytes.

Compute model (SCALE-Sim 3.0.0, ``scalesim/compute/systolic_compute_{os,ws,is}.py``; closed form in
``../shared/reference/scalesim.md`` §3, which matched all 282 measured layers). A GEMM (M, K) x (K, N) maps to
spatial dims Sr (array rows), Sc (array cols) and a streamed dim T:

====  ====  ====  ====  ==============================================
 df    Sr    Sc    T     cycles per fold = fill + steady + drain
====  ====  ====  ====  ==============================================
 os    M     N     K     (R - 1) + T + (C - 1)
 ws    K     N     M     (2R - 1) + T + (C - 1)  [R rows load the weights, R-1 skew]
 is    K     M     N     (2R - 1) + T + (C - 1)  [R rows load the inputs, R-1 skew]
====  ====  ====  ====  ==============================================

folds = ceil(Sr / R) * ceil(Sc / C) per group, run back to back with no overlap of fill and drain (as in
SCALE-Sim); a partial fold costs a full fold. An axis that ``array.systolic`` leaves out broadcasts: R (or C)
is 1 in its fill or drain term. With ``timing.convention: scalesim`` a GEMM reports one cycle
less (SCALE-Sim's "Total Cycles" is the index of the last cycle). Bit fusion divides K by the fused MACs per
PE; a bit-serial PE multiplies the steady (streaming) phase by its cycles per step.

SRAM accesses are counted in operand elements, as SCALE-Sim counts words of one byte (its demand matrices):
ws reads the ifmap once per column fold and each weight once; os reads the ifmap once per column fold and the
filter once per row fold; is reads each input once and the filter once per column fold; ofmap writes happen
once per row fold (ws, is: partial sums over K) or once (os). ``sram_ofmap_reads`` counts the partial-sum
reads of the read-modify-write that SCALE-Sim does not count.

With ``array.unroll`` (which loop dimensions each axis unrolls, ZigZag's spatial mapping) the folds, the
streamed steps and the SRAM demand come from :mod:`hwsim.mapping._unroll` instead; the same cycle formula
applies per fold. DRAM refetches still follow the GEMM view's tiles.

DRAM traffic: :mod:`hwsim.mapping._traffic`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..spec import ArchSpec, Conv2d, Gemm
from ._precision import PrecisionFactors, precision_factors
from ._traffic import Traffic, hierarchy_traffic
from ._unroll import unroll_plan

__all__ = ["LayerMapping", "map_layer"]


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class LayerMapping:
    """One layer mapped onto one arch. Cycles in array clock cycles, traffic in operand elements, SRAM
    accesses of the buffer's ``word_bits``, and bytes.

    ``fill_cycles``, ``steady_cycles`` and ``drain_cycles`` are totals over all folds; ``compute_cycles`` is
    their sum (less one per GEMM under the scalesim convention).
    """

    layer: str
    op: str
    m: int
    k: int
    n: int
    groups: int
    macs: int
    weight_bits: int
    act_bits: int
    out_bits: int
    dataflow: str
    rows: int
    cols: int
    sr: int
    sc: int
    t: int
    row_folds: int
    col_folds: int
    folds: int
    cycles_per_fold: int
    fill_cycles: int
    steady_cycles: int
    drain_cycles: int
    compute_cycles: int
    mapping_efficiency: float
    precision: PrecisionFactors
    sram_ifmap_reads: int
    sram_filter_reads: int
    sram_ofmap_writes: int
    sram_ofmap_reads: int
    traffic: Traffic
    outputs: int
    m_tiles: int = 1
    n_tiles: int = 1

    @property
    def dram_read_bytes(self) -> int:
        """Bytes read from DRAM (all operands)."""
        return self.traffic.dram_read_bytes()

    @property
    def dram_write_bytes(self) -> int:
        """Bytes written to DRAM (outputs, and partial sums of an ofmap with no on-chip buffer)."""
        return self.traffic.dram_write_bytes()


def _ifmap_elements(layer: Conv2d | Gemm) -> int:
    """Unique ifmap elements (the raw NCHW tensor for a conv, not its im2col expansion)."""
    if isinstance(layer, Conv2d):
        return layer.batch * layer.in_channels * layer.in_h * layer.in_w
    return layer.m * layer.k * layer.count


def _operands_per_pe(arch: ArchSpec, df: str, weight_bits: int, act_bits: int) -> int:
    """Stationary operands one PE's register file holds (ws: weights, is: inputs), when a per-PE level also
    holds the partial sum; 1 otherwise (then every row fold's partial sums leave the array)."""
    if df not in ("ws", "is"):
        return 1
    levels = [lv for lv in arch.memory.hierarchy() if lv.instances == "per_pe"]
    if not any("ofmap" in lv.operands for lv in levels):
        return 1
    op, b = ("filter", weight_bits) if df == "ws" else ("ifmap", act_bits)
    held = [int(lv.capacity_bits(op) // b) for lv in levels if op in lv.operands]
    return max(held + [1])


def map_layer(layer: Conv2d | Gemm, arch: ArchSpec, *, weight_bits: int, act_bits: int,
              out_bits: int | None = None, tile: int | None = None, resident: dict[str, str] | None = None,
              where: str = "<arch>") -> LayerMapping:
    """Map one layer onto ``arch`` for the given operand bit-widths.

    Parameters
    ----------
    layer : Conv2d or Gemm
        The layer (its GEMM view gives M, K, N and the number of groups).
    arch : ArchSpec
        The accelerator.
    weight_bits, act_bits : int
        Operand widths, bits. ``out_bits`` is the width the outputs are written at (default ``act_bits``).
    tile : int, optional
        A fixed M tile (ws) or N tile (is) instead of the mapper's choice (see :mod:`hwsim.mapping._traffic`).
    resident : dict, optional
        Operands whose whole tensor already lives in (or is kept in) an on-chip level: operand -> level name
        (:func:`hwsim.mapping._traffic.hierarchy_traffic`; set by :mod:`hwsim.schedule`).

    Raises
    ------
    InfeasibleError
        The PE cannot take these operand widths.
    """
    g = layer.gemm
    out_bits = act_bits if out_bits is None else out_bits
    pf = precision_factors(arch.pe, act_bits, weight_bits, where=where, layer=layer.name)
    R, C = arch.array.rows, arch.array.cols
    df = arch.array.dataflow
    M, K, N = g.m, g.k, g.n
    if arch.array.unroll is None:  # SCALE-Sim's GEMM view (im2col)
        k_eff = _cdiv(g.k, pf.macs_per_pe_cycle)
        sr, sc, t = {"os": (g.m, g.n, k_eff), "ws": (k_eff, g.n, g.m), "is": (k_eff, g.m, g.n)}[df]
        rf, cf = _cdiv(sr, R), _cdiv(sc, C)
        folds_per_group = rf * cf
        mapping_eff = (sr * sc) / (folds_per_group * R * C)
        # SRAM accesses in operand elements (SCALE-Sim's word = one operand), per group
        if df == "ws":
            ifm, fil, ofw = M * K * cf, K * N, M * N * rf
        elif df == "os":
            ifm, fil, ofw = M * K * cf, K * N * rf, M * N
        else:  # is
            ifm, fil, ofw = K * M, K * N * cf, M * N * rf
        red_folds = rf
        depth_r, depth_c = R, C
    else:  # the loop dimensions each axis unrolls (array.unroll): hwsim.mapping._unroll
        up = unroll_plan(layer, arch, c_div=pf.macs_per_pe_cycle, where=where)
        sr, sc, t = up.rows_used, up.cols_used, up.t
        rf, cf = up.row_steps, up.col_steps
        folds_per_group = up.folds
        mapping_eff = _cdiv(g.k, pf.macs_per_pe_cycle) * M * N / (up.folds * up.t * R * C)
        # each input is read once per output-channel step, each weight once per pixel step (os, is: the
        # weights stream) or once (ws), each partial sum leaves once per reduction fold (ws, is)
        if df == "ws":
            ifm, fil, ofw = M * K * up.n_steps, K * N, M * N * up.red_folds
        elif df == "os":
            ifm, fil, ofw = M * K * up.n_steps, K * N * up.m_steps, M * N
        else:  # is
            ifm, fil, ofw = K * M, K * N * up.m_steps, M * N * up.red_folds
        red_folds = up.red_folds
        depth_r, depth_c = up.row_depth, up.col_depth  # the systolic chain along each axis
    folds = folds_per_group * g.groups
    # an axis that broadcasts (array.systolic leaves it out) has no chain to fill or drain
    depth_r = depth_r if "rows" in arch.array.systolic else 1
    depth_c = depth_c if "cols" in arch.array.systolic else 1
    fill = (depth_r - 1) if df == "os" else (2 * depth_r - 1)
    steady = t * pf.cycles_per_step
    drain = depth_c - 1
    per_fold = fill + steady + drain
    compute = folds * per_fold
    if arch.timing.convention == "scalesim":
        compute -= g.groups

    k_folds = red_folds if df in ("ws", "is") else 1
    # reduction inside the PE: a per-PE register file that holds w_pe stationary operands and a per-PE level
    # holding the partial sum let a PE reduce w_pe row folds before its partial sum leaves the array
    w_pe = _operands_per_pe(arch, df, weight_bits, act_bits)
    if w_pe > 1:
        k_folds = _cdiv(red_folds, w_pe)
        ofw = M * N * k_folds
    ofr = M * N * (k_folds - 1)
    ifm, fil, ofw, ofr = (v * g.groups for v in (ifm, fil, ofw, ofr))
    final_writes = M * N * g.groups
    tr = hierarchy_traffic(layer, arch, weight_bits=weight_bits, act_bits=act_bits, out_bits=out_bits,
                           demand={"ifmap_reads": ifm, "filter_reads": fil, "ofmap_writes": ofw,
                                   "ofmap_reads": ofr},
                           macs=g.macs, psum_exits=k_folds, base_compute=compute,
                           fold_overhead=folds * (fill + drain), tile=tile, resident=resident,
                           held_stationary=min(w_pe, red_folds) if df in ("ws", "is") else 1, where=where)
    ifm, fil = tr.demand["ifmap_reads"], tr.demand["filter_reads"]
    # tiling M (ws) or N (is) so that partial sums stay on chip repeats each fold's fill and drain per tile
    tiles = tr.m_tiles if df == "ws" else (tr.n_tiles if df == "is" else 1)
    if tiles > 1:
        compute += folds * (tiles - 1) * (fill + drain)

    return LayerMapping(
        layer=layer.name, op=layer.op, m=M, k=K, n=N, groups=g.groups, macs=g.macs,
        weight_bits=weight_bits, act_bits=act_bits, out_bits=out_bits, dataflow=df, rows=R, cols=C,
        sr=sr, sc=sc, t=t, row_folds=rf, col_folds=cf, folds=folds, cycles_per_fold=per_fold,
        fill_cycles=folds * fill * tiles, steady_cycles=folds * steady, drain_cycles=folds * drain * tiles,
        compute_cycles=compute, mapping_efficiency=mapping_eff, precision=pf,
        sram_ifmap_reads=ifm, sram_filter_reads=fil, sram_ofmap_writes=ofw, sram_ofmap_reads=ofr,
        traffic=tr, m_tiles=tr.m_tiles, n_tiles=tr.n_tiles,
        outputs=final_writes,
    )

