"""Shape and data-movement ONNX kernels: Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Identity, Concat.

Each kernel takes the node, its input arrays (``None`` for an omitted optional input) and the
:class:`~hwsim.onnxq.DatapathConfig`, and returns its output arrays plus a :class:`NodeStats` record.
"""

from __future__ import annotations

import numpy as np

from ._ops_common import NodeStats, _attr

__all__ = ["reshape", "flatten", "transpose", "squeeze", "unsqueeze", "identity", "concat"]


# -- data movement -------------------------------------------------------------------------------------------

def reshape(node, ins, cfg):
    x, shape = ins[0], [int(v) for v in np.asarray(ins[1]).reshape(-1)]
    allowzero = int(_attr(node, "allowzero", 0))
    if not allowzero:
        shape = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
    return [x.reshape(shape)], NodeStats()


def flatten(node, ins, cfg):
    x = ins[0]
    axis = int(_attr(node, "axis", 1)) % (x.ndim + 1) if x.ndim else 0
    return [x.reshape(int(np.prod(x.shape[:axis])), -1)], NodeStats()


def transpose(node, ins, cfg):
    perm = _attr(node, "perm")
    return [np.ascontiguousarray(np.transpose(ins[0], perm))], NodeStats()


def _axes(node, ins):
    if len(ins) > 1 and ins[1] is not None:
        return [int(v) for v in np.asarray(ins[1]).reshape(-1)]
    a = _attr(node, "axes")
    return None if a is None else [int(v) for v in a]


def squeeze(node, ins, cfg):
    axes = _axes(node, ins)
    x = ins[0]
    return [np.squeeze(x, axis=tuple(axes)) if axes is not None else np.squeeze(x)], NodeStats()


def unsqueeze(node, ins, cfg):
    axes = _axes(node, ins)
    x = ins[0]
    n = x.ndim + len(axes)
    for a in sorted(v % n for v in axes):
        x = np.expand_dims(x, a)
    return [x], NodeStats()


def identity(node, ins, cfg):
    return [ins[0]], NodeStats()


def concat(node, ins, cfg):
    return [np.concatenate(ins, axis=int(_attr(node, "axis")))], NodeStats()
