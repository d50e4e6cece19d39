"""The workload graph, where each tensor lives (timing.reuse) and the vector unit: hand-derived cases, bad
input, and metamorphic properties over random graphs."""

from __future__ import annotations

import random

import pytest

from hwsim._pipeline import simulate_workload
from hwsim.cli import main
from hwsim.mapping import vector_op_counts
from hwsim.sim import schedule_nodes
from hwsim.spec import Workload, load_arch, load_workload_yaml, validate

from .utils import ROOT, make_arch

VU = {"lanes": 4, "arithmetic": "int", "int_bits": 32, "latency_cycles": 2,
      "throughput": {"add": 1, "mul": 1, "max": 1, "exp": 1, "divide": 0.25, "rsqrt": 0.25}}


def _wl(nodes, name="g"):
    return validate(Workload, {"name": name, "layers": nodes}, "<test>")


def _dram(res):
    return int(res.totals["dram_read_bytes"] + res.totals["dram_write_bytes"])


CHAIN = [{"name": "l1", "op": "gemm", "m": 8, "k": 16, "n": 8},
         {"name": "l2", "op": "gemm", "m": 8, "k": 8, "n": 4}]


def test_two_layer_chain_dram_is_weights_input_output_exactly():
    # 8-bit everything, 4x4 ws, 64 KiB buffers (everything fits, no refetch). Input 8x16 = 128 B, weights
    # 16x8 + 8x4 = 160 B, output 8x4 = 32 B: inter_layer moves 128 + 160 + 32 = 320 B. none also writes l1's
    # 8x8 = 64 B output and reads it back: 320 + 2*64 = 448 B.
    wl = _wl(CHAIN)
    arch = make_arch()
    assert _dram(simulate_workload(arch, wl)) == 448
    res = simulate_workload(arch.replace(**{"timing.reuse": "inter_layer"}), wl)
    assert _dram(res) == 320
    t = {r["tensor"]: r for r in res.tensor_rows}
    assert (t["input"]["level"], t["l1"]["level"], t["l2"]["level"]) == ("dram", "ifmap_sram", "dram")
    assert (t["l1"]["dram_write_bytes"], t["l1"]["dram_read_bytes"], t["l1"]["written_bytes"]) == (0, 0, 64)


def test_one_byte_too_small_spills_exactly_that_tensor():
    # The ifmap buffer during l1 holds l1's streamed input (double buffered: min(S, 2 x 128 B) = 256 B) and
    # l1's output (64 B) that is kept: 320 B needed. At 320 B it stays (DRAM 320 B); at 319 B exactly that
    # tensor goes to DRAM: written once and read once, 320 + 2*64 = 448 B.
    wl = _wl(CHAIN)
    for size, dram, level in ((320, 320, "ifmap_sram"), (319, 448, "dram")):
        arch = make_arch(**{"memory.ifmap_sram.size_kib": size / 1024, "timing.reuse": "inter_layer"})
        res = simulate_workload(arch, wl)
        assert _dram(res) == dram
        assert {r["tensor"]: r["level"] for r in res.tensor_rows}["l1"] == level


def test_residual_skip_is_held_across_its_branch():
    # c1 -> c2 -> c3 -> add(c3, c1) -> c4: the skip c1 (8x8 = 64 B) lives from step 0 to the add (step 3) and
    # is held while c2 and c3 run: during c2 (step 1) the ifmap buffer holds c1 (c2's input and the skip) and
    # c2's output: 128 B; during c3 (step 2) c1, c2 (c3's input) and c3's output: 192 B.
    nodes = [{"name": "c1", "op": "gemm", "m": 8, "k": 8, "n": 8},
             {"name": "c2", "op": "gemm", "m": 8, "k": 8, "n": 8},
             {"name": "c3", "op": "gemm", "m": 8, "k": 8, "n": 8},
             {"name": "add", "op": "add", "inputs": ["c3", "c1"]},
             {"name": "c4", "op": "gemm", "m": 8, "k": 8, "n": 2}]
    arch = make_arch(**{"timing.reuse": "inter_layer", "vector_unit": VU})
    res = simulate_workload(arch, _wl(nodes))
    t = {r["tensor"]: r for r in res.tensor_rows}
    assert (t["c1"]["level"], t["c1"]["from_step"], t["c1"]["to_step"]) == ("ifmap_sram", 0, 3)
    occ = {r["node"]: r["resident_bytes"] for r in res.occupancy if r["level"] == "ifmap_sram"}
    assert occ["c2"] == 64 * 2 and occ["c3"] == 64 * 3
    assert occ["add"] == 64 * 3  # c3, c1 and the add's output
    # DRAM: input 64 + weights 3*64 + 16 + output 16 B; the add is on the vector unit: 64 adds of 32 bits
    assert _dram(res) == 64 + 3 * 64 + 16 + 16
    v = res.vector_rows[0]
    # 64 adds on 4 lanes at 1 per cycle: 16 cycles + 2 of pipeline; on-chip reads 2 x 64 B, write 64 B
    assert (v["ops_add"], v["compute_cycles"], v["onchip_read_bytes"], v["onchip_write_bytes"]) == (64, 18,
                                                                                                    128, 64)
    # the add waits for c3 and c4 waits for the add
    tl = {(r["node"], r["unit"]): r for r in res.timeline}
    assert tl[("add", "vector")]["start_cycle"] == tl[("c3", "array")]["stop_cycle"]
    assert tl[("c4", "array")]["start_cycle"] == tl[("add", "vector")]["stop_cycle"]


def test_minilm_block_prices_softmax_layernorm_gelu_on_the_vector_unit():
    arch = load_arch(ROOT / "arch/tpu_v1.yaml")
    wl = load_workload_yaml(ROOT / "workloads/minilm_l6.yaml")
    res = simulate_workload(arch, wl)
    v = {r["node"]: r for r in res.vector_rows}
    sm = v["encoder.layer.0.attention.self.softmax"]
    # 12 heads x 16 x 16 scores, rows of 16 (192 rows), I-BERT integer softmax: max n, add 7n, mul 4n,
    # divide per row. On 256 lanes: 3072/256 = 12 + 21504/256 = 84 + 12288/256 = 48 + 192/(256/16) = 12,
    # plus 8 pipeline cycles = 164
    assert (sm["ops_max"], sm["ops_add"], sm["ops_mul"], sm["ops_divide"]) == (3072, 21504, 12288, 192)
    assert sm["compute_cycles"] == 164
    ln = v["encoder.layer.0.attention.output.LayerNorm"]
    assert (ln["elements"], ln["row"], ln["ops_rsqrt"], ln["ops_divide"]) == (16 * 384, 384, 16, 32)
    ge = v["encoder.layer.0.intermediate.gelu"]
    assert (ge["ops_max"], ge["ops_add"], ge["ops_mul"]) == (2 * 16 * 1536, 3 * 16 * 1536, 3 * 16 * 1536)
    t = res.totals
    assert t["energy_vector_pj"] > 0 and t["vector_cycles"] > 0
    assert t["energy_pj"] == pytest.approx(sum(r["energy_pj"] for r in res.rows + res.vector_rows))
    # the per-op energy: a 32-bit add 0.1 pJ (Horowitz) -> the softmax's adds alone 2150.4 pJ
    adds = [r for r in res.energy_records if r["layer"] == sm["node"] and r["action"] == "add"]
    assert adds[0]["energy_pj"] == pytest.approx(21504 * 0.1)
    # without the vector unit the same nodes take no time and no energy (the layers alone, as before)
    bare = simulate_workload(arch.replace(vector_unit=None), wl)
    assert bare.totals["total_cycles"] == sum(r["total_cycles"] for r in bare.rows)
    assert t["total_cycles"] > bare.totals["total_cycles"] and t["energy_pj"] > bare.totals["energy_pj"]


def test_fp16_counts_and_exp_class():
    # float softmax: exp per element, one reciprocal per row; float GELU (tanh form) mul 7n, add 4n, exp, div
    assert vector_op_counts("softmax", elements=32, row=8, arithmetic="fp16") == {
        "max": 32, "add": 64, "exp": 32, "mul": 32, "divide": 4}
    assert vector_op_counts("gelu", elements=10, arithmetic="fp32") == {"mul": 70, "add": 40, "exp": 10,
                                                                        "divide": 10}
    assert vector_op_counts("maxpool", elements=16, window=9) == {"max": 128}


def test_resnet50_inter_layer_moves_fewer_dram_bytes_on_tpu_v1():
    arch = load_arch(ROOT / "arch/tpu_v1.yaml")
    wl = load_workload_yaml(ROOT / "workloads/resnet50.yaml")
    none = simulate_workload(arch, wl)
    inter = simulate_workload(arch.replace(**{"timing.reuse": "inter_layer"}), wl)
    # everything but the network input and output fits the 24 MiB Unified Buffer: DRAM = the weights, the
    # 224x224x3 input and the 1000 logits. The weights: torchvision's 25,557,032 parameters less the fc bias
    # (1,000) and the 53 BatchNorms' weight and bias (2 x 26,560 channels) = 25,502,912 int8 values
    weights = sum(r["k"] * r["n"] * r["groups"] for r in inter.rows)
    assert weights == 25_557_032 - 1_000 - 2 * 26_560
    assert _dram(inter) == weights + 150_528 + 1_000
    assert _dram(inter) < _dram(none)
    lv = {r["tensor"]: r["level"] for r in inter.tensor_rows}
    assert lv["input"] == "dram" and lv["fc"] == "dram"
    assert all(v == "ifmap_sram" for k, v in lv.items() if k not in ("input", "fc"))
    assert inter.model_cpu_s < 0.5  # generous on a shared machine; about 30 ms measured


def _random_graph(rng: random.Random, n: int) -> list[dict]:
    nodes, outs = [], []
    prev_n = rng.choice([4, 8, 16])
    m = rng.choice([4, 8, 16])
    for i in range(n):
        if i and rng.random() < 0.3 and len(outs) >= 2:
            a = outs[-1]
            same = [o for o in outs[:-1] if o[1] == a[1]]
            if same:
                nodes.append({"name": f"add{i}", "op": "add", "inputs": [a[0], rng.choice(same)[0]]})
                outs.append((f"add{i}", a[1]))
                continue
        nn = rng.choice([4, 8, 16])
        node = {"name": f"g{i}", "op": "gemm", "m": m, "k": prev_n, "n": nn}
        if outs:
            src = rng.choice([o for o in outs if o[1] == prev_n] or [outs[-1]])
            node["inputs"] = [src[0]]
            node["k"] = src[1]
        nodes.append(node)
        outs.append((f"g{i}", nn))
        prev_n = nn
    return nodes


@pytest.mark.parametrize("seed", range(12))
def test_random_graphs_more_capacity_never_adds_dram_and_inter_layer_never_worse(seed):
    rng = random.Random(seed)
    wl = _wl(_random_graph(rng, rng.randint(3, 9)))
    vu = VU if seed % 2 else None
    last = None
    none = _dram(simulate_workload(make_arch(vector_unit=vu), wl))
    for size in (0.25, 0.5, 1, 2, 4, 64):
        arch = make_arch(**{"memory.ifmap_sram.size_kib": size, "timing.reuse": "inter_layer",
                            "vector_unit": vu})
        d = _dram(simulate_workload(arch, wl))
        assert d <= none
        if last is not None:
            assert d <= last, (size, d, last)
        last = d


@pytest.mark.parametrize("seed", range(20))
def test_graph_schedule_simpy_equals_analytic(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 25)
    dur = [rng.randint(0, 50) for _ in range(n)]
    units = [rng.choice(["array", "vector"]) for _ in range(n)]
    deps = [tuple(sorted(rng.sample(range(i), min(i, rng.randint(0, 2))))) for i in range(n)]
    for overlap in (True, False):
        assert schedule_nodes(dur, units, deps, overlap=overlap, engine="simpy") == \
            schedule_nodes(dur, units, deps, overlap=overlap, engine="analytic")


def test_simulate_simpy_equals_analytic_on_a_graph():
    wl = _wl(_random_graph(random.Random(3), 8))
    arch = make_arch(**{"timing.reuse": "inter_layer", "vector_unit": VU,
                        "memory.dram.bandwidth_bytes_per_cycle": 4})
    a = simulate_workload(arch, wl)
    s = simulate_workload(arch.replace(**{"timing.engine": "simpy"}), wl)
    assert a.timeline == s.timeline and a.totals["total_cycles"] == s.totals["total_cycles"]


def test_fused_keeps_a_band_when_the_whole_tensor_does_not_fit():
    # conv a (1 -> 8 channels, 16x16, 3x3 same) -> conv b (8 -> 8, 3x3 same). a's output: 8x16x16 = 2048 B.
    # A band for b's window: (3 + 1) rows x 16 x 8 = 512 B. With a 2 KiB ifmap buffer the whole output cannot
    # stay (a's streamed input reserve 2 x 256 B + 2048 B > 2048 B), the band can (512 + 512 <= 2048).
    nodes = [{"name": "a", "op": "conv2d", "in_channels": 1, "out_channels": 8, "in_h": 16, "in_w": 16,
              "kernel": 3, "padding": 1},
             {"name": "b", "op": "conv2d", "in_channels": 8, "out_channels": 8, "in_h": 16, "in_w": 16,
              "kernel": 3, "padding": 1}]
    wl = _wl(nodes)
    arch = make_arch(**{"memory.ifmap_sram.size_kib": 2})
    inter = simulate_workload(arch.replace(**{"timing.reuse": "inter_layer"}), wl)
    fused = simulate_workload(arch.replace(**{"timing.reuse": "fused"}), wl)
    assert {r["tensor"]: r["level"] for r in inter.tensor_rows}["a"] == "dram"
    fa = {r["tensor"]: r for r in fused.tensor_rows}["a"]
    assert (fa["level"], fa["kind"]) == ("ifmap_sram", "band")
    # a's output is neither written (2048 B) nor read back. Spilled, b's 2048 B ifmap does not fit the 1 KiB
    # buffer half, but the mapper tiles M so that a tile's ifmap rows do (1024 // 72 = 14 rows of K = 72 B):
    # b reads it from DRAM once, not once per column fold (the fewest DRAM bytes): 2048 + 2048 B saved
    assert _dram(inter) - _dram(fused) == 2 * 2048


# ---- bad input: one line, exit 2, naming the file, the key and the node

def _yaml(tmp_path, body):
    p = tmp_path / "w.yaml"
    p.write_text("name: w\nlayers:\n" + body)
    return p


@pytest.mark.parametrize("body, msg", [
    ("  - {name: a, op: gemm, m: 2, k: 2, n: 2, inputs: [nope]}\n",
     "layers[0].inputs: expected names of earlier nodes or 'input', found 'nope', which no node produces "
     "(node a)"),
    ("  - {name: a, op: gemm, m: 2, k: 2, n: 2, inputs: [b]}\n  - {name: b, op: gemm, m: 2, k: 2, n: 2, "
     "inputs: [a]}\n",
     "layers[0].inputs: expected tensors produced before node 'a' (nodes in execution order, no cycle), "
     "found 'b', produced by layers[1] (node a; cycle: "),
    ("  - {name: a, op: gemm, m: 2, k: 2, n: 2}\n  - {name: s, op: softmax, kernel: 3}\n",
     "layers[1]: expected kernel only on maxpool/avgpool"),
    ("  - {name: a, op: gemm, m: 2, k: 2, n: 2}\n  - {name: s, op: relu, constant: 3}\n",
     "layers[1]: expected constant only on add/mul/div"),
    ("  - {name: a, op: gemm, m: 2, k: 2, n: 2}\n  - {name: s, op: add, inputs: [a, a], constant: 3}\n",
     "layers[1]: expected one input (and a constant) for add"),
])
def test_bad_graph_exit_2_one_line(tmp_path, capsys, body, msg):
    p = _yaml(tmp_path, body)
    assert main(["simulate", str(ROOT / "arch/edge_32x32.yaml"), str(p), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"{p}: {msg}" in err


def test_missing_op_class_exit_2_names_the_node(tmp_path, capsys):
    arch = tmp_path / "a.yaml"
    text = (ROOT / "arch/tpu_v1.yaml").read_text().replace(
        "throughput: {add: 1, mul: 1, max: 1, exp: 1, divide: 0.0625, rsqrt: 0.0625}",
        "throughput: {add: 1, mul: 1, max: 1, exp: 1, divide: 0.0625}")
    arch.write_text(text)
    rc = main(["simulate", str(arch), str(ROOT / "workloads/minilm_l6.yaml"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert (f"{arch}: vector_unit.throughput.rsqrt: expected a throughput for op class 'rsqrt': node "
            "'encoder.layer.0.attention.output.LayerNorm' (layernorm, int) needs 16 of them, found no such "
            "key"
            in err)


def test_buffer_too_small_for_a_tile_exit_2(tmp_path, capsys):
    arch = tmp_path / "a.yaml"
    arch.write_text((ROOT / "arch/edge_32x32.yaml").read_text().replace(
        "ifmap_sram: {size_kib: 64, word_bits: 64}", "ifmap_sram: {size_kib: 0.01, word_bits: 64}"))
    rc = main(["simulate", str(arch), str(ROOT / "workloads/digits_cnn.yaml"), "--reuse", "inter_layer",
               "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert (rc == 2 and len(err.strip().splitlines()) == 1
            and "memory.ifmap_sram.size_kib: expected room" in err)


def test_cli_writes_tensors_csv(tmp_path, capsys):
    import pandas as pd

    assert main(["simulate", str(ROOT / "arch/edge_32x32.yaml"), str(ROOT / "workloads/digits_cnn.yaml"),
                 "--reuse", "inter_layer", "--out", str(tmp_path)]) == 0
    t = pd.read_csv(tmp_path / "tensors.csv").set_index("tensor")
    # conv1 -> conv2 -> pool -> fc: the inner tensors stay in the 64 KiB ifmap buffer
    assert list(t.index) == ["input", "conv1", "conv2", "pool", "fc"]
    assert list(t["level"]) == ["dram", "ifmap_sram", "ifmap_sram", "ifmap_sram", "dram"]
    assert t.loc["pool", "elements"] == 16 * 4 * 4
    assert "Where each tensor lived" in (tmp_path / "report.html").read_text()


def _light(name):
    from pathlib import Path

    import onnx

    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / f"{name}.onnx"


def test_onnx_keeps_the_graph_and_matches_the_yaml():
    # the ResNet-50 shipped in the onnx wheel: its 16 residual Adds, the pools and the final Softmax become
    # nodes; under inter_layer on TPU v1 it moves exactly what workloads/resnet50.yaml moves (weights + input
    # + the 1000 outputs: the fc's output now feeds the Softmax on chip)
    from collections import Counter

    from hwsim.frontends._onnx import read_onnx_shapes

    pytest.importorskip("onnx")
    w = read_onnx_shapes(_light("light_resnet50"))
    ops = Counter(n.op for n in w.nodes)
    assert (ops["conv2d"], ops["add"], ops["maxpool"], ops["avgpool"], ops["softmax"]) == (53, 16, 1, 1, 1)
    g = w.graph()
    assert all(len(g.inputs[i]) == 2 for i, n in enumerate(w.nodes) if n.op == "add")
    arch = load_arch(ROOT / "arch/tpu_v1.yaml").replace(**{"timing.reuse": "inter_layer"})
    yaml_res = simulate_workload(arch, load_workload_yaml(ROOT / "workloads/resnet50.yaml"))
    assert _dram(simulate_workload(arch, w)) == _dram(yaml_res) == 25_502_912 + 150_528 + 1_000
    inc = read_onnx_shapes(_light("light_inception_v1"))
    assert Counter(n.op for n in inc.nodes)["concat"] == 9


def test_scalesim_csv_is_a_chain():
    from hwsim.frontends import read_topology_csv

    w = read_topology_csv(ROOT / "tests/data/scalesim/Resnet18.csv")
    g = w.graph()
    names = [n.name for n in w.nodes]
    assert g.inputs == tuple((p,) for p in ["input", *names[:-1]])


# ---- the fused tile-height search (timing.reuse: fused): hand-derived

_AB = [{"name": "a", "op": "conv2d", "in_channels": 1, "out_channels": 8, "in_h": 16, "in_w": 16,
        "kernel": 3, "padding": 1},
       {"name": "b", "op": "conv2d", "in_channels": 8, "out_channels": 8, "in_h": 16, "in_w": 16,
        "kernel": 3, "padding": 1}]


def _band_note(res):
    """The tiling part of each band's note (before the first ``;``: the saving and the reason follow)."""
    return [n.split(";")[0] for n in res.notes if n.startswith("fused ")]


def test_fused_tile_height_is_the_largest_that_fits_when_weights_fit():
    # a (1 -> 8, 16x16, 3x3 same) -> b (8 -> 8). Band of h output rows of b: (h * 1 + 3) rows x 16 x 8 ch
    # = 128 (h + 3) B. 2 KiB ifmap buffer; during a it also holds a's streamed input, double buffered:
    # min(2048, 2 x 256) = 512 B. So 512 + 128 (h + 3) <= 2048: h <= 9. Candidates for 16 rows: 1, 2, 4, 8
    # and ceil(16 / n), n = 2..8: {1, 2, 3, 4, 6, 8}. Weights (72 + 576 B) fit the 64 KiB filter buffer, so
    # every h saves the same 2 x 2048 B; the tie goes to the fewest tiles: h = 8, 2 tiles.
    wl = _wl(_AB)
    arch = make_arch(**{"memory.ifmap_sram.size_kib": 2})
    inter = simulate_workload(arch.replace(**{"timing.reuse": "inter_layer"}), wl)
    fused = simulate_workload(arch.replace(**{"timing.reuse": "fused"}), wl)
    assert _band_note(fused) == [
        "fused a -> b: 2 tiles of 8 output rows, weights fetched again per tile: 0 B"]
    assert _dram(inter) - _dram(fused) == 2 * 2048
    # the second tile restarts every fold of a (mapped in one row tile): one more fill + drain; b's mapper
    # already runs it in 19 row tiles (its 2 KiB ifmap through a 1 KiB buffer half), so 2 tiles add none
    assert [r["m_tiles"] for r in inter.rows] == [1, 19]
    a_i, a_f = inter.rows[0], fused.rows[0]
    assert a_f["compute_cycles"] - a_i["compute_cycles"] == a_i["fill_cycles"] + a_i["drain_cycles"]
    assert fused.rows[1]["compute_cycles"] == inter.rows[1]["compute_cycles"]


def test_fused_tile_height_trades_weight_refetch_against_capacity():
    # As above with a 512 B filter buffer: a's and b's weights (72 + 576 = 648 B) do not fit together, so
    # every further tile fetches both again. Spilled, a's output moves 2048 B written + 4096 B read: b's
    # 576 B of weights come in two N tiles through the 256 B buffer half, each streaming the ifmap again
    # (checked below). saving(n tiles) = 6144 - 648 (n - 1) B. The largest h that fits (8: 2 tiles) saves
    # 6144 - 648 = 5496 B. Forced h = 1 (16 tiles): 6144 - 9720 < 0, the band is dropped and fused moves
    # what inter_layer moves (never more). h = 2 (8 tiles): 6144 - 4536 = 1608 B saved.
    wl = _wl(_AB)
    arch = make_arch(**{"memory.ifmap_sram.size_kib": 2, "memory.filter_sram.size_kib": 0.5})
    inter = simulate_workload(arch.replace(**{"timing.reuse": "inter_layer"}), wl)
    assert inter.rows[1]["dram_ifmap_read_bytes"] == 4096 and inter.rows[0]["dram_ofmap_write_bytes"] == 2048
    auto = simulate_workload(arch.replace(**{"timing.reuse": "fused"}), wl)
    assert _band_note(auto) == [
        "fused a -> b: 2 tiles of 8 output rows, weights fetched again per tile: 648 B"]
    assert _dram(inter) - _dram(auto) == 5496
    for h, saved in ((1, 0), (2, 1608)):
        res = simulate_workload(arch.replace(**{"timing.reuse": "fused", "timing.fused_tile_rows": h}), wl)
        assert _dram(inter) - _dram(res) == saved


def test_fused_stack_of_three_shares_the_buffer_and_pays_each_tiling_once():
    # a -> b -> c (c as b), 2 KiB ifmap buffer. During b both bands live (b's streamed-input reserve is freed
    # by band a): 128 (h1 + 3) + 128 (h2 + 3) <= 2048, so h1 + h2 <= 10 (during a: h1 <= 9; during c: band b
    # alone). Weights fit, so every choice saves the same 4 x 2048 B and the tie goes to the fewest tiles:
    # min ceil(16/h1) + ceil(16/h2) over heights {1, 2, 3, 4, 6, 8} with h1 + h2 <= 10 is 7, at (4, 6) or
    # (6, 4). a (one row tile when untiled) restarts n1 - 1 times; b and c already run in 19 row tiles
    # (b would need 1 + (n1 - 1) + (n2 - 1) = 6 <= 19): no new restarts.
    import re

    wl = _wl(_AB + [dict(_AB[1], name="c")])
    arch = make_arch(**{"memory.ifmap_sram.size_kib": 2})
    inter = simulate_workload(arch.replace(**{"timing.reuse": "inter_layer"}), wl)
    fused = simulate_workload(arch.replace(**{"timing.reuse": "fused"}), wl)
    assert _dram(inter) - _dram(fused) == 4 * 2048
    got = [tuple(map(int, re.search(r"(\d+) tiles of (\d+) output rows", n).groups()))
           for n in _band_note(fused)]
    assert sorted(got) in ([(3, 6), (4, 4)],) and sum(n for n, _ in got) == 7
    (n1, _), (n2, _) = got
    assert [r["m_tiles"] for r in inter.rows] == [1, 19, 19]
    extra = [(n1 - 1) * (inter.rows[0]["fill_cycles"] + inter.rows[0]["drain_cycles"]), 0, 0]
    assert [f["compute_cycles"] - i["compute_cycles"]
            for i, f in zip(inter.rows, fused.rows, strict=True)] == extra


# ---- timing.objective and the fused tiling: the fewest DRAM bytes (dram) or the fewest cycles (latency)

def _os_1kib(bw):
    # os, 4x4, 1 KiB ifmap buffer (double buffered: a's streamed input reserves min(1024, 2 x 256) = 512 B
    # during a). Band of h rows of b: 128 (h + 3) B, so 512 + 128 (h + 3) <= 1024 only for h = 1 (16 tiles);
    # a's whole output (2048 B) does not fit: inter_layer keeps it in DRAM.
    return make_arch(**{"array.dataflow": "os", "memory.ifmap_sram.size_kib": 1,
                        "memory.dram.bandwidth_bytes_per_cycle": bw})


def test_latency_objective_does_not_fuse_when_the_one_row_tiles_cost_cycles():
    # a (1 -> 8, 16x16, 3x3 same) -> b (8 -> 8) on an os 4x4 array, DRAM unbounded (no stall either way).
    # GEMM views: a M=256, K=9, N=8; b M=256, K=72, N=8. os folds ceil(256/4) x ceil(8/4) = 128 each; a fold
    # takes (R-1) + K + (C-1) cycles: a 3 + 9 + 3 = 15, b 3 + 72 + 3 = 78. Unfused: 128 x 15 + 128 x 78 =
    # 1920 + 9984 = 11904 cycles. DRAM unfused: a's input 256 + weights 72 + output 2048, b's input 2048
    # + weights 576 + output 2048 = 7048 B. Fused in 16 one-row tiles (the only band that fits): a's output
    # neither written nor read, 7048 - 2 x 2048 = 2952 B; each of the 15 new tiles restarts every fold of
    # both layers (each mapped in one tile), 128 x (3 + 3) = 768 cycles each: 2 x 15 x 768 = 23040 more,
    # 34944. The traffic objective (dram, the default) fuses (fewest DRAM bytes); latency does not.
    wl = _wl(_AB)
    arch = _os_1kib("unbounded")
    got = {obj: simulate_workload(arch.replace(**{"timing.reuse": "fused", "timing.objective": obj}), wl)
           for obj in ("dram", "latency")}
    inter = simulate_workload(arch.replace(**{"timing.reuse": "inter_layer"}), wl)
    assert (_dram(inter), inter.totals["total_cycles"]) == (7048, 11904)
    assert (_dram(got["dram"]), got["dram"].totals["total_cycles"]) == (2952, 11904 + 23040)
    assert (_dram(got["latency"]), got["latency"].totals["total_cycles"]) == (7048, 11904)
    assert [n for n in got["dram"].notes if n.startswith("fused ")] == [
        "fused a -> b: 16 tiles of 1 output rows, weights fetched again per tile: 0 B; in ifmap_sram, saving "
        "4,096 B of DRAM; fill and drain of the tiles add 11,520 cycles to a and 11,520 to b (a layer in "
        "two bands: for both); chosen for the fewest DRAM bytes, then the fewest tiles (timing.objective: "
        "dram; latency ranks the modelled cycles first)"]
    # the bands within the 1 KiB (h = 1, 2, 3, 4: 16, 8, 6, 4 tiles) cost 15 / 7 / 5 / 3 restarts of 2 x 768
    assert _band_note(got["latency"]) == []
    assert [n for n in got["latency"].notes if n.startswith("not fused ")] == [
        "not fused a -> b: kept in DRAM; its 4 bands within ifmap_sram's size take +4,608 (4 tiles) to "
        "+23,040 (16 tiles) cycles against DRAM, and none that fits next to the layers' tiles and the "
        "tensors kept lowers the total (timing.objective: latency)"]


def test_latency_objective_fuses_when_the_band_saves_dram_time():
    # As above at 0.1 B/cycle: unfused, the layers wait for DRAM (7048 B take 70480 cycles of transfer),
    # so the 4096 B the band saves outweigh its 23040 restart cycles: latency fuses too, and the cycles its
    # note gives (the layers re-timed with the band, against the tensor in DRAM) are exactly the difference
    # of the two schedules' makespans (one tensor: the estimate's sum has no cross term).
    wl = _wl(_AB)
    arch = _os_1kib(0.1)
    inter = simulate_workload(arch.replace(**{"timing.reuse": "inter_layer"}), wl)
    lat = simulate_workload(arch.replace(**{"timing.reuse": "fused", "timing.objective": "latency"}), wl)
    assert _dram(lat) == 2952 and inter.totals["total_cycles"] >= 7048 / 0.1
    assert _band_note(lat) == ["fused a -> b: 16 tiles of 1 output rows, weights fetched again per tile: 0 B"]
    note = next(n for n in lat.notes if n.startswith("fused "))
    saved = inter.totals["total_cycles"] - lat.totals["total_cycles"]
    assert saved > 0
    assert f"chosen for the fewest modelled cycles ({-saved:+,} against the tensor in DRAM)" in note


def test_placement_latency_objective_ranks_cycles_then_dram_bits():
    # A level of 100 bits, one step. Tensor t: option A (70 bits, saves 95 DRAM bits, adds 10 cycles) or B
    # (30 bits, saves 50, saves 1 cycle); tensor u: C (60 bits, saves 40, no cycles). dram: the most bits
    # saved within 100: A (95; A + C = 130 bits do not fit) beats B + C (90). latency: the fewest cycles
    # first (-1: B), then the most bits: B + C (90 bits, 90 <= 100).
    from hwsim.schedule import Option, place_tensors

    opts = [Option("t", "L", 70, (0,), 95, cycles=10), Option("t", "L", 30, (0,), 50, cycles=-1),
            Option("u", "L", 60, (0,), 40)]
    d = place_tensors(opts, [], {"L": 100}, 1)
    lat = place_tensors(opts, [], {"L": 100}, 1, objective="latency")
    assert ({t: o.saving_bits for t, o in d.chosen.items()}, d.saved_bits, d.cycles) == ({"t": 95}, 95, 10)
    assert ({t: o.saving_bits for t, o in lat.chosen.items()}, lat.saved_bits, lat.cycles) == (
        {"t": 50, "u": 40}, 90, -1)


def _random_convs(rng: random.Random) -> list[dict]:
    nodes, c, h = [], rng.choice([1, 4, 8]), rng.choice([8, 12, 16])
    for i in range(rng.randint(2, 4)):
        k, s = rng.choice([(1, 1), (3, 1), (3, 1), (3, 2)])
        co = rng.choice([4, 8, 16])
        nodes.append({"name": f"c{i}", "op": "conv2d", "in_channels": c, "out_channels": co, "in_h": h,
                      "in_w": h, "kernel": k, "stride": s, "padding": k // 2})
        c, h = co, (h + 2 * (k // 2) - k) // s + 1
    return nodes


@pytest.mark.parametrize("seed", range(10))
def test_random_conv_stacks_fused_never_worse_and_capacity_monotone(seed):
    # Metamorphic, over random conv chains and buffer sizes (the placement is exact and every fused option's
    # saving is net of its weight re-fetch): fused <= inter_layer <= none in DRAM bytes, and a larger ifmap
    # buffer never adds DRAM bytes under fused. Seeds 1, 3, 5, 8 and 9 choose bands at some size (1, 3 and 5
    # with weights re-fetched per tile), the others none.
    rng = random.Random(seed)
    wl = _wl(_random_convs(rng))
    fkib = rng.choice([0.25, 0.5, 64])
    last = None
    for size in (0.5, 1, 2, 4, 16):
        arch = make_arch(**{"memory.ifmap_sram.size_kib": size, "memory.filter_sram.size_kib": fkib})
        d = {r: _dram(simulate_workload(arch.replace(**{"timing.reuse": r}), wl))
             for r in ("none", "inter_layer", "fused")}
        assert d["fused"] <= d["inter_layer"] <= d["none"], (size, d)
        if last is not None:
            assert d["fused"] <= last, (size, d, last)
        last = d["fused"]


@pytest.mark.parametrize("seed", range(10))
def test_random_conv_stacks_latency_objective_fused_never_slower(seed):
    # Metamorphic, as above with timing.objective: latency, DRAM at 1 B/cycle (layers partly DRAM-bound) on
    # an os array: fused <= inter_layer <= none in total cycles. The placement's per-option cycle estimates
    # do not add up where a layer has its input and output both on chip (seed 8 at 1 KiB: estimated -1,147
    # cycles, measured -613, 174 cycles slower than inter_layer before the pipeline compared both schedules).
    rng = random.Random(seed)
    wl = _wl(_random_convs(rng))
    fkib = rng.choice([0.25, 0.5, 64])
    for size in (0.5, 1, 2, 16):
        arch = make_arch(**{"memory.ifmap_sram.size_kib": size, "memory.filter_sram.size_kib": fkib,
                            "memory.dram.bandwidth_bytes_per_cycle": 1, "array.dataflow": "os",
                            "timing.objective": "latency"})
        c = {r: simulate_workload(arch.replace(**{"timing.reuse": r}), wl).totals["total_cycles"]
             for r in ("none", "inter_layer", "fused")}
        assert c["fused"] <= c["inter_layer"] <= c["none"], (size, c)


def test_without_vector_unit_the_non_gemm_bytes_are_in_the_dram_totals():
    # the residual graph of test_residual_skip_is_held_across_its_branch under reuse none, no vector unit.
    # Layers: input 64 + weights 3*64 + 16 B read, c1/c2/c3 written (64 B each) and read back by c2, c3 and
    # c4 (64 B each; the add's output is c4's input), output 16 B. The add reads c3 and c1 (2 x 64 B)
    # and writes 64 B: 192 B that the totals left out before (tensors.csv had them), now counted, still
    # untimed. Reads 64 + 208 + 3*64 + 128 = 592, writes 3*64 + 16 + 64 = 272. The add's compute is not
    # priced, but its DRAM bytes are, at horowitz_45nm's 1300 pJ per 64-bit access = 162.5 pJ per byte:
    # 192 x 162.5 = 31,200 pJ (it was 0: the DRAM energy covered only the layers' bytes)
    nodes = [{"name": "c1", "op": "gemm", "m": 8, "k": 8, "n": 8},
             {"name": "c2", "op": "gemm", "m": 8, "k": 8, "n": 8},
             {"name": "c3", "op": "gemm", "m": 8, "k": 8, "n": 8},
             {"name": "add", "op": "add", "inputs": ["c3", "c1"]},
             {"name": "c4", "op": "gemm", "m": 8, "k": 8, "n": 2}]
    res = simulate_workload(make_arch(), _wl(nodes))
    t = res.totals
    assert (t["dram_read_bytes"], t["dram_write_bytes"]) == (592, 272)
    assert t["dram_write_bytes"] == sum(r["dram_write_bytes"] for r in res.tensor_rows)
    v = res.vector_rows[0]
    assert (v["dram_read_bytes"], v["dram_write_bytes"], v["total_cycles"]) == (128, 64, 0)
    assert v["energy_pj"] == v["energy_dram_pj"] == pytest.approx(192 * 162.5)
    # every counted DRAM byte is priced: (592 + 272) B x 162.5 pJ
    assert t["energy_dram_pj"] == pytest.approx(864 * 162.5)
    assert res.notes[0] == ("1 non-GEMM nodes not timed and their compute not priced (the arch has no "
                            "vector_unit); their DRAM traffic is counted and priced: 192 B of the DRAM "
                            "total, 31,200 pJ of the DRAM energy")
    # a bias add (one activation and an 8-element constant): the constant is read once, + 8 B
    nodes[3] = {"name": "add", "op": "add", "inputs": ["c3"], "constant": 8}
    res = simulate_workload(make_arch(), _wl(nodes))
    v = res.vector_rows[0]
    assert (v["dram_read_bytes"], v["dram_write_bytes"]) == (72, 64)
    assert v["energy_dram_pj"] == pytest.approx(136 * 162.5)
    assert res.totals["energy_dram_pj"] == pytest.approx(
        (res.totals["dram_read_bytes"] + res.totals["dram_write_bytes"]) * 162.5)


def test_sigmoid_tanh_cumsum_copy_counts():
    # mapping/_vector.py's table, n = 10: sigmoid int add 5n mul 3n div n; fp exp n add n div n; tanh int
    # add 6n mul 4n div n; fp mul n exp n add 2n div n; cumsum add n; copy: data movement only
    assert vector_op_counts("sigmoid", elements=10) == {"add": 50, "mul": 30, "divide": 10}
    assert vector_op_counts("sigmoid", elements=10, arithmetic="fp16") == {"exp": 10, "add": 10, "divide": 10}
    assert vector_op_counts("tanh", elements=10) == {"add": 60, "mul": 40, "divide": 10}
    assert vector_op_counts("tanh", elements=10, arithmetic="fp32") == {"mul": 10, "exp": 10, "add": 20,
                                                                        "divide": 10}
    assert vector_op_counts("cumsum", elements=10) == {"add": 10}
    assert vector_op_counts("copy", elements=10) == {}
