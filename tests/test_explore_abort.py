"""Ctrl-C during a sweep on two workers: the one-line message and nothing else on stderr. Before the fix the
resource tracker added "UserWarning: resource_tracker: There appear to be 2 leaked semaphore objects": each
worker that had run a quality model had started numba's threading layer, whose process lock is a named
semaphore under a forkserver, and the aborted sweep terminated the workers before they released it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from hwsim.explore._quality_store import QUALITY_FILE

from .utils import ROOT


def test_ctrl_c_on_two_workers_prints_one_line(tmp_path):
    # 8 policies of the digits CNN: the quality phase lasts several seconds on two workers
    p = tmp_path / "s.yaml"
    p.write_text(f"name: s\narch: {ROOT}/arch/edge_32x32.yaml\nworkload: {ROOT}/workloads/digits_cnn.yaml\n"
                 "quality: digits_cnn\naxes: {array.rows: [8, 16]}\n"
                 "precision: {uniform: [[8, 8], [4, 4]], random: {count: 6, bits: [2, 4, 8], seed: 3}}\n")
    out = tmp_path / "o"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "hwsim", "sweep", str(p), "--out", str(out), "--workers",
                             "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)  # its own process group, as a terminal's Ctrl-C sees it
    try:
        # wait for the first policy's quality (a worker has run the datapath's kernels), then Ctrl-C the group
        deadline = time.monotonic() + 180
        while not (out / QUALITY_FILE).is_file() or not (out / QUALITY_FILE).read_text():
            assert proc.poll() is None and time.monotonic() < deadline, "the sweep ended or never started"
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    lines = [x for x in err.replace("\r", "\n").splitlines() if x.strip() and not x.startswith("s: ")]
    assert proc.returncode == 130, err
    assert len(lines) == 1 and lines[0].startswith("hwsim: interrupted; "), err
    assert "leaked semaphore" not in err and "Traceback" not in err
