"""Each policy's quality is stored as it completes (``<out>/quality.jsonl``) and a resumed sweep reuses it:
before, ``--resume`` ran every unfinished policy's bit-accurate evaluation again (33 s of a fresh-user trial's
38 s resume)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from hwsim.explore import QUALITY_MODELS, run_sweep
from hwsim.explore import _runner as runner
from hwsim.explore._quality_store import QUALITY_FILE, QualityStore, quality_key

from .utils import ROOT

# 2 hardware points x 3 policies = 6 points; with workers=1 each policy's points are written right after its
# quality, before the next policy's quality starts
SWEEP = (f"name: s\narch: {ROOT}/arch/edge_32x32.yaml\nworkload: {ROOT}/workloads/digits_cnn.yaml\n"
         "quality: digits_cnn\naxes: {array.rows: [8, 16]}\nprecision: {uniform: [[8, 8], [4, 4], [2, 8]]}\n"
         "baselines: []\n")


REAL_TASK = runner._quality_task


def _counting(monkeypatch, calls: list):
    def task(qm, bits, acc_bits, acc_mode):
        calls.append(dict(bits))
        return REAL_TASK(qm, bits, acc_bits, acc_mode)

    monkeypatch.setattr(runner, "_quality_task", task)


def _lines(out):
    return [json.loads(x) for x in (out / QUALITY_FILE).read_text().splitlines()]


def test_resume_after_an_interruption_runs_only_the_unfinished_policies(tmp_path, monkeypatch):
    p = tmp_path / "s.yaml"
    p.write_text(SWEEP)
    ref_calls: list = []
    _counting(monkeypatch, ref_calls)
    run_sweep(p, out=tmp_path / "ref", progress=False, workers=1)
    assert len(ref_calls) == 3 and len(_lines(tmp_path / "ref")) == 3
    # interrupted while the points of the second policy run (one chunk per policy here): the qualities of
    # W8A8 and W4A4 are stored, the points of W8A8 written
    out = tmp_path / "o"
    calls: list = []
    _counting(monkeypatch, calls)
    chunks: list = []
    real_chunk = runner._hw_chunk

    def chunk(rs, indices):
        chunks.append(indices)
        if len(chunks) == 2:
            raise KeyboardInterrupt
        return real_chunk(rs, indices)

    monkeypatch.setattr(runner, "_hw_chunk", chunk)
    with pytest.raises(KeyboardInterrupt, match="points written to .* are kept"):
        run_sweep(p, out=out, progress=False, workers=1)
    assert [c["conv1"] for c in calls] == [(8, 8), (4, 4)]
    assert [r["key"]["bits"][0] for r in _lines(out)] == [["conv1", [8, 8]], ["conv1", [4, 4]]]
    assert pd.read_csv(out / "points.csv")["policy"].tolist() == ["W8A8", "W8A8"]
    # resumed: only W2A8 is evaluated (W4A4's points take its stored quality; before, it was evaluated
    # again); the files equal the uninterrupted run's
    monkeypatch.setattr(runner, "_hw_chunk", real_chunk)
    calls.clear()
    run_sweep(p, out=out, progress=False, workers=1, resume=True)
    assert [c["conv1"] for c in calls] == [(2, 8)]
    assert (out / "points.csv").read_text() == (tmp_path / "ref/points.csv").read_text()
    assert _lines(out) == _lines(tmp_path / "ref")


def test_stored_quality_is_reused_for_points_still_to_run(tmp_path, monkeypatch):
    # a crash that kept the qualities but lost the points (points.csv cut to its first row): nothing is
    # evaluated again, and the rows come back equal, quality_detail included (the stored JSON is what every
    # run writes)
    p = tmp_path / "s.yaml"
    p.write_text(SWEEP)
    out = tmp_path / "o"
    run_sweep(p, out=out, progress=False, workers=1)
    full = (out / "points.csv").read_text()
    (out / "points.csv").write_text("".join(full.splitlines(keepends=True)[:2]))
    calls: list = []
    _counting(monkeypatch, calls)
    run_sweep(p, out=out, progress=False, workers=1, resume=True)
    assert calls == [] and (out / "points.csv").read_text() == full


def test_the_key_is_the_model_bits_and_accumulator(tmp_path):
    qm = QUALITY_MODELS["digits_cnn"]
    bits = (("conv1", (8, 8)), ("conv2", (4, 4)), ("fc", (4, 8)))
    store = QualityStore(tmp_path / QUALITY_FILE)
    stored = store.put(quality_key(qm, bits, 32, "wrap"), {"accuracy": 0.5, "bits": dict(bits)})
    assert stored == {"accuracy": 0.5, "bits": {"conv1": [8, 8], "conv2": [4, 4], "fc": [4, 8]}}
    again = QualityStore(tmp_path / QUALITY_FILE)
    assert again.get(quality_key(qm, bits, 32, "wrap")) == stored
    assert again.get(quality_key(qm, bits, 16, "wrap")) is None  # another accumulator
    assert again.get(quality_key(qm, bits, 32, "saturate")) is None
    assert again.get(quality_key(qm, bits[:2] + (("fc", (8, 8)),), 32, "wrap")) is None
    assert again.get(quality_key(QUALITY_MODELS["fashion_cnn"], bits, 32, "wrap")) is None
    from dataclasses import replace
    assert again.get(quality_key(replace(qm, qat=(("method", "lsq"),)), bits, 32, "wrap")) is None


def test_a_line_cut_short_is_dropped(tmp_path):
    qm = QUALITY_MODELS["digits_cnn"]
    path = tmp_path / QUALITY_FILE
    store = QualityStore(path)
    k1 = quality_key(qm, (("conv1", (8, 8)),), 32, "wrap")
    store.put(k1, {"accuracy": 0.9})
    good = path.read_text()
    path.write_text(good + good[:40])  # a crash in the middle of the second line
    again = QualityStore(path)
    assert len(again) == 1 and path.read_text() == good  # rewritten without it: the next append is whole
    again.put(quality_key(qm, (("conv1", (4, 4)),), 32, "wrap"), {"accuracy": 0.8})
    assert len(QualityStore(path)) == 2
