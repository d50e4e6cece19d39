"""Run Stream (stream-dse 0.0.8, KULeuven-MICAS) on one core with layer fusion off and on; write the JSON that
tests/test_validation_fusion.py compares hwsim with (tests/data/stream_fusion/stream_single_core.json).

Runs only in Stream's own venv (stream-dse 0.0.8 needs zigzag-dse 2.x; this project pins 3.x)::

    python3 -m venv /tmp/streamvenv
    /tmp/streamvenv/bin/pip install "stream-dse==0.0.8" "zigzag-dse<3" plotly pandas
    cd bench/stream_fusion && /tmp/streamvenv/bin/python run_stream_fusion.py ../../tests/data/stream_fusion

(all cases, a few minutes; ``run_stream_fusion.py OUTDIR CASE ...`` runs some and writes
``stream_<cases>.json``: the committed file is the four single-case files merged.) Cases: ``CASES`` below.

Fusion in Stream is the granularity of its computation nodes (CNs), ``hint_loops`` of
``GenerateCNWorkloadHybridStage`` with ``cn_define_mode=1`` (stream/classes/stages/
GenerateCNWorkloadHybridStage.py: get_outer_tmap_loop_dimensions; stream/classes/opt/splitting/splitting.py:
convert_outer_cn_loops): ``[]`` gives one CN per layer (layer by layer, fusion off); ``[("OY", "all")]`` one
CN per output row (depth-first, fusion on; the scheduler then interleaves the layers' rows, and a row's
tensors stay in the core's top memories when they fit).

Stream's outputs are read from its ``StreamCostModelEvaluation`` (stream/classes/cost_model/cost_model.py).
DRAM traffic is not an output of Stream; it is counted here by wrapping (not changing) two of Stream's
functions: ``Accelerator.transfer_tensor_to_core`` (every tensor moved from or to the off-chip core: its
``tensor.size`` bits) and the per-CN ZigZag cost models' top-level data movement of the operands Stream
streams from DRAM (``too_large_operands``: ZigZag's ``mapping.unit_mem_data_movement[op][-1]`` element
counts times the operand precision). Workarounds for Stream 0.0.8's API (docs/validation_multicore.md):
``operands_to_prefetch=[]``, ``plot_hof=True``.
"""

import importlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from importlib.metadata import version  # noqa: E402

from stream.classes.hardware.architecture import accelerator as _acc_mod  # noqa: E402
from stream.classes.stages import (  # noqa: E402
    GenerateCNWorkloadHybridStage,
    InterCoreMappingStage,
    IntraCoreMappingStage,
    UserDefinedModelParserStage,  # noqa: E402
)
from zigzag.classes.stages import AcceleratorParserStage, MainStage  # noqa: E402

CASES = {
    # Stream's own single-core test: stream/inputs/testing/hardware/single_testing_core_offchip.py with
    # stream/inputs/testing/workload/testing_workload_for_1_core.py (4 layers, 3760 columns).
    "testing_core1": ("stream.inputs.testing.hardware.single_testing_core_offchip",
                      "stream.inputs.testing.workload.testing_workload_for_1_core",
                      "stream.inputs.testing.mapping.testing_mapping"),
    # ResNet-18 layer1's four 3x3 convs on one TPU-like core (sf_*.py beside this file).
    "tpu_like_resnet18": ("sf_tpu_like_single_core", "sf_resnet18_layer1_convs", "sf_mapping_single_core"),
    # The same convs on Stream's testing core (128 KiB activation buffer: a 56x56x64 tensor, 196 KiB, does
    # not fit, a few rows of it do: the case where fusion matters).
    # ResNet-18 layer1's convs at 112x112 on the TPU-like core: the tensors do not fit, rows and weights do.
    "tpu_like_convs_112": ("sf_tpu_like_single_core", "sf_convs_112", "sf_mapping_single_core"),
    "testing_core1_resnet18": ("stream.inputs.testing.hardware.single_testing_core_offchip",
                               "sf_resnet18_layer1_convs", "sf_mapping_single_core"),
}
MODES = {"layer_by_layer": [], "fused_rows": [("OY", "all")]}

_log = {"dram_read_bits": 0, "dram_write_bits": 0, "transfers": 0}
_icm = {}


def _wrap():
    orig = _acc_mod.Accelerator.transfer_tensor_to_core

    def transfer(self, tensor, receiving_core_id, tensor_operand, non_evictable_tensors,
                 sending_core_id=None):
        out = orig(self, tensor, receiving_core_id, tensor_operand, non_evictable_tensors,
                   sending_core_id=sending_core_id)
        if out[0] != -1 or out[1] or out[2]:  # -1, 0, 0: already there, nothing moved
            if out[5]:
                _log["dram_read_bits"] += tensor.size
            elif receiving_core_id == self.offchip_core_id:
                _log["dram_write_bits"] += tensor.size
            _log["transfers"] += 1
        return out

    _acc_mod.Accelerator.transfer_tensor_to_core = transfer
    init = InterCoreMappingStage.__init__

    def icm_init(self, *a, **k):
        init(self, *a, **k)
        _icm["stage"] = self

    InterCoreMappingStage.__init__ = icm_init


def _cn_breakdown(scme, stage):
    """Per memory level energy (pJ) and the DRAM bits of the too-large operands, summed over the CNs."""
    perf = stage.node_hw_performances
    levels: dict[str, float] = {}
    mac = 0.0
    too_large_bits = {"read": 0, "write": 0}
    cns = 0
    for node in scme.workload.nodes():
        if not hasattr(node, "too_large_operands") or node.too_large_operands is None:
            continue
        uniq = next(n for n in perf if n == node)
        cme = next(iter(perf[uniq].values()))
        cns += 1
        mac += cme.MAC_energy
        for op, per_level in cme.energy_breakdown.items():
            mem_op = node.memory_operand_links[op]
            lvls = cme.accelerator.get_core(cme.core_id).memory_hierarchy.get_memory_levels(mem_op)
            for lv, e in zip(lvls, per_level, strict=False):
                key = f"{lv.name}"
                levels[key] = levels.get(key, 0.0) + e
        for mem_op in node.too_large_operands:
            op = next(k for k, v in node.memory_operand_links.items() if v == mem_op)
            mv = cme.mapping.unit_mem_data_movement[op][-1].data_elem_move_count
            prec = node.operand_precision["O_final" if op == "O" and "O_final" in node.operand_precision
                                          else op]
            too_large_bits["read"] += mv.rd_out_to_low * prec
            too_large_bits["write"] += mv.wr_in_by_low * prec
    return {"cns": cns, "mac_pj": mac, "memory_level_pj": levels, "too_large_dram_bits": too_large_bits}


def run(case: str, mode: str, outdir: str) -> dict:
    hw, wl, mp = CASES[case]
    for m in (hw, wl, mp):  # Stream edits the workload dict and the accelerator in place: fresh copies
        importlib.reload(importlib.import_module(m))
    _log.update(dram_read_bits=0, dram_write_bits=0, transfers=0)
    t = time.process_time()
    pickle = os.path.join(outdir, f"_hw_perf_{case}_{mode}.pickle")
    ms = MainStage([AcceleratorParserStage, UserDefinedModelParserStage, GenerateCNWorkloadHybridStage,
                    IntraCoreMappingStage, InterCoreMappingStage],
                   accelerator=hw, workload_path=wl, mapping_path=mp, loma_lpf_limit=6,
                   nb_ga_individuals=4, nb_ga_generations=4, node_hw_performances_path=pickle,
                   plot_hof=True, plot_file_name=False, plot_full_schedule=False, plot_data_transfer=False,
                   cn_define_mode=1, hint_loops=MODES[mode], scheduler_candidate_selection="memory",
                   operands_to_prefetch=[])
    scme = ms.run()[0][0]
    cpu = time.process_time() - t
    if os.path.exists(pickle):
        os.remove(pickle)
    keys = ("total_cn_onchip_energy", "total_cn_offchip_link_energy", "total_cn_offchip_memory_energy",
            "total_eviction_to_offchip_link_energy", "total_eviction_to_offchip_memory_energy",
            "total_sink_layer_output_offchip_link_energy", "total_sink_layer_output_offchip_memory_energy",
            "total_core_to_core_link_energy", "total_core_to_core_memory_energy")
    br = _cn_breakdown(scme, _icm["stage"])
    return {
        "case": case, "mode": mode, "hint_loops": MODES[mode],
        "latency_cycles": int(scme.latency), "energy_pj": float(scme.energy),
        **{k: float(getattr(scme, k)) for k in keys},
        "max_memory_usage": getattr(scme, "max_memory_usage", None),
        "dram_transfer_bits": {"read": _log["dram_read_bits"], "write": _log["dram_write_bits"],
                               "transfers": _log["transfers"]},
        **br,
        "dram_bytes_total": (_log["dram_read_bits"] + _log["dram_write_bits"]
                             + br["too_large_dram_bits"]["read"] + br["too_large_dram_bits"]["write"]) / 8,
        "stream_cpu_s": round(cpu, 1),
    }


def main():
    outdir = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
    only = sys.argv[2:] or list(CASES)
    os.makedirs(outdir, exist_ok=True)
    _wrap()
    res = {"tool": "stream-dse", "stream_version": version("stream-dse"),
           "zigzag_version": version("zigzag-dse"),
           "command": "cd bench/stream_fusion && /tmp/streamvenv/bin/python run_stream_fusion.py "
                      "../../tests/data/stream_fusion",
           "settings": {"cn_define_mode": 1, "loma_lpf_limit": 6, "scheduler_candidate_selection": "memory",
                        "operands_to_prefetch": [], "nb_ga_individuals": 4, "nb_ga_generations": 4},
           "runs": []}
    for case in only:
        for mode in MODES:
            r = run(case, mode, outdir)
            print(json.dumps({k: r[k] for k in ("case", "mode", "latency_cycles", "energy_pj",
                                                "dram_bytes_total")}), flush=True)
            res["runs"].append(r)
    with open(os.path.join(outdir, "stream_single_core.json" if len(only) == len(CASES)
                           else f"stream_{'_'.join(only)}.json"), "w") as f:
        json.dump(res, f, indent=1, default=str)


if __name__ == "__main__":
    main()
