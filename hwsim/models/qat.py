"""Quantization-aware training of the real CNNs (digits, Fashion-MNIST, OpenCV digits) and their quality on
the datapath.

:func:`train` fine-tunes a network's committed float weights with :func:`hwsim.quant.train_qat` at a per-layer
bit policy on its training split; :func:`evaluate_qat` runs the trained integer network on hwsim's datapath
(:meth:`hwsim.models._engine.QuantizedNetwork.from_qat`) over the test split, like the PTQ ``evaluate`` of
:mod:`hwsim.models.digits` / :mod:`hwsim.models.fashion`. With ``cache_dir`` each trained network is stored
once per (network, policy, QAT config, weights file) as ``<key>.npz`` and each evaluation as
``<key>-acc<A><mode>.json``, so that a resumed sweep does not train again; every training appends a row to
``trainings.csv`` there (policy, seconds, final loss).

Training inputs: digits: the 1,347 training images; Fashion-MNIST: the 60,000 training images; OpenCV digits:
the tutorial's 2,500 training digits (each, or the first ``config.max_train``). Quantizer initialization uses
the networks' PTQ calibration images (training split).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..quant import QATConfig, QATResult, check_qat_bits, train_qat
from ._engine import QuantizedNetwork

__all__ = ["QAT_NETWORKS", "qat_context", "train", "evaluate_qat", "cache_key"]

#: The networks QAT can train (the quality models of the same names).
QAT_NETWORKS = ("digits_cnn", "fashion_cnn", "opencv_digits_cnn")


@functools.lru_cache(maxsize=3)
def qat_context(network: str):
    """``(net, x_train, y_train, x_test, y_test, calib_x, weights_path)`` of a QAT network.

    Raises
    ------
    ValueError
        An unknown network.
    MissingDependency
        Fashion-MNIST is not installed.
    """
    if network == "digits_cnn":
        from . import digits

        x_tr, y_tr, x_te, y_te = digits.load_digits_split()
        return (digits.build_network(), x_tr, y_tr, x_te, y_te, digits.calibration_images(x_tr),
                digits.WEIGHTS_PATH)
    if network == "fashion_cnn":
        from . import fashion

        x_tr, y_tr, x_te, y_te = fashion.load_fashion_mnist()
        return (fashion.build_network(), x_tr, y_tr, x_te, y_te, np.ascontiguousarray(x_tr[:fashion.N_CALIB]),
                fashion.WEIGHTS_PATH)
    if network == "opencv_digits_cnn":
        from . import opencv_digits

        x_tr, y_tr, x_te, y_te = opencv_digits.load_opencv_digits()
        return (opencv_digits.build_network(), x_tr, y_tr, x_te, y_te,
                np.ascontiguousarray(x_tr[:opencv_digits.N_CALIB]), opencv_digits.WEIGHTS_PATH)
    raise ValueError(f"network: expected one of {list(QAT_NETWORKS)}, found {network!r}")


def _as_config(config) -> QATConfig:
    if config is None:
        return QATConfig()
    if isinstance(config, QATConfig):
        return config
    return QATConfig(**dict(config))


@functools.lru_cache(maxsize=4)
def _file_sha(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def cache_key(network: str, bits: dict, config: QATConfig) -> str:
    """The cache file stem of a training: a hash of the network, its weights file, the policy and the
    config."""
    wpath = qat_context(network)[6]
    text = json.dumps({"network": network, "weights": _file_sha(str(wpath)),
                       "bits": {k: list(v) for k, v in bits.items()}, "config": config.to_dict(), "v": 1},
                      sort_keys=True)
    return f"{network}-{hashlib.sha256(text.encode()).hexdigest()[:20]}"


def train(network: str, bits, config: QATConfig | dict | None = None, *, cache_dir: str | Path | None = None,
          log=None) -> QATResult:
    """QAT of ``network`` at ``bits`` (``{layer: (weight_bits, act_bits)}`` or one pair), from its float
    weights.

    With ``cache_dir``, a network trained before under the same key is loaded instead of trained.

    Raises
    ------
    ValueError
        Unknown network or layer, bits the datapath cannot run (2..8), a bad config value (naming the key).
    MissingDependency
        torch (or Fashion-MNIST) is not installed.
    """
    cfg = _as_config(config)
    net, x_tr, y_tr, _, _, calib, _ = qat_context(network)
    bits = check_qat_bits(bits, net.layers)
    path = None
    if cache_dir is not None:
        cache_dir = Path(cache_dir)
        path = cache_dir / f"{cache_key(network, bits, cfg)}.npz"
        if path.is_file():
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files if k != "meta"}
                meta = json.loads(str(z["meta"]))
            return QATResult.from_arrays(net, bits, cfg, arrays, seconds=meta["seconds"],
                                         history=meta["history"])
    res = train_qat(net, bits, x_tr, y_tr, cfg, calib_x=calib, log=log)
    if path is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
        meta = json.dumps({"seconds": res.seconds, "history": res.history, "bits": bits,
                           "config": cfg.to_dict()})
        np.savez(tmp, meta=np.asarray(meta), **res.to_arrays())
        os.replace(tmp, path)
        log_path = cache_dir / "trainings.csv"
        new = not log_path.is_file()
        with log_path.open("a", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            if new:
                w.writerow(["key", "network", "bits", "method", "epochs", "seconds", "final_loss"])
            w.writerow([path.stem, network, " ".join(f"{k}={a}/{b}" for k, (a, b) in bits.items()),
                        cfg.method, cfg.epochs, f"{res.seconds:.2f}", f"{res.history[-1]['loss']:.5f}"])
    return res


def evaluate_qat(network: str, bits, *, config: QATConfig | dict | None = None, acc_bits: int = 32,
                 acc_mode: str = "wrap", cache_dir: str | Path | None = None) -> dict:
    """Test-split top-1 accuracy of the QAT-trained integer network on the datapath.

    Parameters
    ----------
    network : one of :data:`QAT_NETWORKS`
    bits : dict of str to (int, int), or (int, int)
    config : QATConfig or dict of its fields, optional
    acc_bits, acc_mode
        The accumulator register of the inference (training computes exact accumulators).
    cache_dir : path, optional
        Where trained networks and results are cached (see the module docstring).

    Returns
    -------
    dict
        ``accuracy`` (fraction), ``correct``, ``n``, ``overflow`` ({layer: int}), ``bits``, ``qat`` (method).
    """
    cfg = _as_config(config)
    net, _, _, x_te, y_te, _, _ = qat_context(network)
    bits = check_qat_bits(bits, net.layers)
    res_path = None
    if cache_dir is not None:
        res_path = Path(cache_dir) / f"{cache_key(network, bits, cfg)}-acc{int(acc_bits)}{acc_mode}.json"
        if res_path.is_file():
            out = json.loads(res_path.read_text())
            out["bits"] = {k: tuple(v) for k, v in out["bits"].items()}
            return out
    res = train(network, bits, cfg, cache_dir=cache_dir)
    q = QuantizedNetwork.from_qat(res, acc_bits=acc_bits, acc_mode=acc_mode)
    logits = q.run(x_te, batch=500)
    correct = int((logits.argmax(axis=1) == y_te).sum())
    out = {"accuracy": correct / y_te.size, "correct": correct, "n": int(y_te.size), "overflow": q.overflow,
           "bits": bits, "qat": cfg.method}
    if res_path is not None:
        tmp = res_path.with_name(f"{res_path.stem}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({**out, "bits": {k: list(v) for k, v in bits.items()}}, sort_keys=True))
        os.replace(tmp, res_path)
    return out
