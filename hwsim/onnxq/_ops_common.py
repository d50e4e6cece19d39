"""Shared pieces of the ONNX kernels: :class:`OpError`, :class:`NodeStats` and the attribute, scalar and
zero-point readers every kernel uses.

Each kernel takes the node, its input arrays (``None`` for an omitted optional input) and the
:class:`~hwsim.onnxq.DatapathConfig`, and returns its output arrays plus a :class:`NodeStats` record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from onnx import helper

__all__ = ["OpError", "NodeStats"]


class OpError(ValueError):
    """A node the kernels cannot run (unsupported attribute, type or shape); the message says why."""


@dataclass
class NodeStats:
    """What one node did on the datapath: accumulator overflow events, wrapped multiplier operands, the
    reduction length ``k`` and operand bits of GEMM-like nodes."""

    acc_overflow: int = 0
    mult_overflow: int = 0
    k: int | None = None
    a_bits: int | None = None
    w_bits: int | None = None
    max_abs_acc: int | None = None
    notes: list[str] = field(default_factory=list)


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default



def _window_attrs(node, nd: int) -> tuple[list[int], list[int], str, list[int]]:
    """A conv's or pool's ``strides``, ``dilations``, ``auto_pad`` (a str) and ``pads`` over ``nd`` spatial
    dims, with the ONNX defaults (1, 1, NOTSET, 0)."""
    strides = list(_attr(node, "strides", [1] * nd))
    dil = list(_attr(node, "dilations", [1] * nd))
    auto_pad = _attr(node, "auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    return strides, dil, auto_pad, list(_attr(node, "pads", [0] * (2 * nd)))

def _scalar(v, name, default=0):
    if v is None:
        return default
    a = np.asarray(v)
    if a.size != 1:
        raise OpError(f"{name} must be a scalar (one element), found shape {a.shape}")
    return a.reshape(-1)[0]


def _zp(v, like: np.ndarray | None = None):
    if v is None:
        return 0
    return int(_scalar(v, "zero point"))


def _is_int4(dt) -> bool:
    """ONNX INT4/UINT4 (``ml_dtypes.int4``/``uint4``, as ``onnx.numpy_helper`` reads them)."""
    return np.dtype(dt).name in ("int4", "uint4")


def _qrange(dt) -> tuple[int, int]:
    if _is_int4(dt):
        return (-8, 7) if np.dtype(dt).name == "int4" else (0, 15)
    info = np.iinfo(dt)
    return int(info.min), int(info.max)


def _bits(dt) -> int:
    return np.dtype(dt).itemsize * 8
