"""Technology tables: energy per action, loaded from ``hwsim/tech/<name>.yaml``, with bit-width scaling.

The default table is Horowitz, ISSCC 2014 (45 nm), as collected in ``shared/reference/literature.md`` §2.1;
the scaling rules (§2.2) are stated in the table's ``derived`` section and implemented here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

from ..errors import SpecError

__all__ = ["TechTable", "load_tech", "available_tech"]


def _interp(points: dict[float, float], x: float, *, loglog: bool) -> float:
    xs = sorted(points)
    ys = [points[k] for k in xs]
    if loglog:
        lx, lys = math.log(x), [math.log(y) for y in ys]
        lxs = [math.log(v) for v in xs]
    else:
        lx, lys, lxs = x, ys, [float(v) for v in xs]
    if len(xs) == 1:
        return ys[0]
    i = 1
    while i < len(xs) - 1 and lx > lxs[i]:
        i += 1
    x0, x1, y0, y1 = lxs[i - 1], lxs[i], lys[i - 1], lys[i]
    y = y0 + (y1 - y0) * (lx - x0) / (x1 - x0)
    return math.exp(y) if loglog else y


@dataclass(frozen=True)
class TechTable:
    """Energy per action of one technology, pJ.

    Attributes
    ----------
    name : str
    source : str
    int_mult_pj : dict[int, float]
        One b x b integer multiply, by b.
    int_add_pj : dict[int, float]
        One b-bit integer add, by b.
    sram_read_64b_pj : dict[float, float]
        One 64-bit read, by array size in KiB.
    dram_read_64b_pj : float
        One 64-bit DRAM read.
    """

    name: str
    source: str
    int_mult_pj: dict
    int_add_pj: dict
    sram_read_64b_pj: dict
    dram_read_64b_pj: float

    def mult_pj(self, a_bits: int, w_bits: int, *, mult_8b_pj: float | None = None) -> float:
        """Energy of one ``a_bits`` x ``w_bits`` multiply: ``E_mult8 * a_bits * w_bits / 64`` (derived)."""
        e8 = self.int_mult_pj[8] if mult_8b_pj is None else mult_8b_pj
        return e8 * a_bits * w_bits / 64.0

    def add_pj(self, bits: int, *, add_32b_pj: float | None = None) -> float:
        """Energy of one ``bits``-wide integer add (piecewise linear through the table's points)."""
        e = _interp(self.int_add_pj, bits, loglog=False)
        if add_32b_pj is not None:
            e *= add_32b_pj / self.int_add_pj[32]
        return max(e, 0.0)

    def sram_access_pj(self, size_kib: float, word_bits: int) -> float:
        """Energy of one ``word_bits`` access to an SRAM of ``size_kib``: ``E64(size) * word_bits / 64``."""
        return _interp(self.sram_read_64b_pj, size_kib, loglog=True) * word_bits / 64.0

    @property
    def dram_pj_per_bit(self) -> float:
        return self.dram_read_64b_pj / 64.0


def available_tech() -> list[str]:
    """Names of the technology tables shipped in ``hwsim/tech/``."""
    return sorted(p.name[:-5] for p in resources.files("hwsim.tech").iterdir() if p.name.endswith(".yaml"))


@lru_cache(maxsize=None)
def load_tech(name: str, *, source: str = "<arch>", key: str = "energy.technology") -> TechTable:
    """Load a technology table by name.

    Raises
    ------
    SpecError
        No table of that name (the message lists the available ones), or a table with a missing or negative
        value.
    """
    names = available_tech()
    if name not in names:
        raise SpecError(source, key, f"one of the technology tables {names}", name)
    path = resources.files("hwsim.tech") / f"{name}.yaml"
    data = yaml.safe_load(path.read_text())
    fname = f"hwsim/tech/{name}.yaml"
    for k in ("int_mult_pj", "int_add_pj", "sram_read_64b_pj", "dram_read_64b_pj"):
        if k not in data:
            raise SpecError(fname, k, "a value in pJ", None)
    for k in ("int_mult_pj", "int_add_pj", "sram_read_64b_pj"):
        for size, v in data[k].items():
            if not isinstance(v, int | float) or v < 0:
                raise SpecError(fname, f"{k}.{size}", "a non-negative number of pJ", v)
    if 8 not in data["int_mult_pj"] or 32 not in data["int_add_pj"]:
        raise SpecError(fname, "int_mult_pj.8 / int_add_pj.32", "the 8-bit multiply and 32-bit add points", None)
    return TechTable(name=data["name"], source=data.get("source", ""),
                     int_mult_pj={int(k): float(v) for k, v in data["int_mult_pj"].items()},
                     int_add_pj={int(k): float(v) for k, v in data["int_add_pj"].items()},
                     sram_read_64b_pj={float(k): float(v) for k, v in data["sram_read_64b_pj"].items()},
                     dram_read_64b_pj=float(data["dram_read_64b_pj"]))
