"""Each precision policy's quality, kept in the sweep's output folder as it completes.

A sweep's slow phase is the quality of each precision policy (a bit-accurate run of the real network: seconds
per policy for post-training quantization, minutes for QAT); its points take milliseconds each. The parent
appends every quality result to ``<out>/quality.jsonl`` the moment it arrives (one JSON line, flushed and
fsynced, as ``points.csv``'s rows are), and a later run into the same folder (``--resume``, or the same
command again after a stop before the first point) takes a stored result instead of evaluating the policy
again when its key matches: the quality model, its QAT config (None: post-training quantization), the
per-layer ``(weight_bits, act_bits)`` in layer order and the accumulator (``acc_bits``, ``acc_mode``).
Errors (a policy the model refused) are not stored: they cost nothing to find again. The ILP's measured
sensitivity runs (:func:`hwsim.explore._ilp_policies.measured_sensitivity`) are stored the same way, so that
a policy equal to one of them (the all-``reference`` run is the uniform reference policy) is not run twice.

One line::

    {"key": {"acc_bits": 32, "acc_mode": "wrap", "bits": [["conv1", [8, 8]], ...], "model": "digits_cnn",
             "qat": null}, "result": {"accuracy": 0.9889, "correct": 445, ...}}

A line cut short by a crash is dropped when the file is opened (the file is rewritten without it, atomically),
so that the next append starts on a line of its own. QAT's trained networks keep their own cache
(``<out>/qat/``, :mod:`hwsim.models.qat`), which the ILP's sensitivity runs also read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ._quality import QualityModel

__all__ = ["QUALITY_FILE", "QualityStore", "quality_key"]

#: The file, in the sweep's output folder.
QUALITY_FILE = "quality.jsonl"


def quality_key(qm: QualityModel, bits: tuple[tuple[str, tuple[int, int]], ...], acc_bits: int,
                acc_mode: str) -> dict[str, Any]:
    """What a policy's quality depends on, as JSON values (see the module docstring)."""
    return {"model": qm.name, "qat": None if qm.qat is None else dict(qm.qat),
            "bits": [[n, [int(w), int(a)]] for n, (w, a) in bits], "acc_bits": int(acc_bits),
            "acc_mode": str(acc_mode)}


def _text(key: dict[str, Any]) -> str:
    return json.dumps(key, sort_keys=True)


class QualityStore:
    """The stored results of one output folder (``path``: its ``quality.jsonl``; need not exist yet).

    Results go through JSON both ways (:meth:`put` returns the stored form), so that a run that evaluates a
    policy and one that reads it back write the same rows (tuples become lists, exactly as ``json.dumps``
    of the points' ``quality_detail`` writes them anyway; floats round-trip exactly).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._results: dict[str, dict[str, Any]] = {}
        if not self.path.is_file():
            return
        raw = self.path.read_text()
        good: list[str] = []
        for line in raw.splitlines(keepends=True):
            try:
                rec = json.loads(line)
                key, result = rec["key"], rec["result"]
            except (ValueError, KeyError, TypeError):
                continue  # cut short by a crash
            if not line.endswith("\n") or not isinstance(result, dict):
                continue
            self._results[_text(key)] = result
            good.append(line)
        if "".join(good) != raw:
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text("".join(good))
            os.replace(tmp, self.path)

    def __len__(self) -> int:
        return len(self._results)

    def get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        """The stored result of ``key`` (:func:`quality_key`), or None."""
        return self._results.get(_text(key))

    def put(self, key: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
        """Append ``result`` under ``key`` (flushed and fsynced before it returns) and return it as stored
        (through JSON; a value JSON cannot hold is written as its ``str``)."""
        stored = json.loads(json.dumps(result, default=str))
        line = json.dumps({"key": key, "result": stored}, sort_keys=True) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self._results[_text(key)] = stored
        return stored
