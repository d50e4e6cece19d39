"""Traffic through the memory hierarchy: which tiles each level holds and how often each operand crosses it.

Each operand (ifmap, filter, ofmap) has a chain of shared on-chip buffers that hold it (``memory.levels`` or
the per-operand shorthand), innermost first, then DRAM; per-PE register files (``kind: rf``) sit inside the
array. Operands move at their own packed bit-width. A level's share of its capacity for an operand is
``size * share`` (halved when double buffered: one half computes while the other loads).

**Array edge.** The innermost buffer of an operand serves the array's demand (SCALE-Sim's SRAM reads and
writes, :mod:`hwsim.mapping._plan`); an operand with no on-chip buffer is read from (written to) DRAM at that
demand, with no reuse.

**Refetch.** A buffer is filled from its parent with the operand's unique data times a refetch factor set by
the loop nest of the dataflow (R x C the array; M, K, N the GEMM view, per group):

* ws (M tile -> column fold -> row fold): partial sums of an ``Mt x min(N, C)`` tile stay in the innermost
  ofmap buffer. ifmap: once if the rows of an M tile (``Mt x K``) or the whole raw ifmap fit, else once per
  column fold. filter: once if it fits, else once per M tile (with no on-chip weight buffer, the array reloads
  the weights from DRAM for every M tile). ``Mt`` minimizes DRAM bytes among the tiles whose partial sums fit,
  whether or not partial sums force a tile (a PE register holding its weights across the row folds still gains
  from M tiles whose ifmap rows fit), ties broken by the latency estimate max(compute, DRAM bits read and
  written / bandwidth: one channel carries both) and then the larger tile: the optimum is the largest tile on
  either side of each level's ifmap-fits threshold, so those are tried, and a larger level (register files
  included) never increases DRAM bytes. That objective (``timing.objective: dram``, the default) can cost
  latency where DRAM bandwidth is not the bound (each extra tile repeats every fold's fill and drain); it is
  the one that keeps this guarantee. ``timing.objective: latency`` ranks the same candidates by the latency
  estimate first, then DRAM bytes: the optimum over all tiles is still among them (between thresholds both
  keys fall as the tile grows), a larger level never raises the estimate, and on a fixed-precision PE fewer
  bits never raise it either (each tile's DRAM bits shrink, its compute stays), where the dram objective may
  take more tiles for narrower operands and be slower.
* os (partial sums stay in the PEs), whichever loop order moves fewer DRAM bytes: row folds of M outer (ifmap
  once if a row fold's slice ``min(M, R) x K`` or the raw ifmap fits, else once per column fold; filter once
  if it fits, else once per row fold) or column folds of N outer (filter once if a column fold's slice
  ``K x min(N, C)`` or all of it fits, else once per row fold; ifmap once if it fits, else once per column
  fold).
* is (N tile -> column fold of M -> row fold of K): partial sums of a ``min(M, C) x Nt`` tile stay in the
  innermost ofmap buffer (``Nt`` the largest that fits); filter once if it fits, else once per column fold;
  ifmap once if a column fold's slice (``K x min(M, C)``) or the raw ifmap fits, else once per N tile.

Outputs go up the ofmap chain once, at the output bit-width. The ifmap of an M tile is counted as its rows of
the GEMM view (an upper bound on its raw footprint; the halo of overlapping windows is not modelled).

**Tensors kept on chip** (``resident``, from :mod:`hwsim.schedule`): an ifmap (or a second, activation
operand) that already lives in buffer L is not filled into L or any level beyond it; the levels inside L fill
from L as usual. Outputs kept in L are written up the ofmap chain only as far as L (into L from the outermost
ofmap buffer when L is not on the chain: e.g. from TPU's accumulators into its Unified Buffer) and never to
DRAM. The tiles are chosen as without it, so the DRAM bytes drop by exactly the resident operands' fills.

**Register files** (Eyeriss's accounting, Chen et al., ISCA 2016): every MAC reads each streaming operand
held in a PE register file once and writes it once as it passes; an output-stationary accumulator (os) is
read and written per MAC. The stationary operand (ws: filter, is: ifmap) is written once per element loaded;
it is read once per MAC only when the PE cycles through several of them (a register holding the weights of
several row folds, reduced inside the PE), else it stays at the multiplier's input for every MAC it serves
and is read once per load (as ZigZag counts a register whose data does not change between MACs:
``zigzag/cost_model/cost_model.py``, accesses per data change of the level).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import Found, InfeasibleError
from ..spec import OPERANDS, ArchSpec, Conv2d, Gemm, MemoryLevel

__all__ = ["Traffic", "hierarchy_traffic"]


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Traffic:
    """Bits read from and written to every level, by operand: ``reads[level][operand]`` and ``writes``.

    DRAM reads are the fills of each operand's outermost buffer; DRAM writes the outputs (and any partial
    sums of an ofmap with no on-chip buffer).
    """

    reads: dict[str, dict[str, int]]
    writes: dict[str, dict[str, int]]
    m_tiles: int = 1
    n_tiles: int = 1
    demand: dict[str, int] = field(default_factory=dict)

    def dram_read_bytes(self, operand: str | None = None) -> int:
        r = self.reads["dram"]
        return _cdiv(r[operand] if operand else sum(r.values()), 8)

    def dram_write_bytes(self, operand: str | None = None) -> int:
        w = self.writes["dram"]
        return _cdiv(w[operand] if operand else sum(w.values()), 8)


def _size_key(arch: ArchSpec, lv: MemoryLevel) -> str:
    if arch.memory.levels is None:
        return f"memory.{lv.name}.size_kib"
    i = [x.name for x in arch.memory.levels].index(lv.name)
    return f"memory.levels[{i}].{'size_kib' if lv.size_kib is not None else 'size_bytes'}"


def hierarchy_traffic(layer: Conv2d | Gemm, arch: ArchSpec, *, weight_bits: int, act_bits: int, out_bits: int,
                      demand: dict[str, int], macs: int, psum_exits: int | None = None,
                      base_compute: int = 0, fold_overhead: int = 0, tile: int | None = None,
                      resident: dict[str, str] | None = None, held_stationary: int = 1,
                      where: str = "<arch>") -> Traffic:
    """Traffic of ``layer`` through every level of ``arch``'s hierarchy.

    Parameters
    ----------
    demand : dict
        The array's demand on the innermost buffers, operand elements: ``ifmap_reads``, ``filter_reads``,
        ``ofmap_writes`` (partial sums at ``acc_bits`` except the final outputs), ``ofmap_reads`` (partial
        sums).
    macs : int
        The layer's MACs (register-file accesses).
    psum_exits : int, optional
        How many times partial sums leave the array per output (ws, is: the row folds, fewer when the PEs
        reduce several folds in their own registers). Tiling for partial sums applies only when it is > 1 and
        the timing convention is hwsim (SCALE-Sim does not bound partial sums by its ofmap buffer).
    base_compute, fold_overhead : int
        Compute cycles with one tile, and the cycles each extra tile adds (every fold's fill and drain again):
        the mapper weighs them against DRAM bytes.
    tile : int, optional
        Fix the M tile (ws) or N tile (is) instead of letting the mapper choose: a fixed mapping.
    resident : dict, optional
        Operand (``ifmap``, ``filter``, ``ofmap``) -> the name of the shared on-chip level that holds the
        whole tensor (see "Tensors kept on chip" above); ``ifmap``/``filter`` must name a level on that
        operand's chain.
    held_stationary : int
        How many stationary operands (ws: weights, is: inputs) one PE cycles through per output: > 1 when a
        per-PE register file holds several row folds' worth and the reduction runs inside the PE (then a
        register read per MAC), 1 when each PE holds one for all the MACs it serves (a read per load).

    The returned traffic's ``demand`` is the array's demand after tiling: ws reloads the weights into the
    array once per M tile, is the inputs once per N tile.

    Raises
    ------
    InfeasibleError
        The innermost ofmap buffer cannot hold one row of partial sums across the array, or a per-PE register
        file is smaller than one operand; the message gives required and available sizes.
    """
    g = layer.gemm
    M, K, N, G = g.m, g.k, g.n, g.groups
    R, C = arch.array.rows, arch.array.cols
    acc = arch.pe.acc_bits
    df = arch.array.dataflow
    levels = arch.memory.hierarchy()
    bits = {"ifmap": act_bits, "filter": weight_bits, "ofmap": out_bits}
    chains: dict[str, list[MemoryLevel]] = {
        op: [lv for lv in levels if lv.kind != "dram" and lv.instances == "shared" and op in lv.operands]
        for op in OPERANDS}
    rfs = [lv for lv in levels if lv.instances == "per_pe"]
    reads = {lv.name: {op: 0 for op in OPERANDS} for lv in levels}
    writes = {lv.name: {op: 0 for op in OPERANDS} for lv in levels}

    if isinstance(layer, Conv2d):
        ch, cw = layer.covered_input_hw()  # only the input positions some window touches
        raw_ifmap = layer.batch * (layer.in_channels // G) * ch * cw  # per group, elements
    else:
        raw_ifmap = M * K
    cf = _cdiv(N, C)
    rf_k = _cdiv(K, R) if psum_exits is None else psum_exits
    if arch.timing.convention == "scalesim":
        rf_k = 1  # SCALE-Sim streams all of M (or N) through each fold: no tiling for partial sums
    U = {"ifmap": raw_ifmap * act_bits, "filter": K * N * weight_bits}  # unique bits per group

    def cap(lv: MemoryLevel, op: str) -> float:
        return lv.capacity_bits(op)

    # every buffer must hold at least one array edge of its operands (one operand per PE row or column) in a
    # buffer half: anything smaller cannot feed the array a single wavefront
    edge = max(R, C)
    for op in ("ifmap", "filter", "ofmap"):
        b = acc if op == "ofmap" else bits[op]
        for lv in chains[op]:
            if cap(lv, op) < edge * b:
                raise InfeasibleError(where, _size_key(arch, lv),
                                      f"room for one array edge of {op} operands: {edge} x {b} bits = "
                                      f"{edge * b / 8:g} bytes per buffer half",
                                      Found(f"{cap(lv, op) / 8:g} bytes"), detail=f"layer {layer.name}")

    # partial-sum tile from the innermost ofmap buffer
    o_in = chains["ofmap"][0] if chains["ofmap"] else None
    mt = M
    nt = N
    if df in ("ws", "is") and rf_k > 1 and o_in is not None:
        cols = min(N, C) if df == "ws" else min(M, C)
        fit = int(cap(o_in, "ofmap") // (cols * acc))
        if fit < 1:
            raise InfeasibleError(where, _size_key(arch, o_in),
                                  f"room for one row of partial sums across the array: {cols} x {acc} bits = "
                                  f"{cols * acc / 8:g} bytes per buffer half",
                                  Found(f"{cap(o_in, 'ofmap') / 8:g} bytes"), detail=f"layer {layer.name}")
        if df == "ws":
            mt = min(fit, M)
        else:
            nt = min(fit, N)
    n_tiles = _cdiv(N, nt)

    os_order = ["m_outer"]  # os: which fold loop is outer (chosen below)

    def refetch(op: str, lv: MemoryLevel, mt_: int) -> int:
        c = cap(lv, op)
        if df == "ws":
            if op == "ifmap":
                return 1 if (mt_ * K * act_bits <= c or U["ifmap"] <= c) else cf
            return 1 if U["filter"] <= c else _cdiv(M, mt_)
        # row folds outer: a row fold's inputs stay, weights stream
        if df == "os" and os_order[0] == "m_outer":
            if op == "ifmap":
                return 1 if (min(M, R) * K * act_bits <= c or U["ifmap"] <= c) else cf
            return 1 if U["filter"] <= c else _cdiv(M, R)
        if df == "os":  # column folds outer: a column fold's weights stay, inputs stream
            if op == "filter":
                return 1 if (K * min(N, C) * weight_bits <= c or U["filter"] <= c) else _cdiv(M, R)
            return 1 if U["ifmap"] <= c else cf
        if op == "ifmap":  # is
            return 1 if (K * min(M, C) * act_bits <= c or U["ifmap"] <= c) else n_tiles
        return 1 if U["filter"] <= c else _cdiv(M, C)

    def dram_bits(mt_: int) -> int:
        tot = 0
        for op in ("ifmap", "filter"):
            ch = chains[op]
            if ch:
                tot += U[op] * G * refetch(op, ch[-1], mt_)
            else:  # no on-chip buffer: DRAM serves the array, which reloads ws weights for every M tile
                reloads = _cdiv(M, mt_) if df == "ws" and op == "filter" else 1
                tot += demand[f"{op}_reads"] * bits[op] * reloads
        return tot

    if df == "os":  # the loop order with fewer DRAM bytes (the same compute either way)
        costs = {}
        for order in ("m_outer", "n_outer"):
            os_order[0] = order
            costs[order] = dram_bits(mt)
        os_order[0] = min(costs, key=lambda o: (costs[o], o != "m_outer"))
    if tile is not None:  # a fixed mapping
        if df == "ws":
            mt = min(tile, M)
        elif df == "is":
            nt = min(tile, N)
            n_tiles = _cdiv(N, nt)
    elif df == "ws" and arch.timing.convention != "scalesim":
        # the mapper (whether or not partial sums force a tile: an M tile whose ifmap rows fit a buffer is
        # read from DRAM once instead of once per column fold): the M tile with the fewest DRAM bytes, then
        # the lowest latency estimate max(compute, DRAM bits in and out / bandwidth). A smaller tile repeats
        # every fold's fill and drain; the candidates are the largest tile on either side of each level's
        # ifmap-fits threshold (between thresholds DRAM bytes and compute both fall as the tile grows), so the
        # optimum over all tiles is among them and a larger level never increases DRAM bytes (it only lowers
        # each tile's DRAM bytes and raises the largest tile partial sums allow). Latency first would break
        # that: a grown weight buffer can make an untiled mapping, with more DRAM bytes, the faster one
        # (tests/test_mapping_hierarchy.py::test_growing_any_level_never_adds_dram_bytes_random fails so)
        cands = {mt}
        for lv in chains["ifmap"]:
            t = min(mt, int(cap(lv, "ifmap") // max(K * act_bits, 1)))
            if t >= 1:
                cands.add(t)
        bw = arch.memory.dram_level.read_bw  # bits per cycle

        latency_first = arch.timing.objective == "latency"
        # the outputs (and, with no ofmap buffer, the partial sums) cross the same DRAM channel whatever the
        # tile: a constant of the estimate, which decides whether the layer is DRAM-bound
        out_bits_dram = 0 if (resident or {}).get("ofmap") else M * N * G * out_bits
        if o_in is None:
            out_bits_dram += (demand["ofmap_writes"] - M * N * G + demand["ofmap_reads"]) * acc

        def estimate(v: int) -> tuple[float, float, int]:
            compute = base_compute + fold_overhead * (_cdiv(M, v) - 1)
            d = dram_bits(v)
            lat = max(compute, (d + out_bits_dram) / bw)
            return (lat, d, -v) if latency_first else (d, lat, -v)

        mt = min(cands, key=estimate)
    m_tiles = _cdiv(M, mt)
    demand = dict(demand)
    if df == "ws" and m_tiles > 1:
        demand["filter_reads"] *= m_tiles  # the weights go into the array again for every M tile
    if df == "is" and n_tiles > 1:
        demand["ifmap_reads"] *= n_tiles  # the stationary inputs, for every N tile

    # ifmap and filter: array demand on the innermost buffer, fills down the chain
    resident = resident or {}
    for op in ("ifmap", "filter"):
        ch = chains[op]
        dem = demand[f"{op}_reads"] * bits[op]
        if not ch:
            reads["dram"][op] += dem
            continue
        reads[ch[0].name][op] += dem
        held = [lv.name for lv in ch].index(resident[op]) if op in resident else len(ch)
        for i, lv in enumerate(ch[:held]):  # a resident tensor is not filled into its level or beyond
            fill = U[op] * refetch(op, lv, mt) * G
            writes[lv.name][op] += fill
            parent = ch[i + 1].name if i + 1 < len(ch) else "dram"
            reads[parent][op] += fill
    # ofmap: partial sums at acc_bits and final outputs at out_bits into the innermost buffer, outputs up
    final = M * N * G
    psum_w = demand["ofmap_writes"] - final
    first = o_in.name if o_in is not None else "dram"
    writes[first]["ofmap"] += final * out_bits + psum_w * acc
    reads[first]["ofmap"] += demand["ofmap_reads"] * acc
    ch = chains["ofmap"]
    keep = resident.get("ofmap")
    for i, lv in enumerate(ch):
        if lv.name == keep:
            break
        reads[lv.name]["ofmap"] += final * out_bits
        parent = ch[i + 1].name if i + 1 < len(ch) else (keep or "dram")
        writes[parent]["ofmap"] += final * out_bits
    if keep is not None and not ch and keep != first:
        writes[keep]["ofmap"] += final * out_bits  # no ofmap buffer: from the array straight into L
        writes[first]["ofmap"] -= final * out_bits
    # per-PE register files
    stationary = {"ws": "filter", "is": "ifmap", "os": "ofmap"}[df]
    for lv in rfs:
        for op in lv.operands:
            b = acc if op == "ofmap" else bits[op]
            if lv.size_bits * (lv.share or {}).get(op, 1 / len(lv.operands)) < b:
                raise InfeasibleError(where, _size_key(arch, lv), f"room for one {b}-bit {op} operand per PE",
                                      Found(f"{lv.size_bits:g} bits"), detail=f"layer {layer.name}")
            if op == stationary and op != "ofmap":
                loads = demand[f"{op}_reads"] * b
                writes[lv.name][op] += loads
                reads[lv.name][op] += macs * b if held_stationary > 1 else loads
            else:
                reads[lv.name][op] += macs * b
                writes[lv.name][op] += macs * b
    return Traffic(reads=reads, writes=writes, m_tiles=m_tiles, n_tiles=n_tiles, demand=demand)
