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
  between two adjacent convolutions, read by the second only, may instead be kept as a band of output rows
  that the second layer's window needs: ``(eff_kh + stride_h) * W * C * batch * bits`` (the window's rows plus
  one stride of rows written ahead), provided both layers' weights fit their filter buffer together (else
  every row tile would fetch them again). Fill and drain per row tile are not added (optimistic).
"""

from __future__ import annotations

from dataclasses import dataclass

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


def onchip_levels(arch: ArchSpec) -> list[MemoryLevel]:
    """The shared on-chip SRAM levels (the ones a tensor may live in), innermost first."""
    return [lv for lv in arch.memory.hierarchy() if lv.kind == "sram" and lv.instances == "shared"]


def _frac(lv: MemoryLevel, op: str) -> float:
    if op not in lv.operands:
        return 0.0
    return lv.share.get(op, 0.0) if lv.share else 1.0 / len(lv.operands)


def schedule_tensors(arch: ArchSpec, graph: WorkloadGraph, *, tensor_bits: dict[str, int],
                     spill_bits: dict[str, int], operand_bits: dict[int, dict[str, int]],
                     mode: str = "inter_layer") -> TensorPlan:
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
    options: list[Option] = []
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
                    options.append(Option(t.name, lv.name, whole, steps, spill_bits[t.name], rank[lv.name]))
                    if mode == "fused":
                        band = _band_bits(arch, graph, t, tensor_bits[t.name], operand_bits, lv)
                        if band is not None and band < whole:
                            options.append(Option(t.name, lv.name, band, steps, spill_bits[t.name],
                                                  rank[lv.name], kind="band"))
    pl = place_tensors(options, reserves, cap, n)
    level = {t: "dram" for t in graph.tensors}
    kind = {t: "dram" for t in graph.tensors}
    for t, o in pl.chosen.items():
        level[t] = o.level
        kind[t] = o.kind
    return TensorPlan(level=level, kind=kind, placement=pl, capacity_bits=cap)


def _band_bits(arch: ArchSpec, graph: WorkloadGraph, t, bits: int, operand_bits: dict[int, dict[str, int]],
               lv: MemoryLevel) -> int | None:
    """Bits of the row band a fused conv -> conv edge keeps (module docstring), or None when not fusable."""
    p = t.producer
    if len(t.consumers) != 1:
        return None
    c, pos = t.consumers[0]
    prod, cons = graph.nodes[p], graph.nodes[c]
    if c != p + 1 or pos != 0 or not isinstance(prod, Conv2d) or not isinstance(cons,
                                                                                Conv2d) or t.chw is None:
        return None
    # both layers' weights in the outermost filter buffer at once
    fl = [x for x in arch.memory.hierarchy() if x.kind != "dram" and x.instances == "shared"
          and "filter" in x.operands]
    if not fl or operand_bits[p]["filter"] + operand_bits[c]["filter"] > fl[-1].capacity_bits("filter"):
        return None
    kh = (cons.kernel_hw[0] - 1) * cons.dilation_hw[0] + 1
    ch, _, w = t.chw
    return (kh + cons.stride_hw[0]) * w * ch * prod.batch * bits
