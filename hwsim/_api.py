"""The public Python API: what ``hwsim simulate``, ``hwsim sweep`` and ``hwsim verify`` do, as functions.

The CLI (:mod:`hwsim.cli`) is a thin layer over these: it parses options, calls one function here and prints
its result. Every option is keyword-only; every result is frozen. ``docs/api.md`` documents each name and
``tests/test_api.py`` checks that ``hwsim.__all__`` is exactly what it documents.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .errors import api_source

# Importing this module is light (``import hwsim`` is): each function imports the machinery it runs (the
# pipeline, numpy, numba, pandas, the pydantic models) when called, so that the command line rejects a bad
# input file without importing them first (docs/cli_startup.md, tests/test_lazy_imports.py).
if TYPE_CHECKING:
    import pandas as pd

    from ._pipeline import SimResult
    from .spec import ArchSpec, Workload

__all__ = ["load_arch", "load_workload", "simulate", "Simulation", "sweep", "SweepOutcome", "verify",
           "Verification"]

_SIMULATE_ARGS = api_source("simulate")
_VERIFY_ARGS = api_source("verify")


def _int_bits(value, key: str) -> int:
    """``value`` as a number of bits: an int (numpy's too) from 1 to 16 (what a workload layer holds), not a
    bool, a float or a string. Whether the arch's PEs take it (``pe.min_bits..pe.operand_bits``) is the
    simulation's check (an :class:`InfeasibleError` naming ``pe``)."""
    import numbers

    from .errors import SpecError

    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise SpecError(_SIMULATE_ARGS, key, "an integer number of bits", value)
    if not 1 <= int(value) <= 16:
        raise SpecError(_SIMULATE_ARGS, key, "bits between 1 and 16 (the arch's PEs then take "
                        "pe.min_bits..pe.operand_bits)", int(value))
    return int(value)


def _bits_table(bits: Mapping) -> dict[str, tuple[int, ...]]:
    """``simulate``'s ``bits`` checked: ``{layer: (weight_bits, act_bits[, out_bits])}`` of ints."""
    from .errors import SpecError

    if not isinstance(bits, Mapping):
        raise SpecError(_SIMULATE_ARGS, "bits", "a mapping {layer name: (weight_bits, act_bits)}",
                        type(bits).__name__)
    out = {}
    for name, v in bits.items():
        key = f"bits[{name!r}]"
        if isinstance(v, str | bytes) or not hasattr(v, "__len__") or len(v) not in (2, 3):
            raise SpecError(_SIMULATE_ARGS, key, "(weight_bits, act_bits) or (weight_bits, act_bits, "
                            "out_bits)", v)
        try:
            out[name] = tuple(_int_bits(b, key) for b in v)
        except SpecError:
            raise SpecError(_SIMULATE_ARGS, key, "integer numbers of bits (weight_bits, act_bits[, "
                            "out_bits])", tuple(v)) from None
    return out


ENERGY_COLUMNS = ("layer", "component", "operand", "action", "count", "unit", "pj_each", "energy_pj")


def load_arch(path: str | Path) -> ArchSpec:
    """Read and validate an arch into a frozen :class:`hwsim.spec.ArchSpec`: an hwsim arch YAML
    (``arch/*.yaml``), a SCALE-Sim ``.cfg`` (read as ``hwsim import-scalesim`` reads it) or a ZigZag
    accelerator YAML (as ``hwsim import-zigzag`` reads it; tried when the file is not an hwsim arch).

    Raises
    ------
    SpecError
        A missing file, a YAML error, an unknown or duplicate key, a value of the wrong type or range; the
        message names the file and the key path (the CLI prints it on one line and exits 2).
    """
    if Path(path).suffix.lower() == ".cfg":
        from .frontends import arch_from_scalesim_cfg

        return arch_from_scalesim_cfg(path)
    from .errors import SpecError
    from .spec import load_yaml

    try:
        # the file read first, with PyYAML alone: a missing, empty or non-YAML file fails here, before the
        # arch models are imported (the same call is load_arch's first step, so the same error)
        load_yaml(path)
        from .spec import load_arch as _load_arch_file

        return _load_arch_file(path)
    except SpecError as e:
        import warnings

        try:
            with warnings.catch_warnings():  # only a probe: arch_from_zigzag warns if it is ZigZag's file
                warnings.simplefilter("ignore")
                raw = load_yaml(path, duplicate_keys="last")
            from .frontends import is_zigzag_hardware

            zz = is_zigzag_hardware(raw)
        except SpecError:
            zz = False
        if not zz:
            raise e from None
    from .frontends import arch_from_zigzag

    return arch_from_zigzag(path)


def load_workload(path: str | Path) -> Workload:
    """Read a workload by its file type into a frozen :class:`hwsim.spec.Workload`: a layer-list YAML
    (``workloads/*.yaml``), a SCALE-Sim topology CSV (conv or GEMM format) or a float ONNX model (layer
    shapes).

    Raises
    ------
    SpecError
        A missing file, an unknown extension, or a problem inside the file (named with its key or row).

    Warns
    -----
    ShapeWarning
        For each layer whose input rows or columns no window covers.
    """
    from ._io import load_workload as _load_workload_file

    return _load_workload_file(path)


@dataclass(frozen=True, kw_only=True)
class Simulation:
    """One workload timed and priced on one arch (what ``hwsim simulate`` writes).

    ``layers`` and ``energy`` are new pandas DataFrames on each access (changing one changes nothing here);
    ``totals`` is a read-only mapping. Units are in the names: ``*_cycles`` array clock cycles, ``*_bytes``
    bytes, ``*_pj`` picojoules, ``latency_us`` microseconds, ``*_mm2`` square millimetres; ``sram_*_reads``
    and ``sram_*_writes`` count operand elements; ``utilization`` is a fraction of the array's peak MACs.
    ``result`` is the pipeline's own record (:class:`hwsim._pipeline.SimResult`).
    """

    result: SimResult
    arch_source: str = ""
    workload_source: str = ""

    @property
    def arch(self) -> ArchSpec:
        return self.result.arch

    @property
    def workload(self) -> Workload:
        return self.result.workload

    @property
    def bits(self) -> Mapping[str, tuple[int, int, int]]:
        """Each layer's ``(weight_bits, act_bits, out_bits)``."""
        return MappingProxyType(dict(self.result.bits))

    @property
    def layers(self) -> pd.DataFrame:
        """One row per layer, the columns of ``layers.csv`` (``results/README.md``), in workload order."""
        import pandas as pd

        from ._pipeline import layer_columns

        return pd.DataFrame(self.result.rows, columns=layer_columns(self.result.arch))

    @property
    def energy(self) -> pd.DataFrame:
        """Every priced action: ``layer, component, operand, action, count, unit, pj_each, energy_pj``."""
        import pandas as pd

        return pd.DataFrame(self.result.energy_records, columns=list(ENERGY_COLUMNS))

    @property
    def totals(self) -> Mapping[str, float]:
        """Whole-workload totals (``summary.json``'s ``totals``): cycles, bytes, pJ, pJ/MAC, TOPS/W, mm^2."""
        return MappingProxyType(dict(self.result.totals))

    def summary(self) -> dict[str, Any]:
        """What ``summary.json`` holds: totals, units, the resolved arch, workload and bits, energy
        sources."""
        from ._io import summary_dict

        return summary_dict(self.result, arch_source=self.arch_source, workload_source=self.workload_source)

    def report(self, path: str | Path) -> Path:
        """Write the self-contained plotly HTML report (works offline) to ``path``; return it."""
        from .report import simulate_report

        return simulate_report(self.result, Path(path))

    def to_dir(self, out: str | Path) -> dict[str, Path]:
        """Write what ``hwsim simulate`` writes into folder ``out`` (created if needed; these files are
        replaced): ``layers.csv``, ``energy.csv``, ``bandwidth.csv``, ``tensors.csv``, ``vector.csv``,
        ``timeline.csv``, ``cores.csv``, ``summary.json`` and ``report.html`` (``results/README.md``).
        Returns the paths by file name, in that order.

        All or nothing: the files are written into a temporary folder beside ``out`` and moved into ``out``
        only when every one is written (``os.replace``, one file at a time), so that an error while writing
        (a bug in a figure, a full disk) leaves ``out`` as it was, or absent, and no temporary folder. A file
        of this list that an earlier run left in ``out`` and this run does not write (``vector.csv`` of a
        network without non-GEMM nodes, ``cores.csv`` of one array) is removed: the folder holds one run.

        Raises
        ------
        OSError
            ``out`` (or its parent) is not a writable folder.
        """
        import os
        import shutil
        import tempfile

        from ._io import (
            write_bandwidth_csv,
            write_energy_csv,
            write_graph_csvs,
            write_layers_csv,
            write_summary_json,
        )
        from .report import simulate_report  # a missing plotly fails here, before any file is written

        folder = Path(out)
        folder.parent.mkdir(parents=True, exist_ok=True)
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(20, "Not a directory", str(folder))
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=folder.parent))
        except OSError as e:  # name the folder asked for, not the temporary one
            raise type(e)(e.errno, e.strerror, str(folder)) from None
        try:
            files = [write_layers_csv(self.result, tmp / "layers.csv"),
                     write_energy_csv(self.result, tmp / "energy.csv"),
                     write_bandwidth_csv(self.result, tmp / "bandwidth.csv"),
                     *write_graph_csvs(self.result, tmp),
                     write_summary_json(self.result, tmp / "summary.json", arch_source=self.arch_source,
                                        workload_source=self.workload_source),
                     simulate_report(self.result, tmp / "report.html")]
            folder.mkdir(exist_ok=True)
            names = [f.name for f in files]
            for stale in set(SIMULATE_FILES) - set(names):
                (folder / stale).unlink(missing_ok=True)
            for nm in names:
                os.replace(tmp / nm, folder / nm)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return {nm: folder / nm for nm in names}


#: Every file ``hwsim simulate`` / :meth:`Simulation.to_dir` may write (``vector.csv`` only with non-GEMM
#: nodes, ``cores.csv`` only with ``cores:``).
SIMULATE_FILES = ("layers.csv", "energy.csv", "bandwidth.csv", "tensors.csv", "vector.csv", "timeline.csv",
                  "cores.csv", "summary.json", "report.html")


def simulate(arch: ArchSpec | str | Path, workload: Workload | str | Path, *,
             bits: Mapping[str, tuple[int, int]] | None = None, weight_bits: int | None = None,
             act_bits: int | None = None, quant: str | Path | None = None, engine: str | None = None,
             reuse: str | None = None) -> Simulation:
    """Time and price every layer of ``workload`` on ``arch``: folds, fill/drain and steady cycles, stalls
    from the event model, traffic per memory level, energy per action and component, area.

    Parameters
    ----------
    arch, workload
        Loaded specs, or paths that :func:`load_arch` / :func:`load_workload` read.
    bits
        Per-layer ``{layer name: (weight_bits, act_bits)}``; takes precedence over the uniform bits.
    weight_bits, act_bits
        Uniform bits for every layer (default: each layer's own, else the workload's, else 8).
    quant
        A quantization YAML (``workloads/quant/*.yaml``) read against the workload; excludes ``bits``.
    engine, reuse
        Replace the arch's ``timing.engine`` (``analytic`` or ``simpy``: equal cycles) or ``timing.reuse``
        (``none``, ``inter_layer``, ``fused``).

    Raises
    ------
    SpecError
        Bad files or options (``bits`` naming no layer, ``quant`` together with ``bits``, a bit-width that
        is not an int, e.g. 4.5 or True: ``hwsim.simulate(): weight_bits: expected an integer number of
        bits, found 4.5``).
    InfeasibleError
        Operand widths the arch's PEs cannot take.
    """
    import os

    from .errors import SpecError

    weight_bits = None if weight_bits is None else _int_bits(weight_bits, "weight_bits")
    act_bits = None if act_bits is None else _int_bits(act_bits, "act_bits")
    table: dict[str, tuple[int, ...]] | None = None if bits is None else _bits_table(bits)
    if quant is not None and table is not None:
        raise SpecError(_SIMULATE_ARGS, "quant", "either quant or bits, not both", "both")
    # a path is read as it is (the spec classes, and so pydantic, are imported only for a loaded spec)
    if isinstance(arch, str | os.PathLike):
        arch_source, a = str(arch), load_arch(arch)
    else:
        from .spec import ArchSpec

        arch_source, a = ("", arch) if isinstance(arch, ArchSpec) else (str(arch), load_arch(arch))
    if isinstance(workload, str | os.PathLike):
        workload_source, w = str(workload), load_workload(workload)
    else:
        from .spec import Workload

        workload_source, w = (("", workload) if isinstance(workload, Workload)
                              else (str(workload), load_workload(workload)))
    if quant is not None:
        from .spec import load_quant_config

        table = dict(load_quant_config(quant, w))
    elif table is not None:  # named in this function's words (resolve_bits would say "<bits>: NAME")
        names = [layer.name for layer in w.layers]
        for name in table:
            if name not in names:
                raise SpecError(_SIMULATE_ARGS, f"bits[{name!r}]", f"a layer of workload {w.name!r} "
                                f"({', '.join(names[:6])}{', ...' if len(names) > 6 else ''})", name)
    if engine is not None:
        a = a.replace(**{"timing.engine": engine})
    if reuse is not None:
        a = a.replace(**{"timing.reuse": reuse})
    from ._pipeline import simulate_workload  # (after the inputs are read: a bad one fails before it)

    res = simulate_workload(a, w, bits=table, weight_bits=weight_bits,
                            act_bits=act_bits, source=arch_source or "<arch>")
    return Simulation(result=res, arch_source=arch_source, workload_source=workload_source)


@dataclass(frozen=True, kw_only=True)
class SweepOutcome:
    """A finished sweep: its output folder and its tables (read from the files it wrote).

    ``points`` has one row per design point (``points.parquet``: hardware keys, bits, cycles, energy,
    quality, ``status``, ``pareto``, ``within_budget``); ``pareto`` the front (``pareto.csv``).
    """

    out: Path

    @property
    def points(self) -> pd.DataFrame:
        import pandas as pd

        return pd.read_parquet(self.out / "points.parquet")

    @property
    def pareto(self) -> pd.DataFrame:
        import pandas as pd

        return pd.read_csv(self.out / "pareto.csv")


def sweep(spec: str | Path, out: str | Path | None = None, *, resume: bool = False,
          workers: int | None = None, scheduler: str | None = None, progress: bool = False) -> SweepOutcome:
    """Evaluate every design point of a sweep YAML (``sweeps/*.yaml``) and write its results to ``out``
    (default ``results/<sweep name>``): points as they finish, then the Pareto front, configs and report.

    ``workers`` local processes (default: the cores; 1 runs in this process) or a dask.distributed cluster at
    ``scheduler`` (e.g. ``"tcp://HOST:8786"``); ``resume`` skips the points already written there.

    Raises
    ------
    SpecError
        A bad sweep spec (before any work), an output folder holding another sweep, an unreachable scheduler.
    """
    from .explore import read_sweep_spec

    read_sweep_spec(spec)  # a bad sweep file fails here, before the runner's imports (pandas, numba...)
    from .explore import run_sweep

    return SweepOutcome(out=run_sweep(spec, out=out, resume=resume, workers=workers, scheduler=scheduler,
                                      progress=progress))


@dataclass(frozen=True, kw_only=True)
class Verification:
    """The outcome of :func:`verify` (what ``verify.json`` holds): ``mismatches`` of ``elements`` compared
    (``passed`` when 0), ``tensors`` a DataFrame with one row per compared tensor (its node, op, dtype,
    mismatches, first differing element, the node's local re-run), ``data`` the whole JSON-ready record
    (target, host CPU flags, onnxruntime version and session options, per-layer accumulator statistics),
    ``lines`` the printable summary. ``datapath_mismatches``: with a datapath other than onnxruntime's
    (``arch``, a profile...) on a host whose onnxruntime sums u8 x s8 pairs with int16 saturation, the
    mismatches the datapath itself causes (against onnxruntime's exact integer arithmetic); then ``passed``
    is ``datapath_mismatches == 0`` (docs/verification.md, "Hardware options")."""

    mismatches: int
    elements: int
    data: Mapping[str, Any]
    lines: tuple[str, ...]
    datapath_mismatches: int | None = None

    @property
    def passed(self) -> bool:
        if self.datapath_mismatches is not None:
            return self.datapath_mismatches == 0
        return self.mismatches == 0

    @property
    def tensors(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(list(self.data.get("tensors", [])))


def _is_bool(value) -> bool:
    """A Python or numpy boolean (numpy not imported: a bad input is refused before the heavy imports)."""
    t = type(value)
    return isinstance(value, bool) or (t.__module__ == "numpy" and t.__name__ in ("bool_", "bool"))


def verify(model: str | Path, *, inputs: str | Path | None = None, expected: str | Path | None = None,
           target: str = "host", arch: str | Path | None = None, profile: str = "ort_cpu",
           rounding: str | None = None, int16_pairs: bool = False, zero_point_mode: str = "shift",
           seed: int = 0, out: str | Path | None = None) -> Verification:
    """Run a quantized ONNX model on hwsim's integer datapath and compare every integer tensor with
    onnxruntime (live on this host), or the graph outputs with ``expected`` (an ``.npz`` recorded on
    ``target``); what ``hwsim verify`` does (``docs/verification.md``).

    ``target``: ``"host"`` (detected and probed) or a name of :data:`hwsim.onnxq.TARGETS`; a target other than
    the host's needs ``expected``. ``arch``: run under its ``pe.acc_bits``/``acc_mode``/``mult_bits``;
    ``profile``/``rounding``: the requantizer (:data:`hwsim.quant.PROFILES`, ``ROUNDING_MODES``);
    ``int16_pairs``: PEs that sum products in int16-saturated pairs; ``zero_point_mode``: ``shift`` or
    ``cross_term``; ``seed``: random inputs when ``inputs`` is None; ``out``: a folder for ``verify.json``.

    Raises
    ------
    SpecError
        A model, option or npz that is not usable (named), an unsupported op (named with its domain).
    """
    import numbers
    from dataclasses import replace

    from .errors import Found, SpecError, input_file
    from .numerics import PROFILES, ROUNDING_MODES  # (numpy alone; hwsim.quant re-exports them)

    if profile not in PROFILES:
        raise SpecError(_VERIFY_ARGS, "profile", f"one of {', '.join(PROFILES)}", profile)
    if rounding is not None and rounding not in ROUNDING_MODES:
        raise SpecError(_VERIFY_ARGS, "rounding", f"one of {', '.join(ROUNDING_MODES)}", rounding)
    if zero_point_mode not in ("shift", "cross_term"):
        raise SpecError(_VERIFY_ARGS, "zero_point_mode", "one of shift, cross_term", zero_point_mode)
    if not _is_bool(int16_pairs):
        raise SpecError(_VERIFY_ARGS, "int16_pairs", "true or false", int16_pairs)
    if _is_bool(seed) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise SpecError(_VERIFY_ARGS, "seed", "an integer >= 0", seed)
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise SpecError(_VERIFY_ARGS, "out", "a folder path (str or Path)", out)
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise SpecError(_VERIFY_ARGS, "out", "a folder (verify.json is written into it)",
                        Found(f"the file {out}"))
    if expected is not None and inputs is None:   # random inputs cannot be what the recording was made from
        raise SpecError(_VERIFY_ARGS, "inputs", "the .npz of inputs the recorded outputs (expected) were "
                        "computed from", Found("none (random inputs would differ everywhere)"))
    # the arch and the model file checked before the integer machinery (numba, onnx, onnxruntime) is imported,
    # in the order and with the messages of the steps below (config_from_arch reads the arch with
    # hwsim.spec.load_arch, then hwsim.onnxq.load_model checks the model file so): a bad input fails fast
    if arch:
        from .spec import load_arch as _load_arch_file

        _load_arch_file(arch)
    input_file(model, "an existing ONNX model file")
    from .onnxq import DatapathConfig, config_from_arch
    from .onnxq import verify as _verify  # (it checks target: one check, named as this keyword)
    cfg = config_from_arch(arch, profile=profile) if arch else DatapathConfig(profile=profile)
    if int16_pairs and cfg.acc_mode != "wrap":   # pairs of products summed into a wrapping accumulator
        raise SpecError(_VERIFY_ARGS, "int16_pairs", "an arch whose pe.acc_mode is wrap",
                        Found(f"pe.acc_mode {cfg.acc_mode} in {arch}"))
    seed, int16_pairs = int(seed), bool(int16_pairs)
    cfg = replace(cfg, rounding=rounding, seed=seed, int16_pairs=int16_pairs, zero_point_mode=zero_point_mode)
    rep = _verify(model, inputs=inputs, seed=seed, out=out, config=cfg, arch=arch, target=target,
                  expected=expected)
    return Verification(mismatches=rep.mismatches, elements=rep.elements, data=MappingProxyType(rep.data),
                        lines=tuple(rep.lines), datapath_mismatches=rep.datapath_mismatches)
