"""From a workload graph and an arch to the placement problem of :mod:`hwsim.schedule._place`, and back.

Assumptions (stated, not measured):

* **Where a tensor may live.** In one shared on-chip SRAM level for its whole lifetime, or in DRAM. The level
  must hold the operand role of every GEMM consumer (its first input: ``ifmap``; its second: ``filter``); a
  tensor read by non-GEMM nodes only lives where activations live (a level holding ``ifmap``). The network
  input starts in DRAM and the network outputs end there: they are never candidates.
* **What a step needs besides resident tensors.** A GEMM layer's tiles in every level that buffers one of its
  operands: ``min(size * share, copies * operand bits)`` per operand (``copies`` 2 when the level is double
  buffered: the tile half and the half being filled), where the operand bits are the whole ifmap, the whole
  filter and the partial sums at ``acc_bits``. The ifmap (or second operand) reserve is freed when that tensor
  is itself resident there; the partial-sum reserve never is. Non-GEMM nodes stream and reserve nothing.
* **Saving.** A tensor kept on chip saves exactly the DRAM bits its producer writes and its consumers read
  when it lives in DRAM (from the through-DRAM mapping of each layer, tiles unchanged).
* **Fused** (``timing.reuse: fused``, depth-first as Stream and DeFiNES: Mei et al., HPCA 2023): a tensor
  between two adjacent convolutions, read by the second only, may instead be kept as a band of rows. The
  band's tile height ``h`` (output rows of the consumer per depth-first tile; ``timing.fused_tile_rows``, or
  searched) sets, with ``n = ceil(H_out / h)`` tiles:

  - the footprint ``(h * stride_h + eff_kh) * W * C * batch * bits``: the ``(h - 1) * stride + eff_kh``
    input rows of a tile, the overlap with the next tile kept (a line-buffer cache: no halo recompute),
    plus one stride of rows written ahead (``h = 1``: the window plus one stride);
  - the producer's partial-sum reserve: one tile's ``h * stride_h`` output rows at ``acc_bits`` (copies as
    the level), not its whole output (the rest of that reserve is given back: ``Option.credits``);
  - the weights: the stack (the maximal chain of fusable conv -> conv edges around this one) must keep all
    its layers' weights in the outermost filter buffer at once, else every tile fetches this edge's two
    layers' weights again from DRAM: ``(n - 1) * (W_producer + W_consumer)`` bits, taken off the saving
    (an option whose net saving is not positive is dropped);
  - fill and drain: every tile beyond the row tiles the layer's own mapping already uses (``m_tiles``)
    restarts its folds, one tile's fill + drain more, and reloads its weights from the innermost shared
    filter level into the array (W bits read there, and written into a per-PE filter register file when
    there is one): applied by the pipeline to the chosen bands (``hwsim/_pipeline.py``: ``_tile_costs``).

  The search offers, per edge, every ``h`` in {1, 2, 4, ..., H_out / 2} and the heights of 2 .. 8 equal
  tiles, as separate options of one tensor, next to the tensor kept whole and the tensor in DRAM. Which
  one the exact placement takes follows ``timing.objective``:

  - ``dram`` (the default, the mapper's objective): the most DRAM bits saved within capacity, ties broken
    by the fewest tiles, then the innermost level. Fill and drain do not enter: a band of 1-row tiles that
    saves one byte more than a band of 8 wins, however many cycles its restarts cost (MobileNet-V2 on
    ``edge_32x32``: 9 % fewer DRAM bytes than ``inter_layer`` for 1.36x the cycles; docs/graph_reuse.md).
    Its guarantee: a larger buffer never adds DRAM bytes.
  - ``latency``: the fewest modelled cycles first (``cycle_cost``: each option's cycles against the tensor
    in DRAM, from the layers' own timing model with the band's fill and drain, see ``Option.cycles``),
    then the most DRAM bits, then as above. A band that costs more cycles than it saves loses to the
    tensor kept whole (``inter_layer``'s choice) or in DRAM: fusing is then not done for that edge.

  A layer in two fused edges runs in one tiling when their tile counts agree (else the union of both); a
  DRAM weight re-fetch is counted per edge (conservative, and exactly what the placement counted, so DRAM
  bytes = ``none``'s minus the bits saved).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ..spec import ArchSpec, Conv2d, MemoryLevel, VectorOp, WorkloadGraph
from ._place import Option, Placement, Reserve, place_tensors

__all__ = ["TensorPlan", "onchip_levels", "schedule_tensors"]


@dataclass
class TensorPlan:
    """The schedule's answer: each tensor's level (``level[t]``: a level name or ``dram``), the option
    chosen, and the :class:`Placement` with occupancy per level and step."""

    level: dict[str, str]
    kind: dict[str, str]
    placement: Placement
    capacity_bits: dict[str, float]
    #: every option offered to the placement (with its ``cycles`` under ``timing.objective: latency``)
    options: list[Option] = field(default_factory=list)

    def bands(self) -> dict[str, Option]:
        """The fused bands chosen: tensor name -> its option (``tile_rows``, ``tiles``, ``refetch_bits``)."""
        return {t: o for t, o in self.placement.chosen.items() if o.kind == "band"}


def onchip_levels(arch: ArchSpec) -> list[MemoryLevel]:
    """The shared on-chip SRAM levels (the ones a tensor may live in), innermost first."""
    return [lv for lv in arch.memory.hierarchy() if lv.kind == "sram" and lv.instances == "shared"]


def _frac(lv: MemoryLevel, op: str) -> float:
    if op not in lv.operands:
        return 0.0
    return lv.share.get(op, 0.0) if lv.share else 1.0 / len(lv.operands)


def schedule_tensors(arch: ArchSpec, graph: WorkloadGraph, *, tensor_bits: dict[str, int],
                     spill_bits: dict[str, int], operand_bits: dict[int, dict[str, int]],
                     mode: str = "inter_layer", tile_rows: int | None = None,
                     cycle_cost: Callable[[Option], int] | None = None) -> TensorPlan:
    """Place every tensor of ``graph`` (module docstring).

    Parameters
    ----------
    tensor_bits : dict
        Tensor name -> bits per element.
    spill_bits : dict
        Tensor name -> DRAM bits it moves when it lives in DRAM (its producer's write and its consumers'
        reads).
    operand_bits : dict
        GEMM node index -> whole-operand bits ``{"ifmap", "filter", "ofmap"}`` (ofmap: partial sums at
        ``acc_bits``).
    mode : {"none", "inter_layer", "fused"}
    tile_rows : int, optional
        ``fused``: a fixed tile height for every band (capped at the consumer's output rows) instead of the
        search.
    cycle_cost : callable, optional
        ``Option -> int``: the modelled cycles the option adds (negative: saves) against its tensor in DRAM.
        Given (``timing.objective: latency``), the placement ranks the fewest total cycles first, then the
        DRAM bits saved (:func:`place_tensors`); None: DRAM bits saved only.

    Returns
    -------
    TensorPlan
    """
    levels = onchip_levels(arch)
    cap = {lv.name: float(lv.size_bits) for lv in levels}
    rank = {lv.name: i for i, lv in enumerate(levels)}
    nodes = graph.nodes
    n = len(nodes)
    reserves: list[Reserve] = []
    resv: dict[tuple[int, str, str], int] = {}
    for i, ob in operand_bits.items():
        for lv in levels:
            copies = 2 if lv.double_buffered else 1
            for op in ("ifmap", "filter", "ofmap"):
                f = _frac(lv, op)
                if not f:
                    continue
                bits = int(min(lv.size_bits * f, copies * ob.get(op, 0)))
                if bits <= 0:
                    continue
                ins = graph.inputs[i]
                freed = ins[0] if op == "ifmap" else (ins[1] if op == "filter" and len(ins) > 1 else None)
                reserves.append(Reserve(i, lv.name, bits, freed))
                resv[(i, lv.name, op)] = bits
    options: list[Option] = []
    stack_w = _stack_weights(graph, operand_bits) if mode == "fused" else {}
    if mode != "none":
        for t in graph.tensors.values():
            if t.producer < 0 or not t.consumers or spill_bits.get(t.name, 0) <= 0:
                continue
            roles = {("ifmap" if pos == 0 else "filter") for c, pos in t.consumers
                     if not isinstance(nodes[c], VectorOp)} or {"ifmap"}
            steps = tuple(range(t.producer, t.last_use + 1))
            whole = t.elements * tensor_bits[t.name]
            for lv in levels:
                if roles <= set(lv.operands):
                    options.append(Option(t.name, lv.name, whole, steps, spill_bits[t.name],
                                          rank[lv.name] / len(levels)))
                    if mode == "fused" and t.name in stack_w:
                        options += _band_options(arch, graph, t, tensor_bits[t.name], operand_bits, lv,
                                                 whole, steps, spill_bits[t.name], rank[lv.name],
                                                 stack_w[t.name], resv, tile_rows)
    if cycle_cost is not None:
        # an option larger than its level can never be chosen: not timed
        options = [replace(o, cycles=int(cycle_cost(o))) if o.bits <= cap[o.level] else o
                   for o in options if o.saving_bits > 0]
    pl = place_tensors(options, reserves, cap, n, objective="latency" if cycle_cost is not None else "dram")
    level = {t: "dram" for t in graph.tensors}
    kind = {t: "dram" for t in graph.tensors}
    for t, o in pl.chosen.items():
        level[t] = o.level
        kind[t] = o.kind
    return TensorPlan(level=level, kind=kind, placement=pl, capacity_bits=cap, options=options)


def _fusable(graph: WorkloadGraph, t) -> bool:
    """A conv -> conv edge the next conv alone reads (its first input), in program order."""
    if len(t.consumers) != 1 or t.producer < 0 or t.chw is None:
        return False
    c, pos = t.consumers[0]
    return (c == t.producer + 1 and pos == 0 and isinstance(graph.nodes[t.producer], Conv2d)
            and isinstance(graph.nodes[c], Conv2d))


def _stack_weights(graph: WorkloadGraph, operand_bits: dict[int, dict[str, int]]) -> dict[str, int]:
    """Fusable tensor -> filter bits of every layer of its stack (the maximal chain of fusable edges)."""
    edges = {t.producer: t.name for t in graph.tensors.values() if _fusable(graph, t)}
    out: dict[str, int] = {}
    for p in sorted(edges):
        if p - 1 in edges:
            continue  # not the first edge of its chain
        chain = [p]
        while chain[-1] + 1 in edges:
            chain.append(chain[-1] + 1)
        w = sum(operand_bits[i]["filter"] for i in chain) + operand_bits[chain[-1] + 1]["filter"]
        for i in chain:
            out[edges[i]] = w
    return out


def _tile_heights(h_out: int, fixed: int | None) -> list[int]:
    if fixed is not None:
        return [min(fixed, h_out)] if min(fixed, h_out) < h_out else []
    hs = {1 << k for k in range(h_out.bit_length()) if (1 << k) < h_out}
    hs |= {-(-h_out // n) for n in range(2, 9) if -(-h_out // n) < h_out}
    return sorted(hs)


def _band_options(arch: ArchSpec, graph: WorkloadGraph, t, bits: int, operand_bits: dict[int, dict[str, int]],
                  lv: MemoryLevel, whole: int, steps: tuple[int, ...], spill: int, rank: int, stack_w: int,
                  resv: dict[tuple[int, str, str], int], fixed: int | None) -> list[Option]:
    """The band options of a fused conv -> conv edge, one per tile height (module docstring)."""
    p = t.producer
    c = t.consumers[0][0]
    cons = graph.nodes[c]
    fl = [x for x in arch.memory.hierarchy() if x.kind != "dram" and x.instances == "shared"
          and "filter" in x.operands]
    fits = bool(fl) and stack_w <= fl[-1].capacity_bits("filter")
    w_pc = operand_bits[p]["filter"] + operand_bits[c]["filter"]
    kh = (cons.kernel_hw[0] - 1) * cons.dilation_hw[0] + 1
    sh = cons.stride_hw[0]
    ch, _, w = t.chw
    h_out = cons.out_hw[0]
    copies = 2 if lv.double_buffered else 1
    nl = len(onchip_levels(arch))
    psum_row = w * ch * graph.nodes[p].batch * arch.pe.acc_bits  # one producer output row at acc_bits
    out = []
    for h in _tile_heights(h_out, fixed):
        n = -(-h_out // h)
        band = (h * sh + kh) * w * ch * graph.nodes[p].batch * bits
        refetch = 0 if fits else (n - 1) * w_pc
        if band >= whole or spill - refetch <= 0:
            continue
        r = resv.get((p, lv.name, "ofmap"), 0)
        credit = r - min(r, copies * h * sh * psum_row)
        # ties: the fewest tiles first, then the innermost level (rank < levels + 1, see Option)
        out.append(Option(t.name, lv.name, band, steps, spill - refetch, nl * (n - 1) / h_out + rank / nl,
                          kind="band", tile_rows=h, tiles=n, refetch_bits=refetch,
                          credits=((p, credit),) if credit > 0 else ()))
    return out
