"""DRAM traffic: a hand-derived tiling case and the guarantees as properties over random layers and archs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hwsim.errors import InfeasibleError
from hwsim.mapping import map_layer
from hwsim.sim import simulate_tiles, split_even
from hwsim.spec import Conv2d, Gemm

from .utils import make_arch


def test_ws_tiles_m_to_keep_partial_sums_on_chip():
    # GEMM 64x64x64 on 4x4 ws, 32-bit accumulators, ofmap buffer 1 KiB double buffered: a half holds
    # 4096 bits = 32 rows of 4 partial sums -> M tile 32, 2 M tiles. The ifmap rows of a tile (32*64 bytes)
    # fit 32 KiB -> read once: 4096 bytes. The filter (4096 bytes) fits 32 KiB -> once; in a 2 KiB buffer
    # (half 1 KiB) it does not -> once per M tile: 8192 bytes. Outputs: 64*64 bytes once.
    g = Gemm(name="g", op="gemm", m=64, k=64, n=64)
    arch = make_arch(**{"memory.ofmap_sram.size_kib": 1})
    m = map_layer(g, arch, weight_bits=8, act_bits=8)
    t = m.traffic
    assert (m.m_tiles, t.dram_read_bytes("ifmap"), t.dram_read_bytes("filter"), m.dram_write_bytes) == (2,
                                                                                                        4096,
                                                                                                      4096,
                                                                                                      4096)
    small = map_layer(g, arch.replace(**{"memory.filter_sram.size_kib": 2}), weight_bits=8, act_bits=8)
    assert small.traffic.dram_read_bytes("filter") == 8192
    # 4-bit weights: 2048 bytes fit the 1 KiB half? no (2048 > 1024) -> 2 M tiles x 2048
    assert map_layer(g, arch.replace(**{"memory.filter_sram.size_kib": 2}), weight_bits=4,
                     act_bits=8).traffic.dram_read_bytes("filter") == 4096


def test_ofmap_buffer_too_small_is_infeasible_with_sizes():
    g = Gemm(name="g", op="gemm", m=64, k=64, n=64)
    # one array edge of partial sums: 4 x 32 bits = 16 bytes; a 0.01 KiB buffer's half is 5.12 bytes
    with pytest.raises(InfeasibleError,
                       match=r"memory\.ofmap_sram\.size_kib: expected room for one array edge of "
                                              r"ofmap operands: 4 x 32 bits = 16 bytes per buffer half, "
                                              r"found "
                                              r"5\.12 bytes \(layer g\)$"):
        map_layer(g, make_arch(**{"memory.ofmap_sram.size_kib": 0.01}), weight_bits=8, act_bits=8)
    # a 1-byte ifmap buffer (half: 0.5 byte) cannot hold 4 int8 operands for one wavefront
    with pytest.raises(InfeasibleError,
                       match=r"memory\.ifmap_sram\.size_kib: expected room for one array edge of "
                                              r"ifmap operands: 4 x 8 bits = 4 bytes per buffer half, found "
                                              r"0\.512 bytes"):
        map_layer(g, make_arch(**{"memory.ifmap_sram.size_kib": 0.001}), weight_bits=8, act_bits=8)


def _random_layer(rng):
    if rng.random() < 0.5:
        return Gemm(name="g", op="gemm", m=int(rng.integers(1, 300)), k=int(rng.integers(1, 600)),
                    n=int(rng.integers(1, 300)))
    c = int(rng.integers(1, 64))
    g = c if rng.random() < 0.3 else 1
    k = int(rng.integers(1, 96)) * g if g > 1 else int(rng.integers(1, 96))
    h = int(rng.integers(3, 40))
    return Conv2d(name="c", op="conv2d", in_channels=c, out_channels=k if g == 1 else c, groups=g, in_h=h,
                  in_w=h, kernel=int(rng.choice([1, 3])), stride=int(rng.choice([1, 2])), padding=1)


def _random_arch(rng):
    return make_arch(**{
        "array.rows": int(rng.choice([2, 4, 8, 16, 32])), "array.cols": int(rng.choice([2, 4, 8, 16, 32])),
        "array.dataflow": str(rng.choice(["ws", "os", "is"])),
        "memory.ifmap_sram.size_kib": float(rng.choice([0.5, 2, 8, 64])),
        "memory.filter_sram.size_kib": float(rng.choice([0.5, 2, 8, 64])),
        "memory.ofmap_sram.size_kib": float(rng.choice([1, 4, 16, 64])),
    })


def _bytes(m):
    return (m.traffic.dram_read_bytes("ifmap"), m.traffic.dram_read_bytes("filter"), m.dram_write_bytes)


def test_properties_over_random_layers_and_archs():
    rng = np.random.default_rng(0)
    cases = 0
    for _ in range(300):
        layer, arch = _random_layer(rng), _random_arch(rng)
        try:
            m = map_layer(layer, arch, weight_bits=8, act_bits=8)
        except InfeasibleError:
            continue
        cases += 1
        # no counter is ever negative
        assert min(_bytes(m)) >= 0 and m.compute_cycles > 0 and min(m.sram_ifmap_reads,
                                                                    m.sram_filter_reads) >= 0
        # a larger SRAM never gives more DRAM traffic or more cycles for a fixed mapping (the same tile), and
        # never a worse mapping by the mapper's own objective: fewer DRAM bytes first, then the latency
        # estimate max(compute, DRAM bits / bandwidth), compared as a pair (lexicographically)
        tile = m.m_tiles and (-(-m.m // m.m_tiles) if arch.array.dataflow == "ws" else -(-m.n // m.n_tiles))
        bw = arch.memory.dram_level.read_bw
        for key in ("ifmap_sram", "filter_sram", "ofmap_sram"):
            big = arch.replace(**{f"memory.{key}.size_kib": getattr(arch.memory, key).size_kib * 4})
            fixed = map_layer(layer, big, weight_bits=8, act_bits=8, tile=tile)
            assert sum(_bytes(fixed)) <= sum(_bytes(m)), (layer, arch, key)
            assert fixed.compute_cycles == m.compute_cycles
            mb = map_layer(layer, big, weight_bits=8, act_bits=8)
            assert ((sum(_bytes(mb)), max(mb.compute_cycles, sum(_bytes(mb)) * 8 / bw))
                    <= (sum(_bytes(m)), max(m.compute_cycles, sum(_bytes(m)) * 8 / bw) + 1e-9)), (layer, arch,
                                                                                                  key)
        # halving an operand's bits never increases its traffic
        h = map_layer(layer, arch, weight_bits=4, act_bits=4, out_bits=4)
        assert sum(_bytes(h)) <= sum(_bytes(m))
        # halving only the weights never increases the DRAM traffic (os: partial sums in the PEs, no tiling;
        # the loop order may change, so the total, not the filter's share)
        if arch.array.dataflow == "os":
            assert sum(_bytes(map_layer(layer, arch, weight_bits=4, act_bits=8))) <= sum(_bytes(m))
        # more bandwidth never gives more cycles; unbounded bandwidth gives no stall
        n = min(m.folds, 64)
        args = (split_even(m.compute_cycles, n), split_even(m.dram_read_bytes, n),
                split_even(m.dram_write_bytes, n))
        prev = None
        for bw in (1, 4, 16, 64, math.inf):
            t = simulate_tiles(*args, bandwidth_bytes_per_cycle=bw)
            assert t.stall_cycles >= 0
            if prev is not None:
                assert t.total_cycles <= prev
            prev = t.total_cycles
        assert t.stall_cycles == 0 and t.total_cycles == m.compute_cycles
    assert cases >= 200
