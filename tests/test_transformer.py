"""Transformer/LLM workloads (hwsim/spec/_transformer.py): shapes, decode DRAM bytes, W4A16 scales, bad
input."""

import subprocess
import sys

import pytest

from hwsim._pipeline import simulate_workload
from hwsim.spec import load_arch, transformer_workload

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_macs_from_published_shapes():
    # BERT-base, 128 tokens: per layer 4*128*768^2 (Q, K, V, O) + 2*128*768*3072 (FFN) + 2*12*128*128*64
    # (scores, context) = 301,989,888 + 603,979,776 + 25,165,824 = 931,135,488; x 12 = 11,173,625,856
    assert transformer_workload(model="bert_base", seq_len=128).total_macs == 11_173_625_856
    # GPT-2 small decode at context 1024: per layer 4*768^2 + 2*768*3072 = 7,077,888 plus attention
    # 2*12*64*1024 = 1,572,864: 12 * (7,077,888 + 1,572,864) = 103,809,024; LM head 768*50257 = 38,597,376;
    # total 142,406,400
    assert transformer_workload(model="gpt2_small", phase="decode", context=1024).total_macs == 142_406_400


def test_gqa_groups_query_heads_per_kv_head():
    wl = transformer_workload(model="llama2_7b", phase="decode", context=2048, n_kv_heads=8, n_layer=1)
    s = {n.name: n for n in wl.layers}["h.0.attn.scores"]
    # 32 q heads over 8 KV heads: 4 q rows per KV head, one K-cache read (128 x 2048) per KV head
    assert (s.m, s.k, s.n, s.count) == (4, 128, 2048, 8)
    k = {n.name: n for n in wl.layers}["h.0.attn.k"]
    assert (k.k, k.n) == (4096, 8 * 128)


@pytest.mark.parametrize("kv_bits, expected", [(8, 142_476_625), (4, 133_030_225)])
def test_gpt2_decode_dram_bytes_per_token(kv_bits, expected):
    # TPU v1 with timing.reuse inter_layer: every activation stays in the 24 MiB Unified Buffer except the
    # network input and outputs, so one decode step moves (bytes, weights at 8 bits):
    #   weights  12 * (4*768*768 + 2*768*3072) + 768*50257        = 84,934,656 + 38,597,376 = 123,532,032
    #   KV read  12 layers * 2 (K, V) * 1024 tokens * 768 * kv_bits/8   = 18,874,368 (8 b) | 9,437,184 (4 b)
    #   KV write 12 * 2 * 768 * kv_bits/8 (the new token's K and V)      = 18,432 (8 b)     | 9,216 (4 b)
    #   input    768 B read twice (layer 0's ln_1 and its residual add: the input lives in DRAM) = 1,536
    #   logits   50,257 B written
    # 8 b: 123,532,032 + 18,874,368 + 18,432 + 1,536 + 50,257 = 142,476,625
    # 4 b: 123,532,032 +  9,437,184 +  9,216 + 1,536 + 50,257 = 133,030,225
    arch = load_arch(ROOT / "arch/tpu_v1.yaml").replace(**{"timing.reuse": "inter_layer",
                                                                     "pe.min_bits": 4})
    wl = transformer_workload(model="gpt2_small", phase="decode", context=1024, kv_bits=kv_bits)
    res = simulate_workload(arch, wl)
    dram = sum(r["dram_read_bytes"] + r["dram_write_bytes"] for r in res.rows) + sum(
        r["dram_read_bytes"] + r["dram_write_bytes"] for r in res.vector_rows)
    assert dram == expected


def _dram_bytes(res):
    return sum(r["dram_read_bytes"] + r["dram_write_bytes"] for r in res.rows + res.vector_rows)


@pytest.mark.parametrize("batch, expected", [(1, 142_476_625), (4, 199_310_404)])
def test_gpt2_decode_kv_cache_read_per_sequence(batch, expected):
    # Every sequence of a decode batch has its own KV cache, so the cache read scales with the batch; the
    # weights are read once per step whatever the batch (M = batch rows share them). TPU v1, reuse
    # inter_layer, 8-bit weights and KV (the hand derivation of test_gpt2_decode_dram_bytes_per_token):
    #   weights  12 * (4*768*768 + 2*768*3072) + 768*50257                       = 123,532,032 (any batch)
    #   KV read  2 (K, V) * 12 layers * 1024 context * 768 d_model * 8/8 * batch  = 18,874,368 * batch
    #   KV write 2 * 12 * 768 * batch                                              = 18,432 * batch
    #   input    768 * batch read twice (layer 0's ln_1 and its residual add)      = 1,536 * batch
    #   logits   50,257 * batch written
    # batch 1: 123,532,032 + 18,874,368 + 18,432 + 1,536 + 50,257                 = 142,476,625
    # batch 4: 123,532,032 + 75,497,472 + 73,728 + 6,144 + 201,028               = 199,310,404
    # (before the fix batch 4 gave 142,687,300: one K/V read shared by the 4 sequences)
    arch = load_arch(ROOT / "arch/tpu_v1.yaml").replace(**{"timing.reuse": "inter_layer"})
    wl = transformer_workload(model="gpt2_small", phase="decode", context=1024, kv_bits=8, batch=batch)
    # MACs: batch x the batch-1 count 142,406,400 (test_macs_from_published_shapes); the attention part per
    # layer 2 * 12 heads * 64 * 1024 * batch, as (q_per_kv = 1, 64) x (64, 1024) GEMMs, 12 * batch of them
    assert wl.total_macs == 142_406_400 * batch
    s = {n.name: n for n in wl.layers}["h.0.attn.scores"]
    c = {n.name: n for n in wl.layers}["h.0.attn.context"]
    assert (s.m, s.k, s.n, s.count) == (1, 64, 1024, 12 * batch)
    assert (c.m, c.k, c.n, c.count) == (1, 1024, 64, 12 * batch)
    res = simulate_workload(arch, wl)
    assert _dram_bytes(res) == expected
    rows = {r["layer"]: r for r in res.rows}
    # one layer's K read: 1024 * 768 B per sequence = 786,432 * batch (V the same)
    assert rows["h.0.attn.scores"]["dram_filter_read_bytes"] == 786_432 * batch
    assert rows["h.0.attn.context"]["dram_filter_read_bytes"] == 786_432 * batch


def test_gqa_decode_batch_shares_kv_within_a_sequence_only():
    # One Llama-2-7B block with GQA (32 q heads, 8 KV heads of d_head 128), decode at context 256, batch 2,
    # 8-bit KV: QK^T is (4 q heads of a group, 128) x (128, 256), one per KV head per sequence: count 16.
    #   MACs of scores  4 * 128 * 256 * 16 = 2,097,152 = 32 heads * 128 * 256 * 2 sequences
    #   K read          16 * 128 * 256 * 8/8 = 524,288 B = 2 sequences * 256 tokens * (8 * 128) B
    #   (shared by the 4 q heads of a group, not by the 2 sequences); V read the same
    arch = load_arch(ROOT / "arch/tpu_v1.yaml").replace(**{"timing.reuse": "inter_layer"})
    wl = transformer_workload(model="llama2_7b", phase="decode", context=256, n_kv_heads=8, n_layer=1,
                              batch=2, kv_bits=8, lm_head=False)
    nodes = {n.name: n for n in wl.layers}
    s, c = nodes["h.0.attn.scores"], nodes["h.0.attn.context"]
    assert (s.m, s.k, s.n, s.count, s.gemm.macs) == (4, 128, 256, 16, 2_097_152)
    assert (c.m, c.k, c.n, c.count, c.gemm.macs) == (4, 256, 128, 16, 2_097_152)
    rows = {r["layer"]: r for r in simulate_workload(arch, wl).rows}
    assert rows["h.0.attn.scores"]["dram_filter_read_bytes"] == 524_288
    assert rows["h.0.attn.context"]["dram_filter_read_bytes"] == 524_288


def test_w4a16_group_scales_in_weight_traffic():
    # one Llama-2-7B block, W4A16, groups of 128 along K: q_proj (4096 x 4096) reads 4096*4096*4/8 =
    # 8,388,608 B of weights plus (4096/128)*4096 scales * 2 B = 262,144 B; down (11008 x 4096):
    # 11008*4096/2 = 22,544,384 + ceil(11008/128)=86 * 4096 * 2 = 704,512 -> 23,248,896 (M = 1: fetched once)
    arch = load_arch(ROOT / "arch/tpu_v1.yaml").replace(**{"pe.operand_bits": 16, "pe.min_bits": 4})
    wl = transformer_workload(model="llama2_7b", phase="decode", context=256, n_layer=1, weight_bits=4,
                              act_bits=16, weight_group_size=128)
    rows = {r["layer"]: r for r in simulate_workload(arch, wl).rows}
    assert rows["h.0.attn.q"]["dram_filter_read_bytes"] == 8_388_608 + 262_144
    assert rows["h.0.mlp.down"]["dram_filter_read_bytes"] == 23_248_896
    wl8 = transformer_workload(model="llama2_7b", phase="decode", context=256, n_layer=1, weight_bits=4,
                               act_bits=16)
    assert {r["layer"]: r for r in simulate_workload(arch, wl8).rows}["h.0.attn.q"][
        "dram_filter_read_bytes"] == 8_388_608


@pytest.mark.parametrize("block, key", [
    ("{model: gpt2_small, phase: decode, context: 2048}", "transformer.context: expected at most the model's "
                                                          "1024 positions, found 2048"),
    ("{model: llama2_7b, n_kv_heads: 5}",
     "transformer.n_kv_heads: expected n_kv_heads dividing n_heads (32), found 5"),
    ("{model: bert_base, phase: decode}", "transformer.phase: expected prefill for an encoder"),
    ("{model: gpt3}", "transformer.model: expected"),
    ("{model: gpt2_small, contxt: 5}", "transformer.contxt: expected one of the known keys"),
])
def test_bad_transformer_block(tmp_path, block, key):
    p = tmp_path / "w.yaml"
    p.write_text(f"name: x\ntransformer: {block}\n")
    r = subprocess.run([sys.executable, "-m", "hwsim", "simulate", str(ROOT / "arch/tpu_v1.yaml"), str(p),
                        "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=60,
                       env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip().splitlines()
    assert len(line) == 1 and key in line[0], r.stderr
