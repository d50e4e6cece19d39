"""Op counts of the non-GEMM nodes on the vector unit, by op class (``add``, ``mul``, ``max``, ``exp``,
``divide``, ``rsqrt``), for integer-only or floating-point arithmetic.

``n`` is the node's output elements, ``rows = n / row`` the normalized rows (softmax, LayerNorm), ``k`` a
pool's window. Counts per node:

==========  ==========================================  ===============================================
 op          int (integer-only)                          fp16 / fp32
==========  ==========================================  ===============================================
 add         add n                                       add n
 mul         mul n                                       mul n
 div         divide n                                    divide n
 sqrt        rsqrt n, mul n                              rsqrt n, mul n
 relu        max n                                       max n
 requant     mul n, add n (rounding shift), max 2n       the same (scale, round, clamp to [lo, hi])
             (clamp)
 quantize    max 4n, mul n, add n, divide 1              the same
 maxpool     max (k-1) n                                 max (k-1) n
 avgpool     add (k-1) n, mul n (x 1/k)                  add (k-1) n, mul n
 concat      none (data movement only)                   none
 softmax     max n, add 7n, mul 4n, divide rows          max n, add 2n, exp n, mul n, divide rows
 layernorm   add 4n, mul 3n, divide 2 rows, rsqrt rows   the same
 gelu        max 2n, add 3n, mul 3n                      mul 7n, add 4n, exp n, divide n
 silu        add 5n, mul 4n, divide n                    exp n, add n, divide n, mul n
 sigmoid     add 5n, mul 3n, divide n                    exp n, add n, divide n
 tanh        add 6n, mul 4n, divide n                    mul n, exp n, add 2n, divide n
 cumsum      add n                                       add n
 copy        none (data movement only)                   none
==========  ==========================================  ===============================================

Integer forms follow I-BERT (Kim, Gholami, Yao, Mahoney, Keutzer, "I-BERT: Integer-only BERT Quantization",
ICML 2021; code: github kssteven418/I-BERT, ``fairseq/quantization/utils/quant_modules.py``):

* softmax (IntSoftmax): subtract the row max (max n, add n); i-exp per element: ``z = floor(-x / ln2)``
  (one multiply by the constant), ``p = x + z ln2`` (mul + add), the polynomial ``a (p + b)^2 + c`` (add,
  mul, add; ``a`` folded into the scale), the shift by ``z`` (an add-class op): mul 3, add 4; the row sum
  (add n); one division per row ``2^32 / sum`` and one multiply and shift per element (mul n, add n);
* layernorm (IntLayerNorm): the mean (sum: add n, one divide per row), subtract it (add n), the sum of
  squares (mul n, add n), one division per row for the variance and one integer square root per row (I-BERT's
  i-sqrt, Newton iterations: counted as one ``rsqrt``-class op), the multiply by the reciprocal (mul n), then
  gamma and beta (mul n, add n);
* gelu (IntGELU): ``x/2 (1 + i-erf(x / sqrt 2))``, ``i-erf(x) = sgn(x) [a (min(|x|, -b) + b)^2 + 1]``:
  ``|x|`` and the clip (max 2n), ``+ b``, ``+ 1``, ``1 +`` (add 3n), the square, the sign, the final product
  (mul 3n; ``a`` and ``1/sqrt 2`` folded into scales);
* silu (not in I-BERT): ``x * sigmoid(x)`` with I-BERT's i-exp (mul 3, add 4), ``1 +`` (add), one division
  and one multiply per element;
* sigmoid (not in I-BERT): silu without its final multiply: ``1 / (1 + i-exp(-x))``;
* tanh (not in I-BERT): ``1 - 2 / (i-exp(2x) + 1)``: ``2x`` (mul), i-exp (mul 3, add 4), ``+ 1`` and
  ``1 -`` (add 2), one division per element.

Floating point: softmax ``exp(x - max) / sum`` with one reciprocal per row and a multiply per element; GELU
in the tanh form ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` (Hendrycks and Gimpel, 2016) with
``tanh(y) = 1 - 2 / (exp(2y) + 1)``: mul 7n (x^2, x^3, two constants, 2y, 0.5x, the product), add 4n, exp n,
divide n; SiLU ``x / (1 + exp(-x))``; sigmoid ``1 / (1 + exp(-x))``; tanh ``1 - 2 / (exp(2x) + 1)``. A
running sum (``cumsum``, ONNX CumSum) is one add per output element.

``quantize`` is dynamic quantization (ONNX DynamicQuantizeLinear, ``onnx/defs/quantization/defs.cc``:
``scale = (max(0, x_max) - min(0, x_min)) / 255``, ``y = saturate(round(x / scale) + zero_point)``): the
running min and max over the tensor (max-class, 2n), one division for the reciprocal of the scale (the
zero point's few scalar ops are left out), then per element a multiply by that reciprocal (assumed in place
of the spec's division, as ``requant``'s fixed-point multiply), the rounding and zero-point add and the
clamp: mul n, add n, max 2n.

``div`` (ONNX Div) is one division per element, also when the divisor is a constant (a compiler may fold
it into a multiply by the reciprocal; not assumed here). ``sqrt`` (ONNX Sqrt) is ``x * rsqrt(x)``: one
``rsqrt``-class op and one multiply per element. A constant operand of ``add``/``mul``/``div`` (a bias, a
scale) adds no ops: the count is sized by the activation's elements.
"""

from __future__ import annotations

__all__ = ["vector_op_counts"]


def vector_op_counts(op: str, *, elements: int, row: int = 1, window: int = 1,
                     arithmetic: str = "int") -> dict[str, int]:
    """Ops per class for one non-GEMM node (module docstring's table).

    Parameters
    ----------
    op : str
        The node's op (``add``, ``mul``, ``div``, ``sqrt``, ``relu``, ``requant``, ``quantize``, ``maxpool``,
        ``avgpool``, ``concat``, ``softmax``, ``layernorm``, ``gelu``, ``silu``, ``sigmoid``, ``tanh``,
        ``cumsum``, ``copy``).
    elements : int
        Output elements ``n``.
    row, window : int
        Elements per normalized row (softmax, layernorm) and per pooling window.
    arithmetic : {"int", "fp16", "fp32"}

    Returns
    -------
    dict
        Op class -> count (classes with a zero count left out).

    Raises
    ------
    ValueError
        An unknown op.
    """
    n = int(elements)
    rows = -(-n // max(int(row), 1))
    k = max(int(window), 1)
    integer = arithmetic == "int"
    if op == "add":
        c = {"add": n}
    elif op == "mul":
        c = {"mul": n}
    elif op == "div":
        c = {"divide": n}
    elif op == "sqrt":
        c = {"rsqrt": n, "mul": n}
    elif op == "relu":
        c = {"max": n}
    elif op == "requant":
        c = {"mul": n, "add": n, "max": 2 * n}
    elif op == "quantize":
        c = {"max": 4 * n, "mul": n, "add": n, "divide": 1}
    elif op == "maxpool":
        c = {"max": (k - 1) * n}
    elif op == "avgpool":
        c = {"add": (k - 1) * n, "mul": n}
    elif op in ("concat", "copy"):
        c = {}
    elif op == "softmax":
        c = ({"max": n, "add": 7 * n, "mul": 4 * n, "divide": rows} if integer else
             {"max": n, "add": 2 * n, "exp": n, "mul": n, "divide": rows})
    elif op == "layernorm":
        c = {"add": 4 * n, "mul": 3 * n, "divide": 2 * rows, "rsqrt": rows}
    elif op == "gelu":
        c = {"max": 2 * n, "add": 3 * n, "mul": 3 * n} if integer else {"mul": 7 * n, "add": 4 * n, "exp": n,
                                                                       "divide": n}
    elif op == "silu":
        c = {"add": 5 * n, "mul": 4 * n, "divide": n} if integer else {"exp": n, "add": n, "divide": n,
                                                                       "mul": n}
    elif op == "sigmoid":
        c = {"add": 5 * n, "mul": 3 * n, "divide": n} if integer else {"exp": n, "add": n, "divide": n}
    elif op == "tanh":
        c = ({"add": 6 * n, "mul": 4 * n, "divide": n} if integer else
             {"mul": n, "exp": n, "add": 2 * n, "divide": n})
    elif op == "cumsum":
        c = {"add": n}
    else:
        raise ValueError(f"unknown vector op {op!r}")
    return {k_: v for k_, v in c.items() if v}
