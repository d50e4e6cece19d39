"""The sweep spec (``sweeps/*.yaml``): a base arch and workload, hardware axes, precision policies,
objectives.

Example (``sweeps/digits_codesign.yaml``)::

    name: digits_codesign
    arch: ../arch/edge_32x32.yaml          # paths are relative to the sweep file
    workload: ../workloads/digits_cnn.yaml
    quality: digits_cnn                    # the real network run bit-accurately for each precision policy
    qat: {method: lsq, epochs: 3}          # optional: train each policy by QAT (else post-training quant.)
    axes:                                  # dotted arch keys -> values; the grid is their product
      array.rows: [8, 16, 32]
      array.cols: [8, 16, 32]
    precision:
      uniform: [[8, 8], [4, 4], [2, 2]]    # (weight_bits, act_bits) for every layer
      per_layer: [{conv1: [8, 8], conv2: [4, 4], fc: [4, 8]}]
      random: {count: 10, bits: [2, 4, 8], seed: 0}
    objectives: {accuracy: max, total_cycles: min, energy_pj: min}   # also area_mm2 (die area, mm^2)

Every spec error is raised before any work starts, naming the file and key.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..errors import Found, SpecError
from ..spec import ArchSpec, Workload, load_arch, load_yaml
from ._sweep_file import read_sweep_spec
from ._sweep_schema import OBJECTIVES, Bits, PrecisionSpace, QatSpec, RandomPolicies, SweepSpec

__all__ = ["SweepSpec", "QatSpec", "PrecisionSpace", "RandomPolicies", "load_sweep", "read_sweep_spec",
           "ResolvedSweep", "DesignPoint"]



class DesignPoint(BaseModel):
    """One design point: hardware parameters and a per-layer precision policy."""

    model_config = ConfigDict(frozen=True)
    index: int
    point_id: str
    hw: dict[str, Any]
    policy: str
    bits: dict[str, Bits]
    uniform: Bits | None = None  # a uniform policy's (weight_bits, act_bits): the workload's defaults



class ResolvedSweep(BaseModel):
    """A validated sweep with its arch and workload loaded and every design point listed, in a stable
    order."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    spec: SweepSpec
    source: str
    arch: ArchSpec
    workload: Workload
    points: tuple[DesignPoint, ...]
    workload_data: dict[str, Any] | None = None  # the workload YAML's mapping, when axes set its keys
    workload_path: str = ""

    def arch_for(self, hw: dict[str, Any]) -> ArchSpec:
        """The arch of a design point: the arch keys of ``hw`` replaced (``workload.*`` keys left out)."""
        keys = {k: v for k, v in hw.items() if not k.startswith("workload.")}
        return self.arch.replace(**keys) if keys else self.arch

    def policy_for(self, pt: DesignPoint, wl: Workload) -> tuple[Workload, dict[str, Bits]]:
        """The workload and per-layer bits a point runs: a uniform policy on a generated transformer sets
        the workload's defaults (:meth:`hwsim.spec.Workload.with_default_bits`: the KV cache keeps
        ``kv_bits``, as the same bits written in the file would); any other policy: its table."""
        if pt.uniform is None or wl.transformer is None:
            return wl, pt.bits
        wl = wl.with_default_bits(*pt.uniform)
        return wl, {layer.name: wl.bits(layer) for layer in wl.layers}

    def workload_for(self, hw: dict[str, Any]) -> Workload:
        """The workload of a design point: the ``workload.transformer.KEY`` axes set in its ``transformer:``
        block (:func:`hwsim.spec.expand_transformer`); no such axis: the sweep's workload."""
        keys = {k.split(".", 2)[2]: v for k, v in hw.items() if k.startswith("workload.")}
        if not keys:
            return self.workload
        return _workload_with(self.workload_data, keys, self.workload_path)


def _workload_with(data: dict[str, Any], keys: dict[str, Any], path: str) -> Workload:
    import copy

    from ..spec import generate_workload

    d = copy.deepcopy(data)
    d["transformer"].update(keys)
    return generate_workload(d, path)


def _policy_name(bits: dict[str, Bits], uniform: Bits | None) -> str:
    if uniform is not None:
        return f"W{uniform[0]}A{uniform[1]}"
    text = ",".join(f"{k}={w}/{a}" for k, (w, a) in bits.items())
    return "mixed-" + hashlib.sha1(text.encode()).hexdigest()[:10]


#: Up to this many combinations of the arch axes are each validated when the sweep is loaded (0.1 ms each);
#: beyond it only each value on its own, and a combination that does not validate is an error point.
MAX_CHECKED_COMBOS = 20_000


def _check_arch_combos(spec: SweepSpec, src: str, arch: ArchSpec, keys: list[str]) -> None:
    """Every combination of the arch axes' values validates as an arch (values that are fine alone can clash,
    e.g. unroll factors and array rows); a clash names the sweep file, ``axes`` and the combination."""
    akeys = [k for k in keys if not k.startswith("workload.")]
    if len(akeys) < 2 or math.prod(len(spec.axes[k]) for k in akeys) > MAX_CHECKED_COMBOS:
        return
    for vals in itertools.product(*(spec.axes[k] for k in akeys)):
        hw = dict(zip(akeys, vals, strict=True))
        try:
            arch.replace(**hw)
        except SpecError as e:
            raise SpecError(src, "axes", f"combinations of axis values that each make a valid arch ({e.key}: "
                            f"{e.expected})", Found(", ".join(f"{k}={v!r}" for k, v in hw.items()))) from None


def _bit_range(spec: SweepSpec) -> tuple[int, int, str]:
    """The bits a policy may take, inclusive, and how an error says so: those the quality model runs
    (:attr:`QualityModel.min_bits`..``max_bits``; QAT trains and runs every policy on the integer datapath,
    whose quantizers take 2..8), else the timing model's 1..16."""
    if spec.quality is None:
        return 1, 16, "bits between 1 and 16"
    from ._quality import QUALITY_MODELS

    qm = QUALITY_MODELS[spec.quality]
    if spec.qat is not None:
        lo, hi = max(2, qm.min_bits), min(8, qm.max_bits)
        return lo, hi, f"bits the QAT datapath runs ({lo}..{hi})"
    return qm.min_bits, qm.max_bits, f"bits the quality model {qm.name} runs ({qm.min_bits}..{qm.max_bits})"


def _pe_ranges(spec: SweepSpec, src: str, arch: ArchSpec, keys: list[str]) -> list[tuple[int, int]]:
    """The ``(pe.min_bits, pe.operand_bits)`` of every PE on some arch of the sweep (the combinations of the
    axes that set ``pe.*`` or ``cores.*``; every core of a multi-core arch), sorted; empty (nothing refused)
    beyond :data:`MAX_CHECKED_COMBOS` combinations. A policy bit-width outside all of them cannot run on any
    point: load_sweep refuses it (inside some but not all, its points are infeasible, with the reason)."""
    pkeys = [k for k in keys if not k.startswith("workload.")
             and arch.key_path(k).split(".")[0].split("[")[0] in ("pe", "cores")]
    if math.prod(len(spec.axes[k]) for k in pkeys) > MAX_CHECKED_COMBOS:
        return []
    out: set[tuple[int, int]] = set()
    for vals in itertools.product(*(spec.axes[k] for k in pkeys)):
        try:
            a = arch.replace(**dict(zip(pkeys, vals, strict=True))) if pkeys else arch
            cores = a.core_archs(src)
        except SpecError:  # a clash of axis values: _check_arch_combos names it
            continue
        out.update((c.pe.min_bits, c.pe.operand_bits) for _, c in cores)
    return sorted(out)


def _check_budgets(spec: SweepSpec, src: str, arch: ArchSpec, workload: Workload, combos: list, keys: list,
                   policies: list) -> None:
    """Reject a budget that no design point can meet, from cheap bounds: weight bytes and BOPS are exact per
    policy; cycles are at least MACs / (peak MACs per cycle) and energy at least the MACs' multiplies."""
    import math

    from ..energy import action_energies
    from ..errors import InfeasibleError
    from ..mapping import precision_factors

    if not spec.budgets:
        return
    best: dict[str, float] = {}
    for _, bits in policies:
        wb = sum(math.ceil(layer.gemm.k * layer.gemm.n * layer.gemm.groups * bits[layer.name][0] / 8)
                 for layer in workload.layers)
        bops = sum(layer.gemm.macs * bits[layer.name][0] * bits[layer.name][1] for layer in workload.layers)
        best["weight_bytes"] = min(best.get("weight_bytes", math.inf), wb)
        best["bops"] = min(best.get("bops", math.inf), bops)
        for hw_vals in combos:
            a = arch.replace(**dict(zip(keys, hw_vals, strict=True))) if keys else arch
            cyc = en = 0.0
            try:
                ae = action_energies(a)
                for layer in workload.layers:
                    w, act = bits[layer.name]
                    pf = precision_factors(a.pe, act, w)
                    peak = a.array.rows * a.array.cols * pf.macs_per_pe_cycle / pf.cycles_per_step
                    cyc += layer.gemm.macs / peak
                    en += layer.gemm.macs * ae.mult_pj(pf.a_bits_eff, pf.w_bits_eff)  # the multiplies alone
            except InfeasibleError:
                continue
            best["total_cycles"] = min(best.get("total_cycles", math.inf), cyc)
            best["energy_pj"] = min(best.get("energy_pj", math.inf), en)
    def fmt(x: float) -> str:
        return f"{x:,.0f}" if abs(x) >= 1 else f"{x:.6g}"

    for k, v in spec.budgets.items():
        if k in best and best[k] > v:
            raise SpecError(src, f"budgets.{k}",
                            f"a budget some design point can meet (the smallest possible "
                            f"{k} is {fmt(best[k])})", Found(fmt(v)))


def _objectives(spec: SweepSpec, src: str) -> dict[str, str]:
    """The objectives: the spec's, checked, or by default the quality metric (max, when there is a quality
    model), cycles and energy (min)."""
    metric = None
    if spec.quality is not None:
        from ._quality import QUALITY_MODELS

        metric = QUALITY_MODELS[spec.quality].metric
    if spec.objectives is None:
        return {**({metric: "max"} if metric else {}), "total_cycles": "min", "energy_pj": "min"}
    allowed = [*([metric] if metric else []), *OBJECTIVES]
    for k in spec.objectives:
        if k not in allowed:
            why = " (no quality model is set)" if k in ("accuracy", "sqnr_db",
                                                        "cosine") and not metric else ""
            raise SpecError(src, f"objectives.{k}", f"one of {allowed}{why}", k)
    if len(spec.objectives) < 1:
        raise SpecError(src, "objectives", "at least one objective", {})
    return dict(spec.objectives)


def load_sweep(path: str | Path) -> ResolvedSweep:
    """Load a sweep YAML, check every axis and policy against the arch and workload, and list its points.

    Raises
    ------
    SpecError
        Unknown key, an axis that names no arch key or whose values do not validate, an empty range, a policy
        that names no layer, bits outside the quality model's range (:attr:`QualityModel.min_bits`..
        ``max_bits``: 2..8 for every model; 1..16 without one) or outside ``pe.min_bits..pe.operand_bits``
        of every PE of the sweep's arches, an unknown quality model — before any work starts.
    """
    return _resolve_sweep(path, read_sweep_spec(path))


def _resolve_sweep(path: str | Path, spec: SweepSpec) -> ResolvedSweep:
    """The rest of :func:`load_sweep` after :func:`read_sweep_spec` (``spec``, read from ``path``): the arch
    and workload loaded, every axis and policy checked against them, the points listed."""
    p = Path(path)
    src = str(p)
    base = p.parent
    arch_path = (base / spec.arch)
    wl_path = (base / spec.workload)
    arch = load_arch(arch_path)
    from .._io import load_workload

    workload = load_workload(wl_path)
    names = [layer.name for layer in workload.layers]
    if spec.qat is not None and spec.quality is None:
        raise SpecError(src, "qat", "a quality model (key quality) for the QAT block to train", "qat")
    if spec.quality is not None:
        from ._quality import QUALITY_MODELS

        if spec.quality not in QUALITY_MODELS:
            raise SpecError(src, "quality", f"one of the quality models {sorted(QUALITY_MODELS)}",
                            spec.quality)
        from ._quality import QAT_MODELS

        if spec.qat is not None and spec.quality not in QAT_MODELS:
            raise SpecError(src, "quality", f"a quality model QAT can train ({list(QAT_MODELS)}) with a qat: "
                            "block", spec.quality)
        want = QUALITY_MODELS[spec.quality].layers
        if tuple(names) != tuple(want):
            raise SpecError(src, "workload",
                            f"a workload whose layers are {list(want)} (those of quality model "
                            f"{spec.quality!r})", names)
    # hardware grid: validate every combination now
    keys = list(spec.axes)
    combos = list(itertools.product(*(spec.axes[k] for k in keys))) if keys else [()]
    wl_data = None
    for k in keys:
        if k.startswith("workload."):  # a transformer workload's parameter (context, seq_len, kv_bits, ...)
            raw = load_yaml(wl_path) if wl_path.suffix in (".yaml", ".yml") else {}
            if "transformer" not in raw or not k.startswith("workload.transformer.") or k.count(".") != 2:
                raise SpecError(src, f"axes.{k}",
                                "arch keys, or workload.transformer.KEY for a workload with a "
                                "transformer: block", k)
            wl_data = raw
            for v in spec.axes[k]:
                try:
                    _workload_with(raw, {k.split(".", 2)[2]: v}, str(wl_path))
                except SpecError as e:
                    raise SpecError(src, f"axes.{k}", e.expected, e.found, detail=e.key) from None
            continue
        for j, v in enumerate(spec.axes[k]):  # every value on its own, named in the sweep file
            try:
                arch.replace(**{k: v})
            except SpecError as e:
                where = f"axes.{k}" if e.expected == "an existing arch key" else f"axes.{k}[{j}]"
                raise SpecError(src, where, e.expected, e.found,
                                detail=f"at {e.key}" if e.key != k else "") from None
    seen: dict[str, str] = {}  # two spellings of one arch key (a list item by index and by name)
    for k in keys:
        if not k.startswith("workload."):
            path = arch.key_path(k)
            if path in seen:
                raise SpecError(src, "axes", "each arch key once", f"{seen[path]} and {k}",
                                detail=f"both are {path}")
            seen[path] = k
    _check_arch_combos(spec, src, arch, keys)
    # precision policies
    policies: list[tuple[str, dict[str, Bits]]] = []

    lo, hi, what = _bit_range(spec)
    pes = _pe_ranges(spec, src, arch, keys)

    def check_bits(key: str, b: Bits, *, on_pe: bool = True) -> None:
        for v in b:
            if not lo <= v <= hi:
                raise SpecError(src, key, what, v)
            if on_pe and pes and not any(mn <= v <= mx for mn, mx in pes):
                ranges = " or ".join(f"{mn}..{mx}" for mn, mx in pes)
                raise SpecError(src, key, "bits a PE of the sweep's arch takes (pe.min_bits.."
                                f"pe.operand_bits: {ranges})", v)

    def check_table(key: str, table: dict[str, tuple[int, ...]]) -> None:
        """A policy's full table (layers it leaves out at the workload's bits, a transformer's KV GEMMs at
        kv_bits) within the quality model's range."""
        for n, b in table.items():
            if not all(lo <= v <= hi for v in b[:2]):
                raise SpecError(src, key, what, Found(f"{n} at {tuple(b[:2])}"),
                                detail="the workload's own bits for that layer")

    given = "baselines" in spec.model_fields_set  # the default baselines are not refused on a PE's range
    allu = list(spec.precision.uniform) + [b for b in spec.baselines if b not in spec.precision.uniform]
    for i, b in enumerate(allu):
        uniform = i < len(spec.precision.uniform)
        key = f"precision.uniform[{i}]" if uniform else f"baselines[{list(spec.baselines).index(b)}]"
        check_bits(key, b, on_pe=uniform or given)
        table = {n: tuple(b) for n in names}
        if workload.transformer is not None:  # the defaults, as policy_for runs them: KV GEMMs at kv_bits
            wl_b = workload.with_default_bits(*b)
            table = {layer.name: wl_b.bits(layer) for layer in wl_b.layers}
            check_table(key, table)
        policies.append((_policy_name({}, b), table))
    for i, pl in enumerate(spec.precision.per_layer):
        for k, b in pl.items():
            if k not in names:
                raise SpecError(src, f"precision.per_layer[{i}].{k}", f"a layer of {workload.name} ({names})",
                                k)
            check_bits(f"precision.per_layer[{i}].{k}", b)
        full = {n: tuple(pl.get(n, workload.bits(workload.layers[j]))) for j, n in enumerate(names)}
        check_table(f"precision.per_layer[{i}]", full)
        policies.append((_policy_name(full, None), full))
    if spec.precision.random is not None:
        r = spec.precision.random
        for i, b in enumerate(r.bits):
            check_bits(f"precision.random.bits[{i}]", (b, b))
        rng = random.Random(r.seed)
        for _ in range(r.count):
            full = {n: (rng.choice(r.bits), rng.choice(r.bits)) for n in names}
            policies.append((_policy_name(full, None), full))
    ilp = spec.precision.ilp
    if ilp is not None:
        for i, b in enumerate(ilp.options):
            check_bits(f"precision.ilp.options[{i}]", b)
        if spec.quality is not None and (ilp.sensitivity == "measured" or spec.qat is not None):  # run
            check_bits("precision.ilp.reference", ilp.reference, on_pe=False)
        if ilp.sensitivity == "measured":
            if spec.quality is None:
                raise SpecError(src, "precision.ilp.sensitivity",
                                "a sensitivity file, or a quality model (key "
                                "quality) to measure it with", "measured")
        elif not (base / ilp.sensitivity).is_file():
            raise SpecError(src, "precision.ilp.sensitivity",
                            "'measured' or an existing CSV file (relative to "
                            "the sweep file)", ilp.sensitivity)
    if not policies:
        raise SpecError(src, "precision", "at least one precision policy", None)
    if wl_data is None:  # (with workload axes the base workload bounds nothing: no pre-check)
        _check_budgets(spec, src, arch, workload, combos, keys, policies)
    spec = spec.model_copy(update={"objectives": _objectives(spec, src)})
    seen: set[str] = set()
    uniq = []
    for name, bits in policies:
        if name not in seen:
            seen.add(name)
            uniq.append((name, bits))
    uniform_of = {_policy_name({}, b): tuple(b) for b in allu}
    points = []
    for hw_vals in combos:
        hw = dict(zip(keys, hw_vals, strict=True))
        for name, bits in uniq:
            hw_id = ",".join(f"{k}={v}" for k, v in hw.items())
            pid = f"{hw_id}|{name}" if hw_id else name
            points.append(DesignPoint(index=len(points), point_id=pid, hw=hw, policy=name, bits=bits,
                                      uniform=uniform_of.get(name)))
    return ResolvedSweep(spec=spec, source=src, arch=arch, workload=workload, points=tuple(points),
                         workload_data=wl_data, workload_path=str(wl_path))
