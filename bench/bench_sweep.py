"""Sweep speed: design points per second for a ResNet-50 hardware sweep (timing and energy), 1 and 2 workers.

    python bench/bench_sweep.py      # sweeps/resnet50_hw.yaml (324 points) and the same space with array
                                     # columns as a 5th axis (1,296 points): about two minutes

Prints the CPU time of one design point (mapping, event model, energy for all 54 layers, measured in this
process over many points after a warm-up), then the wall-clock rate of the whole sweep command with 1 and 2
local workers (points written to CSV and Parquet, the report drawn), and the speed-up from 1 to 2 workers.
For scale: SCALE-Sim needs about 138 CPU s for one ResNet-50 point on 128x128 (shared/reference/scalesim.md).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ROOT / "sweeps" / "resnet50_hw.yaml"


def per_point_cpu_ms(n: int = 60) -> float:
    from hwsim.explore import evaluate_hardware, load_sweep
    from hwsim.sim._fast import use_numba

    use_numba()
    rs = load_sweep(SWEEP)
    evaluate_hardware(rs, rs.points[0])  # warm-up: numba cache, imports
    pts = [rs.points[i * len(rs.points) // n] for i in range(n)]
    t = time.process_time()
    for p in pts:
        evaluate_hardware(rs, p)
    return (time.process_time() - t) / n * 1e3


def sweep_rate(workers: int, sweep: Path) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "hwsim", "sweep", str(sweep), "--out", f"{tmp}/o", "--workers",
                        str(workers)], check=True, capture_output=True)
        wall = time.perf_counter() - t
        n = sum(1 for _ in open(f"{tmp}/o/points.csv")) - 1
    return n / wall, n


def main() -> int:
    ms = per_point_cpu_ms()
    print(f"one ResNet-50 design point (54 layers, timing + energy): {ms:.1f} ms CPU "
          f"(goal < 15 ms; SCALE-Sim about 138,000 ms): {138_000 / ms:,.0f}x")
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
                print(f"{sweep.stem}: {n} points with {w} worker(s): {rate:.1f} points/s (whole command, wall "
                      "clock)")
            print(f"{sweep.stem}: scaling 1 -> 2 workers: {rates[2] / rates[1]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
