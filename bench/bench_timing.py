"""Timing model speed: hwsim simulate against SCALE-Sim 3.0.0 on the same topologies and configs, same run.

    python bench/bench_timing.py            # quick set: ViT-S GEMMs and ResNet-18 on 128x128 (about 2-3 min)
    python bench/bench_timing.py --set full # adds ResNet-50 (mlperf) and MobileNet from ../shared (about 10
    min,
                                            # SCALE-Sim needs about 7 GB for ResNet-50)

Each tool runs in its own child process; CPU time (user + sys) and peak RSS are the child's own
(``os.wait4``). For hwsim three figures: the model alone (``model_cpu_s`` from summary.json: mapping, event
model, energy), the whole command (start-up, imports, writing layers.csv, summary.json and report.html), and
peak memory. The cycle totals of the two tools are printed side by side.

Goals (exit 1 when one is missed): equal cycle totals on every case (CALC mode, scalesim timing convention);
hwsim's model at least 1,000x less CPU than SCALE-Sim over the cases run, measured in this run. The host's CPU
features are printed first.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _host import check, host_line  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "scalesim"
SHARED = ROOT.parent / "shared" / "reference" / "scalesim"

QUICK = [("vit_s", DATA / "vit_s.csv", True, "scale_128x128_os.cfg"),
         ("vit_s", DATA / "vit_s.csv", True, "scale_128x128_ws.cfg"),
         ("vit_s", DATA / "vit_s.csv", True, "scale_128x128_is.cfg"),
         ("Resnet18", DATA / "Resnet18.csv", False, "scale_128x128_ws.cfg")]
FULL = QUICK + [("Resnet18", DATA / "Resnet18.csv", False, "scale_128x128_os.cfg"),
                ("mobilenet", SHARED / "topologies/conv_nets/mobilenet.csv", False, "scale_128x128_ws.cfg"),
                ("Resnet50", SHARED / "topologies/mlperf/Resnet50.csv", False, "scale_128x128_ws.cfg")]

SCALESIM = """
import sys, warnings, contextlib, io
warnings.simplefilter("ignore")
from scalesim.scale_sim import scalesim
cfg, topo, layout, out, gemm = sys.argv[1:6]
with contextlib.redirect_stdout(io.StringIO()):
    s = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=layout,
                 input_type_gemm=gemm == "1")
    s.run_scale(top_path=out)
"""


def _run(cmd: list[str]) -> tuple[float, float, float]:
    """(CPU seconds, peak RSS MB, wall seconds) of one child process."""
    import time

    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    err = p.stderr.read().decode() if p.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed: {err[-800:]}")
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, wall


def _scalesim_cycles(out: Path) -> int:
    rep = next(out.rglob("COMPUTE_REPORT.csv"))
    with rep.open() as f:
        rows = list(csv.reader(f))
    head = [h.strip() for h in rows[0]]
    i = head.index("Total Cycles")
    return sum(int(float(r[i])) for r in rows[1:] if r)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=["quick", "full"], default="quick")
    args = ap.parse_args()
    cases = QUICK if args.set == "quick" else FULL
    print(host_line())
    rows = []
    print(f"{'topology':<10} {'config':<22} {'scalesim cycles':>15} {'hwsim cycles':>13} "
          f"{'scalesim CPU s':>14} {'MB':>6} {'hwsim model ms':>14} {'command s':>9} {'MB':>5} "
          f"{'model x':>9} {'command x':>9}")
    for name, topo, gemm, cfg_name in cases:
        if not topo.is_file():
            print(f"{name:<10} {cfg_name:<22} skipped: {topo} not found")
            continue
        cfg = DATA / cfg_name
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            s_cpu, s_mb, _ = _run([sys.executable, "-c", SCALESIM, str(cfg), str(topo),
                                   str(DATA / "layout_test.csv"), str(tmp / "ss"), "1" if gemm else "0"])
            s_cycles = _scalesim_cycles(tmp / "ss")
            arch = tmp / "arch.yaml"
            subprocess.run([sys.executable, "-m", "hwsim", "import-scalesim", str(cfg), "--out", str(arch)],
                           check=True, capture_output=True)
            h_cpu, h_mb, _ = _run([sys.executable, "-m", "hwsim", "simulate", str(arch), str(topo), "--out",
                                   str(tmp / "hw")])
            summ = json.loads((tmp / "hw" / "summary.json").read_text())
            h_cycles = int(summ["totals"]["total_cycles"])
            model = summ["totals"]["model_cpu_s"]
        row = dict(topology=name, config=cfg_name, scalesim_cycles=s_cycles, hwsim_cycles=h_cycles,
                   scalesim_cpu_s=s_cpu, scalesim_peak_mb=s_mb, hwsim_model_cpu_s=model,
                   hwsim_command_cpu_s=h_cpu,
                   hwsim_peak_mb=h_mb, ratio_model=s_cpu / model if model else float("inf"),
                   ratio_command=s_cpu / h_cpu)
        rows.append(row)
        flag = "" if s_cycles == h_cycles else "  CYCLES DIFFER"
        print(f"{name:<10} {cfg_name:<22} {s_cycles:>15,} {h_cycles:>13,} {s_cpu:>14.1f} {s_mb:>6.0f} "
              f"{model * 1e3:>14.1f} {h_cpu:>9.2f} {h_mb:>5.0f} {row['ratio_model']:>9,.0f} "
              f"{row['ratio_command']:>9,.0f}{flag}", flush=True)
    if rows:
        tot_s = sum(r["scalesim_cpu_s"] for r in rows)
        tot_m = sum(r["hwsim_model_cpu_s"] for r in rows)
        tot_c = sum(r["hwsim_command_cpu_s"] for r in rows)
        print(f"total: SCALE-Sim {tot_s:.1f} CPU s; hwsim model {tot_m * 1e3:.1f} ms "
              f"({tot_s / tot_m:,.0f}x), whole command {tot_c:.2f} s ({tot_s / tot_c:,.0f}x); cycles equal "
              f"on {sum(r['scalesim_cycles'] == r['hwsim_cycles'] for r in rows)} of {len(rows)}")
    if not rows:
        return 1
    tot_s, tot_m = sum(r["scalesim_cpu_s"] for r in rows), sum(r["hwsim_model_cpu_s"] for r in rows)
    equal = sum(r["scalesim_cycles"] == r["hwsim_cycles"] for r in rows)
    return check([("hwsim model / SCALE-Sim CPU, all cases (x)", tot_s / tot_m if tot_m else float("inf"),
                   ">=", 1000),
                  ("cases with equal cycles", equal, ">=", len(rows))])


if __name__ == "__main__":
    sys.exit(main())
