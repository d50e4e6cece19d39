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
}


def run(name: str, hw: str, wl: str, mp: str, gens: int) -> dict:
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
                   hint_loops=[("OY", "all")], scheduler_candidate_selection="memory", operands_to_prefetch=[])
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
    return {"hardware": hw, "workload": wl, "mapping": mp, "ga_individuals": gens, "ga_generations": gens,
            "latency_cycles": int(scme.latency), "energy_pj": float(scme.energy),
            **{k: float(getattr(scme, k)) for k in keys}, "traffic_bits": traffic, "cpu_s": round(cpu, 2),
            "cns": cns, "transfers": sorted(agg.values(), key=lambda d: (d["layer"], d["kind"], d["operand"]))}


def main() -> None:
    out = {"stream_dse": version("stream-dse"), "zigzag_dse": version("zigzag-dse"),
           "python": sys.version.split()[0],
           "command": "cd /tmp && /tmp/streamvenv/bin/python tools/stream_cases.py stream_cases.json",
           "settings": "cn_define_mode=1, hint_loops=[('OY', 'all')], loma_lpf_limit=6, "
                       "scheduler_candidate_selection='memory', operands_to_prefetch=[]",
           "cases": {}}
    for name, (hw, wl, mp, gens) in CASES.items():
        out["cases"][name] = run(name, hw, wl, mp, gens)
    with open(sys.argv[1] if len(sys.argv) > 1 else "stream_cases.json", "w") as f:  # Stream prints to stdout
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
