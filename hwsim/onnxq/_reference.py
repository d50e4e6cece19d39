"""onnxruntime as the reference: every integer tensor of a model, from one session.

A copy of the model lists each requested tensor as a graph output, so that one ``InferenceSession`` run
returns them all (onnxruntime's CPU provider, default graph optimizations, so that QDQ groups are fused as in
deployment). Exposing a tensor can change which groups onnxruntime fuses: on x86 it rewrites int8 Q/DQ pairs
to uint8 before fusing (``QDQS8ToU8Transformer``), which it cannot do for a pair whose tensor is a graph
output, and an int8 group it cannot rewrite stays in float32. The instrumented session therefore sets
``session.qdqisint8allowed=1`` (integer kernels for int8 groups as well, the arithmetic of the uint8 ones;
no effect on uint8 or QOperator models), and the unmodified model runs with default options for the final
outputs, returned apart.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from ..errors import Found, SpecError

__all__ = ["run_onnxruntime"]


def _session(model: bytes, int8_allowed: bool = False):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    if int8_allowed:
        so.add_session_config_entry("session.qdqisint8allowed", "1")
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def _with_outputs(raw: bytes, extra: list[onnx.ValueInfoProto]) -> bytes:
    """The serialized model ``raw`` with ``extra`` appended to its graph outputs, without copying or
    re-serializing the model: protobuf parses concatenated messages as one, merging a repeated embedded
    message field and appending to repeated fields (the protobuf encoding guide, "Last One Wins" and
    "Concatenation": https://protobuf.dev/programming-guides/encoding/#last-one-wins), so the tail
    ``ModelProto(graph=GraphProto(output=extra))`` adds only outputs, after the existing ones."""
    if not extra:
        return raw
    return raw + onnx.ModelProto(graph=onnx.GraphProto(output=extra)).SerializeToString()


def run_onnxruntime(model: onnx.ModelProto, feeds: dict[str, np.ndarray], names: list[str],
                    types: dict[str, int], *, source: str = "<model>"
                    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[str]]:
    """Run ``model`` on onnxruntime's CPU provider and return the named tensors.

    Parameters
    ----------
    model : onnx.ModelProto
        The original model (not lowered).
    feeds : dict
        Graph inputs.
    names : list of str
        Tensors to return (graph outputs or intermediate values).
    types : dict
        ONNX element type per tensor name (for the added graph outputs).
    source : str
        The model path, for error messages.

    Returns
    -------
    (values, outputs, notes)
        ``values``: the named tensors from the instrumented session (``session.qdqisint8allowed=1``);
        ``outputs``: the graph outputs of the unmodified model under default session options; ``notes``.

    Raises
    ------
    SpecError
        onnxruntime rejects the model or the inputs (its message is included).
    """
    raw = model.SerializeToString()  # once, for both sessions
    existing = {o.name for o in model.graph.output}
    extra = [helper.make_tensor_value_info(nm, types.get(nm, 0), None) for nm in names if nm not in existing]
    notes = []
    try:
        sess = _session(_with_outputs(raw, extra), int8_allowed=True)
        outs = sess.run(None, feeds)
    except Exception as e:
        raise SpecError(source, "", "a model and inputs that onnxruntime runs",
                        Found(f"{type(e).__name__}: {str(e).splitlines()[0]}")) from None
    got = {o.name: v for o, v in zip(sess.get_outputs(), outs, strict=True)}
    plain_out = {}
    try:
        plain = _session(raw)
        plain_out = {o.name: v for o, v in zip(plain.get_outputs(), plain.run(None, feeds), strict=True)}
    except Exception as e:  # pragma: no cover - the instrumented model ran, so this one should too
        notes.append(f"the unmodified model did not run on onnxruntime: {type(e).__name__}: {e}")
    return {k: got[k] for k in names if k in got}, plain_out, notes
