"""DRAM traffic of one layer: which tiles each SRAM buffer holds and how often each operand crosses DRAM.

First-cut tiling (assumptions stated; the timing issue deepens it). Each operand moves at its own packed
bit-width; a buffer's working half holds one tile when double buffered (SCALE-Sim's active fraction 0.5),
all of it otherwise. Per group of the layer, with R x C the array and M, K, N the GEMM view:

* **ws** (loop: M tile -> column fold -> row fold). Partial sums of an ``Mt x min(N, C)`` output tile stay in
  the ofmap buffer, so none spill to DRAM. The ifmap rows of an M tile are read once if they fit the ifmap
  buffer, else once per column fold; the filter is read once if it fits the filter buffer, else once per M
  tile. ``Mt`` minimizes the DRAM bytes among the tiles whose partial sums fit (the optimum is the largest
  tile on either side of the ifmap-fits threshold, so both are tried); a larger buffer therefore never
  increases traffic.
* **os** (loop: row fold of M -> column fold of N; partial sums stay in the PEs). The ifmap slice of a row fold
  (``min(M, R) x K``) is read once if it fits, else once per column fold; the filter is read once if it fits,
  else once per row fold.
* **is** (loop: N tile -> column fold of M -> row fold of K). Partial sums of a ``min(M, C) x Nt`` tile stay in
  the ofmap buffer; the filter is read once if it fits, else once per column fold; the ifmap once if a column
  fold's slice (``K x min(M, C)``) fits, else once per N tile.

Outputs are written once at the output bit-width. The ifmap of an M tile is taken as its share of the raw
ifmap (the halo of overlapping conv windows is not counted).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InfeasibleError
from ..spec import ArchSpec, Conv2d, Gemm, SramConfig

__all__ = ["Traffic", "dram_traffic"]


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Traffic:
    """DRAM bytes of one layer by operand and direction, and the tiling that gives them."""

    ifmap_read_bytes: int
    filter_read_bytes: int
    psum_read_bytes: int
    ofmap_write_bytes: int
    psum_write_bytes: int
    m_tiles: int
    n_tiles: int


def _capacity_bits(s: SramConfig, double_buffered: bool) -> float:
    return s.size_kib * 1024 * 8 * (0.5 if double_buffered else 1.0)


def dram_traffic(layer: Conv2d | Gemm, arch: ArchSpec, *, weight_bits: int, act_bits: int, out_bits: int,
                 where: str = "<arch>") -> Traffic:
    """DRAM traffic of ``layer`` on ``arch`` (see the module docstring for the tiling).

    Raises
    ------
    InfeasibleError
        The ofmap buffer cannot hold one row of partial sums across the array (ws, is), with the sizes.
    """
    g = layer.gemm
    M, K, N, G = g.m, g.k, g.n, g.groups
    R, C = arch.array.rows, arch.array.cols
    mem = arch.memory
    db = mem.double_buffered
    acc = arch.pe.acc_bits
    cap_i, cap_f, cap_o = (_capacity_bits(s, db) for s in (mem.ifmap_sram, mem.filter_sram, mem.ofmap_sram))
    df = arch.array.dataflow
    rf_k = _cdiv(K, R)

    if isinstance(layer, Conv2d):
        ifmap_elems = layer.batch * (layer.in_channels // G) * layer.in_h * layer.in_w  # per group
    else:
        ifmap_elems = M * K
    ifmap_bytes = _cdiv(ifmap_elems * act_bits, 8)
    filter_bytes = _cdiv(K * N * weight_bits, 8)
    filter_fits = K * N * weight_bits <= cap_f
    m_tiles = n_tiles = 1

    if df == "ws":
        cols = min(N, C)
        mt = int(cap_o // (cols * acc)) if rf_k > 1 else M
        if mt < 1:
            raise InfeasibleError(where, "memory.ofmap_sram.size_kib",
                                  f"room for one row of partial sums across the array: {cols} x {acc} bits = "
                                  f"{cols * acc / 8:.0f} bytes per buffer half",
                                  f"{mem.ofmap_sram.size_kib} KiB", detail=f"layer {layer.name}")
        mt_max = min(mt, M)
        cf = _cdiv(N, C)

        def cost(mt: int) -> tuple[int, int, int]:
            ifm = ifmap_bytes * (1 if mt * K * act_bits <= cap_i else cf)
            fil = filter_bytes * (1 if filter_fits else _cdiv(M, mt))
            return ifm + fil, ifm, fil

        # the best M tile is the largest one either way of the ifmap-fits threshold: try both
        mt_fit = min(mt_max, int(cap_i // (K * act_bits)))
        cands = [mt_max] + ([mt_fit] if mt_fit >= 1 else [])
        mt = min(cands, key=lambda v: (cost(v)[0], -v))
        _, ifmap_read, filter_read = cost(mt)
        m_tiles = _cdiv(M, mt)
    elif df == "os":
        ifmap_fits = min(M, R) * K * act_bits <= cap_i
        ifmap_read = ifmap_bytes * (1 if ifmap_fits else _cdiv(N, C))
        filter_read = filter_bytes * (1 if filter_fits else _cdiv(M, R))
    else:  # is
        cols = min(M, C)
        nt = int(cap_o // (cols * acc)) if rf_k > 1 else N
        if nt < 1:
            raise InfeasibleError(where, "memory.ofmap_sram.size_kib",
                                  f"room for one row of partial sums across the array: {cols} x {acc} bits = "
                                  f"{cols * acc / 8:.0f} bytes per buffer half",
                                  f"{mem.ofmap_sram.size_kib} KiB", detail=f"layer {layer.name}")
        nt = min(nt, N)
        n_tiles = _cdiv(N, nt)
        ifmap_fits = K * cols * act_bits <= cap_i
        ifmap_read = ifmap_bytes * (1 if ifmap_fits else n_tiles)
        filter_read = filter_bytes * (1 if filter_fits else _cdiv(M, C))

    ofmap_write = _cdiv(M * N * out_bits, 8)
    return Traffic(ifmap_read_bytes=ifmap_read * G, filter_read_bytes=filter_read * G, psum_read_bytes=0,
                   ofmap_write_bytes=ofmap_write * G, psum_write_bytes=0, m_tiles=m_tiles, n_tiles=n_tiles)
