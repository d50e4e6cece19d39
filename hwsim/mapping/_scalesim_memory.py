"""What SCALE-Sim 3.0.0 counts as DRAM traffic in CALC mode, reimplemented from the semantics of its memory model.

hwsim's own DRAM model (:mod:`hwsim.mapping._traffic`) counts the unique data a buffer must hold times the
refetches its loop nest forces, and every output once. SCALE-Sim counts something else, so under
``timing.convention: scalesim`` :func:`scalesim_dram_counts` gives its figures per operand. It follows the
rules below, derived from the SCALE-Sim 3.0.0 sources (PyPI ``scalesim==3.0.0``; none of its code is used):

**The address stream.** SCALE-Sim's compute model (``compute/systolic_compute_{os,ws,is}.py``) turns the
operand matrices (``compute/operand_matrix.py``: ifmap address ``((y * W + x) * C + c)`` of the raw NHWC
ifmap, window order (fy, fx, c), ``-1`` where a window leaves the ifmap; filter ``n * K + k``; ofmap
``m * N + n``) into one demand matrix per operand, one row per cycle and one column per array row or column.
Folds run column fold outer, row fold inner. Within a fold a streamed operand is *skewed* (the element
for stream step t of array line j is requested in cycle ``t + j``) and a stationary operand is loaded row by
row, flipped. The buffers see the addresses row by row, left to right.

**Read buffers (ifmap, filter), CALC mode** (``memory/read_buffer_estimate_bw.py``): a buffer of
``E = size_kB * 1024`` one-byte words records each address it has not seen in 100 sets of
``S = floor(E / 100)`` words; the first 50 sets form the active half. Each address that is not already in
the current epoch is one DRAM read; once 50 sets (``W = 50 * S`` new addresses) have been recorded, the
recorded sets are dropped and a new epoch starts. So DRAM reads = the misses of a store that forgets
everything every ``W`` misses (``W = 0``, i.e. ``E < 100``: it never forgets). hwsim's model instead keeps the
whole tile its buffer half can hold and counts refetches of tiles, not of addresses.

**Write buffer (ofmap)** (``memory/write_buffer.py``): every element the array writes is one DRAM write,
partial sums of every row fold included (ws and is write each output once per row fold of K); the
buffer packs them into lines of ``B`` words (``B`` = array columns in CALC mode) and drains ``L = ceil(D /
B)`` lines at a time when more than ``D = E - ceil(E / 2)`` words are held and the previous drain has
ended (a drain of L lines ends L - 1 cycles after it starts; DRAM latency is 0). A drain forces the partly
filled line out and counts it whole unless it is the last line drained, and it frees as many words as it
counted; what remains is drained at the end. hwsim counts each final output written once.

Assumptions: one-byte words (SCALE-Sim's ``word_size = 1``), active fraction 0.5 (``single_layer_sim.py``),
no sparsity, no custom layout, no Ramulator trace. A depthwise layer is ``groups`` SCALE-Sim layers of one
channel each (its topology reader's expansion), each with empty buffers. USER mode (real bandwidths and
stalls) is not reproduced: docs/validation_timing.md explains what SCALE-Sim counts there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..spec import ArchSpec, Conv2d, Gemm

__all__ = ["ScaleSimDram", "scalesim_dram_counts"]


@dataclass(frozen=True)
class ScaleSimDram:
    """SCALE-Sim 3.0.0's CALC-mode DRAM counts of one layer, in words (one word = one byte = one operand).

    ``ifmap_reads``, ``filter_reads``: DRAM reads of the ifmap and filter buffers ("DRAM IFMAP Reads",
    "DRAM Filter Reads" of its DETAILED_ACCESS_REPORT.csv); ``ofmap_writes``: "DRAM OFMAP Writes".
    """

    ifmap_reads: int
    filter_reads: int
    ofmap_writes: int


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _operands(layer: Conv2d | Gemm, group_channels: int | None = None):
    """SCALE-Sim's operand matrices as address arrays: ifmap (M, K), filter (K, N), ofmap (M, N).

    A conv uses its raw input height and width (SCALE-Sim's topology values) and its output size; a GEMM is
    SCALE-Sim's ``M x K`` ifmap with a ``1 x K`` window."""
    if isinstance(layer, Gemm):
        M, K, N = layer.m * layer.count, layer.k, layer.n
        ifm = np.arange(M)[:, None] * K + np.arange(K)[None, :]
    else:
        H, Wd = layer.in_h, layer.in_w
        fh, fw = layer.kernel_hw
        sh, sw = layer.stride_hw
        oh, ow = layer.out_hw
        C = group_channels if group_channels is not None else layer.in_channels
        M, K = layer.batch * oh * ow, fh * fw * C
        N = layer.out_channels if group_channels is None else layer.out_channels // layer.n_groups
        m = np.arange(M)
        oy, ox = np.divmod(m % (oh * ow), ow)
        fy, rem = np.divmod(np.arange(K), fw * C)
        fx, c = np.divmod(rem, C)
        y = oy[:, None] * sh + fy[None, :]
        x = ox[:, None] * sw + fx[None, :]
        b = (m // (oh * ow))[:, None]
        ifm = ((b * H + y) * Wd + x) * C + c[None, :]
        ifm = np.where((y < H) & (x < Wd), ifm, -1)
    fil = np.arange(N)[None, :] * K + np.arange(K)[:, None]
    ofm = np.arange(M)[:, None] * N + np.arange(N)[None, :]
    return ifm, fil, ofm


def _fold_stream(mat: np.ndarray, skew: bool, flip: bool, row0: int):
    """Cycle, column and address of every valid entry of one fold's demand matrix.

    ``mat`` is the fold's (steps x lines) block, padded with -1; a skewed block puts entry
    (t, j) in cycle ``row0 + t + j``, a flipped (stationary) one puts row i of ``s`` rows in cycle
    ``row0 + s - 1 - i``."""
    t, j = np.nonzero(mat >= 0)
    addr = mat[t, j]
    if flip:
        rows = row0 + (mat.shape[0] - 1 - t)
    elif skew:
        rows = row0 + t + j
    else:
        rows = row0 + t
    return rows, j, addr


def _streams(layer, arch: ArchSpec, group_channels: int | None = None):
    """Per operand the (cycle, address) stream SCALE-Sim's buffers see, in service order."""
    R, C = arch.array.rows, arch.array.cols
    df = arch.array.dataflow
    ifm, fil, ofm = _operands(layer, group_channels)
    M, K = ifm.shape
    N = fil.shape[1]
    out = {"ifmap": [], "filter": [], "ofmap": []}

    def pad(a, width):
        if a.shape[1] < width:
            a = np.concatenate([a, -np.ones((a.shape[0], width - a.shape[1]), dtype=a.dtype)], axis=1)
        return a

    if df == "os":
        sr, sc, T = M, N, K
        height = T + R + C - 2
    elif df == "ws":
        sr, sc, T = K, N, M
        height = 2 * R + T + C - 2
    else:
        sr, sc, T = K, M, N
        height = 2 * R + T + C - 2
    rf, cf = _cdiv(sr, R), _cdiv(sc, C)
    base = 0
    for fc in range(cf):
        c0, c1 = fc * C, min(fc * C + C, sc)
        for fr in range(rf):
            r0, r1 = fr * R, min(fr * R + R, sr)
            if df == "os":
                parts = {"ifmap": (pad(ifm[r0:r1, :].T, R), True, False, base),
                         "filter": (pad(fil[:, c0:c1], C), True, False, base),
                         "ofmap": (np.pad(pad(ofm[r0:r1, c0:c1], C), ((0, R - (r1 - r0)), (0, 0)),
                                          constant_values=-1), True, True, base + T - 1)}
            elif df == "ws":
                parts = {"ifmap": (pad(ifm[:, r0:r1], R), True, False, base + R),
                         "filter": (np.pad(pad(fil[r0:r1, c0:c1], C), ((0, R - (r1 - r0)), (0, 0)),
                                           constant_values=-1), False, True, base),
                         "ofmap": (pad(ofm[:, c0:c1], C), True, False, base + 2 * R - 1)}
            else:
                parts = {"ifmap": (np.pad(pad(ifm[c0:c1, r0:r1].T, C), ((0, R - (r1 - r0)), (0, 0)),
                                          constant_values=-1), False, True, base),
                         "filter": (pad(fil[r0:r1, :].T, R), True, False, base + R),
                         "ofmap": (pad(ofm[c0:c1, :].T, C), True, False, base + 2 * R - 1)}
            for op, (mat, skew, flip, row0) in parts.items():
                if op == "ofmap" and df == "os":
                    # flipped, then skewed after a T - 1 prefix: entry (i, j) of the fold in cycle
                    # row0 + (R - 1 - i) + j
                    i, j = np.nonzero(mat >= 0)
                    out[op].append((row0 + (mat.shape[0] - 1 - i) + j, j, mat[i, j]))
                else:
                    out[op].append(_fold_stream(mat, skew, flip, row0))
            base += height
    res = {}
    for op, chunks in out.items():
        rows = np.concatenate([c[0] for c in chunks])
        cols = np.concatenate([c[1] for c in chunks])
        addr = np.concatenate([c[2] for c in chunks])
        order = np.lexsort((cols, rows))
        res[op] = (rows[order].astype(np.int64), addr[order].astype(np.int64))
    return res


def _epoch_misses(addr: np.ndarray, window: int) -> int:
    """Misses of a store that forgets everything after every ``window`` misses (0: never forgets)."""
    if addr.size == 0:
        return 0
    if window <= 0:
        return int(np.unique(addr).size)
    _, dense = np.unique(addr, return_inverse=True)
    return int(_epoch_kernel(dense.astype(np.int64), window))


def _epoch_kernel_py(dense, window):
    seen = np.full(int(dense.max()) + 1, -1, dtype=np.int64)
    epoch, count, misses = 0, 0, 0
    for a in dense:
        if seen[a] != epoch:
            seen[a] = epoch
            misses += 1
            count += 1
            if count == window:
                epoch += 1
                count = 0
    return misses


def _write_kernel_py(cycles, total, lane):
    """SCALE-Sim's write buffer (see the module docstring): words counted as DRAM writes."""
    drain = total - _cdiv(total, 2)
    per_drain = _cdiv(drain, lane) if drain > 0 else 1
    free = total
    line_fill = 0          # words in the line being packed
    lines = []             # valid words of every closed line (a line holds up to ``lane``)
    start = 0              # first line not yet drained
    drain_end = 0
    offset = 0
    counted = 0
    for cyc in cycles:
        cur = cyc + offset
        line_fill += 1
        free -= 1
        if line_fill == lane:
            lines.append(lane)
            line_fill = 0
        if cur < drain_end:
            if free <= 0:
                offset += max(drain_end - cur, 0)
                cur = drain_end
        elif free < total - drain:
            if line_fill:
                lines.append(line_fill)
                line_fill = 0
            end = min(start + per_drain, len(lines))
            n = end - start
            if n > 0:
                words = n * lane - (lane - lines[end - 1])
                counted += words
                free += words
                drain_end = cur + n - 1
                start = end
            else:
                drain_end = cur - 1
    if line_fill:
        lines.append(line_fill)
    while start < len(lines):
        end = min(start + per_drain, len(lines))
        counted += (end - start) * lane - (lane - lines[end - 1])
        start = end
    return counted


try:  # the streams of a large layer are long: compile the two loops when numba is there
    import numba

    _epoch_kernel = numba.njit(cache=False)(_epoch_kernel_py)
except ImportError:  # pragma: no cover
    _epoch_kernel = _epoch_kernel_py


def _one(layer, arch: ArchSpec, group_channels: int | None = None) -> ScaleSimDram:
    s = _streams(layer, arch, group_channels)
    mem = arch.memory.hierarchy()
    size = {op: next(lv for lv in mem if lv.name == f"{op}_sram").size_bits / 8 for op in ("ifmap", "filter",
                                                                                          "ofmap")}
    win = {op: 50 * (int(size[op]) // 100) for op in ("ifmap", "filter")}
    ofm_cycles = s["ofmap"][0]
    return ScaleSimDram(ifmap_reads=_epoch_misses(s["ifmap"][1], win["ifmap"]),
                        filter_reads=_epoch_misses(s["filter"][1], win["filter"]),
                        ofmap_writes=int(_write_kernel_py(ofm_cycles.tolist(), int(size["ofmap"]),
                                                          arch.array.cols)))


def scalesim_dram_counts(layer: Conv2d | Gemm, arch: ArchSpec) -> ScaleSimDram:
    """SCALE-Sim 3.0.0's CALC-mode DRAM reads and writes of ``layer`` on ``arch`` (module docstring).

    Parameters
    ----------
    layer : Conv2d or Gemm
        A layer as :func:`hwsim.frontends.read_topology_csv` reads it from a SCALE-Sim topology (raw input
        height and width, output size by SCALE-Sim's rule). A depthwise conv is summed over its channels.
    arch : ArchSpec
        An arch with SCALE-Sim's three buffers (``ifmap_sram``, ``filter_sram``, ``ofmap_sram``), as
        :func:`hwsim.frontends.arch_from_scalesim_cfg` makes.

    Returns
    -------
    ScaleSimDram
        Words (one byte each).

    Raises
    ------
    ValueError
        ``arch`` has no ``ifmap_sram``/``filter_sram``/``ofmap_sram`` levels (not SCALE-Sim's memory).
    """
    names = {lv.name for lv in arch.memory.hierarchy()}
    if not {"ifmap_sram", "filter_sram", "ofmap_sram"} <= names:
        raise ValueError(f"an arch with SCALE-Sim's ifmap_sram, filter_sram and ofmap_sram; found {sorted(names)}")
    if isinstance(layer, Conv2d) and layer.n_groups > 1:
        per = layer.in_channels // layer.n_groups
        parts = [_one(layer, arch, per) for _ in range(layer.n_groups)]
        return ScaleSimDram(*(sum(getattr(p, f) for p in parts) for f in ("ifmap_reads", "filter_reads",
                                                                           "ofmap_writes")))
    return _one(layer, arch)
