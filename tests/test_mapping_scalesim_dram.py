"""SCALE-Sim 3.0.0's memory model (hwsim.mapping.scalesim_memory) against SCALE-Sim itself.

Fast tests pin the counting rules by hand; the slow tests run SCALE-Sim (Python API, as
tests/test_mapping_scalesim.py does) on held-back shapes that no other test uses: odd arrays 7x13 os, 40x24
ws, 64x4 is; a 3x5, a 1x1, a strided 9x9 and a depthwise conv; an attention-sized GEMM and an M = 1 decode
GEMM.
CALC mode with SCALE-Sim's default 64 kB buffers and with 1/2/1 kB buffers that make its read buffers forget
and its write buffer drain many times; USER mode with 6/4/2 kB buffers and 3/5/4 words per cycle (the
issue's config) and with 1/1/1 kB at 10 words per cycle. Every DRAM count, stall and total must be equal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwsim.frontends import arch_from_scalesim_cfg, read_topology_csv
from hwsim.mapping import map_layer, scalesim_memory
from hwsim.mapping._scalesim_memory import _epoch_misses, _UserReadBuffer, _WriteBuffer
from hwsim.spec import Conv2d

from .test_mapping_scalesim import _run_scalesim, _write_cfg

CONV = """Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,
Conv3x5, 10, 12, 3, 5, 6, 10, 1,
Conv1x1, 9, 9, 1, 1, 24, 18, 1,
Conv9x9s2, 17, 17, 9, 9, 2, 5, 2,
Conv_DP3, 9, 9, 3, 3, 3, 1, 1,
"""
GEMM = """Layer,M,N,K,
Gattn, 64, 48, 32,
Gdecode, 1, 96, 80,
"""
ARRAYS = [(7, 13, "os"), (40, 24, "ws"), (64, 4, "is")]
SIZES = [("64", "64", "64"), ("1", "2", "1")]
# (ifmap, filter, ofmap kB), USER ports (ifmap, filter, ofmap words per cycle) or None for CALC
CONFIGS = [(SIZES[0], None), (SIZES[1], None), (("6", "4", "2"), (3, 5, 4)), (("1", "1", "1"), (10, 10, 10))]


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
    wb = _WriteBuffer(4, 3)
    assert [wb.write_row(1, c) for c in range(5)] == [0, 1, 2, 3, 4]
    wb.finish(5)
    assert wb.counted == 5
    # two words per cycle, 4 cycles, same buffer: w0 w1 (cycle 0: free 2, no drain), w2 (cycle 1: free 1 < 2):
    # line [w0 w1 w2] drains (ends at cycle 1), free 4; w3 (cycle 1: the drain has ended, free 3), w4
    # (cycle 2, free 2), w5 (cycle 2) closes [w3 w4 w5], free 1 < 2: drains 3; w6 w7 drain at the end:
    # 3 + 3 + 2 = 8.
    wb = _WriteBuffer(4, 3)
    for c in range(4):
        wb.write_row(2, c)
    wb.finish(4)
    assert wb.counted == 8


def test_user_read_buffer_counts_positive_waits_twice():
    # fetch order 0..7, a 4-word buffer, 1 word per cycle: sets of ceil(4/100) = 1 word, an active window of
    # ceil(2/1) = 2 sets, refills of 2 sets; the first fill (2 words) ends the cycle before the first request.
    # One row asks for words 0..5 in cycle 0 (hit latency 1). 0, 1 hit; 2 misses: a refill of 2 words is
    # requested in cycles 0, 1 and arrives at 1 + 1 = 2, a wait of 2 - (0 + 1) = 1 cycle, which SCALE-Sim adds
    # twice (offset 3); 3 hits; 4 misses: the next refill arrives at 2 + 2 + 1 = 5, a wait of 5 - (0 + 3) = 2,
    # added twice (offset 7); 5 hits. Reported stall 7 - 1 = 6; words physically there at cycle 5: stall 4.
    # DRAM reads: 2 + 2 + 2 = 6 words.
    b = _UserReadBuffer(np.arange(8), 4, 1)
    assert b.read_row([0, 1, 2, 3, 4, 5], 0) == 6
    assert b.reads == 6
    # a refill that arrives early makes the wait negative: SCALE-Sim then serves the row early (stall -1)
    b = _UserReadBuffer(np.arange(8), 4, 1)
    assert [b.read_row([c], c) for c in range(3)] == [0, 0, -1]


def test_ws_writes_every_row_folds_partial_sums_by_hand():
    # Conv3x5 on 40x24 ws: M = 8 x 8 = 64 output pixels, N = 10 filters, K = 3 x 5 x 6 = 90 -> 3 row folds of
    # 40. SCALE-Sim writes each output's partial sum once per row fold to DRAM: 64 x 10 x 3 = 1,920 words;
    # hwsim writes the 640 outputs once (partial sums stay in the 64 kB ofmap buffer).
    arch = _arch(40, 24, "ws")
    layer = read_topology_csv(_topo_file(CONV)).layers[0]
    assert scalesim_memory(layer, arch).ofmap_writes == 1920
    assert map_layer(layer, arch, weight_bits=8, act_bits=8).traffic.dram_write_bytes("ofmap") == 640


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
@pytest.mark.parametrize("sizes,ports", CONFIGS,
                         ids=["calc-64kB", "calc-1-2-1kB", "user-6-4-2kB", "user-1-1-1kB"])
@pytest.mark.parametrize("r,c,df", ARRAYS, ids=[f"{r}x{c}-{d}" for r, c, d in ARRAYS])
def test_memory_matches_scalesim(tmp_path, r, c, df, sizes, ports):
    pytest.importorskip("scalesim.scale_sim")
    subs = dict(IfmapSramSzkB=sizes[0], FilterSramSzkB=sizes[1], OfmapSramSzkB=sizes[2])
    if ports is not None:  # one bank per buffer: SCALE-Sim asserts that the port width divides over the banks
        subs.update(InterfaceBandwidth="USER", IfmapSRAMBankBandwidth=str(ports[0]),
                    FilterSRAMBankBandwidth=str(ports[1]), Bandwidth=str(ports[2]), IfmapSRAMBankNum="1",
                    FilterSRAMBankNum="1")
    cfg = _write_cfg(tmp_path, r, c, df, **subs)
    arch = arch_from_scalesim_cfg(cfg)
    keys = ("DRAM IFMAP Reads", "DRAM Filter Reads", "DRAM OFMAP Writes", "Stall Cycles", "Total Cycles")
    for text, gemm in ((CONV, False), (GEMM, True)):
        topo = tmp_path / ("conv.csv" if not gemm else "gemm.csv")
        topo.write_text(text)
        rows = _run_scalesim(tmp_path, cfg, topo, gemm)
        i = 0
        for layer in read_topology_csv(topo).layers:
            n = layer.n_groups if isinstance(layer, Conv2d) and layer.op == "depthwise" else 1
            chunk, i = rows[i:i + n], i + n
            want = [sum(int(float(x[k])) for x in chunk) for k in keys]
            g = scalesim_memory(layer, arch, user_ports=ports)
            got = [g.ifmap_reads, g.filter_reads, g.ofmap_writes, g.stall_cycles, g.total_cycles]
            assert got == want, f"{layer.name} {r}x{c} {df} {sizes} {ports}"
        assert i == len(rows)


def test_layers_scalesim_cannot_describe_are_refused():
    arch = _arch(8, 8, "ws")
    padded = Conv2d(name="p", op="conv2d", in_channels=2, out_channels=2, in_h=6, in_w=6, kernel=3, padding=1)
    with pytest.raises(ValueError, match=r"no dilation, no top or left padding\); found p with dilation "
                                         r"\(1, 1\) and padding \(1, 1, 1, 1\)"):
        scalesim_memory(padded, arch)
