"""Folds and streamed steps of a layer whose loop dimensions the array unrolls as ``array.unroll`` says.

The default (``array.unroll`` omitted or ``im2col``) is SCALE-Sim's GEMM view, handled by
:mod:`hwsim.mapping._plan` directly. With an explicit unroll (ZigZag's ``spatial_mapping``, e.g. tpu_like's
``D1: K 32, D2: C 32`` = ``{rows: [C], cols: [K]}``), per group of a layer with loop sizes B, K, C, OY, OX,
FY, FX (a GEMM: B = M, C = K, K = N):

* each axis either flattens its listed dims into one index, ``ceil(prod(sizes) / axis)`` temporal steps, or
  folds each dim d by its factor f_d, ``ceil(size_d / f_d)`` steps; a dim on no axis keeps its whole size;
* the dims streamed through a fold are the dataflow's: ws B, OY, OX (the outputs pass the stationary weights);
  os C, FY, FX (the reduction passes the stationary outputs); is K (the filters pass the stationary inputs).
  ``T`` = the product of their temporal steps; every other dim's steps are folds (``folds`` = their product);
  a fold costs ``fill + T + drain`` cycles as in the GEMM view;
* ``red_folds`` = the temporal steps of the reduction dims C, FY, FX that are not streamed (ws, is: how many
  times each partial sum leaves the array), ``n_steps`` those of K, ``m_steps`` those of B, OY, OX.

* fill and drain: a fold costs ``fill + T + drain`` with the GEMM view's formulas (:mod:`hwsim.mapping._plan`)
  over the *systolic depth* of each axis instead of its size. The depth counts the dims of the kind the GEMM
  view puts on that axis (ws and is rows: reduction C, FY, FX; os rows and is columns: pixels B, OY, OX; ws
  and os columns: K): a listed axis of that kind has the axis size as depth (as SCALE-Sim: a partial fold
  costs a full one), a factored axis the product of those dims' factors. A dim of another kind on an axis is
  replicated: its PEs sit side by side at the same chain position and share the operand it does not index
  (ZigZag's ``served_dimensions``: edge_tpu_like's one weight register per 4 x 4 OX-OY group), so it adds no
  depth. edge_tpu_like ({C: 8, OX: 4, OY: 4} on 128 rows) thus fills over 8 rows, not 128.

An axis that flattens dims of different kinds (reduction C, FY, FX; output channels K; pixels B, OY, OX) has
no single step count per kind: that is an error (give factors instead).
With ``{rows: [C, FY, FX], cols: [K]}`` on ws (or ``[B, OY, OX]`` x ``[K]`` on os, ``[C, FY, FX]`` x
``[B, OY, OX]`` on is) this is exactly the GEMM view (tests/test_mapping_unroll.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import Found, InfeasibleError
from ..spec import LOOP_DIMS, ArchSpec, Conv2d, Gemm

__all__ = ["UnrollPlan", "loop_sizes", "unroll_plan"]

STREAMED = {"ws": {"B", "OY", "OX"}, "os": {"C", "FY", "FX"}, "is": {"K"}}
REDUCTION = {"C", "FY", "FX"}
PIXELS = {"B", "OY", "OX"}


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _kind(d: str) -> str:
    return "reduction" if d in REDUCTION else ("pixels" if d in PIXELS else "K")


def loop_sizes(layer: Conv2d | Gemm) -> dict[str, int]:
    """Loop sizes of one group (ZigZag's names): a conv's B, K, C (per group), OY, OX, FY, FX; a GEMM's B = M,
    C = K, K = N and 1 for the rest."""
    if isinstance(layer, Gemm):
        return {"B": layer.m, "K": layer.n, "C": layer.k, "OY": 1, "OX": 1, "FY": 1, "FX": 1}
    oh, ow = layer.out_hw
    fh, fw = layer.kernel_hw
    g = layer.n_groups
    return {"B": layer.batch, "K": layer.out_channels // g, "C": layer.in_channels // g, "OY": oh, "OX": ow,
            "FY": fh, "FX": fw}


@dataclass(frozen=True)
class UnrollPlan:
    """Per group: ``folds`` (folds), ``t`` (streamed steps per fold), ``red_folds``, ``n_steps``, ``m_steps``
    (temporal steps of the reduction, output-channel and pixel dims), ``rows_used``/``cols_used`` (PEs of
    each axis a full fold uses), ``row_steps``/``col_steps`` (temporal steps of each axis), ``row_depth``/
    ``col_depth`` (systolic depth of each axis, for fill and drain)."""

    folds: int
    t: int
    red_folds: int
    n_steps: int
    m_steps: int
    rows_used: int
    cols_used: int
    row_steps: int
    col_steps: int
    row_depth: int
    col_depth: int


def unroll_plan(layer: Conv2d | Gemm, arch: ArchSpec, *, c_div: int = 1, where: str = "<arch>") -> UnrollPlan:
    """The fold structure of ``layer`` on ``arch`` under ``arch.array.unroll`` (module docstring).

    ``c_div``: MACs one PE does per cycle along C (bit fusion), dividing C.

    Raises
    ------
    InfeasibleError
        An axis lists (flattens) dims of which some are streamed and some folded in this dataflow.
    """
    u = arch.array.unroll
    assert u is not None
    df = arch.array.dataflow
    size = loop_sizes(layer)
    size["C"] = _cdiv(size["C"], c_div)
    primary = {"ws": ("reduction", "K"), "os": ("pixels", "K"), "is": ("reduction", "pixels")}[df]
    depth = {}
    steps = {d: size[d] for d in LOOP_DIMS}   # temporal steps per dim (a flattened axis: on its first dim)
    used = {}
    axis_steps = {}
    for axis, n in (("rows", arch.array.rows), ("cols", arch.array.cols)):
        pairs = getattr(u, axis)
        dims = [d for d, _ in pairs]
        if pairs[0][1] == 0:  # flattened
            kinds = {_kind(d) for d in dims if size[d] > 1}
            if len(kinds) > 1:
                raise InfeasibleError(where, f"array.unroll.{axis}",
                                      "listed (flattened) dims of one kind: reduction (C, FY, FX), output "
                                      "channels (K) or output pixels (B, OY, OX); give factors to mix them",
                                      Found(", ".join(dims)), detail=f"layer {layer.name}")
            prod = math.prod(size[d] for d in dims)
            st = _cdiv(prod, n)
            for d in dims:
                steps[d] = 1
            steps[dims[0]] = st   # the group's steps, on its first dim (all dims are of one kind)
            used[axis] = min(prod, n)
            axis_steps[axis] = st
            main = primary[0 if axis == "rows" else 1]
            depth[axis] = n if any(_kind(d) == main for d in dims) else 1
        else:
            for d, f in pairs:
                steps[d] = _cdiv(size[d], f)
            used[axis] = math.prod(min(size[d], f) for d, f in pairs)
            axis_steps[axis] = math.prod(steps[d] for d, _ in pairs)
            main = primary[0 if axis == "rows" else 1]
            depth[axis] = math.prod(f for d, f in pairs if _kind(d) == main)
    t = math.prod(steps[d] for d in STREAMED[df])
    folds = math.prod(steps[d] for d in LOOP_DIMS if d not in STREAMED[df])
    red = math.prod(steps[d] for d in REDUCTION if d not in STREAMED[df])
    n_steps = steps["K"]
    m_steps = math.prod(steps[d] for d in PIXELS)
    return UnrollPlan(folds=folds, t=t, red_folds=red, n_steps=n_steps, m_steps=m_steps,
                      rows_used=used["rows"], cols_used=used["cols"], row_steps=axis_steps["rows"],
                      col_steps=axis_steps["cols"], row_depth=depth["rows"], col_depth=depth["cols"])
