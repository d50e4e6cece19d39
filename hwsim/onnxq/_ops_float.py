"""Float32 and shape ops of partially quantized and transformer graphs: what onnxruntime leaves in float.

A quantized transformer (``quantize_dynamic``, ``quantize_static`` with ``nodes_to_exclude``, a float op the
quantizer left) carries ops that are not integer arithmetic: shape computation (Shape, Gather, Concat,
Reshape, Slice...), embeddings (Gather of a float table), residual adds, and float nonlinearities (Softmax,
LayerNormalization, Erf, Tanh, Pow, ReduceMean...). hwsim runs them with ``onnx.reference``'s numpy
implementations (the ONNX reference semantics; :func:`float_kernel`) in two classes:

* :data:`EXACT_OPS`: data movement, integer and comparison ops, and the float32 element-wise operations that
  IEEE 754 rounds correctly (``+ - * /``, sqrt, min/max, abs, neg): numpy float32 and onnxruntime's Eigen
  kernels give the same bits, so these tensors are compared **bit for bit** like the integer ones.
* :data:`TOLERANCE_OPS`: the ops whose float32 result depends on the implementation: MLAS's own exp / erf /
  tanh / logistic approximations (``onnxruntime/core/mlas/lib/erf.cpp``, ``tanh.cpp``, ``compute.cpp``), the
  summation order of reductions, LayerNormalization, MatMul, Gemm, Conv and pooling
  (``mlas/lib/sgemm.cpp``, ``core/providers/cpu/nn/layer_norm_impl.cc``). They are compared with
  :func:`within_tolerance` and then *anchored*: the verifier feeds onnxruntime's value of such a tensor to
  the nodes after it (``hwsim.onnxq.execute(anchor=...)``), so that every integer node downstream
  (DynamicQuantizeLinear, QuantizeLinear, MatMulInteger...) is still checked bit for bit on the same input.

An op in neither class, or one ``onnx.reference`` has no implementation of, is refused by
:func:`refusal_reason` (domain, op and why).
"""

from __future__ import annotations

import numpy as np

__all__ = ["EXACT_OPS", "TOLERANCE_OPS", "FLOAT_TOLERANCE", "float_kernel", "is_tolerance_op",
           "refusal_reason", "within_tolerance"]

#: Ops whose outputs hwsim reproduces bit for bit (data movement, integer, comparison, and the float32
#: element-wise operations IEEE 754 rounds correctly).
EXACT_OPS = frozenset({
    "Shape", "Size", "Gather", "GatherElements", "GatherND", "Unsqueeze", "Squeeze", "Concat", "Reshape",
    "Slice", "Transpose", "Expand", "Where", "Cast", "CastLike", "Equal", "Less", "Greater", "LessOrEqual",
    "GreaterOrEqual", "Not", "And", "Or", "Xor", "ConstantOfShape", "Range", "Identity", "Flatten", "Tile",
    "Split", "Neg", "Abs", "Add", "Sub", "Mul", "Div", "Sqrt", "Relu", "Min", "Max", "Clip", "Floor", "Ceil",
    "Sign", "Pad", "Trilu", "ReduceMax", "ReduceMin", "ArgMax", "ArgMin", "MaxPool", "Dropout",
    "DepthToSpace", "SpaceToDepth", "ScatterND", "ScatterElements", "NonZero", "IsNaN", "IsInf", "Mod",
})

#: Float ops whose float32 result depends on onnxruntime's implementation: compared within
#: :data:`FLOAT_TOLERANCE` and anchored to onnxruntime's values.
TOLERANCE_OPS = frozenset({
    "Softmax", "LogSoftmax", "LayerNormalization", "Erf", "Gelu", "Tanh", "Sigmoid", "Exp", "Log", "Pow",
    "Reciprocal", "ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL2", "ReduceProd", "MatMul", "Gemm",
    "Conv", "ConvTranspose", "GlobalAveragePool", "AveragePool", "BatchNormalization",
    "InstanceNormalization", "Einsum", "HardSigmoid", "HardSwish", "LeakyRelu", "Elu", "Selu", "Softplus",
    "Sin", "Cos", "Mish", "CumSum", "Resize",
})

#: com.microsoft float ops hwsim computes itself (float64, rounded once to float32), compared with tolerance.
_MS_TOLERANCE = ("Gelu", "FastGelu", "BiasGelu")

#: ``|hwsim - onnxruntime| <= rtol * |onnxruntime| + atol * max|onnxruntime|`` per element (per tensor
#: ``max``): MLAS's transcendental approximations are within a few float32 ulps (2^-23 ~ 1.2e-7 relative), a
#: float32 reduction of ``K`` terms in another order within about ``K * 2^-24`` of the largest partial sum.
#: 1e-5 / 1e-5 holds ~80 ulps: measured margins are in ``docs/verification.md``.
FLOAT_TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}

_RUN_PARAMS = None
_CACHE: dict[int, object] = {}


def is_tolerance_op(node) -> bool:
    """Whether ``node``'s output is compared with tolerance and anchored (see the module docstring)."""
    d = node.domain
    if d in ("", "ai.onnx"):
        return node.op_type in TOLERANCE_OPS
    return d == "com.microsoft" and node.op_type in _MS_TOLERANCE


def _ms_kernel(node):
    from math import sqrt

    from scipy.special import erf

    def gelu(x):
        x64 = np.asarray(x, np.float64)
        return (0.5 * x64 * (1.0 + erf(x64 / sqrt(2.0)))).astype(np.float32)

    def fast_gelu(x):  # com.microsoft FastGelu: the tanh approximation
        x64 = np.asarray(x, np.float64)
        inner = 0.7978845608028654 * (x64 + 0.044715 * x64 ** 3)  # sqrt(2 / pi) (x + 0.044715 x^3)
        return (0.5 * x64 * (1.0 + np.tanh(inner))).astype(np.float32)

    if node.op_type == "Gelu":
        return lambda x: (gelu(x),)
    if node.op_type == "BiasGelu":
        return lambda x, b: (gelu(np.asarray(x, np.float64) + b),)
    return lambda x, b=None: (fast_gelu(x if b is None else np.asarray(x, np.float64) + b),)


def _reference_op(node, opset: int):
    global _RUN_PARAMS
    from onnx.reference import ReferenceEvaluator
    from onnx.reference.ops import load_op

    if _RUN_PARAMS is None:
        _RUN_PARAMS = {"log": lambda *a: None, "verbose": 0, "new_ops": None,
                       "evaluator_cls": ReferenceEvaluator}
    cls = load_op("", node.op_type, opset)
    params = dict(_RUN_PARAMS, opsets={"": opset})
    return cls(node, params)


def refusal_reason(node, opset: int) -> str | None:
    """``None`` when :func:`float_kernel` can run ``node``, else why not (its domain and the reason)."""
    d = "" if node.domain in ("", "ai.onnx") else node.domain
    if d == "com.microsoft":
        if node.op_type in _MS_TOLERANCE:
            return None
        return (f"com.microsoft:{node.op_type} is an onnxruntime contrib op with no hwsim kernel (hwsim runs "
                f"the quantized contrib ops and com.microsoft {', '.join(_MS_TOLERANCE)})")
    if d:
        return f"{d}:{node.op_type}: hwsim runs only the ai.onnx and com.microsoft domains"
    if node.op_type not in EXACT_OPS and node.op_type not in TOLERANCE_OPS:
        return (f"ai.onnx:{node.op_type} is neither an op hwsim reproduces exactly nor one it compares with "
                f"onnxruntime within a tolerance (hwsim/onnxq/_ops_float.py lists both)")
    try:
        _reference_op(node, opset)
    except Exception as e:  # onnx.reference has no implementation for this op or opset
        return f"ai.onnx:{node.op_type} (opset {opset}): onnx.reference cannot run it ({type(e).__name__})"
    return None


def float_kernel(node, opset: int):
    """A hwsim kernel (``(node, inputs, cfg) -> (outputs, NodeStats)``) for a float or shape op, or ``None``
    (:func:`refusal_reason` says why). Runs ``onnx.reference``'s implementation of the op at the model's
    opset (float32 in, float32 out); com.microsoft Gelu/FastGelu/BiasGelu are computed in float64 and rounded
    once."""
    if refusal_reason(node, opset) is not None:
        return None
    key = id(node)
    op = _CACHE.get(key)
    if op is None or op[0] is not node:
        fn = _ms_kernel(node) if node.domain == "com.microsoft" else _reference_op(node, opset).run
        op = (node, fn)
        _CACHE[key] = op
    fn = op[1]

    def kern(n, ins, cfg):
        from ._ops import NodeStats

        args = list(ins)
        while args and args[-1] is None:
            args.pop()
        outs = fn(*args)
        res = []
        for v in outs:
            a = np.asarray(v)
            if a.dtype == np.float64:  # onnx.reference promotes some float32 results (e.g. Pow)
                a = a.astype(np.float32)
            res.append(a)
        return res, NodeStats()
    return kern


def within_tolerance(h: np.ndarray, o: np.ndarray) -> np.ndarray:
    """Boolean mask of the elements of ``h`` (hwsim) within :data:`FLOAT_TOLERANCE` of ``o``
    (onnxruntime); NaN matches NaN, an infinity only the same infinity."""
    h64, o64 = np.asarray(h, np.float64), np.asarray(o, np.float64)
    fin = np.isfinite(o64)
    scale = float(np.abs(o64[fin]).max()) if fin.any() else 0.0
    tol = FLOAT_TOLERANCE["rtol"] * np.abs(o64) + FLOAT_TOLERANCE["atol"] * scale
    with np.errstate(invalid="ignore"):
        ok = np.abs(h64 - o64) <= np.where(fin, tol, 0.0)
    return ok | (h64 == o64) | (np.isnan(h64) & np.isnan(o64))


def compare_float(h: np.ndarray, o: np.ndarray, *, tolerance: bool) -> dict:
    """One float tensor, hwsim ``h`` against onnxruntime ``o``: ``mismatches`` (elements not bit-equal, or
    outside :data:`FLOAT_TOLERANCE` when ``tolerance``), ``max_abs_diff``, ``max_rel_diff`` (to
    ``max|o|``) and the comparison used. A shape difference counts every element."""
    h, o = np.asarray(h), np.asarray(o)
    entry = {"compare": "tolerance" if tolerance else "exact"}
    if tolerance:
        entry["tolerance"] = dict(FLOAT_TOLERANCE)
    if h.shape != o.shape:
        entry.update(mismatches=int(o.size), error=f"shape {list(h.shape)} vs onnxruntime {list(o.shape)}")
        return entry
    if o.size == 0:
        entry.update(mismatches=0, max_abs_diff=0.0, max_rel_diff=0.0)
        return entry
    if h.dtype == o.dtype and np.array_equal(h, o):  # equal everywhere (no NaN): what the float64 path gives
        entry.update(mismatches=0, bit_equal=int(o.size), max_abs_diff=0.0, max_rel_diff=0.0)
        return entry
    h64, o64 = h.astype(np.float64), o.astype(np.float64)
    with np.errstate(invalid="ignore"):
        d = np.where(np.isnan(h64) & np.isnan(o64), 0.0, np.abs(h64 - o64))
    d = np.where(h64 == o64, 0.0, d)
    scale = float(np.abs(o64[np.isfinite(o64)]).max()) if np.isfinite(o64).any() else 0.0
    same = (h64 == o64) | (np.isnan(h64) & np.isnan(o64))
    ok = within_tolerance(h, o) if tolerance else same
    mx = float(np.nanmax(d)) if d.size else 0.0
    entry.update(mismatches=int(np.count_nonzero(~ok)), bit_equal=int(np.count_nonzero(same)),
                 max_abs_diff=mx, max_rel_diff=mx / scale if scale else (0.0 if mx == 0 else float("inf")))
    return entry
