"""A sweep whose quality is QAT: each policy trained once, cached under the output folder, reused by --resume
and by the ILP's measured sensitivities; spec errors for the qat block name the key."""

from __future__ import annotations

import csv
import subprocess
import sys

import pandas as pd
import pytest

from hwsim.errors import SpecError
from hwsim.explore import load_sweep, run_sweep

from .utils import ROOT

pytest.importorskip("torch", reason="QAT needs torch (pip install torch==2.13.0)")

BODY = (f"name: s\narch: {ROOT}/arch/edge_32x32.yaml\nworkload: {ROOT}/workloads/digits_cnn.yaml\n"
        "quality: digits_cnn\n")


def _trainings(out) -> list[dict]:
    p = out / "qat" / "trainings.csv"
    return list(csv.DictReader(p.open())) if p.is_file() else []


def test_qat_sweep_trains_each_policy_once_and_resumes_without_training(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(BODY + "qat: {method: lsq, epochs: 1, batch_size: 128, max_train: 256}\n"
                 "axes: {array.rows: [8, 16]}\n"
                 "precision:\n  uniform: [[4, 4], [2, 2]]\n"
                 "  ilp: {options: [[8, 8], [2, 2]], budgets: {energy_pj: [0.5]}}\nbaselines: [[8, 8]]\n")
    out = tmp_path / "o"
    run_sweep(p, out=out, progress=False, workers=1)
    first = _trainings(out)
    # the ILP measures W8A8 and each layer alone at W2A2 (1 + 3 trainings); the uniform W4A4 and W2A2 policies
    # add 2; W8A8 is shared with the ILP's reference and the ILP's chosen policy may be one already trained
    keys = [r["key"] for r in first]
    assert len(keys) == len(set(keys)) and 6 <= len(keys) <= 8
    df = pd.read_csv(out / "points.csv")
    assert (df.status == "ok").all() and df.accuracy.between(0.1, 1).all()
    # both hardware points of a policy share one training: same accuracy
    assert df.groupby("policy").accuracy.nunique().max() == 1
    # a crash that lost the last rows: --resume computes those points again from the cache, no training
    lines = (out / "points.csv").read_text().splitlines()
    (out / "points.csv").write_text("\n".join(lines[:-4]) + "\n")
    run_sweep(p, out=out, progress=False, workers=1, resume=True)
    assert _trainings(out) == first
    df2 = pd.read_csv(out / "points.csv")
    assert df2.accuracy.tolist() == df.accuracy.tolist()
    # deleting the cached results (not the networks) re-evaluates from the stored networks, still no training
    for f in (out / "qat").glob("*.json"):
        f.unlink()
    (out / "points.csv").write_text("\n".join(lines[:-4]) + "\n")
    run_sweep(p, out=out, progress=False, workers=1, resume=True)
    assert _trainings(out) == first
    assert pd.read_csv(out / "points.csv").accuracy.tolist() == df.accuracy.tolist()


@pytest.mark.parametrize("qat,key", [("{lr: 5}", "qat.lr"), ("{epochs: 0}", "qat.epochs"),
                                     ("{epochs: 1000}", "qat.epochs"), ("{method: dorefa}", "qat.method"),
                                     ("{learning_rate: 0.1}", "qat.learning_rate")])
def test_bad_qat_block_names_the_key(tmp_path, qat, key):
    p = tmp_path / "s.yaml"
    p.write_text(BODY + f"qat: {qat}\n")
    with pytest.raises(SpecError, match=rf"s\.yaml: {key}"):
        load_sweep(p)
    if key != "qat.lr":
        return  # the command line once (a subprocess costs seconds)
    r = subprocess.run([sys.executable, "-m", "hwsim", "sweep", str(p), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and f"s.yaml: {key}" in r.stderr


def test_qat_needs_a_network_it_can_train(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(f"name: s\narch: {ROOT}/arch/edge_32x32.yaml\nworkload: {ROOT}/workloads/digits_cnn.yaml\n"
                 "qat: {epochs: 1}\n")
    with pytest.raises(SpecError, match=r"s\.yaml: qat: expected a quality model"):
        load_sweep(p)
