"""Reading workloads in the formats users have, and writing simulation results (CSV, JSON)."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .errors import ShapeWarning, SpecError, input_file

# the pipeline and the workload models are imported by the functions that use them: a missing workload file
# fails before them (docs/cli_startup.md)
if TYPE_CHECKING:
    from ._pipeline import SimResult
    from .spec import Workload

__all__ = ["load_workload", "write_layers_csv", "write_energy_csv", "write_bandwidth_csv", "summary_dict",
           "write_summary_json", "write_graph_csvs"]

UNITS = {
    "*_cycles": "array clock cycles", "latency_us": "microseconds", "*_pj": "picojoules",
    "*_bytes": "bytes", "sram_*_reads / sram_*_writes": "operand elements (SCALE-Sim's words)",
    "sram_*_accesses": "accesses of the buffer's word_bits", "utilization": "fraction of peak MACs",
    "mapping_efficiency": "fraction of PEs mapped",
    "compute_utilization": "fraction of peak MACs over the compute cycles (stalls excluded; SCALE-Sim's "
                           "Compute Util)",
    "peak_macs_per_cycle": "MACs per cycle of the whole array at the layer's bits (PE mode: bit fusion, bit "
                           "serial)",
    "start_cycle / stop_cycle": "the node's cycles [start, stop) in the workload (the graph schedule over "
                                "the array and the vector unit; back to back without a vector unit)",
    "*_bytes_per_cycle": "bytes per array clock cycle (bandwidth.csv: avg over total cycles, peak over "
                         "compute cycles)", "macs": "multiply-accumulates",
    "pj_per_mac": "picojoules per MAC", "tops_per_w": "tera-operations (2 per MAC) per second per watt",
    "model_cpu_s": "CPU seconds in mapping, event model and energy (not start-up or file writing)",
    "*_mm2": "square millimetres of die (on-chip components; DRAM has none)", "*_um2": "square micrometres",
    "tops": "tera-operations (2 per MAC) per second achieved at the arch's clock_mhz",
    "peak_tops": "tera-operations per second at one MAC per PE per cycle at clock_mhz",
    "power_mw": "average power at clock_mhz, milliwatts (dynamic energy / latency; no leakage)",
    "noc_bytes": "bytes over the on-chip network (cores:)", "intensity_macs_per_byte / ridge_macs_per_byte":
        "MACs per DRAM byte of a core, and the roofline ridge: its peak MACs per cycle over its DRAM share",
    "read_per_access / write_per_access": "picojoules per access of the level's word_bits (dram: per bit)",
}


def load_workload(path: str | Path) -> Workload:
    """Load a workload by its file type: YAML (hwsim's layer list), CSV (a SCALE-Sim topology), ONNX (float
    graph: layer shapes).

    Raises
    ------
    SpecError
        Missing file, unknown extension, or a problem inside the file (named with its key/row).

    Warns
    -----
    ShapeWarning
        For each layer whose shape does not divide (input rows or columns no window covers), naming it.
    """
    wl = _load_workload(path)
    for w in wl.shape_warnings(str(path)):
        warnings.warn(w, ShapeWarning, stacklevel=2)
    return wl


def _load_workload(path: str | Path) -> Workload:
    p = input_file(path, "an existing workload file (.yaml, .csv or .onnx)", empty_ok=True)
    suffix = p.suffix.lower()
    if suffix in (".yaml", ".yml"):
        from .spec import load_workload_yaml

        return load_workload_yaml(p)
    if suffix == ".csv":
        from .frontends import read_topology_csv

        return read_topology_csv(p)
    if suffix == ".onnx":
        from .frontends import read_onnx_shapes

        return read_onnx_shapes(p)
    raise SpecError(str(p), "", "a .yaml, .csv (SCALE-Sim topology) or .onnx workload",
                    suffix or "no extension")


def write_layers_csv(res: SimResult, path: str | Path) -> Path:
    """One row per layer with the columns of :func:`hwsim._pipeline.layer_columns` (units in the names, see
    ``UNITS``)."""
    from ._pipeline import layer_columns

    return _write_csv(path, layer_columns(res.arch), res.rows)


def write_bandwidth_csv(res: SimResult, path: str | Path) -> Path:
    """Average and peak bytes per cycle through every memory level, one row per layer
    (:func:`hwsim._pipeline.bandwidth_rows`: SCALE-Sim's BANDWIDTH_REPORT in bytes)."""
    from ._pipeline import bandwidth_columns, bandwidth_rows

    return _write_csv(path, bandwidth_columns(res.arch), bandwidth_rows(res))


def write_energy_csv(res: SimResult, path: str | Path) -> Path:
    """Every action of every layer: ``layer, component, operand, action, count, unit, pj_each, energy_pj``."""
    return _write_csv(path, ["layer", "component", "operand", "action", "count", "unit", "pj_each",
                             "energy_pj"],
                      res.energy_records)


def write_graph_csvs(res: SimResult, out: str | Path) -> list[Path]:
    """``tensors.csv`` (one row per tensor: where it lived, from/to step and cycle, bytes it moved),
    ``vector.csv`` (one row per non-GEMM node: op counts, cycles, traffic, energy) when there are such nodes,
    and ``timeline.csv`` (node, unit, start and end cycle; ``dma`` rows: a layer's DRAM busy cycles from its
    start)."""
    from ._pipeline import TENSOR_COLUMNS, VECTOR_COLUMNS

    out = Path(out)
    paths = [_write_csv(out / "tensors.csv", list(TENSOR_COLUMNS), res.tensor_rows)]
    if res.vector_rows:
        paths.append(_write_csv(out / "vector.csv", list(VECTOR_COLUMNS), res.vector_rows))
    paths.append(_write_csv(out / "timeline.csv", ["node", "unit", "start_cycle", "stop_cycle"],
                            res.timeline))
    if res.core_rows:  # several cores (arch cores:): one row per core, with its roofline position
        from ._multicore import CORE_COLUMNS

        paths.append(_write_csv(out / "cores.csv", list(CORE_COLUMNS), res.core_rows))
    return paths


def _write_csv(path: str | Path, columns: list[str], rows: list[dict[str, Any]]) -> Path:
    # the csv module, not pandas: `hwsim simulate` stays light (pandas alone costs ~100 MB and 0.4 s)
    p = Path(path)
    with p.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return p


def summary_dict(res: SimResult, *, arch_source: str = "", workload_source: str = "") -> dict[str, Any]:
    """Totals (units in key names), the resolved arch, workload and quantization, and the hwsim version."""
    return {
        "hwsim_version": __version__,
        "arch_file": arch_source,
        "workload_file": workload_source,
        "totals": res.totals,
        "units": UNITS,
        "arch": res.arch.model_dump(mode="json"),
        "workload": res.workload.model_dump(mode="json"),
        "quantization": {name: {"weight_bits": w, "act_bits": a, "out_bits": o}
                         for name, (w, a, o) in res.bits.items()},
        "energy_per_action_pj": {
            "mult_8b": res.energies.mult_8b_pj, "add_acc": res.energies.add_acc_pj,
            "requant": res.energies.requant_pj, "read_per_access": res.energies.read_pj,
            "write_per_access": res.energies.write_pj, "dram_per_bit": res.energies.dram_pj_per_bit,
        },
        "energy_sources": res.energies.sources,
        **({"area_mm2": {**res.area.mm2, "total": res.area.total_mm2},
            "area_per_unit_um2": res.area.unit_um2, "area_units": res.area.units,
            "area_sources": res.area.sources} if res.area is not None else {}),
        "model_cpu_s": res.model_cpu_s,
        "timing_reuse": res.arch.timing.reuse,
        "tensors_on_chip": sum(1 for t in res.tensor_rows if t["level"] != "dram"),
        "tensors": len(res.tensor_rows),
        "notes": res.notes,
    }


def write_summary_json(res: SimResult, path: str | Path, **kw: str) -> Path:
    p = Path(path)
    p.write_text(json.dumps(summary_dict(res, **kw), indent=2, sort_keys=False) + "\n")
    return p
