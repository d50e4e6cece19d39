"""Shared pieces of the real-network loaders: the missing-dependency error, bit-assignment checks, and the
sensitivity adapter for :func:`hwsim.quant.layer_sensitivity`."""

from __future__ import annotations

import numpy as np

from ..errors import MissingDependency  # one class for hwsim.quant and hwsim.models

__all__ = ["MissingDependency", "check_layer_bits", "CNNSensitivityModel", "softmax_curvature",
           "torch_forward", "host_line"]


def host_line() -> str:
    """The "Host: ..." sentence under a generated quality table: machine, CPU kind (the onnxruntime target
    hwsim detects: AdaRound's float32 BLAS differs between AVX2 and AVX-512 hosts, and so can a table's
    cells), Python and numpy versions."""
    import platform

    try:
        from ..onnxq import host_info

        cpu = f", CPU target {host_info().target}"
    except Exception:  # pragma: no cover - onnx or onnxruntime missing: the line without it
        cpu = ""
    return f"Host: {platform.machine()}{cpu}, Python {platform.python_version()}, numpy {np.__version__}."


def load_npz_weights(path, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Float32 arrays of the given keys from a committed ``.npz`` of weights, each checked against its shape.

    Raises
    ------
    ValueError
        A weight whose shape is not the expected one (naming the file and the key).
    """
    with np.load(path, allow_pickle=False) as z:
        w = {k: np.asarray(z[k], dtype=np.float32) for k in shapes}
    for k, shape in shapes.items():
        if w[k].shape != shape:
            raise ValueError(f"{path}: {k} must have shape {shape}, not {w[k].shape}")
    return w


def load_npz_metadata(path) -> dict:
    """The training record stored in a weights ``.npz`` (a JSON string under key ``meta``)."""
    import json

    with np.load(path, allow_pickle=False) as z:
        return json.loads(str(z["meta"]))


def check_layer_bits(bits, layers: tuple[str, ...], *, low: int = 2, high: int = 8) -> dict[str,
                                                                                            tuple[int, int]]:
    """Validate ``{layer: (weight_bits, act_bits)}`` (or one pair for every layer) against ``layers``.

    Returns
    -------
    dict of str to (int, int), in ``layers`` order

    Raises
    ------
    ValueError
        An unknown or missing layer, a value that is not a pair of ints, or bits outside ``[low, high]``.
    """
    if isinstance(bits, (tuple, list)) and len(bits) == 2 and all(isinstance(b,
                                                                             (int,
                                                                              np.integer)) for b in bits):
        bits = {layer: tuple(bits) for layer in layers}
    if not isinstance(bits, dict):
        raise ValueError(f"bits must be a dict {{layer: (weight_bits, act_bits)}} or one pair, not {bits!r}")
    unknown = [k for k in bits if k not in layers]
    if unknown:
        raise ValueError(f"bits has unknown layer(s) {unknown[:5]}; the first layers are {list(layers[:5])}")
    missing = [k for k in layers if k not in bits]
    if missing:
        raise ValueError(f"bits must give (weight_bits, act_bits) for every layer; missing {missing[:5]}")
    out = {}
    for layer in layers:
        v = bits[layer]
        if not (isinstance(v, (tuple, list)) and len(v) == 2):
            raise ValueError(f"bits for layer {layer!r} must be a pair (weight_bits, act_bits), not {v!r}")
        for b in v:
            if isinstance(b, bool) or not isinstance(b, (int, np.integer)):
                raise ValueError(f"bits for layer {layer!r} must be integers, not {b!r}")
            if not low <= int(b) <= high:
                raise ValueError(f"bits for layer {layer!r} must be between {low} and {high}, not {int(b)}")
        out[layer] = (int(v[0]), int(v[1]))
    return out


def softmax_curvature(logits: np.ndarray):
    """``du -> mean_n (sum_k p_nk du_nk^2 - (sum_k p_nk du_nk)^2)``: the Hessian of softmax cross-entropy with
    respect to the logits, ``diag(p) - p p^T``, as a quadratic form, with ``p = softmax(logits)``
    (float64)."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)

    def curvature(du: np.ndarray) -> float:
        du = du.reshape(p.shape)
        return float(np.mean(np.sum(p * du * du, axis=1) - np.sum(p * du, axis=1) ** 2))

    return curvature


class CNNSensitivityModel:
    """:func:`hwsim.quant.layer_sensitivity`'s model interface for an :class:`hwsim.models._engine.Network`.

    The loss of the Hessian is softmax cross-entropy over the logits of ``loss_x`` (against true labels, or
    ``KL(p_float || p)`` against the float network's own predictions: at the float weights both have the
    Hessian ``J^T (diag(p) - p p^T) J`` for a ReLU/ReLU6 network, see :mod:`hwsim.quant._sensitivity`).

    Parameters
    ----------
    net : Network
        The float network.
    eval_x : numpy.ndarray
        Inputs whose logits are compared (output SQNR).
    calib_x : numpy.ndarray
        Calibration inputs of the quantized runs.
    loss_x : numpy.ndarray
        Inputs of the Hessian loss.
    config : PTQConfig, optional
    name : str
    """

    def __init__(self, net, eval_x, calib_x, loss_x, *, config=None, name: str = ""):
        from ._engine import PTQConfig

        self.net = net
        self.name = name or net.name
        self.layers = net.layers
        self.eval_x = eval_x
        self.calib_x = calib_x
        self.config = config or PTQConfig()
        self._calib_t = net.forward(calib_x, keep=True)
        self._float = net.forward(eval_x)
        self._loss_t = net.forward(loss_x, dtype=np.float64, keep=True)
        self.output_curvature = softmax_curvature(self._loss_t[net.output])

    def float_output(self) -> np.ndarray:
        return self._float

    def quantized_output(self, bits) -> np.ndarray:
        from ._engine import QuantizedNetwork

        q = QuantizedNetwork(self.net, bits, self.calib_x, self.config, calib_tensors=self._calib_t)
        return q.run(self.eval_x)

    def layer_weight(self, layer: str) -> np.ndarray:
        return self.net.layer(layer).weight

    def quantized_weight(self, layer: str, weight_bits: int) -> np.ndarray:
        from ._engine import _quantize_weight

        return _quantize_weight(self.net.layer(layer).weight, weight_bits, self.config)[1]

    def layer_hvp(self, layer: str):
        """``v -> H v`` (float64, the weight's shape): the Hessian of ``mean_n KL(p_float || softmax(z_n))``
        on the loss inputs with respect to ``layer``'s weight, at the float weights, by double
        back-propagation in torch (imported here; :class:`MissingDependency` without it). The loss's Hessian
        at the reference is the one whose trace :meth:`output_curvature` estimates."""
        try:
            import torch
        except ImportError as e:
            raise MissingDependency(f"Hessian eigenvalues need torch ({e}); "
                                    "pip install torch==2.13.0") from None
        start = self.net.op_index(layer)
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v, np.float64)) for k, v in self._loss_t.items()}
        z0 = tensors[self.net.output]
        p0 = torch.softmax(z0, dim=1)
        logp0 = torch.log_softmax(z0, dim=1)
        w0 = torch.from_numpy(np.asarray(self.net.layer(layer).weight, np.float64))

        def hvp(v: np.ndarray) -> np.ndarray:
            threads = torch.get_num_threads()
            # small products: threads only contend (measured 40x slower on 2 busy cores)
            torch.set_num_threads(1)
            try:
                w = w0.clone().requires_grad_(True)
                z = torch_forward(torch, self.net, tensors, {layer: w}, start)
                loss = (p0 * (logp0 - torch.log_softmax(z, dim=1))).sum(dim=1).mean()
                (g,) = torch.autograd.grad(loss, w, create_graph=True)
                (hv,) = torch.autograd.grad((g * torch.from_numpy(np.asarray(v, np.float64))).sum(), w)
            finally:
                torch.set_num_threads(threads)
            return hv.numpy()

        return hvp

    def layer_output(self, layer: str):
        start = self.net.op_index(layer)
        t = self._loss_t

        def output(w):
            return self.net.forward(None, dtype=np.float64, weights={layer: w}, tensors=t, start=start)

        return output


def torch_forward(torch, net, tensors: dict, weights: dict, start: int = 0):
    """The engine network's float forward in torch (float64), from op ``start`` on, with the tensors computed
    before it in ``tensors`` and replacement weights (torch tensors, e.g. requiring gradients) in ``weights``;
    returns the output tensor. Mirrors :meth:`hwsim.models._engine.Network.forward`."""
    from ._engine import Conv

    F = torch.nn.functional
    t = dict(tensors)
    for op in net.ops[start:]:
        src = t[op.src]
        if not isinstance(op, Conv):
            if op.kind == "max":
                t[op.dst] = F.max_pool2d(src, op.kernel, op.stride)
            elif op.kind == "gap":
                t[op.dst] = src.mean(dim=(2, 3), keepdim=True)
            else:
                t[op.dst] = src.reshape(src.shape[0], -1)
            continue
        w = weights.get(op.name)
        if w is None:
            w = torch.from_numpy(np.asarray(op.weight, np.float64))
        b = torch.from_numpy(np.asarray(op.bias, np.float64))
        if op.linear:
            y = F.linear(src.reshape(src.shape[0], -1), w, b)
        else:
            pt, pb, pl, pr = op.pads
            y = F.conv2d(F.pad(src, (pl, pr, pt, pb)), w, b, stride=tuple(op.stride), groups=op.groups)
        if op.residual is not None:
            y = y + t[op.residual]
        if op.act == "relu":
            y = torch.relu(y)
        elif op.act == "relu6":
            hi = 6.0 if op.clip_hi is None else torch.from_numpy(
                np.asarray(op.clip_hi, np.float64)).reshape((1, -1) + (1,) * (y.ndim - 2))
            y = torch.minimum(torch.relu(y), torch.as_tensor(hi, dtype=torch.float64))
        t[op.dst] = y
    return t[net.output]
