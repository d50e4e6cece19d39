"""Cell counts from synthesis: Yosys maps one PE (and its multiplier alone) to a generic gate library.

``yosys`` (Debian package ``yosys``) runs ``synth -flatten`` and ``abc -g AND,NAND,OR,NOR,XOR,XNOR,MUX`` (two-
input gates, 2:1 muxes, inverters) on ``systolic_array.v`` (``hwsim_pe``) or ``pe_area.v`` (``hwsim_mult``,
``hwsim_fusion_pe``, ``hwsim_fixed8_pe``); flip-flops stay Yosys ``$_DFF_*`` / ``$_SDFF_*`` cells. Results:
``docs/validation_area.md``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["synth_cells", "area_study", "GATES"]

#: The generic gate set handed to ABC.
GATES = "AND,NAND,OR,NOR,XOR,XNOR,MUX"
_HERE = Path(__file__).parent


def synth_cells(module: str, parameters: dict | None = None, *, timeout: float = 300.0) -> dict:
    """Synthesise ``module`` with ``parameters``; return ``{"cells", "flops", "gates", "by_type"}``.

    ``cells``: all cells; ``flops``: flip-flop cells (one per stored bit); ``gates``: the rest (combinational
    two-input gates, muxes and inverters); ``by_type``: Yosys cell type -> count.

    Raises
    ------
    RuntimeError
        ``yosys`` is not installed (naming the Debian package) or synthesis failed.
    """
    exe = shutil.which("yosys")
    if exe is None:
        raise RuntimeError("synthesis needs yosys (Debian package yosys)")
    src = _HERE / ("systolic_array.v" if module == "hwsim_pe" else "pe_area.v")
    with tempfile.TemporaryDirectory(prefix="hwsim_yosys_") as tmp:
        out = Path(tmp) / "stat.json"
        chparam = ""
        if parameters:
            sets = " ".join(f"-set {k} {int(v)}" for k, v in sorted(parameters.items()))
            chparam = f"chparam {sets} {module}\n"
        script = (f"read_verilog -sv {src}\n{chparam}synth -flatten -top {module}\n"
                  f"abc -g {GATES}\nopt_clean\ntee -q -o {out} stat -json\n")
        (Path(tmp) / "run.ys").write_text(script)
        r = subprocess.run([exe, "-q", "-s", str(Path(tmp) / "run.ys")], capture_output=True, text=True,
                           timeout=timeout)
        if r.returncode != 0 or not out.exists():
            raise RuntimeError(f"yosys failed on {module}: {(r.stderr or r.stdout).strip()[-500:]}")
        stat = json.loads(out.read_text())["design"]
    by_type = {k.strip("$_"): int(v) for k, v in stat["num_cells_by_type"].items()}
    flops = sum(v for k, v in by_type.items() if "DFF" in k)
    return {"cells": int(stat["num_cells"]), "flops": flops, "gates": int(stat["num_cells"]) - flops,
            "by_type": by_type}


def _arch(**pe):
    from ..spec import ArchSpec, validate

    data = {"name": "area", "clock_mhz": 100, "array": {"rows": 1, "cols": 1, "dataflow": "ws"},
            "pe": {"operand_bits": 8, "acc_bits": 32, **pe},
            "memory": {f"{op}_sram": {"size_kib": 1} for op in ("ifmap", "filter", "ofmap")}}
    return validate(ArchSpec, data, "<area>")


def area_study(widths=(2, 4, 8, 16), acc_bits: int = 32) -> dict:
    """Yosys cell counts against the technology table's area (``hwsim.energy.area_breakdown``, default table).

    Returns ``{"widths": [{"bits", "mult_cells" (signed), "umult_cells" (unsigned), "pe_cells", "pe_flops",
    "table_mult_um2", "table_pe_um2"}],
    "fusion": {"fixed8_cells", "fusion_cells", "table_fixed8_um2", "table_fusion_um2"}}``; the PE is
    ``hwsim_pe`` (ws, operands ``bits`` wide, ``acc_bits`` accumulator), the table's PE its multiplier, adder
    and ``2 bits + acc_bits`` flip-flops.
    """
    from ..energy import area_breakdown, load_tech

    tech = load_tech("horowitz_45nm")
    rows = []
    for b in widths:
        m = synth_cells("hwsim_mult", {"A_BITS": b, "B_BITS": b, "SIGNED": 1})
        mu = synth_cells("hwsim_mult", {"A_BITS": b, "B_BITS": b, "SIGNED": 0})
        pe = synth_cells("hwsim_pe", {"DATAFLOW": 1, "L_BITS": b, "T_BITS": b, "ACC_BITS": acc_bits})
        arch = _arch(operand_bits=b, min_bits=min(2, b), acc_bits=acc_bits)
        table_pe = area_breakdown(arch).unit_um2["mac"]
        rows.append({"bits": b, "mult_cells": m["cells"], "umult_cells": mu["cells"], "pe_cells": pe["cells"],
                     "pe_flops": pe["flops"],
                     "table_mult_um2": tech.mult_um2(b, b), "table_pe_um2": table_pe})
    fx = synth_cells("hwsim_fixed8_pe", {"ACC_BITS": acc_bits})
    fu = synth_cells("hwsim_fusion_pe", {"ACC_BITS": acc_bits})
    t_fx = area_breakdown(_arch(acc_bits=acc_bits)).unit_um2["mac"]
    t_fu = area_breakdown(_arch(acc_bits=acc_bits, precision_mode="bit_fusion", brick_bits=2)).unit_um2["mac"]
    return {"widths": rows, "fusion": {"fixed8_cells": fx["cells"], "fusion_cells": fu["cells"],
                                       "table_fixed8_um2": t_fx, "table_fusion_um2": t_fu}}
