"""Shared by the benches: the host's CPU features and the goal check (a bench exits non-zero below a goal)."""

from __future__ import annotations

import os
import platform


def cpu_features() -> dict:
    """The SIMD features that decide hwsim's and onnxruntime's kernels, from LLVM's host detection."""
    import llvmlite.binding as llvm

    try:
        feats = llvm.get_host_cpu_features()
    except Exception:  # pragma: no cover
        feats = {}
    keys = ("avx2", "fma", "avx512f", "avx512bw", "avx512vnni", "avxvnni", "amx-int8")
    return {k: bool(feats.get(k)) for k in keys}


def host_line() -> str:
    """One line: CPU name, logical CPUs, load average, SIMD features present."""
    import llvmlite.binding as llvm

    name = platform.processor() or llvm.get_host_cpu_name()
    try:
        with open("/proc/cpuinfo") as f:
            name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    feats = [k for k, v in cpu_features().items() if v]
    load = " ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (f"host: {name}; {os.cpu_count()} logical CPUs; load average {load}; "
            f"SIMD: {', '.join(feats) or 'none of ' + ', '.join(cpu_features())}")


def check(goals: list[tuple[str, float, str, float]]) -> int:
    """Print each ``(label, value, op, goal)`` with ok / BELOW GOAL; return 0 if all are met, else 1.

    ``op`` is ``">="``, ``">"``, ``"<="`` or ``"<"``.
    """
    ops = {">=": float.__ge__, ">": float.__gt__, "<=": float.__le__, "<": float.__lt__}
    width = max((len(g[0]) for g in goals), default=0)
    bad = 0
    for label, value, op, goal in goals:
        ok = ops[op](float(value), float(goal))
        bad += not ok
        print(f"{label:<{width}}  {value:8.2f}  (goal {op} {goal:g})  {'ok' if ok else 'BELOW GOAL'}")
    return 1 if bad else 0
