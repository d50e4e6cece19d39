"""SCALE-Sim 3.0.0's CALC-mode DRAM counts (hwsim.mapping.scalesim_dram_counts) against SCALE-Sim itself.

Fast tests pin the two counting rules by hand; the slow tests run SCALE-Sim (Python API, as
tests/test_mapping_scalesim.py does) on held-back shapes that no other test uses: odd arrays 7x13 os, 40x24 ws,
64x4 is; a 3x5, a 1x1, a strided 9x9 and a depthwise conv; an attention-sized GEMM and an M = 1 decode GEMM;
with SCALE-Sim's default 64 kB buffers and with 1/2/1 kB buffers that make its read buffers forget and its
write buffer drain many times. Every DRAM count must be equal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwsim.frontends import arch_from_scalesim_cfg, read_topology_csv
from hwsim.mapping import map_layer, scalesim_dram_counts
from hwsim.mapping._scalesim_memory import _epoch_misses, _write_kernel_py
from hwsim.spec import Conv2d

from .test_mapping_scalesim import _run_scalesim, _write_cfg

CONV = """Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,
Conv3x5, 14, 16, 3, 5, 6, 10, 1,
Conv1x1, 9, 9, 1, 1, 24, 18, 1,
Conv9x9s2, 21, 21, 9, 9, 2, 5, 2,
Conv_DP3, 11, 11, 3, 3, 3, 1, 1,
"""
GEMM = """Layer,M,N,K,
Gattn, 64, 48, 32,
Gdecode, 1, 96, 80,
"""
ARRAYS = [(7, 13, "os"), (40, 24, "ws"), (64, 4, "is")]
SIZES = [("64", "64", "64"), ("1", "2", "1")]


def test_read_buffer_forgets_every_window_misses():
    # stream 0 1 2 0 1 2. window 2: 0 1 miss -> forget; 2 0 miss -> forget; 1 2 miss: 6 reads.
    # window 4: 0 1 2 miss (3 < 4, nothing forgotten), then 0 1 2 hit: 3 reads. window 0 never forgets: 3.
    s = np.array([0, 1, 2, 0, 1, 2])
    assert [_epoch_misses(s, w) for w in (2, 3, 4, 0)] == [6, 6, 3, 3]


def test_write_buffer_counts_padded_lines():
    # a 4-word buffer (drain half D = 4 - ceil(4/2) = 2 words, L = ceil(2/3) = 1 line of 3 words) written one
    # word per cycle at cycles 0..4: the 1st word leaves 3 free (not < 2); the 2nd leaves 2 (not < 2); the 3rd
    # leaves 1 < 2: the full line [w0 w1 w2] drains (3 words, ends at cycle 2 + 1 - 1 = 2), free 4; the 4th
    # (cycle 3) leaves 3; the 5th leaves 2; at the end [w3 w4 -1] drains counting 2: 5 words.
    assert _write_kernel_py([0, 1, 2, 3, 4], 4, 3) == 5
    # two words per cycle, 4 cycles, same buffer: w0 w1 (cycle 0: free 2, no drain), w2 (cycle 1: free 1 < 2):
    # line [w0 w1 w2] drains (ends at cycle 1), free 4; w3 (cycle 1: the drain has ended, free 3), w4 (cycle 2,
    # free 2), w5 (cycle 2) closes [w3 w4 w5], free 1 < 2: drains 3; w6 w7 drain at the end: 3 + 3 + 2 = 8.
    assert _write_kernel_py([0, 0, 1, 1, 2, 2, 3, 3], 4, 3) == 8


def test_ws_writes_every_row_folds_partial_sums_by_hand():
    # Conv3x5 on 40x24 ws: M = 12 x 12 = 144 output pixels, N = 10 filters, K = 3 x 5 x 6 = 90 -> 3 row folds of
    # 40. SCALE-Sim writes each output's partial sum once per row fold to DRAM: 144 x 10 x 3 = 4,320 words;
    # hwsim writes the 1,440 outputs once (partial sums stay in the 64 kB ofmap buffer).
    arch = _arch(40, 24, "ws")
    layer = read_topology_csv(_topo_file(CONV)).layers[0]
    assert scalesim_dram_counts(layer, arch).ofmap_writes == 4320
    assert map_layer(layer, arch, weight_bits=8, act_bits=8).traffic.dram_write_bytes("ofmap") == 1440


def _topo_file(text: str) -> Path:
    import tempfile
    p = Path(tempfile.mkdtemp()) / ("conv.csv" if "Height" in text else "gemm.csv")
    p.write_text(text)
    return p


def _arch(r: int, c: int, df: str, sizes=SIZES[0]):
    import tempfile
    d = Path(tempfile.mkdtemp())
    cfg = _write_cfg(d, r, c, df, IfmapSramSzkB=sizes[0], FilterSramSzkB=sizes[1], OfmapSramSzkB=sizes[2])
    return arch_from_scalesim_cfg(cfg)


@pytest.mark.slow
@pytest.mark.parametrize("sizes", SIZES, ids=["64kB", "1-2-1kB"])
@pytest.mark.parametrize("r,c,df", ARRAYS, ids=[f"{r}x{c}-{d}" for r, c, d in ARRAYS])
def test_dram_counts_match_scalesim(tmp_path, r, c, df, sizes):
    pytest.importorskip("scalesim.scale_sim")
    cfg = _write_cfg(tmp_path, r, c, df, IfmapSramSzkB=sizes[0], FilterSramSzkB=sizes[1], OfmapSramSzkB=sizes[2])
    arch = arch_from_scalesim_cfg(cfg)
    for text, gemm in ((CONV, False), (GEMM, True)):
        topo = tmp_path / ("conv.csv" if not gemm else "gemm.csv")
        topo.write_text(text)
        rows = _run_scalesim(tmp_path, cfg, topo, gemm)
        i = 0
        for layer in read_topology_csv(topo).layers:
            n = layer.n_groups if isinstance(layer, Conv2d) and layer.op == "depthwise" else 1
            chunk, i = rows[i:i + n], i + n
            want = [sum(int(float(x[k])) for x in chunk)
                    for k in ("DRAM IFMAP Reads", "DRAM Filter Reads", "DRAM OFMAP Writes")]
            got = scalesim_dram_counts(layer, arch)
            assert [got.ifmap_reads, got.filter_reads, got.ofmap_writes] == want, f"{layer.name} {r}x{c} {df}"
        assert i == len(rows)
