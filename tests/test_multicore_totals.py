"""Chip-level cycle totals on one time base (hwsim/_chip_totals.py: chip_cycle_totals): with several cores
``total_cycles`` is the makespan, ``compute_cycles`` the busiest core's, ``stall_cycles`` the rest of the
makespan, split into DRAM and on-chip stalls; the per-core sums are ``*_core_sum``. One core keeps the
one-array totals (tests/test_multicore.py, tests/test_multicore_stream.py: one core equals one array)."""

import json

import pytest

from hwsim._pipeline import simulate_workload
from hwsim.cli import main
from hwsim.spec import ArchSpec, load_arch, load_workload_yaml, transformer_workload

from .utils import ROOT

ARCH = load_arch(ROOT / "arch/multicore_4x.yaml")


def _check(res, ncores):
    t = res.totals
    assert t["cores"] == ncores
    # the invariants: compute + stall = makespan, stall = DRAM stall + on-chip stall, none negative
    assert t["compute_cycles"] + t["stall_cycles"] == t["total_cycles"]
    assert t["dram_stall_cycles"] + t["onchip_stall_cycles"] == t["stall_cycles"]
    assert 0 <= t["stall_cycles"] <= t["total_cycles"] and min(t["dram_stall_cycles"],
                                                               t["onchip_stall_cycles"]) >= 0
    # compute_cycles: the busiest core's, recomputed from the rows (each named core/node)
    per_core = {}
    for r in res.rows + res.vector_rows:
        core = (r.get("layer") or r["node"]).split("/")[0]
        per_core[core] = per_core.get(core, 0) + r["compute_cycles"]
    assert len(per_core) == ncores
    assert t["compute_cycles"] == max(per_core.values())
    assert t["compute_cycles_core_sum"] == sum(per_core.values())
    assert t["stall_cycles_core_sum"] == sum(r["stall_cycles"] for r in res.rows + res.vector_rows)
    assert [c["node_compute_cycles"] for c in res.core_rows] == list(per_core.values())
    # every unit's occupancy is within the makespan (each core's array runs its nodes one at a time)
    assert t["array_cycles"] <= t["total_cycles"] and t["vector_cycles"] <= t["total_cycles"]
    assert t["array_cycles_core_sum"] == sum(r["total_cycles"] for r in res.rows)
    return t


def test_resnet50_split_reuse_none():
    wl = load_workload_yaml(ROOT / "workloads/resnet50.yaml")
    res = simulate_workload(ARCH.replace(**{"timing.reuse": "none"}), wl)
    t = _check(res, 4)
    # split n over 4 cores: every ResNet-50 layer's outputs divide by 4, so the four parts are the same and
    # the busiest core computes exactly a quarter of the sum
    assert t["compute_cycles"] * 4 == t["compute_cycles_core_sum"]
    # before: stall_cycles (3,318,396) summed over cores exceeded the makespan (1,605,196)
    assert t["stall_cycles_core_sum"] > t["total_cycles"] > t["stall_cycles"]


def test_gpt2_decode_split():
    wl = transformer_workload(model="gpt2_small", phase="decode", context=512, n_layer=2)
    _check(simulate_workload(ARCH, wl), 4)


def test_pipeline_schedule():
    d = ARCH.model_dump(mode="python")
    d["cores"] = dict(d["cores"], list=[{"name": "c0"}, {"name": "c1"}], schedule="pipeline")
    res = simulate_workload(ArchSpec.model_validate(d), load_workload_yaml(ROOT / "workloads/resnet18.yaml"))
    _check(res, 2)


def test_cli_one_line_summary_and_summary_json(tmp_path, capsys):
    rc = main(["simulate", str(ROOT / "arch/multicore_4x.yaml"), str(ROOT / "workloads/resnet50.yaml"),
               "--reuse", "none", "--out", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert rc == 0
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    t = s["totals"]
    assert f"{t['total_cycles']:,} cycles ({t['stall_cycles']:,} stall)" in out
    assert t["stall_cycles"] == t["total_cycles"] - t["compute_cycles"]
    assert t["stall_cycles_core_sum"] > t["total_cycles"]
    cores = (tmp_path / "o" / "cores.csv").read_text().splitlines()
    assert "node_stall_cycles" in cores[0].split(",") and len(cores) == 5
    with pytest.raises(KeyError):  # a multi-core-only key does not leak into one array's totals
        simulate_workload(ARCH.replace(cores=None), load_workload_yaml(
            ROOT / "workloads/digits_cnn.yaml")).totals["compute_cycles_core_sum"]
