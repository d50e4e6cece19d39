"""Sweep speed: design points per second for a ResNet-50 hardware sweep (timing and energy), 1 and 2 workers.

    python bench/bench_sweep.py      # sweeps/resnet50_hw.yaml (324 points) and the same space with array
                                     # columns as a 5th axis (1,296 points): about two minutes

Prints the CPU time of one design point (mapping, event model, energy for all 54 layers, measured in this
process over many points after a warm-up), then the wall-clock rate of the whole sweep command with 1 and 2
local workers (points written to CSV and Parquet, the report drawn), and the speed-up from 1 to 2 workers.
Then the scaling table (``scaling_table``, ``--scaling-only`` runs just it): the 1,296-point sweep run in this
process with 1 and 2 local workers and on a dask LocalCluster of 2 worker processes in ``--rounds N``
interleaved rounds (default 3; the goals take the median of the rounds' ratios, since this host's speed drifts
by tens of percent within minutes) and with 4 workers once: points/s of the phase that computes and writes the
points, the final phase apart, and the parent's own CPU time (which shows whether the parent's writing is a
bottleneck). It first prints the host's own ceiling: two processes of a pure integer loop against one.
Goals (issue 11, for an idle 2-core machine): >= 1.7x from 1 to 2 local
workers and dask within 15 % of 2 local workers (the cluster with ``hwsim.explore.DASK_SWEEP_CONFIG``, the
settings hwsim documents for a sweep's cluster; the same cluster with dask's defaults is run and printed
too, without a goal); exit 1 below. On a shared, loaded machine the ratios measure
the load, not hwsim: the load average is printed first.
Against SCALE-Sim 3.0.0, measured in this run on the same layers (``--scalesim-layers N``, default 4; 54 =
all of ResNet-50, about 140 CPU s more): the first N layers of SCALE-Sim's own mlperf ResNet-50
(tests/data/scalesim/topologies/mlperf/Resnet50.csv) on its 128x128 ws config in CALC mode, each tool in a
child process (CPU = the child's user + sys), hwsim through ``import-scalesim`` and ``simulate`` (its model
time, ``model_cpu_s``, and the whole command). Goals: hwsim's model >= 1,000x less CPU than SCALE-Sim there,
and the same total cycles (exit 1 otherwise); a per-point time < 15 ms.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _host import check, host_line  # noqa: E402
from bench_timing import SCALESIM, _run, _scalesim_cycles  # noqa: E402  (SCALE-Sim in a child process)

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ROOT / "sweeps" / "resnet50_hw.yaml"
DASK = "dask LocalCluster, 2 workers"


def per_point_cpu_ms(n: int = 60) -> float:
    from hwsim.explore import evaluate_hardware, load_sweep
    from hwsim.sim import use_numba

    use_numba()
    rs = load_sweep(SWEEP)
    evaluate_hardware(rs, rs.points[0])  # warm-up: numba cache, imports
    pts = [rs.points[i * len(rs.points) // n] for i in range(n)]
    t = time.process_time()
    for p in pts:
        evaluate_hardware(rs, p)
    return (time.process_time() - t) / n * 1e3


DATA = ROOT / "tests" / "data" / "scalesim"


def scalesim_same_layers(n_layers: int) -> dict:
    """SCALE-Sim and hwsim on the first ``n_layers`` of SCALE-Sim's ResNet-50, 128x128 ws, CALC: CPU s and
    cycles of each."""
    import json

    src = DATA / "topologies/mlperf/Resnet50.csv"
    cfg = DATA / "scale_128x128_ws.cfg"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        lines = [ln for ln in src.read_text().splitlines() if ln.strip()]
        topo = tmp / f"{src.stem}_first{n_layers}.csv"
        topo.write_text("\n".join(lines[:1 + n_layers]) + "\n")
        s_cpu, s_mb, _ = _run([sys.executable, "-c", SCALESIM, str(cfg), str(topo),
                               str(DATA / "layout_test.csv"), str(tmp / "ss"), "0"])
        arch = tmp / "arch.yaml"
        subprocess.run([sys.executable, "-m", "hwsim", "import-scalesim", str(cfg), "--out", str(arch)],
                       check=True, capture_output=True)
        h_cpu, _, _ = _run([sys.executable, "-m", "hwsim", "simulate", str(arch), str(topo), "--out",
                            str(tmp / "hw")])
        summ = json.loads((tmp / "hw" / "summary.json").read_text())
        return {"layers": len(lines[1:1 + n_layers]), "scalesim_cpu_s": s_cpu, "scalesim_mb": s_mb,
                "scalesim_cycles": _scalesim_cycles(tmp / "ss"),
                "hwsim_model_s": summ["totals"]["model_cpu_s"],
                "hwsim_command_s": h_cpu, "hwsim_cycles": int(summ["totals"]["total_cycles"])}


def sweep_rate(workers: int, sweep: Path) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "hwsim", "sweep", str(sweep), "--out", f"{tmp}/o", "--workers",
                        str(workers)], check=True, capture_output=True)
        wall = time.perf_counter() - t
        with open(f"{tmp}/o/points.csv") as fh:
            n = sum(1 for _ in fh) - 1
    return n / wall, n


def _big_sweep(tmp: str) -> Path:
    big = Path(tmp) / "resnet50_hw_big.yaml"
    text = SWEEP.read_text().replace("name: resnet50_hw", "name: resnet50_hw_big").replace(
        "../", f"{ROOT}/").replace("  array.rows: [16, 32, 64, 128]",
                                   "  array.rows: [16, 32, 64, 128]\n  array.cols: [16, 32, 64, 128]")
    big.write_text(text)
    return big


def timed_sweep(sweep: Path, out: Path, *, workers: int = 1, scheduler: str | None = None) -> dict:
    """One in-process ``run_sweep``: seconds until every point is written (``points_s``: spec loading, pool
    start, the points, the parent's CSV appends) and for the rest (``final_s``: Parquet, Pareto, the chosen
    point's simulation, the report); ``parent_cpu_s``: CPU seconds of this (the parent) process, workers
    excluded (with one worker the points run here)."""
    from hwsim.explore import _runner

    marks = {}
    real = _runner._finalize

    def finalize(*a, **k):
        marks["points"] = time.perf_counter()
        return real(*a, **k)

    _runner._finalize = finalize
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        _runner.run_sweep(sweep, out=out, workers=workers, scheduler=scheduler, progress=False)
        t1, c1 = time.perf_counter(), time.process_time()
    finally:
        _runner._finalize = real
    with open(out / "points.csv") as fh:
        n = sum(1 for _ in fh) - 1
    return {"n": n, "points_s": marks["points"] - t0, "final_s": t1 - marks["points"], "total_s": t1 - t0,
            "parent_cpu_s": c1 - c0}


def _warm_worker() -> None:
    """Imports and numba's cache load in a dask worker (start-up, not sweep time): what the local pool's
    forkserver preloads for its workers (``warm_up`` alone loads nothing before ``use_numba``)."""
    import hwsim.explore._worker_warm  # noqa: F401


def _alu_loop(n: int) -> int:
    x = 0
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
    return x


def host_pair_throughput(n: int = 10_000_000) -> float:
    """Throughput of two processes of a pure integer loop against one (2.0: two independent cores). On a VM
    whose two vCPUs share a physical core, or a loaded host, it is lower, and so is any sweep's scaling."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    times = []
    for k in (1, 2):
        with ctx.Pool(k) as pool:
            t = time.perf_counter()
            pool.map(_alu_loop, [n] * k)
            times.append(time.perf_counter() - t)
    return 2 * times[0] / times[1]


def scaling_table(sweep: Path, tmp: str, rounds: int = 3) -> list[tuple]:
    """Points/s with 1 and 2 local workers and a dask LocalCluster of 2 single-threaded worker processes,
    interleaved over ``rounds`` rounds (the ratios of each round, then their median: this host's speed
    drifts by tens of percent within minutes), and 4 local workers once; returns the goal rows (issue 11:
    >= 1.7x from 1 to 2 workers, dask within 15 % of local)."""
    import statistics

    import dask
    import distributed

    from hwsim.explore import DASK_SWEEP_CONFIG

    pair = host_pair_throughput()
    print(f"host: two processes of an integer loop run at x{pair:.2f} the throughput of one")
    table, r21, rdl, rdd = [], [], [], []
    for rnd in range(rounds):
        rows = {}
        for w in (1, 2) + ((4,) if rnd == 0 else ()):
            rows[f"{w} local worker(s)"] = timed_sweep(sweep, Path(tmp) / f"w{w}r{rnd}", workers=w)
        # a cluster per round, started after the local runs: its scheduler runs in this process and would
        # take the GIL from the one-worker run, which computes here (measured: 25-34 s instead of 17-21 s);
        # first with hwsim's documented settings for a sweep's cluster (DASK_SWEEP_CONFIG: the goal row),
        # then with dask's defaults (printed, for comparison)
        for label, cfg in ((DASK, DASK_SWEEP_CONFIG), (DASK + ", dask defaults", {})):
            with dask.config.set(cfg), distributed.LocalCluster(
                    n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                    dashboard_address=None) as cluster:
                # the workers are spawned, not forked: each imports hwsim and loads numba's cache on its first
                # task (what a long-lived cluster pays once, and the local pool's workers get from the
                # forkserver); done before the clock starts, as the cluster's own start is
                with distributed.Client(cluster.scheduler_address) as client:
                    client.run(_warm_worker)
                rows[label] = timed_sweep(sweep, Path(tmp) / f"dask{rnd}{len(rows)}",
                                          scheduler=cluster.scheduler_address)
        rate = {k: r["n"] / r["points_s"] for k, r in rows.items()}
        r21.append(rate["2 local worker(s)"] / rate["1 local worker(s)"])
        rdl.append(rate[DASK] / rate["2 local worker(s)"])
        rdd.append(rate[DASK + ", dask defaults"] / rate["2 local worker(s)"])
        table += [(rnd + 1, k, r) for k, r in rows.items()]
    print(f"{sweep.stem} (in-process run_sweep; wall clock; {rounds} interleaved rounds):")
    print(f"  {'round':>5} {'':<44} {'points':>6} {'points phase s':>15} {'points/s':>9} {'final s':>8} "
          f"{'whole points/s':>15} {'parent CPU s':>13}")
    for rnd, k, r in table:
        print(f"  {rnd:5d} {k:<44} {r['n']:6d} {r['points_s']:15.2f} {r['n'] / r['points_s']:9.1f} "
              f"{r['final_s']:8.2f} {r['n'] / r['total_s']:15.1f} {r['parent_cpu_s']:13.2f}")
    print(f"  per round: 2 / 1 local {', '.join(f'{v:.2f}' for v in r21)}; dask / 2 local "
          f"{', '.join(f'{v:.2f}' for v in rdl)} (with dask's defaults {', '.join(f'{v:.2f}' for v in rdd)}, "
          f"median {statistics.median(rdd):.2f}: no goal)")
    return [(f"{sweep.stem}: points/s, 2 local workers / 1 (median of {rounds})", statistics.median(r21),
             ">=", 1.7),
            (f"{sweep.stem}: points/s, dask 2 workers (DASK_SWEEP_CONFIG) / 2 local (median of {rounds})",
             statistics.median(rdl), ">=", 0.85)]


def main() -> int:
    print(host_line())
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 3
    if "--scaling-only" in sys.argv:
        with tempfile.TemporaryDirectory() as tmp:
            return check(scaling_table(_big_sweep(tmp), tmp, rounds))
    argv = sys.argv
    n_layers = int(argv[argv.index("--scalesim-layers") + 1]) if "--scalesim-layers" in argv else 4
    ms = per_point_cpu_ms()
    print(f"one ResNet-50 design point (54 layers, timing + energy): {ms:.1f} ms CPU")
    r = scalesim_same_layers(n_layers)
    ratio = r["scalesim_cpu_s"] / r["hwsim_model_s"] if r["hwsim_model_s"] else float("inf")
    print(f"same layers, this run: first {r['layers']} layers of SCALE-Sim's mlperf ResNet-50, 128x128 ws "
          f"(CALC): SCALE-Sim {r['scalesim_cpu_s']:.2f} CPU s ({r['scalesim_mb']:.0f} MB), "
          f"{r['scalesim_cycles']:,} cycles; hwsim model {r['hwsim_model_s'] * 1e3:.2f} ms (whole command "
          f"{r['hwsim_command_s']:.2f} s), {r['hwsim_cycles']:,} cycles")
    peer_goals = [("ResNet-50 design point, ms CPU", ms, "<", 15),
                  ("hwsim model / SCALE-Sim CPU, same layers (x)", ratio, ">=", 1000),
                  ("same total cycles as SCALE-Sim (1 = yes)",
                   float(r["scalesim_cycles"] == r["hwsim_cycles"]), ">=", 1)]
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "resnet50_hw_big.yaml"
        text = SWEEP.read_text().replace("name: resnet50_hw", "name: resnet50_hw_big").replace(
            "../", f"{ROOT}/").replace("  array.rows: [16, 32, 64, 128]",
                                       "  array.rows: [16, 32, 64, 128]\n  array.cols: [16, 32, 64, 128]")
        big.write_text(text)
        for sweep in (SWEEP, big):
            rates = {}
            for w in (1, 2):
                rate, n = sweep_rate(w, sweep)
                rates[w] = rate
                print(f"{sweep.stem}: {n} points with {w} worker(s): {rate:.1f} points/s (whole command, "
                      "wall clock)")
            print(f"{sweep.stem}: scaling 1 -> 2 workers: {rates[2] / rates[1]:.2f}x")
        goals = scaling_table(big, tmp, rounds)
    return check(peer_goals + goals)


if __name__ == "__main__":
    sys.exit(main())
