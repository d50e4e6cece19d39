"""Build the reference RTL once per parameter set and run the cocotb testbench on a vectors folder.

Needs Icarus Verilog (Debian ``iverilog``) and cocotb (``pip install cocotb``); :func:`missing_tools` names
what is missing. The build directory is keyed by the parameters, so one build serves every run of that config.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

__all__ = ["RTL_SOURCE", "TOPLEVEL", "missing_tools", "run_cosim"]

#: The reference array's Verilog source.
RTL_SOURCE = Path(__file__).with_name("systolic_array.v")
#: Its top module.
TOPLEVEL = "hwsim_systolic_array"


def missing_tools() -> list[str]:
    """Packages the co-simulation needs that are not installed: ``iverilog`` (Debian), ``cocotb`` (pip)."""
    out = []
    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        out.append("iverilog (Debian package iverilog)")
    if importlib.util.find_spec("cocotb") is None or importlib.util.find_spec("cocotb_tools") is None:
        out.append("cocotb (pip install cocotb)")
    return out


def run_cosim(vectors: str | Path, parameters: dict, build_root: str | Path) -> dict:
    """Simulate ``hwsim_systolic_array`` with ``parameters`` on the vectors in ``vectors``.

    Returns the testbench's report: ``{"layers": [{"layer", "folds": [{"index", "rtl_cycles", "mismatches",
    "outputs"}]}]}`` (``rtl_cycles`` measured from the RTL's output port).

    Raises
    ------
    RuntimeError
        A tool is missing (message names the package) or the simulation did not write its report.
    """
    miss = missing_tools()
    if miss:
        raise RuntimeError("co-simulation needs " + " and ".join(miss))
    from cocotb_tools.runner import get_runner

    key = "_".join(f"{k}{v}" for k, v in sorted(parameters.items()))
    build = Path(build_root) / key
    runner = get_runner("icarus")
    runner.build(sources=[RTL_SOURCE], hdl_toplevel=TOPLEVEL, parameters=parameters, build_dir=build,
                 timescale=("1ns", "1ps"), log_file=build / "build.log")
    results = Path(vectors) / "rtl_results.json"
    if results.exists():
        results.unlink()
    # the testbench is imported as a top-level module from this folder (the runner passes this process's
    # sys.path to the simulator): importing it through the hwsim package would load numba and the whole
    # model into every simulation (seconds per run)
    here = str(RTL_SOURCE.parent)
    sys.path.insert(0, here)
    try:
        runner.test(hdl_toplevel=TOPLEVEL, test_module="tb_systolic", build_dir=build, test_dir=Path(vectors),
                    extra_env={"HWSIM_VECTORS": str(Path(vectors).resolve()),
                               "HWSIM_RESULTS": str(results.resolve())},
                    log_file=Path(vectors) / "sim.log")
    finally:
        sys.path.remove(here)
    if not results.exists():
        raise RuntimeError(f"the testbench wrote no report; see {Path(vectors) / 'sim.log'}")
    return json.loads(results.read_text())
