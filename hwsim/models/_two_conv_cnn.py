"""The small CNN that the Fashion-MNIST and OpenCV-digits models share: conv 3x3 (pad 1) + ReLU + 2x2
max-pool, twice, then two fully connected layers (ReLU between). Only the input size and the channel counts
(the weights' shapes) differ between them."""

from __future__ import annotations

import numpy as np

from ._engine import Conv, Network, Pool

__all__ = ["two_conv_network"]


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
