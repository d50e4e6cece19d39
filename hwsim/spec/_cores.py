"""Several cores on one chip (the arch YAML's ``cores:`` block): arrays with their own buffers, sharing the
DRAM channel through an on-chip network.

.. code-block:: yaml

    cores:
      arrays:                        # named core types: overrides of the arch's array/pe/memory/vector_unit
        small: {array: {rows: 64, cols: 64, dataflow: ws}}
      list:                          # the cores; array: main (default) is the arch's own array and buffers
        - {name: c0}
        - {name: c1, array: small}
      split: n                       # how a layer is divided: n (output channels / heads), m (rows, batch)
      schedule: split                # split (every layer over all cores) or pipeline (each layer on one core)
      allocation: {conv1: c0, conv2: c1}   # pipeline: layer -> core (or a list in GEMM-layer order; auto)
      pipeline_rows: 1               # pipeline: output rows (conv) / GEMM rows per computation node
      uneven: false                  # a dimension the core count does not divide: error (false) or ceil parts
      noc:
        link_bytes_per_cycle: 64     # every link, each direction
        pj_per_bit_per_hop: 0.06
        links: [[hub, c0], [hub, c1]]   # 'hub': the global-buffer / DRAM port; default: a star around it

Each core is the arch with its type's overrides; the DRAM level (bandwidth, energy) is the chip's and is
shared. Checked here: the core names (unique, not ``hub``), each core's ``array`` (``main`` or a key of
``arrays``), each link's ends (``hub`` or a listed core), every core reachable from ``hub``, the cores an
``allocation`` names. The split's divisibility and the allocation's layer names depend on the workload and are
checked when it is simulated (:func:`hwsim.simulate_workload`; ``docs/validation_multicore.md`` for the
pipeline).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from ._base import SpecModel

__all__ = ["CoreSpec", "CoresConfig", "NocConfig", "HUB"]

#: The network node of the global buffer and the DRAM port.
HUB = "hub"


class CoreSpec(SpecModel):
    """One core: its ``name`` and its core type (``array``: ``main`` or a key of ``cores.arrays``)."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    array: str = "main"


class NocConfig(SpecModel):
    """The on-chip network: bytes per cycle of each link, energy per bit per hop (pJ), the links (pairs of
    ``hub`` or core names; default: one link from ``hub`` to each core)."""

    link_bytes_per_cycle: float = Field(default=64.0, gt=0)
    pj_per_bit_per_hop: float = Field(default=0.06, ge=0)
    links: tuple[tuple[str, str], ...] | None = None


class CoresConfig(SpecModel):
    """The ``cores:`` block (module docstring)."""

    arrays: dict[str, dict[str, Any]] = Field(default_factory=dict)
    list: tuple[CoreSpec, ...] = Field(min_length=1)
    split: Literal["n", "m"] = "n"
    uneven: bool = False
    schedule: Literal["split", "pipeline"] = "split"
    allocation: dict[str, str | int] | tuple[str | int, ...] | Literal["auto"] = "auto"
    pipeline_rows: int = Field(default=1, gt=0)
    noc: NocConfig = NocConfig()

    @model_validator(mode="after")
    def _check(self) -> CoresConfig:
        for k, over in self.arrays.items():
            bad = sorted(set(over) - {"array", "pe", "memory", "vector_unit"})
            if bad or k == "main":
                raise ValueError("core types overriding array, pe, memory or vector_unit (and not named "
                                 f"'main'); found {k!r}: {bad or 'main'}")
        names = [c.name for c in self.list]
        if len(set(names)) != len(names) or HUB in names:
            raise ValueError(f"unique core names other than 'hub'; found {names}")
        for c in self.list:
            if c.array != "main" and c.array not in self.arrays:
                raise ValueError(f"core {c.name!r} with array 'main' or one of cores.arrays "
                                 f"({', '.join(self.arrays) or 'none'}); found {c.array!r}")
        alloc = self.allocation
        for key, v in (alloc.items() if isinstance(alloc, dict) else
                       enumerate(alloc) if isinstance(alloc, tuple) else ()):
            if isinstance(v, bool) or (isinstance(v, int) and not 0 <= v < len(names)) or (
                    isinstance(v, str) and v not in names):
                raise ValueError(f"allocation to a listed core ({', '.join(names)}) or its index "
                                 f"(0..{len(names) - 1}); found allocation.{key}: {v!r}")
        ok = {HUB, *names}
        for a, b in self.noc.links or ():
            for end in (a, b):
                if end not in ok:
                    raise ValueError(f"links between 'hub' and listed cores ({', '.join(names)}); found a "
                                     f"link [{a}, {b}] to {end!r}, which is no core")
        unreached = sorted(set(names) - set(self.hops()))
        if unreached:
            raise ValueError(f"every core reachable from 'hub' over noc.links; found {unreached} unreached")
        return self

    def _parents(self, root: str) -> dict[str, str | None]:
        """Breadth-first tree over ``noc.links`` (both directions; default a star from ``hub``) from
        ``root``, neighbours taken by name: node -> its parent (None for ``root``); unreachable nodes
        absent."""
        links = self.noc.links if self.noc.links is not None else tuple((HUB, c.name) for c in self.list)
        adj: dict[str, set[str]] = {}
        for a, b in links:
            adj.setdefault(a, set()).add(b)
            adj.setdefault(b, set()).add(a)
        parent: dict[str, str | None] = {root: None}
        frontier = [root]
        while frontier:
            nxt = []
            for u in frontier:
                for v in sorted(adj.get(u, ())):
                    if v not in parent:
                        parent[v] = u
                        nxt.append(v)
            frontier = nxt
        return parent

    def path(self, a: str, b: str) -> list[tuple[str, str]]:
        """The directed links ``(from, to)`` of a shortest path from ``a`` to ``b`` (``hub`` or core names)
        over ``noc.links``, breadth-first with neighbours by name (deterministic); [] when ``a == b``.

        Raises
        ------
        KeyError
            ``b`` not reachable from ``a`` (a validated config reaches every core from ``hub``)."""
        parent = self._parents(a)
        out, v = [], b
        while parent[v] is not None:
            out.append((parent[v], v))
            v = parent[v]
        return out[::-1]

    def hops(self) -> dict[str, int]:
        """Links between ``hub`` and each core reachable from it (:meth:`path`'s length)."""
        return {c: len(self.path(HUB, c)) for c in self._parents(HUB) if c != HUB}
