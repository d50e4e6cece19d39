"""Run Stream (stream-dse 0.0.8, KULeuven-MICAS/stream) on its own multi-core examples and record what
docs/validation_multicore.md compares with hwsim: latency, energy per component, DRAM and core-to-core
traffic, and every computation node (CN) with its core, runtime, energy, start and end.

Stream cannot be installed beside this project's zigzag-dse 3.x; run it in its own venv:

    python3 -m venv /tmp/streamvenv
    /tmp/streamvenv/bin/pip install "stream-dse==0.0.8" "zigzag-dse<3" plotly pandas   # zigzag-dse 2.5.4
    cd /tmp && /tmp/streamvenv/bin/python /path/to/hwsim/tools/stream_cases.py stream_cases.json

(Stream writes ``outputs/`` in the working directory.) The JSON is committed as
``tests/data/stream/stream_cases.json``; the tests compare hwsim against it (they do not run Stream).

Workarounds for Stream 0.0.8 (its ``api.py`` no longer matches its stages): ``operands_to_prefetch=[]``,
``plot_hof=True`` (else ``InterCoreMappingStage.run`` ends in ``UnboundLocalError: scme``), and a folder for
``node_hw_performances_path``. The transfers are recorded by wrapping ``Accelerator.transfer_tensor_to_core``
(which ``Accelerator.remove`` also calls to write back) (``stream/classes/hardware/architecture/accelerator.py``) without changing them.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from importlib.metadata import version

logging.basicConfig(level=logging.WARNING)

CASES = {
    "dual_testing_core_offchip": ("stream.inputs.testing.hardware.dual_testing_core_offchip",
                                  "stream.inputs.testing.workload.testing_workload_for_2_cores",
                                  "stream.inputs.testing.mapping.testing_mapping", 4),
    "tpu_like_quad_core": ("stream.inputs.examples.hardware.TPU_like_quad_core",
                           "stream.inputs.examples.workload.resnet18_few_layers",
                           "stream.inputs.examples.mapping.tpu_like_quad_core", 4),
    # two of the quad example's TPU-like cores (a 1 x 2 mesh) with its pooling, SIMD and off-chip cores
    "tpu_like_dual_core": ("hwsim_stream.tpu_like_dual_core",
                           "stream.inputs.examples.workload.resnet18_few_layers",
                           "hwsim_stream.tpu_like_dual_core_mapping", 4),
    # a BERT-base-shaped encoder block's GEMMs (seq 128, d 768, FFN 3072) as 1x1 convs, on 2 and 4 cores
    "transformer_block_dual_core": ("hwsim_stream.tpu_like_dual_core", "hwsim_stream.transformer_block",
                                    "hwsim_stream.tpu_like_dual_core_mapping", 4),
    "transformer_block_quad_core": ("stream.inputs.examples.hardware.TPU_like_quad_core",
                                    "hwsim_stream.transformer_block",
                                    "stream.inputs.examples.mapping.tpu_like_quad_core", 4),
    # the same with CNs of 32 rows of M (hint_loops OY 4: an outer OY loop of 4), not one row
    "transformer_block_dual_core_cn32": ("hwsim_stream.tpu_like_dual_core", "hwsim_stream.transformer_block",
                                         "hwsim_stream.tpu_like_dual_core_mapping", 4, [("OY", 4)]),
    "transformer_block_quad_core_cn32": ("stream.inputs.examples.hardware.TPU_like_quad_core",
                                         "hwsim_stream.transformer_block",
                                         "stream.inputs.examples.mapping.tpu_like_quad_core", 4, [("OY", 4)]),
    # with the attention matmuls as layers whose W is an activation (one head of 768: the MACs and the Q, K, V
    # and context tensors of 12 heads of 64); Stream 0.0.8 fails on it (recorded as the case's error)
    "transformer_block_attention_dual_core_cn32": ("hwsim_stream.tpu_like_dual_core",
                                                   "hwsim_stream.transformer_block_attention",
                                                   "hwsim_stream.tpu_like_dual_core_mapping", 4, [("OY", 4)]),
}

# The transformer block (BERT-base, Devlin et al. 2019: d_model 768, FFN 3072; seq_len 128): a GEMM
# (M x K) x (K x N) is a 1x1 conv with OY = M, C = K, K = N (one CN per row of M under hint_loops OY).
# Q, K and V read the block input from DRAM; the attention matmuls (QK^T, AV: both operands activations,
# per head) are left out, and the output projection reads V's output (the context's shape, 128 x 768).
SEQ, D, FF = 128, 768, 3072
BLOCK = [("q", D, D, None), ("k", D, D, None), ("v", D, D, None), ("o", D, D, 2), ("fc1", D, FF, 3),
         ("fc2", FF, D, 4)]


def _gemm_layer(c: int, k: int, src: int | None) -> dict:
    d = {"operator_type": "Conv", "equation": "O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]",
         "dimension_relations": ["ix=1*ox+1*fx", "iy=1*oy+1*fy"],
         "loop_dim_size": {"B": 1, "K": k, "C": c, "OY": SEQ, "OX": 1, "FY": 1, "FX": 1},
         "operand_precision": {"O": 16, "O_final": 8, "W": 8, "I": 8},
         "operand_source": {"W": [], "I": [] if src is None else [src]},
         "constant_operands": ["I", "W"] if src is None else ["W"],
         "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"}, "padding": {"IY": (0, 0), "IX": (0, 0)}}
    if src is not None:
        d["operand_source_dimension_mapping"] = {"I": {"IX": "OX", "IY": "OY", "C": "K"}}
    return d


def _attention_layer(c: int, k: int, i_src: int, w_src: int, w_dims: dict) -> dict:
    """A matmul of two activations: I from layer ``i_src``, W from ``w_src`` (dims mapped by ``w_dims``)."""
    d = _gemm_layer(c, k, i_src)
    d["operand_source"] = {"W": [w_src], "I": [i_src]}
    d["constant_operands"] = []
    d["operand_source_dimension_mapping"]["W"] = w_dims
    return d


def _register_modules() -> None:
    """The hardware, mapping and workload modules of the added cases, as modules Stream imports by name."""
    import types

    from stream.classes.hardware.architecture.accelerator import Accelerator
    from stream.inputs.examples.hardware.cores.offchip import get_offchip_core
    from stream.inputs.examples.hardware.cores.pooling import get_core as get_pooling_core
    from stream.inputs.examples.hardware.cores.simd import get_core as get_simd_core
    from stream.inputs.examples.hardware.cores.TPU_like import get_core as get_tpu_core
    from stream.inputs.examples.hardware.nocs.mesh_2d import get_2d_mesh

    def module(name: str, **attrs) -> None:
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        sys.modules[name] = m

    module("hwsim_stream")
    cores = [get_tpu_core(i) for i in range(2)]
    graph = get_2d_mesh(cores, 1, 2, 64, 0, get_pooling_core(id=2), get_simd_core(id=3),
                        get_offchip_core(id=4))
    module("hwsim_stream.tpu_like_dual_core",
           accelerator=Accelerator("TPU-like-dual-core", graph, offchip_core_id=4))
    alloc = {"core_allocation": [0, 1]}
    module("hwsim_stream.tpu_like_dual_core_mapping",
           mapping={"default": alloc, "Conv": alloc, "Gemm": alloc, "Pool": {"core_allocation": 2},
                    "MaxPool": {"core_allocation": 2}, "Add": {"core_allocation": 3}})
    module("hwsim_stream.transformer_block",
           workload={i: _gemm_layer(c, k, src) for i, (_, c, k, src) in enumerate(BLOCK)})
    # q k v; scores = Q K^T (128 x 768) x (768 x 128); context = S V (128 x 128) x (128 x 768); o fc1 fc2
    attn = {i: _gemm_layer(D, D, None) for i in range(3)}
    attn[3] = _attention_layer(D, SEQ, 0, 1, {"K": "OY", "C": "K"})
    attn[4] = _attention_layer(SEQ, D, 3, 2, {"C": "OY", "K": "K"})
    attn.update({5: _gemm_layer(D, D, 4), 6: _gemm_layer(D, FF, 5), 7: _gemm_layer(FF, D, 6)})
    module("hwsim_stream.transformer_block_attention", workload=attn)


def run(name: str, hw: str, wl: str, mp: str, gens: int, hint_loops: list | None = None) -> dict:
    """One case: Stream's best individual after ``gens`` generations of ``gens`` individuals; CNs of one
    output row (``hint_loops=[("OY", "all")]``) unless ``hint_loops`` is given."""
    hint_loops = hint_loops or [("OY", "all")]
    from stream.classes.hardware.architecture.accelerator import Accelerator
    from stream.classes.stages import (
        GenerateCNWorkloadHybridStage,
        InterCoreMappingStage,
        IntraCoreMappingStage,
    )
    from zigzag.classes.stages import AcceleratorParserStage, MainStage

    try:
        from stream.classes.stages import UserDefinedModelParserStage
    except ImportError:  # pragma: no cover
        from stream.classes.stages.ModelParserStage import UserDefinedModelParserStage

    log: list[dict] = []
    orig_transfer = Accelerator.transfer_tensor_to_core

    def transfer(self, tensor, receiving_core_id, tensor_operand, non_evictable_tensors, sending_core_id=None):
        out = orig_transfer(self, tensor, receiving_core_id, tensor_operand, non_evictable_tensors,
                            sending_core_id)
        end, link_e, mem_e, ev_link, ev_mem, offchip = out
        if end != -1:
            kind = ("core_to_offchip" if receiving_core_id == self.offchip_core_id else
                    "offchip_to_core" if offchip else "core_to_core")
            log.append({"kind": kind, "bits": int(tensor.size), "operand": str(tensor_operand),
                        "layer": int(tensor.origin.id[0]), "end": int(end), "memory_pj": float(mem_e),
                        "link_pj": float(link_e)})
        return out

    import stream.classes.cost_model.cost_model as cm

    orig_schedule = cm.schedule_graph
    runs: list[tuple[tuple, list[dict]]] = []

    def schedule(*a, **k):  # one GA evaluation: keep its own transfers with its results
        log.clear()
        r = orig_schedule(*a, **k)
        runs.append((r, list(log)))
        return r

    cm.schedule_graph = schedule
    Accelerator.transfer_tensor_to_core = transfer
    t = time.process_time()
    os.makedirs("outputs", exist_ok=True)
    ms = MainStage([AcceleratorParserStage, UserDefinedModelParserStage, GenerateCNWorkloadHybridStage,
                    IntraCoreMappingStage, InterCoreMappingStage],
                   accelerator=hw, workload_path=wl, mapping_path=mp, loma_lpf_limit=6,
                   nb_ga_individuals=gens, nb_ga_generations=gens,
                   node_hw_performances_path=f"outputs/out_{name}.pickle", plot_hof=True,
                   plot_file_name=False, plot_full_schedule=False, plot_data_transfer=False, cn_define_mode=1,
                   hint_loops=hint_loops, scheduler_candidate_selection="memory", operands_to_prefetch=[])
    ans = ms.run()
    scme = ans[0][0]
    cpu = time.process_time() - t
    Accelerator.transfer_tensor_to_core = orig_transfer
    cm.schedule_graph = orig_schedule
    # the transfers of the evaluation that gave the best individual's results
    log = next(lg for r, lg in reversed(runs) if r[0] == scme.latency
               and abs(r[3] - scme.total_cn_offchip_memory_energy) < 1e-6 * (1 + r[3]))
    cns = sorted(({"layer": int(n.id[0]), "cn": int(n.id[1]), "core": int(n.core_allocation),
                   "runtime": int(n.get_runtime()), "onchip_pj": float(n.get_onchip_energy()),
                   "offchip_pj": float(n.get_offchip_energy() or 0), "start": int(n.start), "end": int(n.end)}
                  for n in scme.workload.nodes()), key=lambda d: (d["layer"], d["cn"]))
    keys = ("total_cn_onchip_energy", "total_cn_offchip_link_energy", "total_cn_offchip_memory_energy",
            "total_eviction_to_offchip_link_energy", "total_eviction_to_offchip_memory_energy",
            "total_sink_layer_output_offchip_link_energy", "total_sink_layer_output_offchip_memory_energy",
            "total_core_to_core_link_energy", "total_core_to_core_memory_energy")
    traffic: dict[str, int] = {}
    agg: dict[tuple, dict] = {}
    for x in log:
        traffic[x["kind"] + "_bits"] = traffic.get(x["kind"] + "_bits", 0) + x["bits"]
        k = (x["kind"], x["layer"], x["operand"], x["bits"])
        a = agg.setdefault(k, {"kind": x["kind"], "layer": x["layer"], "operand": x["operand"],
                               "bits": x["bits"], "count": 0, "memory_pj": 0.0, "last_end": 0})
        a["count"] += 1
        a["memory_pj"] += x["memory_pj"]
        a["last_end"] = max(a["last_end"], x["end"])
    return {"hardware": hw, "workload": wl, "mapping": mp, "hint_loops": [list(h) for h in hint_loops],
            "ga_individuals": gens, "ga_generations": gens,
            "latency_cycles": int(scme.latency), "energy_pj": float(scme.energy),
            **{k: float(getattr(scme, k)) for k in keys}, "traffic_bits": traffic, "cpu_s": round(cpu, 2),
            "cns": cns, "transfers": sorted(agg.values(), key=lambda d: (d["layer"], d["kind"], d["operand"]))}


def main() -> None:
    """``stream_cases.py OUT.json [CASE ...]``: every case, or only the named ones, updated in OUT.json."""
    path = sys.argv[1] if len(sys.argv) > 1 else "stream_cases.json"
    names = sys.argv[2:] or list(CASES)
    out = {"stream_dse": version("stream-dse"), "zigzag_dse": version("zigzag-dse"),
           "python": sys.version.split()[0],
           "command": "cd /tmp && /tmp/streamvenv/bin/python tools/stream_cases.py stream_cases.json",
           "settings": "cn_define_mode=1, hint_loops=[('OY', 'all')] (unless a case's own), "
                       "loma_lpf_limit=6, "
                       "scheduler_candidate_selection='memory', operands_to_prefetch=[]",
           "cases": {}}
    if sys.argv[2:] and os.path.exists(path):
        with open(path) as f:
            out["cases"] = json.load(f)["cases"]
    for name in names:
        _register_modules()  # afresh: Stream replaces the workload dict's operand sources by its nodes
        try:
            out["cases"][name] = run(name, *CASES[name])
        except Exception as e:  # a case Stream cannot run: its error, where it was raised
            import traceback

            tb = traceback.extract_tb(e.__traceback__)[-1]
            where = tb.filename.split("site-packages/")[-1]
            out["cases"][name] = {"error": f"{type(e).__name__} at {where}:{tb.lineno} ({tb.line})",
                                  "hardware": CASES[name][0], "workload": CASES[name][1]}
        out["cases"][name]["command"] = ("cd /tmp && /tmp/streamvenv/bin/python tools/stream_cases.py "
                                         f"OUT.json {name}")
        with open(path, "w") as f:  # after every case (Stream prints to stdout)
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
