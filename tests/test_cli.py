"""The hwsim command: the files of the contract (shared/DESIGN.md), exit codes, one-line errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pandas as pd
import pytest

from hwsim.cli import main

from .utils import ROOT

CONTRACT_COLUMNS = ["layer", "op", "macs", "weight_bits", "act_bits", "compute_cycles", "stall_cycles",
                    "total_cycles", "utilization", "sram_ifmap_reads", "sram_filter_reads",
                    "sram_ofmap_writes",
                    "dram_read_bytes", "dram_write_bytes", "energy_pj", "energy_mac_pj", "energy_dram_pj"]


def test_simulate_resnet18_writes_the_three_files(tmp_path, capsys):
    rc = main(["simulate", str(ROOT / "arch/edge_32x32.yaml"), str(ROOT / "workloads/resnet18.yaml"),
               "--out", str(tmp_path)])
    assert rc == 0
    df = pd.read_csv(tmp_path / "layers.csv")
    assert set(CONTRACT_COLUMNS) <= set(df.columns)
    assert len(df) == 21 and df["macs"].sum() == 1_814_073_344
    # totals add up, energy components add up to the total
    comp = [c for c in df.columns if c.startswith("energy_") and c != "energy_pj"]
    assert (df[comp].sum(axis=1) - df["energy_pj"]).abs().max() < 1e-6 * df["energy_pj"].max()
    assert (df["compute_cycles"] + df["stall_cycles"] == df["total_cycles"]).all()
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["totals"]["total_cycles"] == df["total_cycles"].sum()
    assert s["arch"]["name"] == "edge_32x32" and s["workload"]["name"] == "resnet18"
    assert s["quantization"]["conv1"] == {"weight_bits": 8, "act_bits": 8, "out_bits": 8}
    assert "hwsim_version" in s and "model_cpu_s" in s["totals"]
    html = (tmp_path / "report.html").read_text()
    # self-contained: plotly.js inline, no script loaded from anywhere
    assert re.search(r"<script[^>]*\bsrc=", html) is None and "Plotly.newPlot" in html
    assert "wrote" in capsys.readouterr().out


def test_uniform_bits_halve_the_traffic(tmp_path):
    main(["simulate", str(ROOT / "arch/edge_32x32.yaml"), str(ROOT / "workloads/resnet18.yaml"), "--wbits",
          "4", "--abits", "4", "--out", str(tmp_path / "w4")])
    main(["simulate", str(ROOT / "arch/edge_32x32.yaml"), str(ROOT / "workloads/resnet18.yaml"),
          "--out", str(tmp_path / "w8")])
    w4 = pd.read_csv(tmp_path / "w4/layers.csv")
    w8 = pd.read_csv(tmp_path / "w8/layers.csv")
    # the fc layer's operands fit their buffers at both widths: exactly half the bytes (512 + 512*1000 weights
    # at 8 bits = 512,512 B; at 4 bits 256,256 B)
    fc4, fc8 = w4[w4.layer == "fc"].iloc[0], w8[w8.layer == "fc"].iloc[0]
    assert (fc8["dram_read_bytes"], fc4["dram_read_bytes"]) == (512_512, 256_256)
    # a fixed-precision PE takes the same MAC cycles at 4 bits (steady cycles per fold = the streamed
    # dimension); only the fill/drain of extra M tiles differs, where the mapper tiles to keep a tile's ifmap
    # rows on chip (4-bit rows fit where 8-bit ones do not); the MAC energy is a quarter (4*4 vs 8*8
    # multiplies) plus the same 32-bit accumulator add: 0.05 + 0.1 vs 0.2 + 0.1 pJ per MAC
    assert (w4["steady_cycles"] == w8["steady_cycles"]).all()
    same_tiles = w4["m_tiles"] == w8["m_tiles"]
    assert same_tiles.sum() >= 15 and (w4["compute_cycles"] == w8["compute_cycles"])[same_tiles].all()
    # and never more DRAM bytes at 4 bits, layer by layer
    assert (w4["dram_read_bytes"] + w4["dram_write_bytes"]
            <= w8["dram_read_bytes"] + w8["dram_write_bytes"]).all()
    assert fc4["energy_mac_pj"] / fc8["energy_mac_pj"] == pytest.approx(0.15 / 0.3)


def test_bad_input_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "a.yaml"
    bad.write_text((ROOT / "arch/edge_32x32.yaml").read_text().replace("rows: 32", "rows: -1"))
    r = subprocess.run([sys.executable, "-m", "hwsim", "simulate", str(bad),
                        str(ROOT / "workloads/resnet18.yaml"),
                        "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip() == f"hwsim: error: {bad}: array.rows: expected a value greater than 0, found -1"
    r = subprocess.run([sys.executable, "-m", "hwsim", "simulate", str(ROOT / "arch/edge_32x32.yaml"),
                        str(tmp_path / "missing.yaml")], capture_output=True, text=True)
    assert r.returncode == 2 and "missing.yaml: expected an existing workload file" in r.stderr
    assert not (tmp_path / "o").exists()


def test_infeasible_bits_exit_2(tmp_path, capsys):
    rc = main(["simulate", str(ROOT / "arch/tpu_v1.yaml"), str(ROOT / "workloads/resnet18.yaml"), "--wbits",
               "4", "--out", str(tmp_path)])
    assert rc == 2
    assert "arch/tpu_v1.yaml: pe: expected operands of 8..8 bits (min_bits..operand_bits, " \
           "precision_mode fixed), " \
           "found weight_bits 4 in layer conv1" in capsys.readouterr().err


def test_quant_yaml_sets_per_layer_bits(tmp_path):
    q = tmp_path / "q.yaml"
    q.write_text("weight_bits: 8\nlayers:\n  fc: {weight_bits: 4}\n")
    assert main(["simulate", str(ROOT / "arch/edge_32x32.yaml"), str(ROOT / "workloads/resnet18.yaml"),
                 "--quant", str(q), "--out", str(tmp_path / "o")]) == 0
    df = pd.read_csv(tmp_path / "o/layers.csv")
    assert df.set_index("layer").loc["fc", "weight_bits"] == 4
    assert df.set_index("layer").loc["conv1", "weight_bits"] == 8
    q.write_text("layers:\n  fc9: {weight_bits: 4}\n")
    assert main(["simulate", str(ROOT / "arch/edge_32x32.yaml"), str(ROOT / "workloads/resnet18.yaml"),
                 "--quant", str(q), "--out", str(tmp_path / "o2")]) == 2
