"""Model CPU time of the multi-core schedule (issue 15 targets) and how it grows with layers, cores and
context.

Prints the host's CPU and its vector features, then for each case the model CPU time (best of 3,
``model_cpu_s``: split, per-core pipelines, the chip event model; start-up excluded) with the makespan, and
how much of it the chip schedule takes (``hwsim.sim.chip_schedule``, its analytic engine). Exits 1 when a
target is missed: a 4-core ResNet-50 schedule under 200 ms, a Llama-7B-shaped decode step on 4 cores under
1 s.

    PYTHONPATH=. python3 bench/bench_multicore.py           # the goals and the growth
    PYTHONPATH=. python3 bench/bench_multicore.py --table   # the table of docs/multicore_llm.md, section 3
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwsim._pipeline import simulate_workload  # noqa: E402
from hwsim.spec import load_arch, load_workload_yaml, transformer_workload  # noqa: E402


def host() -> str:
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and name in ("", platform.machine()):
                name = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    feats = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
    return f"{name}; {', '.join(feats) or 'no x86 vector flags found'}"


def cores(arch, n):
    c = arch.cores.model_dump()
    names = [f"c{i}" for i in range(n)]
    c["list"] = [{"name": x} for x in names]
    c["noc"]["links"] = [["hub", x] for x in names]
    return arch.replace(cores=c)


_chip_cpu = []


def _timed_chip():
    """Wrap the chip schedule to record its CPU time (the rest is the split and the per-core pipelines)."""
    import time

    import hwsim._multicore as mc

    inner = mc.chip_schedule

    def timed(*a, **k):
        t = time.process_time()
        out = inner(*a, **k)
        _chip_cpu.append(time.process_time() - t)
        return out

    mc.chip_schedule = timed


def best(arch, wl, reps=3):
    runs = []
    for _ in range(reps):
        _chip_cpu.clear()
        r = simulate_workload(arch, wl)
        runs.append((r.model_cpu_s, sum(_chip_cpu), r.totals["total_cycles"]))
    return min(runs)


def table() -> None:
    """One markdown row per workload and core count (1, 4) on arch/multicore_4x.yaml (warm, one run)."""
    arch = load_arch(ROOT / "arch/multicore_4x.yaml")
    for w in ("resnet50", "gpt2_small_decode", "gpt2_small_prefill", "bert_base", "llama2_7b_decode_w4a16"):
        wl = load_workload_yaml(ROOT / f"workloads/{w}.yaml")
        for n in (1, 4):
            a = cores(arch, n) if n == 1 else arch
            simulate_workload(a, wl)  # warm
            r = simulate_workload(a, wl)
            t = r.totals
            dram = t["dram_read_bytes"] + t["dram_write_bytes"]
            bound = ", ".join(sorted({x["bound"] for x in r.core_rows}))
            print(f"| {w} | {n} | {t['total_cycles']:,} | {t['total_cycles'] / arch.clock_mhz:,.1f} | "
                  f"{dram:,} | {t['noc_bytes']:,} | {t['energy_pj'] / 1e6:,.1f} | "
                  f"{t['energy_noc_pj'] / 1e6:,.1f} | "
                  f"{t['utilization']:.3f} | {bound} | {r.model_cpu_s * 1e3:.0f} |", flush=True)


def main() -> int:
    print(f"host: {host()}")
    if "--table" in sys.argv[1:]:
        table()
        return 0
    arch = load_arch(ROOT / "arch/multicore_4x.yaml")
    r50 = load_workload_yaml(ROOT / "workloads/resnet50.yaml")
    llama = transformer_workload(model="llama2_7b", phase="decode", context=2048, weight_bits=4, act_bits=16,
                                 n_kv_heads=8, weight_group_size=128, kv_bits=8)
    ok = True
    _timed_chip()
    print(f"{'case':48s} {'CPU ms':>8s} {'chip ms':>8s} {'cycles':>14s}")
    for label, a, wl, goal in (("ResNet-50, 4 cores (goal < 200 ms)", arch, r50, 0.2),
                               ("Llama-2-7B decode W4A16 GQA-8, ctx 2048, 4 cores (< 1 s)", arch, llama,
                                1.0)):
        cpu, chip, cyc = best(a, wl)
        print(f"{label:48s} {cpu * 1e3:8.1f} {chip * 1e3:8.1f} {cyc:14,d}"
              + ("" if cpu < goal else "   MISSED"))
        ok &= cpu < goal
    print("growth:")
    for n in (1, 2, 4, 8):
        cpu, chip, cyc = best(cores(arch, n), llama, reps=1)
        print(f"  Llama decode, {n} cores{'':27s} {cpu * 1e3:8.1f} {chip * 1e3:8.1f} {cyc:14,d}")
    for ctx in (256, 1024, 4096):
        wl = transformer_workload(model="llama2_7b", phase="decode", context=ctx, weight_bits=4, act_bits=16,
                                  n_kv_heads=8, weight_group_size=128, kv_bits=8)
        cpu, chip, cyc = best(arch, wl, reps=1)
        print(f"  Llama decode, context {ctx:5d}{'':21s} {cpu * 1e3:8.1f} {chip * 1e3:8.1f} {cyc:14,d}")
    for nl in (8, 16, 32):
        wl = transformer_workload(model="llama2_7b", phase="decode", context=2048, weight_bits=4, act_bits=16,
                                  n_kv_heads=8, weight_group_size=128, kv_bits=8, n_layer=nl)
        cpu, chip, cyc = best(arch, wl, reps=1)
        print(f"  Llama decode, {nl:2d} layers{'':26s} {cpu * 1e3:8.1f} {chip * 1e3:8.1f} {cyc:14,d}")
    for n in (1, 2, 4, 8):
        cpu, chip, cyc = best(cores(arch, n), r50, reps=1)
        print(f"  ResNet-50, {n} cores{'':31s} {cpu * 1e3:8.1f} {chip * 1e3:8.1f} {cyc:14,d}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
