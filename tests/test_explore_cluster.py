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


def test_an_address_that_does_not_speak_dask_is_bad_input(tmp_path, monkeypatch):
    # the second trial: an HTTP server on the address accepted the connection and Client() waited forever
    # for dask's handshake; now the connection has CONNECT_S seconds (2 here, 10 by default). The server
    # here accepts and says nothing, on loopback
    import socket

    from hwsim.explore import _runner

    monkeypatch.setattr(_runner, "CONNECT_S", 2.0)
    listener = socket.create_server(("127.0.0.1", 0))
    address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    p = tmp_path / "s.yaml"
    p.write_text(SWEEP.format(root=ROOT))
    try:
        with pytest.raises(SpecError) as e:
            run_sweep(p, out=tmp_path / "x", scheduler=address, progress=False)
    finally:
        listener.close()
    assert str(e.value) == (f"command line: --scheduler: expected the address of a running dask scheduler, "
                            f"found '{address}' (no dask handshake within 2 s)")
    assert not (tmp_path / "x" / "points.csv").exists()


def test_a_dask_worker_unpickles_the_scattered_sweep_once(tmp_path):
    # what a dask worker's chunks receive: the sweep pickled once in the parent (_PickledSweep); the first
    # chunk unpickles it, the next ones reuse that copy; the points equal those of the sweep itself
    from hwsim.explore import _runner, load_sweep

    p = tmp_path / "s.yaml"
    p.write_text(SWEEP.format(root=ROOT))
    rs = load_sweep(p)
    blob = _runner._PickledSweep(rs)
    first = _runner._hw_chunk(blob, [0, 3])
    kept = _runner._UNPICKLED
    assert kept is not None and kept[0] is blob and kept[1] is not rs
    assert _runner._hw_chunk(blob, [5]) == _runner._hw_chunk(rs, [5])
    assert _runner._UNPICKLED is kept  # not unpickled again
    assert first == _runner._hw_chunk(rs, [0, 3])
