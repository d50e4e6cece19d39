"""A sweep on a dask.distributed cluster (a LocalCluster on loopback) gives the same points as a local run."""

from __future__ import annotations

import pandas as pd
import pytest

from hwsim.errors import SpecError
from hwsim.explore import run_sweep

from .utils import ROOT

distributed = pytest.importorskip("distributed")

SWEEP = ("name: c\narch: {root}/arch/edge_32x32.yaml\nworkload: {root}/workloads/resnet18.yaml\n"
         "axes: {{array.rows: [16, 32], memory.dram.bandwidth_bytes_per_cycle: [4, 16]}}\n"
         "precision: {{uniform: [[8, 8], [4, 4]]}}\nobjectives: {{total_cycles: min, energy_pj: min}}\n")


def test_cluster_equals_local(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(SWEEP.format(root=ROOT))
    run_sweep(p, out=tmp_path / "local", workers=1, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        run_sweep(p, out=tmp_path / "dask", scheduler=cluster.scheduler_address, progress=False, chunk=2)
    local = pd.read_csv(tmp_path / "local/points.csv")
    dask = pd.read_csv(tmp_path / "dask/points.csv")
    assert len(local) == 8
    pd.testing.assert_frame_equal(local, dask)


def test_unreachable_scheduler_is_bad_input(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(SWEEP.format(root=ROOT))
    with pytest.raises(SpecError,
                       match=r"^command line: --scheduler: expected the address of a running dask scheduler, "
                                        r"found 'tcp://127\.0\.0\.1:9'"):
        run_sweep(p, out=tmp_path / "x", scheduler="tcp://127.0.0.1:9", progress=False)
