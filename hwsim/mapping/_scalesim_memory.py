"""What SCALE-Sim 3.0.0 counts as DRAM traffic, stalls and total cycles, reimplemented from its memory model.

hwsim's own DRAM model (:mod:`hwsim.mapping._traffic`) counts the unique data a buffer must hold times the
refetches its loop nest forces, and every output once. SCALE-Sim counts something else, so for an arch
imported from a SCALE-Sim cfg (``timing.convention: scalesim``) :func:`scalesim_memory` gives its figures. It
follows the rules below, derived from the SCALE-Sim 3.0.0 sources (PyPI ``scalesim==3.0.0``; none of its code
is used):

**The address stream.** SCALE-Sim's compute model (``compute/systolic_compute_{os,ws,is}.py``) turns the
operand matrices (``compute/operand_matrix.py``: ifmap address ``((y * W + x) * C + c)`` of the raw NHWC
ifmap, window order (fy, fx, c), ``-1`` where a window leaves the ifmap; filter ``n * K + k``; ofmap
``m * N + n``) into one demand matrix per operand, one row per cycle and one column per array row or column.
Folds run column fold outer, row fold inner. Within a fold a streamed operand is *skewed* (the element
for stream step t of array line j is requested in cycle ``t + j``) and a stationary operand is loaded row by
row, flipped. The buffers see the addresses row by row, left to right.

**Read buffers (ifmap, filter), CALC mode** (``memory/read_buffer_estimate_bw.py``): a buffer of
``E = size_kB * 1024`` one-byte words records each address it has not seen in 100 sets of
``S = floor(E / 100)`` words; 50 sets form the active half. Each address that is not already in
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
counted; what remains is drained at the end. A full buffer holds the array until the drain ends. hwsim counts
each final output written once.

**USER mode** (``memory/read_buffer.py``): the read buffers refill from a fetch order (SCALE-Sim's prefetch
matrices: per fold block, stacked; streamed operands along anti-diagonals, stationary ones row by row) cut
into lines of ``ceil(E / 100)`` valid words; see :class:`_UserReadBuffer`. Ports: ifmap and filter
``IfmapSRAMBankBandwidth``/``FilterSRAMBankBandwidth`` words per cycle, ofmap ``Bandwidth[0]`` (the write
buffer's line). Each demand row (cycle ``i`` plus the stalls so far) is served by the three buffers; the
row's stall is the largest of their waits (``double_buffered_scratchpad_mem.py:service_memory_requests``) and
Total Cycles is the last cycle an ofmap row is served.

Assumptions: one-byte words (SCALE-Sim's ``word_size = 1``), active fraction 0.5 (``single_layer_sim.py``),
no sparsity, no custom layout, no Ramulator trace. A depthwise layer is ``groups`` SCALE-Sim layers of one
channel each (its topology reader's expansion), each with empty buffers. docs/validation_timing.md says,
case by case, where these counts differ from hwsim's own model and why.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields

import numpy as np

from ..spec import ArchSpec, Conv2d, Gemm

__all__ = ["ScaleSimMemory", "scalesim_memory"]

OPS = ("ifmap", "filter", "ofmap")


@dataclass(frozen=True)
class ScaleSimMemory:
    """SCALE-Sim 3.0.0's memory figures of one layer: words (one word = one byte = one operand) and cycles.

    ``ifmap_reads``, ``filter_reads``: DRAM reads of the ifmap and filter buffers ("DRAM IFMAP Reads",
    "DRAM Filter Reads" of its DETAILED_ACCESS_REPORT.csv); ``ofmap_writes``: "DRAM OFMAP Writes";
    ``stall_cycles`` and ``total_cycles``: "Stall Cycles" and "Total Cycles" of its COMPUTE_REPORT.csv.
    """

    ifmap_reads: int
    filter_reads: int
    ofmap_writes: int
    stall_cycles: int
    total_cycles: int


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


def _n_rows(layer, arch: ArchSpec, group_channels: int | None = None) -> int:
    """Rows (cycles) of SCALE-Sim's demand matrices: folds x (fill + steady + drain) of hwsim's plan."""
    R, C = arch.array.rows, arch.array.cols
    ifm, fil, _ = (x.shape for x in _operands(layer, group_channels))
    M, K, N = ifm[0], ifm[1], fil[1]
    sr, sc, t = {"os": (M, N, K), "ws": (K, N, M), "is": (K, M, N)}[arch.array.dataflow]
    fill = R - 1 if arch.array.dataflow == "os" else 2 * R - 1
    return _cdiv(sr, R) * _cdiv(sc, C) * (fill + t + C - 1)


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
    kernel = _epoch_kernel() if dense.size > 200_000 else _epoch_kernel_py  # compiling costs ~1 s
    return int(kernel(dense.astype(np.int64), window))


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


class _WriteBuffer:
    """SCALE-Sim's ofmap write buffer (module docstring): ``total`` words, lines of ``lane`` words."""

    def __init__(self, total: int, lane: int):
        self.total, self.lane = total, lane
        self.drain = total - _cdiv(total, 2)
        self.per_drain = max(_cdiv(self.drain, lane), 1)
        self.free = total
        self.fill = 0              # words in the line being packed
        self.lines: list[int] = []  # valid words of every closed line
        self.start = 0             # first line not drained yet
        self.drain_end = 0
        self.counted = 0

    def _drain(self, cycle: int) -> int:
        end = min(self.start + self.per_drain, len(self.lines))
        words = (end - self.start) * self.lane - (self.lane - self.lines[end - 1])
        self.counted += words
        self.free += words
        done = cycle + (end - self.start) - 1
        self.start = end
        return done

    def write_row(self, n: int, cycle: int) -> int:
        """``n`` words requested in ``cycle``; the cycle the row is served (later when the buffer is full)."""
        cur = cycle
        for _ in range(n):
            self.fill += 1
            self.free -= 1
            if self.fill == self.lane:
                self.lines.append(self.lane)
                self.fill = 0
            if cur < self.drain_end:
                if self.free <= 0:
                    cur = self.drain_end
            elif self.free < self.total - self.drain:
                if self.fill:
                    self.lines.append(self.fill)
                    self.fill = 0
                self.drain_end = self._drain(cur)
        return cur

    def finish(self, cycle: int) -> None:
        if self.fill:
            self.lines.append(self.fill)
            self.fill = 0
        while self.start < len(self.lines):
            cycle = self._drain(cycle) + 1


class _UserReadBuffer:
    """SCALE-Sim's USER-mode read buffer (``memory/read_buffer.py``), from its semantics.

    The fetch order (``fetch``, -1 = no word) is cut into lines of ``eps = ceil(E / 100)`` valid words; the
    active window holds ``ceil(E/2 / eps)`` lines, each refill moves it ``ceil((E - E/2) / eps)`` lines on
    (wrapping) and reads ``ceil((E - E/2) / bw)`` full port lines of ``bw`` words from DRAM, taking that many
    cycles plus one of latency after the previous refill. A request waits for refills until its address is in
    the window; SCALE-Sim adds a positive wait twice and a negative one (refill done early) once."""

    def __init__(self, fetch: np.ndarray, size: int, bw: int):
        self.bw = bw
        active = _cdiv(size, 2)
        self.pf_size = size - active
        eps = _cdiv(size, 100)
        valid = fetch[fetch >= 0]
        cuts = list(range(eps, valid.size + 1, eps))
        self.line_sets = [set(x.tolist()) for x in np.split(valid, cuts)]
        n = len(self.line_sets)
        self.n_lines = n
        self.n_act = min(_cdiv(active, eps), n)
        self.n_pf = min(_cdiv(self.pf_size, eps), n - self.n_act)
        first = min(_cdiv(active, bw), _cdiv(fetch.size, bw))
        self.reads = first * bw
        self.last = -1           # the first fill ends the cycle before the first request (latency 1)
        self.lo, self.hi = 0, self.n_act
        self.line_of: dict[int, list[int]] = {}
        for i, st in enumerate(self.line_sets):
            for a in st:
                self.line_of.setdefault(a, []).append(i)

    def _hit(self, addr: int) -> bool:
        lo, hi = self.lo, self.hi
        return any((lo <= i < hi) if lo < hi else (i >= lo or i < hi) for i in self.line_of.get(addr, ()))

    def read_row(self, addrs, cycle: int) -> int:
        """Serve one cycle's requests; returns the wait beyond the hit latency (SCALE-Sim's 'stall')."""
        off = 1
        for a in addrs:
            while not self._hit(a):
                self.lo = (self.lo + self.n_pf) % self.n_lines
                self.hi = (self.lo + self.n_act) % self.n_lines
                k = _cdiv(self.pf_size, self.bw)
                self.reads += k * self.bw
                self.last = self.last + k + 1
                wait = self.last - (cycle + off)
                off += wait + (wait if wait > 0 else 0)
        return off - 1


def _fetch_order(layer, arch: ArchSpec, group_channels: int | None = None) -> dict[str, np.ndarray]:
    """SCALE-Sim's prefetch matrices, flattened (-1 kept): per fold block, stacked; a streamed operand is
    read along anti-diagonals (the order of its skewed demand), a stationary one row by row."""
    R, C = arch.array.rows, arch.array.cols
    df = arch.array.dataflow
    ifm, fil, _ = _operands(layer, group_channels)

    def stack(mat, width):
        blocks = [mat[:, i:i + width] for i in range(0, mat.shape[1], width)]
        return np.concatenate([np.pad(b, ((0, 0), (0, width - b.shape[1])), constant_values=-1)
                               for b in blocks], axis=0)

    def diag(mat):
        r, c = np.indices(mat.shape)
        order = np.lexsort((c.ravel(), (r + c).ravel()))
        return mat.ravel()[order]

    if df == "os":
        return {"ifmap": diag(stack(ifm.T, R)), "filter": diag(stack(fil, C))}
    if df == "ws":
        return {"ifmap": diag(stack(ifm, R)), "filter": stack(fil, C).ravel()}
    return {"ifmap": stack(ifm.T, C).ravel(), "filter": diag(stack(fil.T, R))}


@functools.cache
def _epoch_kernel():
    """The streams of a large layer are long: the two loops compiled when numba is there (imported here, on
    first use, not with hwsim: importing numba is 0.4 s of every command, a bad input's one-line error
    included)."""
    try:
        import numba
    except ImportError:  # pragma: no cover
        return _epoch_kernel_py
    return numba.njit(cache=False)(_epoch_kernel_py)


def _one(layer, arch: ArchSpec, ports: tuple[int, int, int] | None,
         group_channels: int | None = None) -> ScaleSimMemory:
    st = _streams(layer, arch, group_channels)
    mem = arch.memory.hierarchy()
    size = {op: int(next(lv for lv in mem if lv.name == f"{op}_sram").size_bits // 8) for op in OPS}
    n_rows = _n_rows(layer, arch, group_channels)
    bounds = {op: np.searchsorted(st[op][0], np.arange(n_rows + 1)) for op in OPS}
    if ports is None:  # CALC: reads never wait; the ofmap port takes one line of `cols` words per cycle
        reads = {op: _epoch_misses(st[op][1], 50 * (size[op] // 100)) for op in ("ifmap", "filter")}
        bufs = None
        lane = arch.array.cols
    else:
        fetch = _fetch_order(layer, arch, group_channels)
        bufs = {op: _UserReadBuffer(fetch[op], size[op], bw)
                for op, bw in zip(("ifmap", "filter"), ports, strict=False)}
        lane = ports[2]
    wb = _WriteBuffer(size["ofmap"], lane)
    stall, last = 0, 0
    ob = bounds["ofmap"]
    for i in range(n_rows):
        cyc = i + stall
        wait = 0
        if bufs is not None:
            for op in ("ifmap", "filter"):
                b = bounds[op]
                if b[i + 1] > b[i]:
                    wait = max(wait, bufs[op].read_row(st[op][1][b[i]:b[i + 1]].tolist(), cyc))
                else:
                    wait = max(wait, bufs[op].read_row((), cyc))
        out = wb.write_row(int(ob[i + 1] - ob[i]), cyc)
        wait = max(wait, out - cyc)
        stall += wait
        last = max(last, out)
    wb.finish(out)
    if bufs is not None:
        reads = {op: bufs[op].reads for op in ("ifmap", "filter")}
    return ScaleSimMemory(ifmap_reads=reads["ifmap"], filter_reads=reads["filter"], ofmap_writes=wb.counted,
                          stall_cycles=stall, total_cycles=last)


def scalesim_memory(layer: Conv2d | Gemm, arch: ArchSpec, *,
                    user_ports: tuple[int, int, int] | None = None) -> ScaleSimMemory:
    """SCALE-Sim 3.0.0's DRAM reads and writes, stall cycles and Total Cycles of ``layer`` on ``arch``.

    Parameters
    ----------
    layer : Conv2d or Gemm
        A layer as :func:`hwsim.frontends.read_topology_csv` reads it from a SCALE-Sim topology (raw input
        height and width, output size by SCALE-Sim's rule). A depthwise conv is summed over its channels
        (SCALE-Sim runs one layer per channel).
    arch : ArchSpec
        An arch with SCALE-Sim's three buffers (``ifmap_sram``, ``filter_sram``, ``ofmap_sram``), as
        :func:`hwsim.frontends.arch_from_scalesim_cfg` makes.
    user_ports : (int, int, int), optional
        USER bandwidth mode: the ifmap, filter and ofmap DRAM ports in words per cycle (the cfg's
        ``IfmapSRAMBankBandwidth``, ``FilterSRAMBankBandwidth`` and ``Bandwidth[0]``). Omitted: CALC mode.

    Returns
    -------
    ScaleSimMemory
        Words (one byte each) and cycles.

    Raises
    ------
    ValueError
        ``arch`` has no ``ifmap_sram``/``filter_sram``/``ofmap_sram`` levels (not SCALE-Sim's memory), or the
        layer has a dilation or top/left padding (a SCALE-Sim topology has neither).
    """
    names = {lv.name for lv in arch.memory.hierarchy()}
    if not {"ifmap_sram", "filter_sram", "ofmap_sram"} <= names:
        raise ValueError("an arch with SCALE-Sim's ifmap_sram, filter_sram and ofmap_sram; found "
                         f"{sorted(names)}")
    if isinstance(layer, Conv2d) and (layer.dilation_hw != (1, 1) or layer.pads[0] or layer.pads[2]):
        raise ValueError(f"a layer SCALE-Sim can describe (no dilation, no top or left padding); found "
                         f"{layer.name} with dilation {layer.dilation_hw} and padding {layer.pads}")
    if isinstance(layer, Conv2d) and layer.n_groups > 1:
        per = layer.in_channels // layer.n_groups
        parts = [_one(layer, arch, user_ports, per) for _ in range(layer.n_groups)]
        return ScaleSimMemory(*(sum(getattr(p, f.name) for p in parts) for f in fields(ScaleSimMemory)))
    return _one(layer, arch, user_ports)
