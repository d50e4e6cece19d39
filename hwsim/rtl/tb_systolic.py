"""cocotb testbench: drive ``hwsim_systolic_array`` from ``hwsim vectors`` files and check its outputs.

Reads ``$HWSIM_VECTORS/manifest.json`` and, per layer, the ``$readmemh`` hex files it names (one packed word
per cycle). Per fold, cycle ``c``: drive input line ``c`` on the falling edge, take rising edge ``c + 1``, and
compare the output port with line ``c`` of ``out_data`` / ``out_valid``; then run ``ROWS + COLS + 4`` idle
cycles, so that an output the RTL produces later than expected is seen (and counted) too. The RTL's cycle
count per fold is measured from its port: the edge of its last valid output, counting the edge that captures
the fold's first operand as 1. Writes ``$HWSIM_RESULTS`` (JSON: per layer and fold, measured cycles and
mismatches) and fails on any mismatch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge


def _hex(path: Path) -> list[int]:
    return [int(tok, 16) for tok in path.read_text().split()]


@cocotb.test()
async def run_vectors(dut):
    vdir = Path(os.environ["HWSIM_VECTORS"])
    manifest = json.loads((vdir / "manifest.json").read_text())
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    inputs = ("left_data", "left_valid", "left_last", "top_data", "load", "psum_in")
    for name in inputs:
        getattr(dut, name).value = 0
    dut.rst.value = 1
    for _ in range(2):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    report = []
    total_bad = 0
    for layer in manifest["layers"]:
        files = layer["files"]
        streams = {k: _hex(vdir / files[k]) for k in files if k != "stationary"}
        lanes, acc_bits = layer["lanes"]["out_data"][0], layer["lanes"]["out_data"][1]
        idle = layer["rows"] + layer["cols"] + 4
        folds = []
        for fold in layer["folds"]:
            off, n = fold["cycle_offset"], fold["cycles"]
            last_valid, bad, seen = 0, 0, 0
            for c in range(n + idle):
                await FallingEdge(dut.clk)
                for name in inputs:
                    if name in streams:
                        getattr(dut, name).value = streams[name][off + c] if c < n else 0
                await RisingEdge(dut.clk)
                await ReadOnly()
                valid = int(dut.out_valid.value.to_unsigned())
                data = int(dut.out_data.value.to_unsigned())
                exp_v = streams["out_valid"][off + c] if c < n else 0
                exp_d = streams["out_data"][off + c] if c < n else 0
                if valid:
                    last_valid = c + 1
                    seen += bin(valid).count("1")
                mask = (1 << acc_bits) - 1
                for lane in range(lanes):
                    v = (valid >> lane) & 1
                    if v != (exp_v >> lane) & 1 or (v and ((data >> (lane * acc_bits)) & mask)
                                                    != ((exp_d >> (lane * acc_bits)) & mask)):
                        bad += 1
            folds.append({"index": fold["index"], "rtl_cycles": last_valid, "mismatches": bad,
                          "outputs": seen})
            total_bad += bad
        report.append({"layer": layer["layer"], "folds": folds})
    out = os.environ.get("HWSIM_RESULTS")
    if out:
        Path(out).write_text(json.dumps({"layers": report}, indent=1) + "\n")
    assert total_bad == 0, f"{total_bad} output lanes differ from the vectors"
