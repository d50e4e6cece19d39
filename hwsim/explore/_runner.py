"""Running a sweep: quality per precision policy, timing and energy per design point, written as they finish.

Order of work: the quality of each precision policy (a bit-accurate run of the real network; it does not
depend on the hardware axes except the accumulator) is computed in worker processes; as each one completes,
every design point using that policy is timed and priced (milliseconds each) and appended to ``points.csv`` at
once. A crash or Ctrl-C loses at most the points in flight; ``--resume`` skips the points already written. At
the end ``points.csv`` is rewritten in point order with the ``pareto`` column, ``points.parquet`` and
``pareto.csv`` are written, the chosen point is simulated in full (``chosen/``) and the report is drawn.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import json
import math
import os
import pickle
import threading
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from .._pipeline import simulate_workload
from ..energy import energy_components
from ..errors import (
    SOURCE_ARG,
    Found,
    HwsimError,
    InfeasibleError,
    MissingDependency,
    SpecError,
    Terminated,
    missing_dependency,
    short_repr,
)
from ._pareto import pareto_mask
from ._quality import QUALITY_MODELS, QualityModel, quality_model
from ._quality_store import QUALITY_FILE, QualityStore, quality_key
from ._spec import DesignPoint, ResolvedSweep, _resolve_sweep
from ._sweep_file import read_sweep_spec
from ._workers import max_workers

__all__ = ["run_sweep", "evaluate_hardware", "point_columns", "guided_chunks", "max_workers"]


def point_columns(rs: ResolvedSweep) -> list[str]:
    """Column order of ``points.csv`` for a sweep."""
    names = [layer.name for layer in rs.workload.layers]
    metric = QUALITY_MODELS[rs.spec.quality].metric if rs.spec.quality else "accuracy"
    return (["index", "point_id", "policy", *rs.spec.axes.keys(), *(f"w_{n}" for n in names),
             *(f"a_{n}" for n in names), "status", "error", metric, "quality_detail", "macs", "weight_bytes",
             "bops",
             "compute_cycles", "stall_cycles", "total_cycles", "latency_us", "utilization", "dram_bytes",
             "energy_pj", *(f"energy_{c}_pj" for c in energy_components(rs.arch)), "area_mm2",
             "within_budget", "pareto"])


def evaluate_hardware(rs: ResolvedSweep, pt: DesignPoint) -> dict[str, Any]:
    """Timing, energy and die area (``area_mm2``, mm^2) of one design point (no quality). Infeasible points
    get ``status='infeasible'``."""
    row: dict[str, Any] = {"index": pt.index, "point_id": pt.point_id, "policy": pt.policy, **pt.hw}
    bits = pt.bits
    for n, (w, a) in bits.items():
        row[f"w_{n}"], row[f"a_{n}"] = w, a
    try:
        arch = rs.arch_for(pt.hw)
        wl, bits = rs.policy_for(pt, rs.workload_for(pt.hw))
        for n, (w, a) in bits.items():
            row[f"w_{n}"], row[f"a_{n}"] = w, a
        res = simulate_workload(arch, wl, bits=dict(bits), source=rs.source)
    except InfeasibleError as e:
        row.update(status="infeasible", error=str(e))
        return row
    except SpecError as e:
        row.update(status="error", error=str(e))
        return row
    t = res.totals
    gemms = [(layer.name, layer.gemm) for layer in wl.layers]  # one GemmView per layer (built on access)
    row.update(status="ok", error="", macs=int(t["macs"]),
               weight_bytes=sum(math.ceil(g.k * g.n * g.groups * bits[nm][0] / 8) for nm, g in gemms),
               bops=sum(g.macs * bits[nm][0] * bits[nm][1] for nm, g in gemms),
               compute_cycles=int(t["compute_cycles"]), stall_cycles=int(t["stall_cycles"]),
               total_cycles=int(t["total_cycles"]), latency_us=t["latency_us"], utilization=t["utilization"],
               dram_bytes=int(t["dram_read_bytes"] + t["dram_write_bytes"]), energy_pj=t["energy_pj"],
               **{f"energy_{c}_pj": t[f"energy_{c}_pj"] for c in energy_components(arch)},
               area_mm2=t["area_mm2"])  # the arch's die area (energy.area_breakdown; a chip's: all its cores)
    return row


def _quality_task(qm: QualityModel, bits: tuple[tuple[str, tuple[int, int]], ...], acc_bits: int,
                  acc_mode: str) -> dict[str, Any]:
    """A policy's quality; a policy the model cannot run (e.g. bits outside its range) returns the reason, and
    its points are recorded as failed with it while the sweep goes on."""
    try:
        return qm.evaluate(dict(bits), acc_bits=acc_bits, acc_mode=acc_mode)
    except (ValueError, ArithmeticError) as e:
        return {"__error__": f"quality model {qm.name}: {e}"}


def _qat_dict(rs: ResolvedSweep) -> dict[str, Any] | None:
    """The sweep's QAT config fields, or None (post-training quantization)."""
    q = rs.spec.qat
    return None if q is None else q.model_dump(mode="json")


def _spec_fingerprint(rs: ResolvedSweep) -> dict[str, Any]:
    return {"sweep": rs.spec.model_dump(mode="json"), "arch": rs.arch.model_dump(mode="json"),
            "workload": rs.workload.model_dump(mode="json"), "points": len(rs.points)}


def _prepare_out(rs: ResolvedSweep, out: Path, resume: bool) -> set[str]:
    out.mkdir(parents=True, exist_ok=True)
    pts = out / "points.csv"
    fp_path = out / "sweep.json"
    fp = _spec_fingerprint(rs)
    if pts.exists() and pts.stat().st_size > 0:
        if not resume:
            raise SpecError(SOURCE_ARG, "--out",
                            "an output folder without a sweep in it, or --resume to continue it",
                            str(out), detail="points.csv exists; nothing is overwritten")
        if fp_path.exists():
            old = json.loads(fp_path.read_text())
            if old != fp:
                key, was, now, where = _changed(old, fp, rs)
                raise SpecError(str(fp_path), key, "the same sweep, arch and workload as the run being "
                                "resumed", Found(f"{was} in {fp_path.name}, {now} in {where}"),
                                detail="use a new --out for a changed sweep")
        return _recover(pts, rs)
    fp_path.write_text(json.dumps(fp, indent=1) + "\n")
    return set()


def _changed(old: dict[str, Any], new: dict[str, Any], rs: ResolvedSweep) -> tuple[str, str, str, str]:
    """The first value (in the fingerprint's key order) that differs between the ``sweep.json`` of the run
    being resumed (``old``) and this run's (``new``): its key in its own file (the sweep, arch or workload),
    both values (bounded) and that file. Dicts are walked key by key, lists of mappings item by item
    (``layers[2].out_channels``); other lists are compared whole."""
    base = Path(rs.source).parent
    files = {"sweep": rs.source, "arch": str(base / rs.spec.arch), "workload": str(base / rs.spec.workload)}
    missing = object()

    def show(v: Any) -> str:
        if v is missing:
            return "nothing"
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            return f"a list of {len(v)}"
        return short_repr(v)

    def walk(a: Any, b: Any, path: str) -> tuple[str, Any, Any] | None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in [*a, *(k for k in b if k not in a)]:
                va, vb = a.get(k, missing), b.get(k, missing)
                if va != vb:
                    return walk(va, vb, f"{path}.{k}" if path else str(k))
            return None
        if (isinstance(a, list) and isinstance(b, list) and len(a) == len(b)
                and all(isinstance(x, dict) for x in a + b)):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                if x != y:
                    return walk(x, y, f"{path}[{i}]")
            return None
        return path, a, b

    for part in [*old, *(k for k in new if k not in old)]:
        a, b = old.get(part, missing), new.get(part, missing)
        if a != b:
            found = walk(a, b, "")
            key, va, vb = found if found is not None else ("", a, b)
            return key or part, show(va), show(vb), files.get(part, "this run")
    return "", "?", "?", rs.source  # (not reached: the two differ)


def _recover(pts: Path, rs: ResolvedSweep) -> set[str]:
    """The point ids already in ``points.csv``; rows cut short by a crash (wrong field count, a point id the
    sweep does not have) are dropped, so that they are computed again, and the file is rewritten clean.
    ILP points (``...ilp:<budget>``) are kept: they are added after this check, by the same deterministic
    solve, and a row whose id the new solve does not produce is left out of the final files.

    A file whose header is not this version's columns (:func:`point_columns`; e.g. written before
    ``area_mm2`` was a column) is rewritten under them, each value by its column name; if it lacks one of
    them, its rows are dropped and run again (with a warning naming the columns): appending rows of the new
    columns under the old header would shift every value after the first difference."""
    ids = {p.point_id for p in rs.points}
    with pts.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return set()
    head, good, dropped = rows[0], [], 0
    columns = point_columns(rs)
    lacking = [c for c in columns if c not in head and c not in ("within_budget", "pareto")]
    for r in rows[1:]:
        pid = r[head.index("point_id")] if len(r) == len(head) and "point_id" in head else ""
        if not lacking and (pid in ids or pid.startswith("ilp:") or "|ilp:" in pid):
            good.append(dict(zip(head, r, strict=True)))
        else:
            dropped += 1
    if lacking:
        print(f"hwsim: warning: {pts}: written without the column(s) {', '.join(lacking)} (an older hwsim?): "
              f"its {dropped} row(s) dropped; those points run again")
    elif dropped:
        print(f"hwsim: warning: {pts}: {dropped} incomplete row(s) dropped; those points run again")
    tmp = pts.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([columns, *([d.get(c, "") for c in columns]
                                                              for d in good)])
    os.replace(tmp, pts)
    return {d["point_id"] for d in good}


def _append(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        if new:
            w.writeheader()
        for r in rows:
            w.writerow(r)
        f.flush()
        os.fsync(f.fileno())


#: The sweep of this worker process, sent once when the process starts (:func:`_set_sweep`), not with every
#: chunk: a resolved sweep pickles to about 1 MB (its workload), which cost the parent 60 ms and the worker
#: 100 ms per chunk.
_SWEEP: ResolvedSweep | None = None


def _set_sweep(rs: ResolvedSweep) -> None:
    """Process-pool initializer: keep the sweep for :func:`_hw_chunk`; end with the sweep's process."""
    global _SWEEP
    _SWEEP = rs
    _exit_with_parent()
    _no_process_locks()


def _no_process_locks() -> None:
    """In a worker, which starts no process of its own: make multiprocessing's default start method spawn.
    numba's threading layer, started by the exact datapath's parallel kernels (a quality model's run), takes
    a process lock when the start method contains "fork" (``numba/np/ufunc/parallel.py``,
    ``_set_init_process_lock``: it guards the layer's start-up against a fork in the middle of it); in a
    forkserver worker that is a named semaphore registered with the resource tracker, and a worker terminated
    by an aborted sweep (Ctrl-C, SIGTERM) never released it: the tracker printed "There appear to be 2 leaked
    semaphore objects" (one per worker) after the sweep's message. With no fork possible the lock is a no-op,
    which is what it guards here."""
    import multiprocessing

    multiprocessing.set_start_method("spawn", force=True)


def _exit_with_parent() -> None:
    """In a worker: end this process as soon as the process that owns the sweep is gone. Killed with SIGKILL,
    that process cannot stop its pool, and the workers (which hold the forkserver's liveness pipe, so the
    server stays up for them) waited for work forever, the server and the resource tracker with them.
    ``multiprocessing.parent_process()`` is the process that started the worker; its sentinel becomes ready
    when it dies."""
    import multiprocessing

    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        os._exit(1)

    threading.Thread(target=watch, name="hwsim-parent-watch", daemon=True).start()


def _noop() -> None:
    """A task that makes the pool start a worker process."""


class _PickledSweep:
    """A resolved sweep pickled once in the parent: what a dask cluster holds (``scatter``). dask's own
    serialization of the object (its pydantic models and numpy arrays walked one by one) took 140-870 ms per
    sweep on 2 local workers; these bytes are sent as they are (40 ms) and unpickled once per worker process
    (70 ms, :func:`_sweep_of`)."""

    __slots__ = ("data",)

    def __init__(self, rs: ResolvedSweep):
        self.data = pickle.dumps(rs, protocol=pickle.HIGHEST_PROTOCOL)


#: The last sweep a dask worker unpickled: ``(the _PickledSweep it came from, the sweep)``.
_UNPICKLED: tuple[_PickledSweep, ResolvedSweep] | None = None


def _sweep_of(rs: ResolvedSweep | _PickledSweep | None) -> ResolvedSweep:
    """The sweep a chunk runs: the pool worker's own (``None``), the one passed, or a dask worker's copy of
    the scattered bytes, unpickled on its first chunk and kept while the cluster holds the same bytes."""
    global _UNPICKLED
    if rs is None:
        assert _SWEEP is not None, "a pool worker without its sweep (_set_sweep not run)"
        return _SWEEP
    if isinstance(rs, _PickledSweep):
        if _UNPICKLED is None or _UNPICKLED[0] is not rs:
            _UNPICKLED = (rs, pickle.loads(rs.data))
        return _UNPICKLED[1]
    return rs


def _hw_chunk(rs: ResolvedSweep | _PickledSweep | None, indices: list[int]) -> list[dict[str, Any]]:
    """Timing and energy of a chunk of design points (runs in a worker); ``rs`` None: the worker's own
    copy; a :class:`_PickledSweep`: a dask worker's."""
    from ..sim import use_numba

    use_numba()  # thousands of points: the event model's recurrence compiled
    rs = _sweep_of(rs)
    return [evaluate_hardware(rs, rs.points[i]) for i in indices]


class _Inline:
    """Runs tasks at once in this process (``workers=1``): same interface as the pools below."""

    class _Done:
        def __init__(self, value: Any):
            self._v = value

        def result(self) -> Any:
            return self._v

    slots = 1

    def __init__(self, rs: ResolvedSweep):
        self.sweep = rs

    def started(self) -> bool:
        return True

    def submit(self, fn, *args):
        return self._Done(fn(*args))

    def wait_first(self, pending: set) -> tuple[set, set]:
        return set(pending), set()

    def close(self, abort: bool = False) -> None:
        pass


def guided_chunks(n: int, slots: int, largest: int, smallest: int = 4) -> list[int]:
    """Chunk sizes for ``n`` points on ``slots`` workers, largest first (guided self-scheduling,
    Polychronopoulos and Kuck, IEEE Trans. Computers 36(12), 1987): each chunk is the points left divided by
    ``2 * slots``, clipped to ``[smallest, largest]`` (``largest`` wins below ``smallest``). Submitted in
    this order to a first-in first-out pool, the big chunks keep the per-task cost low and the small last
    ones leave no worker idle for long while another finishes a big one (with equal chunks of 64 points one
    worker ended 0.45 s after the other in a 12 s two-worker sweep of 1,296 ResNet-50 points: up to one
    chunk, 0.7-1.2 s, idle).

    Returns a list of positive ints summing to ``n`` (empty for ``n == 0``).

    Raises
    ------
    ValueError
        ``slots``, ``largest`` or ``smallest`` below 1.
    """
    if slots < 1 or largest < 1 or smallest < 1:
        raise ValueError("guided_chunks: slots, largest and smallest must be >= 1, found "
                         f"{slots}, {largest}, {smallest}")
    sizes, left = [], n
    while left > 0:
        c = min(left, max(min(smallest, largest), min(largest, math.ceil(left / (2 * slots)))))
        sizes.append(c)
        left -= c
    return sizes


def _forkserver_context(start: bool = False):
    """The multiprocessing context of the local pool: forkserver, hwsim's sweep modules preloaded in the
    server (imported once, not per worker) and the event model's numba kernels loaded there
    (:mod:`hwsim.explore._worker_warm`), so that every worker forked from it starts warm. ``start=True``
    starts the server now (in the background: its imports overlap this process's own work, e.g. loading and
    resolving the sweep)."""
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["hwsim.explore._runner", "hwsim.explore._worker_warm"])
    if start:
        _start_forkserver()
    return ctx


def _start_forkserver() -> None:
    """Start the forkserver with SIGINT ignored (an ignored signal stays ignored across exec, and Python then
    installs no KeyboardInterrupt handler): Ctrl-C reaches the whole process group, and a server still
    importing its preload modules printed a KeyboardInterrupt traceback and died (CPython's server ignores
    SIGINT only once they are imported). Its workers inherit the setting; this process, which owns the
    sweep, handles Ctrl-C and terminates them."""
    import signal
    from multiprocessing import forkserver

    if threading.current_thread() is not threading.main_thread():
        forkserver.ensure_running()
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, old)


class _LocalPool:
    sweep = None  # each worker holds the sweep (the initializer): _hw_chunk gets None

    def __init__(self, workers: int, rs: ResolvedSweep):
        from concurrent.futures import ProcessPoolExecutor

        # forkserver, not fork: this process may already run numba (LLVM, worker threads), which a forked
        # child must not inherit
        ctx = _forkserver_context()
        _start_forkserver()  # already running when run_sweep started it
        self._ex = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_set_sweep,
                                       initargs=(rs,))
        self.slots = workers
        self._closing = False
        # Starting a worker waits for the forkserver to finish its imports (about 2 s); a thread starts them
        # so that this process can evaluate points meanwhile (see started()).
        self._starter = threading.Thread(target=self._start_workers, name="hwsim-pool-start", daemon=True)
        self._starter.start()

    def _start_workers(self) -> None:
        # shut down meanwhile (Ctrl-C), or the forkserver died: the sweep's own submits then report it
        with contextlib.suppress(RuntimeError, OSError, BrokenProcessPool):
            for _ in range(self.slots):
                if self._closing:
                    return
                self._ex.submit(_noop)

    def started(self) -> bool:
        """Whether the workers are started (submitting then does not wait for the forkserver)."""
        return not self._starter.is_alive()

    def submit(self, fn, *args):
        return self._ex.submit(fn, *args)

    def wait_first(self, pending: set) -> tuple[set, set]:
        from concurrent.futures import FIRST_COMPLETED, wait

        done, rest = wait(pending, return_when=FIRST_COMPLETED)
        return done, rest

    def close(self, abort: bool = False) -> None:
        """Shut the workers down: after the tasks running (``abort`` False) or at once (Ctrl-C, SIGTERM:
        the workers are terminated, so that none outlives this process)."""
        self._closing = True
        self._starter.join()  # at most the worker it is starting (the forkserver's imports)
        if abort:
            if hasattr(self._ex, "terminate_workers"):  # Python 3.14
                self._ex.terminate_workers()
            else:  # no public way before 3.14: the executor's own table of its processes
                procs = list((getattr(self._ex, "_processes", None) or {}).values())
                # shutdown(wait=False) forgets the executor's manager thread, so the shutdown(wait=True)
                # below no longer joins it: joined here, or it may still be closing its wake-up pipe when
                # the interpreter's exit hook writes to that pipe ("OSError: [Errno 9] Bad file descriptor"
                # printed after Ctrl-C). The starter has finished, so the thread exists if it ever will.
                manager = getattr(self._ex, "_executor_manager_thread", None)
                self._ex.shutdown(wait=False, cancel_futures=True)
                for pr in procs:
                    pr.terminate()
                for pr in procs:
                    pr.join(10)
                if manager is not None:
                    manager.join(10)
        self._ex.shutdown(wait=True, cancel_futures=True)


#: Seconds to wait for a dask scheduler's handshake (the connection's own timeout is 5 s).
CONNECT_S = 10.0


def _connect(client_cls, address: str):
    """A dask ``Client`` of the scheduler at ``address``, or a SpecError in at most :data:`CONNECT_S`
    seconds. The connection runs in a thread: a server that accepts the connection without speaking dask's
    protocol (an HTTP server) left ``Client()`` waiting forever for the handshake, and one that answered
    ``400 Bad Request`` made it read a frame length of 3 EiB (a ``MemoryError``)."""
    box: dict[str, Any] = {}

    def connect() -> None:
        try:
            box["client"] = client_cls(address, timeout="5s")
        except BaseException as e:  # noqa: BLE001 - any failure to connect is the address's
            box["error"] = e

    t = threading.Thread(target=connect, name="hwsim-dask-connect", daemon=True)
    t.start()
    t.join(CONNECT_S)
    if "client" in box:
        return box["client"]
    e = box.get("error")
    why = (f"no dask handshake within {CONNECT_S:g} s" if e is None
           else f"{type(e).__name__}: {str(e)[:160]}")
    raise SpecError(SOURCE_ARG, "--scheduler", "the address of a running dask scheduler", address,
                    detail=why)


class _DaskPool:
    def __init__(self, address: str, rs: ResolvedSweep):
        try:
            from distributed import Client
        except ImportError:
            raise SpecError(SOURCE_ARG, "--scheduler", "dask.distributed installed (pip install distributed)",
                            address) from None
        if "://" in address and not address.startswith(("tcp://", "tls://", "inproc://", "ucx://", "ws://",
                                                          "wss://")):
            raise SpecError(SOURCE_ARG, "--scheduler", "a dask scheduler address such as tcp://HOST:8786",
                            address)
        self._client = _connect(Client, address)
        # the sweep goes to every worker once; tasks refer to it (dask resolves the future on the worker)
        self.sweep = self._client.scatter(_PickledSweep(rs), broadcast=True, hash=False)
        self.slots = max(1, sum(self._client.nthreads().values()))

    def started(self) -> bool:
        return True

    def submit(self, fn, *args):
        return self._client.submit(fn, *args, pure=False)

    def wait_first(self, pending: set) -> tuple[set, set]:
        from distributed import wait

        try:
            done, rest = wait(list(pending), return_when="FIRST_COMPLETED")
        except OSError as e:
            raise SweepStopped(f"the sweep stopped: lost the dask scheduler ({type(e).__name__}); the points "
                               "written so far are kept: run again with --resume") from None
        return set(done), set(rest)

    def close(self, abort: bool = False) -> None:
        self._client.close()


class SweepStopped(HwsimError):
    """The sweep could not go on (a worker or the scheduler died); the points written so far are kept."""


def run_sweep(path: str | Path, *, out: str | Path | None = None, resume: bool = False,
              workers: int | None = None, scheduler: str | None = None, progress: bool = True,
              chunk: int = 64) -> Path:
    """Run a sweep; return its output folder.

    Work goes to ``workers`` local processes (default: the cores; 1 runs everything in this process) or, with
    ``scheduler``, to a dask.distributed cluster at that address. Points are written to ``points.csv`` as
    their chunk completes, in completion order; the final files are in point order.

    Raises
    ------
    SpecError
        Any problem with the sweep spec (before work starts), an output folder holding another run, an
        unreachable scheduler.
    MissingDependency
        The quality model's package or data is not installed (checked before anything is written; if a worker
        finds it missing later, the files of a run that wrote no point are removed, else the complete rows are
        kept for ``--resume``).
    KeyboardInterrupt
        Ctrl-C; its message says that the points written are kept and that ``--resume`` continues.
    Terminated
        SIGTERM (a :class:`KeyboardInterrupt`, raised by the handler this function installs while it runs in
        the main thread): handled as Ctrl-C, the workers terminated, none left running.
    """
    if workers is not None and not (isinstance(workers, int) and not isinstance(workers, bool)
                                    and 1 <= workers <= max_workers()):
        raise SpecError("hwsim.sweep()", "workers", f"a whole number of worker processes from 1 to "
                        f"{max_workers()} (8 x the {os.cpu_count() or 1} cores)", workers)
    spec = read_sweep_spec(path)  # the sweep file itself first: a bad one starts no server
    if scheduler is None and (workers or os.cpu_count() or 1) > 1:
        _forkserver_context(start=True)  # its imports overlap the sweep's loading below
    rs = _resolve_sweep(path, spec)
    if rs.spec.quality:
        QUALITY_MODELS[rs.spec.quality].check()  # a missing package stops the sweep before it writes anything
    out_dir = Path(out) if out else Path("results") / rs.spec.name
    before = set(out_dir.iterdir()) if out_dir.is_dir() else None
    written = [0]
    pts_csv = out_dir / "points.csv"
    try:
        with _sigterm_as_interrupt():
            rs, cols, metric = _run_points(rs, out_dir, resume, workers, scheduler, progress, chunk, written)
    except (MissingDependency, ImportError) as e:
        if (getattr(e, "name", None) or "").split(".")[0] == "hwsim":
            raise  # hwsim's own module: a bug
        err = missing_dependency(e, needed_for=f"sweep {rs.spec.name}")
        if written[0] == 0 and not resume:
            _remove_new(out_dir, before)
            raise MissingDependency(f"{err}; nothing was written") from None
        raise MissingDependency(f"{err}; the points written to {pts_csv} are complete rows: install it and "
                                "run again with --resume") from None
    except SpecError:
        if written[0] == 0 and not resume:  # e.g. the ILP's sensitivity step refused: nothing half-written
            _remove_new(out_dir, before)
        raise
    except KeyboardInterrupt as e:
        if not pts_csv.is_file():  # stopped before the first point was written
            q_file = out_dir / QUALITY_FILE
            kept = (f"; the qualities measured so far are kept in {q_file} and --resume reuses them"
                    if q_file.is_file() and q_file.stat().st_size else "")
            raise type(e)(f"no point was finished yet ({pts_csv} not written): run the same command again "
                          f"(--resume works too){kept}") from None
        raise type(e)(f"the points written to {pts_csv} are kept: run the same command with --resume to "
                      "continue") from None
    df = _finalize(rs, out_dir, cols, metric)
    if progress:
        st = df["status"].value_counts()
        line = (f"{rs.spec.name}: {len(df)} points: {st.get('ok', 0)} ok, {st.get('infeasible', 0)} "
                f"infeasible, {st.get('error', 0)} failed; {int(df['pareto'].sum())} on the Pareto front of "
                f"{list(rs.spec.objectives)}")
        print(line)
        ilp_csv = out_dir / "ilp.csv"
        if ilp_csv.is_file():
            runs = pd.read_csv(ilp_csv)
            if len(runs):
                counts = runs["status"].value_counts()
                print(f"ILP: {len(runs)} budgets x hardware points: {counts.get('Optimal', 0)} solved, "
                      f"{len(runs) - counts.get('Optimal', 0)} infeasible (see ilp.csv)")
        if st.get("ok", 0) == 0:
            first = df.loc[df["status"] != "ok", "error"].dropna()
            print(f"hwsim: warning: no feasible point; first reason: {first.iloc[0] if len(first) else '?'}")
    return out_dir


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """While the sweep runs, SIGTERM raises :class:`Terminated` (a KeyboardInterrupt) in the main thread, as
    Ctrl-C does, so that the pool is shut down and its workers, the forkserver and the resource tracker end
    with this process (SIGTERM's default action ends only this process and leaves them running). Outside
    the main thread (signal handlers cannot be set there) it does nothing."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated("SIGTERM")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _run_points(rs: ResolvedSweep, out_dir: Path, resume: bool, workers: int | None, scheduler: str | None,
                progress: bool, chunk: int, written: list[int]) -> tuple[ResolvedSweep, list[str],
                                                                         str | None]:
    """Evaluate every pending point, appending each chunk to ``points.csv`` as it completes (``written[0]``
    counts the rows appended)."""
    pts_csv = out_dir / "points.csv"
    done_ids = _prepare_out(rs, out_dir, resume)
    from ._ilp_policies import expand_ilp

    rs = expand_ilp(rs, out_dir)
    cols = point_columns(rs)
    metric = QUALITY_MODELS[rs.spec.quality].metric if rs.spec.quality else None
    pending_pts = [p for p in rs.points if p.point_id not in done_ids]
    by_policy: dict[tuple, list[DesignPoint]] = {}
    for p in pending_pts:
        acc = rs.arch_for(p.hw).pe
        key = (tuple(p.bits.items()), acc.acc_bits, acc.acc_mode)
        by_policy.setdefault(key, []).append(p)
    # no more processes than points to evaluate (each would only start, import hwsim and wait)
    n_workers = min(workers or (os.cpu_count() or 1), max(1, len(pending_pts)))
    pool = _DaskPool(scheduler, rs) if scheduler else (_Inline(rs) if n_workers <= 1 else
                                                       _LocalPool(n_workers, rs))
    # each policy's quality as it completes; one a previous run into this folder stored is not run again
    store = QualityStore(out_dir / QUALITY_FILE) if metric is not None else None
    qm = quality_model(rs.spec.quality, _qat_dict(rs), out_dir) if metric is not None else None
    # with a quality model the policies' bit-accurate runs are the slow phase (seconds each; the points after
    # one take milliseconds): its own bar carries the ETA, the points bar shows counts and elapsed time only
    qbar = tqdm(total=len(by_policy), unit="policy", desc=f"{rs.spec.name}: quality per policy",
                disable=not progress or metric is None, position=0)
    bar = tqdm(total=len(rs.points), initial=len(rs.points) - len(pending_pts), unit="point",
               disable=not progress, desc=f"{rs.spec.name}: points", position=1 if metric else 0,
               bar_format=("{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}]" if metric
                           else None))
    tasks: dict[Any, tuple[str, Any]] = {}
    queue: collections.deque[tuple[list[int], dict[str, Any] | None]] = collections.deque()  # not submitted
    # policies whose quality is still to run: a few in flight at a time (in this process, workers=1: one,
    # when the last one's points are written), so that each one's points are computed and written soon after
    # it, not after every policy's quality
    qpending: collections.deque[tuple] = collections.deque()
    inline = isinstance(pool, _Inline)
    interrupted = False

    def submit_quality() -> None:
        while qpending and (not tasks if inline else
                            sum(kind == "quality" for kind, _ in tasks.values()) < 2 * pool.slots):
            key = qpending.popleft()
            tasks[pool.submit(_quality_task, qm, *key)] = ("quality", key)

    def submit_hw(points: list[DesignPoint], quality: dict[str, Any] | None) -> None:
        i = 0
        for size in guided_chunks(len(points), pool.slots, chunk):
            queue.append(([p.index for p in points[i:i + size]], quality))
            i += size
        if pool.started():
            submit_queue()

    def submit_queue() -> None:
        while queue:
            indices, quality = queue.popleft()
            tasks[pool.submit(_hw_chunk, pool.sweep, indices)] = ("hw", quality)

    def write(rows: list[dict[str, Any]], info: dict[str, Any] | None) -> None:
        if info is not None and "__error__" in info:
            for r in rows:
                r.update(status="error", error=info["__error__"])
        elif info is not None:
            for r in rows:
                r[metric] = info[metric]
                r["quality_detail"] = json.dumps({k: v for k, v in info.items() if k != metric},
                                                 sort_keys=True, default=str)
        _append(pts_csv, cols, rows)
        written[0] += len(rows)
        bar.update(len(rows))

    def help_while_starting() -> None:
        """While the local pool's workers are starting (the forkserver importing hwsim: about 2 s), evaluate
        the queue's first chunk here, four points at a time; what is left of it when they are up goes back
        to the front of the queue."""
        indices, info = queue.popleft()
        j = 0
        while j < len(indices) and not pool.started():
            write(_hw_chunk(rs, indices[j:j + 4]), info)
            j += 4
        if j < len(indices):
            queue.appendleft((indices[j:], info))

    try:
        if metric is None:  # no quality per policy: the chunks may hold points of several policies
            submit_hw([p for pts in by_policy.values() for p in pts], None)
        else:
            assert store is not None and qm is not None
            for key in by_policy:
                stored = store.get(quality_key(qm, *key))
                if stored is None:
                    qpending.append(key)
                else:
                    qbar.update(1)
                    submit_hw(by_policy[key], stored)
        while tasks or queue or qpending:
            if queue and not pool.started():
                help_while_starting()
                continue
            submit_quality()
            submit_queue()
            done, _ = pool.wait_first(set(tasks))
            for f in done:
                kind, info = tasks.pop(f)
                try:
                    result = f.result()
                except (OSError, EOFError, BrokenProcessPool, TimeoutError) as e:
                    raise SweepStopped(f"the sweep stopped ({type(e).__name__}: {str(e)[:160]}); the points "
                                       f"written to {pts_csv} are kept: run again with --resume") from None
                if kind == "quality":
                    qbar.update(1)
                    if "__error__" not in result:
                        result = store.put(quality_key(qm, *info), result)
                    submit_hw(by_policy[info], result)
                    continue
                write(result, info)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        bar.close()
        qbar.close()
        pool.close(abort=interrupted)
    return rs, cols, metric


def _remove_new(out_dir: Path, before: set[Path] | None) -> None:
    """Remove what this run created in ``out_dir`` (``before``: its entries at the start; None: it did not
    exist, and goes too), so that a run stopped before its first point leaves nothing half-written."""
    import shutil

    if not out_dir.is_dir():
        return
    for p in set(out_dir.iterdir()) - (before or set()):
        shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    if before is None and not any(out_dir.iterdir()):
        out_dir.rmdir()


def _finalize(rs: ResolvedSweep, out_dir: Path, cols: list[str], metric: str | None) -> pd.DataFrame:
    df = pd.read_csv(out_dir / "points.csv", keep_default_na=True)
    df = df.drop_duplicates("point_id", keep="last")
    df = df[df["point_id"].isin({p.point_id for p in rs.points})]  # e.g. an ILP point an earlier solve made
    df = df.sort_values("index").reset_index(drop=True)
    within = pd.Series(True, index=df.index)
    for k, v in rs.spec.budgets.items():
        within &= df[k].le(v).fillna(False)
    df["within_budget"] = within & (df["status"] == "ok")
    ok = df["within_budget"].to_numpy()
    objectives = {k: v for k, v in rs.spec.objectives.items() if k in df.columns}
    vals = df[list(objectives)].to_numpy(dtype=float, copy=True)  # (pandas 3: a read-only view else)
    vals[~ok] = float("nan")
    df["pareto"] = pareto_mask(vals, [v == "max" for v in objectives.values()])
    for c in ("macs", "weight_bytes", "bops", "compute_cycles", "stall_cycles", "total_cycles", "dram_bytes",
              "index", *[c for c in df.columns if c.startswith(("w_", "a_"))]):
        if c in df.columns:
            df[c] = df[c].astype("Int64")
    tmp = out_dir / "points.csv.tmp"
    df[cols].to_csv(tmp, index=False)
    os.replace(tmp, out_dir / "points.csv")
    df[cols].to_parquet(out_dir / "points.parquet", index=False)
    front = df[df["pareto"]].sort_values(list(objectives)[-1])
    front[cols].to_csv(out_dir / "pareto.csv", index=False)
    _write_configs(rs, df[df["pareto"]], out_dir / "configs")
    chosen = _choose(df, metric)
    chosen_rows = None
    arch = None
    if chosen is not None:
        from .._io import write_layers_csv, write_summary_json

        pt = rs.points[int(chosen["index"])]
        arch = rs.arch_for(pt.hw)
        if pt.hw:  # name the chosen hardware by its parameters (the report's roofline and titles use it)
            arch = arch.model_copy(update={"name": f"{rs.arch.name} with " + ", ".join(
                f"{k}={v}" for k, v in pt.hw.items())})
        wl_c, bits_c = rs.policy_for(pt, rs.workload_for(pt.hw))
        res = simulate_workload(arch, wl_c, bits=dict(bits_c), source=rs.source)
        (out_dir / "chosen").mkdir(exist_ok=True)
        write_layers_csv(res, out_dir / "chosen" / "layers.csv")
        write_summary_json(res, out_dir / "chosen" / "summary.json", arch_source=rs.spec.arch,
                           workload_source=rs.spec.workload)
        chosen_rows = res.rows
    from ..report import sweep_report

    sweep_report(rs, df, chosen, chosen_rows, metric, out_dir / "report.html", chosen_arch=arch)
    return df


def _write_configs(rs: ResolvedSweep, front: pd.DataFrame, folder: Path) -> None:
    """configs/point_N/{arch.yaml, quant.yaml} for every Pareto point: enough to re-run it with simulate."""
    import yaml

    for _, r in front.iterrows():
        pt = rs.points[int(r["index"])]
        arch = rs.arch_for(pt.hw)
        d = folder / f"point_{pt.index}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "arch.yaml").write_text(f"# sweep {rs.spec.name}, point {pt.index}: {pt.point_id}\n"
                                     + yaml.safe_dump(arch.model_dump(mode="json"), sort_keys=False))
        quant = {"layers": {n: {"weight_bits": w, "act_bits": a} for n, (w, a) in pt.bits.items()}}
        (d / "quant.yaml").write_text(f"# sweep {rs.spec.name}, point {pt.index}: policy {pt.policy}\n"
                                      + yaml.safe_dump(quant, sort_keys=False))


def _choose(df: pd.DataFrame, metric: str | None) -> pd.Series | None:
    """The point shown in detail: on the front, within 1 point of the best quality, lowest energy."""
    front = df[df["pareto"]]
    if front.empty:
        return None
    if metric is not None and front[metric].notna().any():
        best = front[metric].max()
        front = front[front[metric] >= best - 0.01]
    return front.sort_values(["energy_pj", "index"]).iloc[0]
