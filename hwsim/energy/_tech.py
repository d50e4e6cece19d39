"""Technology tables: energy per action and area per unit, loaded from ``hwsim/tech/<name>.yaml``, with the
bit-width and size scaling rules.

A table (``hwsim/tech/horowitz_45nm.yaml`` is the default: Horowitz, ISSCC 2014, 45 nm, with CACTI 7 SRAM
areas and Bit Fusion's synthesis for the fusion tree) lists entries under ``energy:`` and ``area:``. Each
entry has a ``unit`` (energy: ``pJ``, ``fJ``, ``nJ``; area: ``um2``, ``mm2``; or ``ratio``), one ``value`` or
a ``values`` map (by bits or by size in KiB), and either ``source`` (taken from a citable document) or
``derived`` (computed by a stated rule). Values are converted to pJ and um^2 on loading.

Scaling rules (the table's ``rules:`` states them too; ``tests/test_energy.py`` pins them with hand-derived
values):

* multiply of ``b_a x b_w``: proportional to ``b_a*b_w`` through the 8-bit point up to 8x8
  (``E8*b_a*b_w/64``), log-log in ``b_a*b_w`` between the table's points, proportional beyond the last
  (literature.md §2.2);
* add of ``b`` bits: proportional to ``b`` below the first point, piecewise linear through the points, the
  last segment's slope beyond;
* SRAM access of ``w`` bits to an array of ``s`` KiB: ``read_64b(s) * w / 64``, log-log in ``s`` between the
  points and the end segments' slopes beyond (register files extrapolate below the smallest point);
  write = read * ``sram_write_over_read(s)`` (log-linear in ``s``, clamped at the ends);
* DRAM: per bit, ``dram_read_64b / 64`` and ``dram_write_64b / 64``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import yaml

from ..errors import SpecError

__all__ = ["TechTable", "TechEntry", "load_tech", "available_tech", "parse_unit"]

_ENERGY_UNITS = {"pj": 1.0, "fj": 1e-3, "nj": 1e3, "uj": 1e6}
_AREA_UNITS = {"um2": 1.0, "um^2": 1.0, "µm2": 1.0, "µm^2": 1.0, "µm²": 1.0, "mm2": 1e6, "mm^2": 1e6,
               "mm²": 1e6, "nm2": 1e-6, "nm^2": 1e-6}
# required entries: name -> (section, unit kind, keyed by a map of points?)
_REQUIRED = {
    ("energy", "int_mult"): ("energy", True), ("energy", "int_add"): ("energy", True),
    ("energy", "sram_read_64b"): ("energy", True), ("energy", "sram_write_over_read"): ("ratio", True),
    ("energy", "dram_read_64b"): ("energy", False), ("energy", "dram_write_64b"): ("energy", False),
    ("energy", "fusion_tree_add"): ("energy", False),
    ("area", "int_mult"): ("area", True), ("area", "int_add"): ("area", True),
    ("area", "dff_bit"): ("area", False),
    ("area", "sram_bit"): ("area", True), ("area", "fusion_tree_add"): ("area", False),
}
# optional entries (the vector unit's floating-point ops): parsed the same way when a table has them
_OPTIONAL = {("energy", "fp_add"): ("energy", True), ("energy", "fp_mult"): ("energy", True)}


def parse_unit(unit: object, kind: str) -> float:
    """Factor from ``unit`` to hwsim's unit of ``kind`` (``energy``: pJ, ``area``: um^2, ``ratio``: 1).

    Raises
    ------
    ValueError
        The unit does not parse for that kind (the message lists the accepted ones).
    """
    table = {"energy": _ENERGY_UNITS, "area": _AREA_UNITS, "ratio": {"ratio": 1.0, "1": 1.0}}[kind]
    key = str(unit).strip().lower().replace(" ", "") if isinstance(unit, str | int) else None
    if key is None or key not in {k.lower() for k in table}:
        raise ValueError(f"one of the {kind} units {sorted(set(table))}")
    return {k.lower(): v for k, v in table.items()}[key]


@dataclass(frozen=True)
class TechEntry:
    """One entry of a table, in hwsim's units (pJ, um^2 or a ratio): ``value`` or ``points`` (x -> value),
    and where it came from (``source`` text, ``derived`` true when the source lacks it and a rule made it)."""

    key: str
    points: dict[float, float]
    source: str
    derived: bool
    per: str = ""

    @property
    def value(self) -> float:
        """The single value of an entry without points (the first point otherwise)."""
        return next(iter(self.points.values()))

    def provenance(self, table: str) -> str:
        return f"table {table} {self.key}: " + (f"derived: {self.source}" if self.derived else self.source)


def _check_points(pts: dict[float, float]) -> tuple[list[float], list[float]]:
    xs = sorted(pts)
    return xs, [pts[x] for x in xs]


def _loglog(pts: dict[float, float], x: float) -> float:
    """Piecewise log-log interpolation; the end segments' slopes beyond the points."""
    xs, ys = _check_points(pts)
    if len(xs) == 1:
        return ys[0]
    i = 1
    while i < len(xs) - 1 and x > xs[i]:
        i += 1
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    if y0 <= 0 or y1 <= 0:
        return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    slope = math.log(y1 / y0) / math.log(x1 / x0)
    return y0 * (x / x0) ** slope


def _prop_loglog(pts: dict[float, float], x: float) -> float:
    """Proportional to x through the first point below it, log-log between points, proportional beyond."""
    xs, ys = _check_points(pts)
    if x <= xs[0]:
        return ys[0] * x / xs[0]
    if x >= xs[-1]:
        return ys[-1] * x / xs[-1]
    return _loglog(pts, x)


def _prop_linear(pts: dict[float, float], x: float) -> float:
    """Proportional to x below the first point, piecewise linear between, the last segment's slope beyond."""
    xs, ys = _check_points(pts)
    if x <= xs[0] or len(xs) == 1:
        return ys[0] * x / xs[0]
    i = 1
    while i < len(xs) - 1 and x > xs[i]:
        i += 1
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return max(y0 + (y1 - y0) * (x - x0) / (x1 - x0), 0.0)


def _loglinear_clamped(pts: dict[float, float], x: float) -> float:
    """Linear in log(x) between points, the end values beyond."""
    xs, ys = _check_points(pts)
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    i = 1
    while x > xs[i]:
        i += 1
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return y0 + (y1 - y0) * math.log(x / x0) / math.log(x1 / x0)


@dataclass(frozen=True)
class TechTable:
    """Energy per action (pJ) and area per unit (um^2) of one technology, with the scaling rules.

    Every method returns the table's number for its argument by the rule in the module docstring; arch
    overrides are applied by :func:`hwsim.energy.action_energies` and :func:`hwsim.energy.area_breakdown`, not
    here.
    """

    name: str
    source: str
    energy: dict[str, TechEntry]
    area: dict[str, TechEntry]
    rules: dict[str, str] = field(default_factory=dict)

    # ---- energy, pJ
    def mult_pj(self, a_bits: float, w_bits: float) -> float:
        """One ``a_bits x w_bits`` integer multiply, pJ (~ ``b_a*b_w``; see the module docstring)."""
        return _prop_loglog(self._prod(self.energy["int_mult"]), a_bits * w_bits)

    def add_pj(self, bits: float) -> float:
        """One ``bits``-wide integer add, pJ (~ bits)."""
        return _prop_linear(self.energy["int_add"].points, bits)

    def sram_read_pj(self, size_kib: float, word_bits: int) -> float:
        """One ``word_bits`` read of an SRAM array of ``size_kib`` KiB, pJ:
        ``read_64b(size) * word_bits / 64``."""
        return _loglog(self.energy["sram_read_64b"].points, size_kib) * word_bits / 64.0

    sram_access_pj = sram_read_pj

    def sram_write_over_read(self, size_kib: float) -> float:
        """Write energy / read energy of an SRAM array of ``size_kib`` KiB (a ratio)."""
        return _loglinear_clamped(self.energy["sram_write_over_read"].points, size_kib)

    def sram_write_pj(self, size_kib: float, word_bits: int) -> float:
        """One ``word_bits`` write of an SRAM array of ``size_kib`` KiB, pJ: the read times the write/read
        ratio."""
        return self.sram_read_pj(size_kib, word_bits) * self.sram_write_over_read(size_kib)

    def fp_pj(self, op: str, bits: int) -> float:
        """One ``bits``-wide floating-point ``op`` (``add`` or ``mult``), pJ: the table's ``fp_<op>`` point at
        those bits (proportional to bits between and beyond the points, as the integer adder).

        Raises
        ------
        KeyError
            The table has no ``fp_<op>`` entry.
        """
        return _prop_linear(self.energy[f"fp_{op}"].points, bits)

    @property
    def dram_pj_per_bit(self) -> float:
        """One bit read from DRAM, pJ."""
        return self.energy["dram_read_64b"].value / 64.0

    @property
    def dram_write_pj_per_bit(self) -> float:
        """One bit written to DRAM, pJ."""
        return self.energy["dram_write_64b"].value / 64.0

    @property
    def fusion_tree_add_pj(self) -> float:
        """One adder of a Bit Fusion shift-add tree, per cycle, pJ."""
        return self.energy["fusion_tree_add"].value

    # ---- area, um^2
    def mult_um2(self, a_bits: float, w_bits: float) -> float:
        """One ``a_bits x w_bits`` multiplier, um^2 (~ ``b_a*b_w``)."""
        return _prop_loglog(self._prod(self.area["int_mult"]), a_bits * w_bits)

    def add_um2(self, bits: float) -> float:
        """One ``bits``-wide adder, um^2 (~ bits)."""
        return _prop_linear(self.area["int_add"].points, bits)

    @property
    def dff_bit_um2(self) -> float:
        """One flip-flop bit, um^2."""
        return self.area["dff_bit"].value

    def sram_bit_um2(self, size_kib: float) -> float:
        """Area per bit of an SRAM array of ``size_kib`` KiB with its periphery, um^2 (log-log in size)."""
        return _loglog(self.area["sram_bit"].points, size_kib)

    @property
    def fusion_tree_add_um2(self) -> float:
        """One adder of a Bit Fusion shift-add tree, um^2."""
        return self.area["fusion_tree_add"].value

    @staticmethod
    def _prod(e: TechEntry) -> dict[float, float]:
        return {b * b: v for b, v in e.points.items()}


def available_tech() -> list[str]:
    """Names of the technology tables shipped in ``hwsim/tech/``."""
    return sorted(p.name[:-5] for p in resources.files("hwsim.tech").iterdir() if p.name.endswith(".yaml"))


def _num(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def parse_tech(data: object, fname: str) -> TechTable:
    """Validate a technology table's data (already parsed YAML) into a :class:`TechTable`.

    Raises
    ------
    SpecError
        A missing section or entry, an entry without ``unit``, values, or a source/derived note, a unit that
        does not parse, a value that is not a non-negative number (positive for sizes and ratios); the message
        names ``fname`` and the key.
    """
    if not isinstance(data, dict):
        raise SpecError(fname, "", "a mapping with name, source, energy and area", type(data).__name__)
    for k in ("name", "source"):
        if not isinstance(data.get(k), str) or not data[k]:
            raise SpecError(fname, k, "a non-empty string", data.get(k))
    sections: dict[str, dict[str, TechEntry]] = {"energy": {}, "area": {}}
    for sec in sections:
        if not isinstance(data.get(sec), dict):
            raise SpecError(fname, sec, "a mapping of entries", data.get(sec))
    entries = {**_REQUIRED, **{k: v for k, v in _OPTIONAL.items() if k[1] in data[k[0]]}}
    for (sec, key), (kind, keyed) in entries.items():
        path = f"{sec}.{key}"
        e = data[sec].get(key)
        if not isinstance(e, dict):
            raise SpecError(fname, path, f"an entry with unit, {'values' if keyed else 'value'} and source "
                            "or derived", e)
        extra = set(e) - {"unit", "per", "value", "values", "source", "derived"}
        if extra:
            raise SpecError(fname, f"{path}.{sorted(extra)[0]}", "one of the known keys (derived, per, "
                            "source, unit, value, values)", sorted(extra)[0])
        try:
            factor = parse_unit(e.get("unit"), kind)
        except ValueError as err:
            raise SpecError(fname, f"{path}.unit", str(err), e.get("unit")) from None
        if ("source" in e) == ("derived" in e) or not isinstance(e.get("source", e.get("derived")), str):
            raise SpecError(fname, path, "exactly one of source (a citation) or derived (the rule), as text",
                            sorted(k for k in ("source", "derived") if k in e) or None)
        if keyed:
            vals = e.get("values")
            if not isinstance(vals, dict) or not vals:
                raise SpecError(fname, f"{path}.values", "a map of points (bits or KiB -> value)", vals)
            pts = {}
            for x, v in vals.items():
                if not _num(x) or x <= 0:
                    raise SpecError(fname, f"{path}.values", "points at positive numbers", x)
                if not _num(v) or v < 0 or (kind == "ratio" and v <= 0):
                    sign = "positive" if kind == "ratio" else "non-negative"
                    raise SpecError(fname, f"{path}.values.{x:g}", f"a {sign} number", v)
                pts[float(x)] = float(v) * factor
        else:
            v = e.get("value")
            if not _num(v) or v < 0:
                raise SpecError(fname, f"{path}.value", "a non-negative number", v)
            pts = {1.0: float(v) * factor}
        sections[sec][key] = TechEntry(key=path, points=pts, source=e.get("source", e.get("derived")),
                                       derived="derived" in e, per=str(e.get("per", "")))
    if 8.0 not in sections["energy"]["int_mult"].points:
        raise SpecError(fname, "energy.int_mult.values", "a point at 8 bits (the 8b x 8b multiply overrides "
                        "scale)", sorted(sections["energy"]["int_mult"].points))
    refs = data.get("references", {})
    if not isinstance(refs, dict):
        raise SpecError(fname, "references", "a map of citation codes to references", type(refs).__name__)
    for sec in sections.values():
        for k, ent in sec.items():
            text = ent.source
            for code, ref in refs.items():
                text = text.replace(f"[{code}]", f"[{code}: {ref}]")
            sec[k] = TechEntry(key=ent.key, points=ent.points, source=text, derived=ent.derived, per=ent.per)
    rules = data.get("rules", {})
    return TechTable(name=data["name"], source=data["source"], energy=sections["energy"],
                     area=sections["area"],
                     rules={str(k): str(v) for k, v in rules.items()} if isinstance(rules, dict) else {})


@lru_cache(maxsize=None)
def load_tech(name: str, *, source: str = "<arch>", key: str = "energy.technology") -> TechTable:
    """Load a shipped technology table by name.

    Raises
    ------
    SpecError
        No table of that name (naming ``source`` and ``key``, listing the available ones), or a table with a
        missing, negative or unparsable value (naming the table's file and key).
    """
    names = available_tech()
    if name not in names:
        raise SpecError(source, key, f"one of the technology tables {names}", name)
    path = resources.files("hwsim.tech") / f"{name}.yaml"
    fname = f"hwsim/tech/{name}.yaml"
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise SpecError(fname, "", "valid YAML", "a syntax error", detail=str(e)[:200]) from None
    return parse_tech(data, fname)
