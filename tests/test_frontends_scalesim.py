"""SCALE-Sim 3.0.0 importers: topology CSVs and .cfg files (no peer run here: see test_mapping_scalesim.py).

Fixtures in tests/data/scalesim/ are copies of SCALE-Sim files (MIT License, Copyright (c) 2024 SCALE-Sim
Project; see tests/data/scalesim/README.md) plus two small topologies written for these tests.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import pytest

from hwsim.errors import SpecError
from hwsim.frontends import (
    arch_from_scalesim_cfg,
    read_scalesim_cfg,
    read_topology_csv,
    scalesim_conv_padding,
    write_arch_yaml,
)
from hwsim.spec import Conv2d, Gemm, load_arch

DATA = Path(__file__).parent / "data" / "scalesim"
SHARED_CFGS = Path(__file__).resolve().parent / "data" / "scalesim" / "configs"  # SCALE-Sim's own configs


# ------------------------------------------------------------------------------------------ topology: content


def test_resnet18_conv_topology():
    w = read_topology_csv(DATA / "Resnet18.csv")
    assert w.name == "Resnet18" and len(w.layers) == 21
    assert (w.weight_bits, w.act_bits) == (8, 8)
    conv1 = w.layers[0]
    assert isinstance(conv1, Conv2d) and conv1.op == "conv2d"
    assert (conv1.in_channels, conv1.out_channels) == (3, 64)
    assert (conv1.kernel_hw, conv1.stride_hw) == ((7, 7), (2, 2))
    # SCALE-Sim: E = ceil((224 - 7 + 2) / 2) = 110 (its measured E_ofmap_px_per_filter is 12100 = 110^2);
    # PyTorch without padding would give floor(217 / 2) + 1 = 109, so the reader pads 1 at the bottom/right.
    assert conv1.pads == (0, 1, 0, 1) and conv1.out_hw == (110, 110)
    assert (conv1.gemm.m, conv1.gemm.k, conv1.gemm.n) == (12100, 147, 64)
    # Conv2_1a: 56x56, 3x3, stride 1 -> 54x54 with no padding (SCALE-Sim has none): M = 2916, K = 576
    c21 = w.layers[1]
    assert c21.name == "Conv2_1a" and c21.pads == (0, 0, 0, 0) and (c21.gemm.m, c21.gemm.k) == (2916, 576)
    # Conv3_s: 56x56, 1x1, stride 2: ceil((56 - 1 + 2) / 2) = 29 (measured E = 841 = 29^2)
    assert w.layers[7].name == "Conv3_s" and w.layers[7].gemm.m == 841
    fc = w.layers[-1]
    assert fc.name == "FC" and (fc.gemm.m, fc.gemm.k, fc.gemm.n) == (1, 512, 1000)
    # SCALE-Sim's own MAC total for this file (shared/reference/scalesim/measured_runs.csv, Resnet18 TOTAL)
    assert w.total_macs == 1_471_181_568


def test_gemm_topology_vit_s():
    w = read_topology_csv(DATA / "vit_s.csv")
    assert [layer.name for layer in w.layers] == ["L0", "L1", "L2", "L3", "L4"]
    assert all(isinstance(layer, Gemm) and layer.op == "gemm" for layer in w.layers)
    # header 'Layer,M,N,K,': row 'L0,196,192,384,' is M=196, N=192, K=384
    assert (w.layers[0].m, w.layers[0].n, w.layers[0].k) == (196, 192, 384)
    assert w.total_macs == 275_165_184  # SCALE-Sim's TOTAL row for vit_s (measured_runs.csv)


def test_depthwise_dp_layers_follow_scalesim_expansion():
    w = read_topology_csv(DATA / "peer_conv.csv")
    dp1 = next(layer for layer in w.layers if layer.name == "Conv_DP1")
    # 'Conv_DP1, 8, 8, 3, 3, 4, 1, 1': SCALE-Sim runs 4 layers of 1 channel x 1 filter, 6x6 outputs each
    assert dp1.op == "depthwise" and dp1.n_groups == 4 and dp1.out_channels == 4
    assert (dp1.gemm.m, dp1.gemm.k, dp1.gemm.n, dp1.gemm.groups) == (36, 9, 1, 4)
    dp2 = next(layer for layer in w.layers if layer.name == "Conv_DP2s2")
    # 'Conv_DP2s2, 9, 9, 3, 3, 3, 2, 2': Num Filter 2 is kept per channel by SCALE-Sim (depth multiplier 2):
    # 3 layers of (E = 4x4 = 16, K = 9, N = 2) -> out_channels = 6, groups = 3
    assert dp2.out_channels == 6 and dp2.n_groups == 3
    assert (dp2.gemm.m, dp2.gemm.k, dp2.gemm.n, dp2.gemm.groups) == (16, 9, 2, 3)
    assert dp2.gemm.macs == 3 * 16 * 9 * 2


def test_duplicate_names_and_sparsity_column():
    with pytest.warns(UserWarning, match=r"sparsity_gemm\.csv: N:M sparsity of 2 layer"):
        w = read_topology_csv(DATA / "sparsity_gemm.csv")
    assert [layer.name for layer in w.layers] == ["GEMM_1", "GEMM_1_2"]
    assert (w.layers[1].m, w.layers[1].n, w.layers[1].k) == (1, 5, 16)


def test_renamed_duplicates_never_collide(tmp_path):
    p = tmp_path / "dup.csv"
    p.write_text("Layer,M,N,K,\nA,1,2,3,\nA,1,2,3,\nA_2,1,2,3,\nA,1,2,3,\n")
    assert [layer.name for layer in read_topology_csv(p).layers] == ["A", "A_2", "A_2_2", "A_3"]


def test_dense_sparsity_column_is_silent_and_trailing_comma_optional(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
                 "Strides, Sparsity,\nA, 5, 5, 3, 3, 2, 6, 1, 1:1,\nB, 5, 5, 3, 3, 6, 4, 1\n\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w = read_topology_csv(p, name="tiny")
    assert w.name == "tiny" and [layer.gemm.m for layer in w.layers] == [9, 9]


def test_padding_reproduces_scalesim_output_size():
    assert scalesim_conv_padding(224, 7, 2) == 1
    assert scalesim_conv_padding(56, 3, 1) == scalesim_conv_padding(9, 3, 2) == 0
    for h in range(1, 40):
        for f in range(1, min(h, 11) + 1):
            for s in range(1, 6):
                p = scalesim_conv_padding(h, f, s)
                assert 0 <= p < s
                # topology_utils.py: ofmap_h = int(math.ceil((ifmap_h - filt_h + stride_h) / stride_h))
                assert (h + p - f) // s + 1 == math.ceil((h - f + s) / s)


# ------------------------------------------------------------------------------------------ topology: errors

CONV_HDR = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
            "Strides,\n")


def _err(tmp_path, text, name="topo.csv"):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(SpecError) as ei:
        read_topology_csv(p)
    return str(ei.value), p


def test_missing_file(tmp_path):
    with pytest.raises(SpecError, match=r"nope\.csv: expected an existing SCALE-Sim topology CSV, found no"):
        read_topology_csv(tmp_path / "nope.csv")


def test_bad_header(tmp_path):
    msg, p = _err(tmp_path, "name, h, w\nA, 1, 2\n")
    assert msg.startswith(f"{p}: row 1 (header): expected a SCALE-Sim conv header")
    assert "found 'name, h, w'" in msg


def test_extra_batch_column(tmp_path):
    # shipped transformer/transformer_fwd.csv names a 'batch size' column but leaves it empty: SCALE-Sim
    # ignores the header and runs it, so does the reader; a value in that column is an error (SCALE-Sim would
    # take it as the N:M sparsity and crash).
    p = tmp_path / "b.csv"
    p.write_text(CONV_HDR.rstrip("\n") + " Batch Size,\nA, 5, 5, 3, 3, 2, 6, 1,\n")
    assert [layer.gemm.m for layer in read_topology_csv(p).layers] == [9]
    msg, p = _err(tmp_path, CONV_HDR.rstrip("\n") + " Batch Size,\nA, 5, 5, 3, 3, 2, 6, 1, 4,\n")
    assert msg == (f"{p}: row 2 (A), column 'Batch Size': expected no field after 'Strides' but an N:M "
                   "'Sparsity' (SCALE-Sim 3.0.0 reads the field there as sparsity), found '4'")


def test_text_after_last_comma_is_dropped_as_in_scalesim(tmp_path):
    # shipped conv_nets/mobilnet_paper.csv: 'Conv2_dw, 112, 112, 3, 3, 1, 1, 1,#dw'
    p = tmp_path / "m.csv"
    p.write_text(CONV_HDR + "Conv2_dw, 12, 12, 3, 3, 1, 1, 1,#dw\nC, 5, 5, 3, 3, 2, 6, 1, 2:4\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # '2:4' without a trailing comma is dropped by SCALE-Sim too: dense
        w = read_topology_csv(p)
    assert [layer.gemm.m for layer in w.layers] == [100, 9]


def test_non_integer(tmp_path):
    msg, p = _err(tmp_path, CONV_HDR + "Conv1, 8, 8, 3, 3, 2, 4, 1,\nConv2_1a, 8, 8.5, 3, 3, 2, 4, 1,\n")
    assert msg == f"{p}: row 3 (Conv2_1a), column 'IFMAP Width': expected an integer, found '8.5'"


def test_zero_stride(tmp_path):
    msg, p = _err(tmp_path, CONV_HDR + "C, 8, 8, 3, 3, 2, 4, 0,\n")
    assert msg == f"{p}: row 2 (C), column 'Strides': expected an integer > 0, found 0"


def test_too_few_columns(tmp_path):
    msg, p = _err(tmp_path, CONV_HDR + "C, 8, 8, 3, 3, 2,\n")
    assert msg.startswith(f"{p}: row 2 (C): expected 8 comma-separated fields (Layer name, IFMAP Height")
    assert "found 6 fields" in msg


def test_too_many_columns(tmp_path):
    msg, p = _err(tmp_path, "Layer,M,N,K,\nG, 1, 2, 3, 1:1, 7,\n")
    assert msg.startswith(f"{p}: row 2 (G): expected 4 fields (Layer, M, N, K)") and "found 6 fields" in msg


def test_filter_larger_than_ifmap(tmp_path):
    msg, p = _err(tmp_path, CONV_HDR + "Big, 8, 4, 3, 5, 2, 4, 1,\n")
    assert msg.startswith(f"{p}: row 2 (Big), column 'Filter Width': expected a filter no larger than the "
                          "ifmap (IFMAP Width = 4)")
    assert msg.endswith("found 5")


def test_bad_sparsity(tmp_path):
    msg, p = _err(tmp_path, "Layer,M,N,K,Sparsity,\nG, 1, 2, 3, 5:4,\n")
    assert msg == f"{p}: row 2 (G), column 'Sparsity': expected an N:M ratio with 0 < N <= M, found '5:4'"


def test_header_only(tmp_path):
    msg, p = _err(tmp_path, "Layer,M,N,K,\n\n")
    assert msg == f"{p}: expected at least one layer row after the header, found none"


# ------------------------------------------------------------------------------------------ cfg


def test_read_scale_cfg():
    cfg = read_scalesim_cfg(DATA / "scale.cfg")
    a = cfg["architecture_presets"]
    assert (a["ArrayHeight"], a["ArrayWidth"], a["Dataflow"]) == (32, 32, "ws")
    assert (a["IfmapSramSzkB"], a["FilterSramSzkB"], a["OfmapSramSzkB"]) == (64, 64, 64)
    assert a["Bandwidth"] == [10] and a["MemoryBanks"] == 1
    assert cfg["layout"]["IfmapCustomLayout"] is False and cfg["layout"]["FilterSRAMBankBandwidth"] == 10
    assert cfg["sparsity"]["SparsitySupport"] is False
    assert cfg["run_presets"] == {"InterfaceBandwidth": "CALC", "UseRamulatorTrace": False}


def test_arch_from_calc_cfg():
    arch = arch_from_scalesim_cfg(DATA / "scale.cfg")
    assert arch.name == "scale_example_run_32x32_ws"
    assert (arch.array.rows, arch.array.cols, arch.array.dataflow) == (32, 32, "ws")
    for sram in (arch.memory.ifmap_sram, arch.memory.filter_sram, arch.memory.ofmap_sram):
        assert (sram.size_kib, sram.word_bits) == (64, 8)
    assert arch.memory.double_buffered
    assert arch.memory.dram.bandwidth_bytes_per_cycle == "unbounded"  # CALC mode: no bandwidth stalls
    assert arch.timing.convention == "scalesim"
    assert (arch.pe.operand_bits, arch.pe.acc_bits, arch.pe.precision_mode) == (8, 32, "fixed")
    assert "scale.cfg" in arch.source


def test_arch_from_user_cfg_google():
    # google.cfg: 256x256 os, 6144/6144/2048 kB, USER mode, Ifmap/FilterSRAMBankBandwidth 10 words/cycle
    arch = arch_from_scalesim_cfg(DATA / "google.cfg", clock_mhz=700)
    assert (arch.array.rows, arch.array.cols, arch.array.dataflow) == (256, 256, "os")
    mem = arch.memory
    assert [s.size_kib for s in (mem.ifmap_sram, mem.filter_sram, mem.ofmap_sram)] == [6144, 6144, 2048]
    assert arch.memory.dram.bandwidth_bytes_per_cycle == 10.0 and arch.clock_mhz == 700


def test_user_bandwidth_is_min_of_read_ports(tmp_path):
    text = (DATA / "google.cfg").read_text()
    # 4 words/cycle over 2 banks (SCALE-Sim asserts that the bandwidth divides by the banks)
    text = text.replace("FilterSRAMBankBandwidth: 10", "FilterSRAMBankBandwidth: 4").replace(
        "FilterSRAMBankNum: 10", "FilterSRAMBankNum: 2")
    p = tmp_path / "g.cfg"
    p.write_text(text)
    assert arch_from_scalesim_cfg(p).memory.dram.bandwidth_bytes_per_cycle == 4.0


def test_eyeriss_cfg_without_layout_section():
    arch = arch_from_scalesim_cfg(DATA / "eyeriss.cfg")
    assert (arch.array.rows, arch.array.cols, arch.array.dataflow) == (12, 14, "ws")
    assert arch.memory.ifmap_sram.size_kib == 36


def test_sparsity_cfg_warns():
    with pytest.warns(UserWarning, match=r"sparsity\.SparsitySupport not modelled"):
        arch = arch_from_scalesim_cfg(DATA / "sparsity.cfg")
    assert (arch.array.rows, arch.array.cols) == (128, 128)


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.cfg")))
def test_write_arch_yaml_round_trip(tmp_path, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arch = arch_from_scalesim_cfg(DATA / name)
    out = write_arch_yaml(arch, tmp_path / "arch.yaml", comment="imported for a test")
    text = out.read_text()
    assert text.startswith("# imported for a test\n# source: SCALE-Sim 3.0.0 cfg ")
    assert name in text.splitlines()[1]
    assert load_arch(out) == arch


def test_every_shipped_cfg_reads():
    names = sorted(p.name for p in SHARED_CFGS.glob("*.cfg"))
    assert len(names) >= 10
    # scale_layout.cfg runs USER mode with Bandwidth 64 over IfmapSRAMBankNum 10: SCALE-Sim 3.0.0 itself
    # asserts there (memory/read_buffer.py, set_params: bw_per_bank * num_bank == bandwidth, 6 * 10 != 64)
    refused_as_scalesim_does = {"scale_layout.cfg": "expected a bandwidth divisible by layout.IfmapSRAMBankNum (10)"}
    for n in names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if n in refused_as_scalesim_does:
                with pytest.raises(SpecError, match=re.escape(refused_as_scalesim_does[n])):
                    arch_from_scalesim_cfg(SHARED_CFGS / n)
                continue
            arch = arch_from_scalesim_cfg(SHARED_CFGS / n)
        assert arch.array.rows > 0 and arch.timing.convention == "scalesim"


def _cfg_err(tmp_path, old, new):
    text = (DATA / "scale.cfg").read_text()
    assert old in text
    p = tmp_path / "bad.cfg"
    p.write_text(text.replace(old, new))
    with pytest.raises(SpecError) as ei:
        arch_from_scalesim_cfg(p)
    return str(ei.value), p


def test_cfg_missing_file(tmp_path):
    with pytest.raises(SpecError, match=r"none\.cfg: expected an existing SCALE-Sim \.cfg file, found no"):
        read_scalesim_cfg(tmp_path / "none.cfg")


def test_cfg_non_integer(tmp_path):
    msg, p = _cfg_err(tmp_path, "ArrayHeight:    32", "ArrayHeight: 3x2")
    assert msg == f"{p}: architecture_presets.ArrayHeight: expected an integer, found '3x2'"


def test_cfg_unknown_key(tmp_path):
    msg, p = _cfg_err(tmp_path, "Dataflow : ws", "Dataflow : ws\nArrayDepth: 4")
    assert msg.startswith(f"{p}: architecture_presets.ArrayDepth: expected one of the keys of "
                          "[architecture_presets] (ArrayHeight, ArrayWidth")
    assert msg.endswith("found unknown key 'ArrayDepth'")


def test_cfg_unknown_section(tmp_path):
    msg, p = _cfg_err(tmp_path, "[sparsity]", "[sparsty]")
    assert msg.startswith(f"{p}: sparsty: expected one of the SCALE-Sim sections (general, ")
    assert msg.endswith("found unknown section [sparsty]")


def test_cfg_bad_dataflow(tmp_path):
    msg, p = _cfg_err(tmp_path, "Dataflow : ws", "Dataflow : rs")
    assert msg == f"{p}: architecture_presets.Dataflow: expected one of os, ws, is, found 'rs'"


def test_cfg_missing_key(tmp_path):
    msg, p = _cfg_err(tmp_path, "ArrayWidth:     32\n", "")
    assert msg == f"{p}: architecture_presets.ArrayWidth: expected this key to be given, found nothing"


def test_cfg_bad_bool(tmp_path):
    msg, p = _cfg_err(tmp_path, "IfmapCustomLayout: False", "IfmapCustomLayout: maybe")
    assert msg == f"{p}: layout.IfmapCustomLayout: expected True or False, found 'maybe'"


def test_cfg_bad_mode(tmp_path):
    msg, p = _cfg_err(tmp_path, "InterfaceBandwidth: CALC", "InterfaceBandwidth: FAST")
    assert msg == f"{p}: run_presets.InterfaceBandwidth: expected CALC or USER, found 'FAST'"


def test_cfg_user_mode_needs_bank_bandwidth(tmp_path):
    text = (DATA / "google.cfg").read_text().replace("IfmapSRAMBankBandwidth: 10\n", "")
    p = tmp_path / "g.cfg"
    p.write_text(text)
    with pytest.raises(SpecError, match=r"g\.cfg: layout\.IfmapSRAMBankBandwidth: expected this key to be "
                                        r"given \(InterfaceBandwidth is USER"):
        arch_from_scalesim_cfg(p)


def test_cfg_duplicate_key(tmp_path):
    msg, p = _cfg_err(tmp_path, "Dataflow : ws", "Dataflow : ws\nDataflow : os")
    assert msg.startswith(f"{p}: architecture_presets.Dataflow: expected each key once per section")
    msg, p = _cfg_err(tmp_path, "Dataflow : ws", "Dataflow : ws\ndataflow : os")
    assert msg == (f"{p}: architecture_presets.Dataflow: expected each key once per section, found "
                   "'Dataflow' twice (spelt 'dataflow' the second time)")


def test_cfg_syntax_error(tmp_path):
    msg, p = _cfg_err(tmp_path, "[general]", "general]")
    assert msg.startswith(f"{p}: expected a valid INI file (SCALE-Sim .cfg), found a syntax error")


SHARED_TOPOLOGIES = SHARED_CFGS.parent / "topologies"


def _scalesim_parse(path: Path, gemm: bool):
    """SCALE-Sim's own parser (topology_utils.topologies, no simulation): (E, window, filters) per layer, or
    None when it fails."""
    import contextlib
    import io

    from scalesim.topology_utils import topologies

    t = topologies()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            t.load_arrays(str(path), mnk_inputs=gemm)
            t.topo_calc_hyperparams()
        return [(t.get_layer_num_ofmap_px(i) // t.get_layer_num_filters(i), t.get_layer_window_size(i),
                 t.get_layer_num_filters(i)) for i in range(t.num_layers)]
    except Exception:  # noqa: BLE001 - SCALE-Sim fails with IndexError, ValueError, AssertionError...
        return None


def test_every_shipped_topology_reads_as_scalesim_reads_it(tmp_path):
    """All ~130 shipped topology CSVs: wherever SCALE-Sim's own parser reads a file, the reader gives the same
    GEMMs, (E, window, filters) per SCALE-Sim layer with DP layers expanded; where it fails, the reader raises
    a SpecError, except for its one leniency: a row without the trailing comma SCALE-Sim needs
    (conv_nets/MobileNet_4k_non_dw.csv, mobilnet_4k.csv, mobilnet_reduce_run.csv). For those, SCALE-Sim reads
    a copy with the comma added exactly as the reader reads the original."""
    pytest.importorskip("scalesim")
    n_same, lenient = 0, []
    for p in sorted(SHARED_TOPOLOGIES.rglob("*.csv")):
        lines = p.read_text(encoding="utf-8-sig", errors="replace").splitlines()
        gemm = bool(lines) and [x.strip().lower() for x in lines[0].split(",")][1:4] == ["m", "n", "k"]
        peer = _scalesim_parse(p, gemm)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                w = read_topology_csv(p)
            ours = [(layer.gemm.m, layer.gemm.k, layer.gemm.n) for layer in w.layers
                    for _ in range(layer.gemm.groups)]
        except SpecError:
            ours = None
        if peer is None and ours is not None:
            ncol = 4 if gemm else 8
            fixed = [ln + "," if i and ln.strip() and not ln.rstrip().endswith(",")
                     and len(ln.split(",")) == ncol else ln for i, ln in enumerate(lines)]
            copy = tmp_path / p.name
            copy.write_text("\n".join(fixed) + "\n")
            peer = _scalesim_parse(copy, gemm)
            lenient.append(p.name)
        assert ours == peer, p
        n_same += peer is not None
    assert n_same >= 100
    assert sorted(lenient) == ["MobileNet_4k_non_dw.csv", "mobilnet_4k.csv", "mobilnet_reduce_run.csv"]
