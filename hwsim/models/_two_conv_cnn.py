"""The small CNN that the Fashion-MNIST and OpenCV-digits models share: conv 3x3 (pad 1) + ReLU + 2x2
max-pool, twice, then two fully connected layers (ReLU between). Only the input size, the channel counts
(the weights' shapes), the data set and the calibration count differ between them: :class:`TwoConvTask`
holds those and gives both modules their weights, networks and integer evaluation."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._base import check_layer_bits, load_npz_metadata, load_npz_weights
from ._engine import Conv, Network, Pool, PTQConfig, QuantizedNetwork

__all__ = ["two_conv_network", "TwoConvTask", "LAYERS"]

#: The GEMM layers, in order (names of ``bits`` and of the workloads' YAML).
LAYERS = ("conv1", "conv2", "fc1", "fc2")


def two_conv_network(name: str, w: dict[str, np.ndarray]) -> Network:
    """The network as an engine :class:`~hwsim.models._engine.Network` named ``name`` (output tensor
    ``"logits"``), from float32 weights ``conv1/conv2.weight`` ``(out, in, 3, 3)``, ``fc1/fc2.weight``
    ``(out, in)`` and their biases."""
    p1 = (1, 1, 1, 1)
    ops = [
        Conv("conv1", "input", "c1", w["conv1.weight"], w["conv1.bias"], pads=p1, act="relu"),
        Pool("max", "c1", "p1"),
        Conv("conv2", "p1", "c2", w["conv2.weight"], w["conv2.bias"], pads=p1, act="relu"),
        Pool("max", "c2", "p2"),
        Pool("flatten", "p2", "flat"),
        Conv("fc1", "flat", "h1", w["fc1.weight"], w["fc1.bias"], act="relu", linear=True),
        Conv("fc2", "h1", "logits", w["fc2.weight"], w["fc2.bias"], linear=True),
    ]
    return Network(name, ops, "logits")


@dataclass(frozen=True, eq=False)
class TwoConvTask:
    """One labelled image set with its trained two-conv CNN (keyword-only).

    ``load_data`` returns ``(x_train, y_train, x_test, y_test)``: images ``(n, 1, H, W)`` float32 in [0, 1],
    labels ``(n,)`` int64, and raises :class:`~hwsim.models.MissingDependency` where the data is absent.
    Calibration uses the first ``n_calib`` training images; quality is top-1 accuracy on the test images.
    """

    name: str
    weights_path: Path
    shapes: dict[str, tuple[int, ...]]
    n_calib: int
    load_data: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]

    def load_weights(self, path: str | Path | None = None) -> dict[str, np.ndarray]:
        """The trained float32 weights (keys and shapes of ``shapes``; conv ``(out, in, kh, kw)``, fc
        ``(out, in)``), from the committed npz or ``path``."""
        return load_npz_weights(self.weights_path if path is None else Path(path), self.shapes)

    def load_metadata(self, path: str | Path | None = None) -> dict:
        """The training record stored in the npz (JSON under key ``meta``)."""
        return load_npz_metadata(self.weights_path if path is None else Path(path))

    def build_network(self, weights: dict[str, np.ndarray] | None = None) -> Network:
        """The CNN as an engine :class:`~hwsim.models._engine.Network` (tensor ``"logits"`` is the
        output); default the committed weights."""
        return two_conv_network(self.name, self.load_weights() if weights is None else weights)

    def float_forward(self, x: np.ndarray, weights: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """Float32 logits ``(n, 10)`` of images ``(n, 1, H, W)``."""
        return self.build_network(weights).forward(np.asarray(x, np.float32))

    @functools.cached_property
    def context(self) -> tuple[Network, np.ndarray, dict, np.ndarray, np.ndarray]:
        """``(network, calibration images, their float tensors, x_test, y_test)``, loaded once."""
        x_tr, _, x_te, y_te = self.load_data()
        net = self.build_network()
        calib = np.ascontiguousarray(x_tr[:self.n_calib])
        return net, calib, net.forward(calib, keep=True), x_te, y_te

    def evaluate(self, bits, acc_bits: int = 32, acc_mode: str = "wrap", *, profile: str = "ort_cpu",
                 config: PTQConfig | None = None, n: int | None = None) -> dict:
        """Top-1 accuracy of the post-training-quantized integer network on the test images.

        Parameters
        ----------
        bits : dict of str to (int, int), or (int, int)
            ``(weight_bits, act_bits)`` per layer of :data:`LAYERS` (2..8; ``act_bits`` quantize the
            layer's input).
        acc_bits, acc_mode, profile
            Accumulator register and requantization semantics.
        config : PTQConfig, optional
            Default: per-channel symmetric weights, min/max-calibrated asymmetric uint activations.
        n : int, optional
            Evaluate the first ``n`` test images (default all).

        Returns
        -------
        dict
            ``accuracy`` (fraction), ``correct``, ``n``, ``overflow`` ({layer: int}), ``bits``.

        Raises
        ------
        MissingDependency
            The data set is not installed (with the command that installs it).
        """
        bits = check_layer_bits(bits, LAYERS)
        net, calib, calib_t, x_te, y_te = self.context
        if n is not None:
            x_te, y_te = x_te[:n], y_te[:n]
        q = QuantizedNetwork(net, bits, calib, config or PTQConfig(), acc_bits=acc_bits, acc_mode=acc_mode,
                             profile=profile, calib_tensors=calib_t)
        logits = q.run(x_te, batch=500)
        correct = int((logits.argmax(axis=1) == y_te).sum())
        return {"accuracy": correct / y_te.size, "correct": correct, "n": int(y_te.size),
                "overflow": q.overflow, "bits": bits}
