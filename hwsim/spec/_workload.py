"""Workloads: a network as a graph of layers, each GEMM layer viewed as one or more GEMMs.

Layer kinds (``op``): ``conv2d`` (stride, padding, dilation, groups), ``depthwise`` (a conv2d whose
``groups`` default to its input channels), ``gemm`` (an (M, K) x (K, N) product, ``count`` independent copies,
e.g. attention heads) and ``fc`` (a fully connected layer: a GEMM with M = batch).

GEMM view (``../shared/DESIGN.md``, "Modelling notes"; SCALE-Sim's operand matrices,
``scalesim/compute/operand_matrix.py``): a conv2d is ``groups`` GEMMs, each with
``M = batch * H_out * W_out`` (ofmap pixels), ``K = C_in/groups * R * S`` (window) and
``N = C_out/groups`` (filters).

**Graph.** Every node (GEMM layer or non-GEMM op) produces one tensor named after it; ``inputs:`` names the
tensors a node consumes (producer node names, or ``input`` for the network input); omitted, a node consumes
the previous node's output (the first node: ``input``), so a plain list is a chain. A GEMM layer's second
input, when given, is its (K, N) operand (attention's K^T and V): an activation, not a weight. Non-GEMM ops
(:class:`VectorOp`: ``add``, ``mul``, ``maxpool``, ``avgpool``, ``concat``, ``softmax``, ``layernorm``,
``gelu``, ``silu``, ``relu``, ``requant``, ``quantize``, ...) carry element counts and bit-widths and run on
the vector unit (:mod:`hwsim.spec._arch`, ``vector_unit``). :meth:`Workload.graph` checks the graph
(:mod:`hwsim.spec._graph`).
"""

from __future__ import annotations

import math
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from ._base import SpecModel
from ._loader import load_yaml, validate

__all__ = ["Conv2d", "Gemm", "Layer", "Node", "VectorOp", "VECTOR_OPS", "Workload", "GemmView",
           "load_workload_yaml", "expand_transformer", "generate_workload", "transformer_workload"]


_Frozen = SpecModel


class GemmView(BaseModel):
    """A layer as ``groups`` independent GEMMs of (M, K) x (K, N); all counts are elements."""

    model_config = ConfigDict(frozen=True)
    m: int
    k: int
    n: int
    groups: int = 1

    @property
    def macs(self) -> int:
        return self.m * self.k * self.n * self.groups


Pair = int | tuple[int, int]


#: The most MACs one layer may have: cycle and byte counts stay exact in float64 and far inside int64 (the
#event
#: model's type). 2**53 MACs is ~9e15: 2,000 times GPT-3's per-token forward pass.
MAX_LAYER_MACS = 2 ** 53


def _check_macs(g: GemmView) -> None:
    if g.macs > MAX_LAYER_MACS:
        raise ValueError(f"a layer of at most 2**53 MACs; found {g.macs:.3g} MACs (M={g.m:.3g}, K={g.k:.3g}, "
                         f"N={g.n:.3g}, groups={g.groups:.3g})")


def _pair(v: Pair) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


class _LayerBase(_Frozen):
    name: str = Field(min_length=1)
    weight_bits: int | None = Field(default=None, ge=1, le=16, description="bits of the filter operand")
    act_bits: int | None = Field(default=None, ge=1, le=16, description="bits of the input activations")
    weight_symmetric: bool | None = Field(default=None, description="weights quantized with zero point 0 "
                                          "(default: the workload's)")
    act_symmetric: bool | None = Field(default=None,
                                       description="input activations quantized with zero point "
                                       "0 (default: the workload's)")
    relu: bool = False
    inputs: tuple[str, ...] | None = Field(default=None, min_length=1, max_length=2,
                                           description="the tensors this layer consumes (default: the "
                                                       "previous "
                                           "node's output); a second one is the (K, N) operand")


class Conv2d(_LayerBase):
    """A 2-D convolution on an NCHW ifmap of ``(batch, in_channels, in_h, in_w)``.

    ``padding``: an int (all sides), ``[h, w]``, ``[top, bottom, left, right]``, ``valid`` (none) or ``same``
    (TensorFlow's rule: output = ceil(in/stride), the odd pixel of padding goes to the bottom/right).
    """

    op: Literal["conv2d", "depthwise"]
    in_channels: int = Field(gt=0)
    out_channels: int = Field(gt=0)
    in_h: int = Field(gt=0)
    in_w: int = Field(gt=0)
    kernel: Pair
    stride: Pair = 1
    padding: int | tuple[int, int] | tuple[int, int, int, int] | Literal["valid", "same"] = 0
    dilation: Pair = 1
    groups: int | None = Field(default=None, gt=0)
    batch: int = Field(default=1, gt=0)

    @property
    def n_groups(self) -> int:
        if self.groups is not None:
            return self.groups
        return self.in_channels if self.op == "depthwise" else 1

    @property
    def kernel_hw(self) -> tuple[int, int]:
        return _pair(self.kernel)

    @property
    def stride_hw(self) -> tuple[int, int]:
        return _pair(self.stride)

    @property
    def dilation_hw(self) -> tuple[int, int]:
        return _pair(self.dilation)

    @property
    def pads(self) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) padding in pixels."""
        p = self.padding
        if p == "valid":
            return (0, 0, 0, 0)
        if p == "same":
            out = []
            for size, s, k, d in zip((self.in_h, self.in_w), self.stride_hw, self.kernel_hw,
                                     self.dilation_hw, strict=True):
                eff = (k - 1) * d + 1
                o = -(-size // s)
                total = max((o - 1) * s + eff - size, 0)
                out += [total // 2, total - total // 2]
            return tuple(out)  # type: ignore[return-value]
        if isinstance(p, int):
            return (p, p, p, p)
        if len(p) == 2:
            return (p[0], p[0], p[1], p[1])
        return tuple(p)  # type: ignore[return-value]

    @property
    def out_hw(self) -> tuple[int, int]:
        """Output height and width: ``floor((in + pads - ((k-1)*d + 1)) / s) + 1`` (PyTorch/ONNX rule)."""
        t, b, left, r = self.pads
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_hw, self.stride_hw, self.dilation_hw
        oh = (self.in_h + t + b - ((kh - 1) * dh + 1)) // sh + 1
        ow = (self.in_w + left + r - ((kw - 1) * dw + 1)) // sw + 1
        return oh, ow

    @model_validator(mode="after")
    def _check(self) -> Conv2d:
        for key, v in (("kernel", self.kernel), ("stride", self.stride), ("dilation", self.dilation)):
            if min(_pair(v)) <= 0:
                raise ValueError(f"{key} > 0; found {v!r}")
        if isinstance(self.padding, int | tuple) and min(_pair(self.padding) if isinstance(self.padding, int)
                                                          else self.padding) < 0:
            raise ValueError(f"padding >= 0; found {self.padding!r}")
        g = self.n_groups
        if self.op == "depthwise" and g != self.in_channels:
            raise ValueError(f"groups equal to in_channels for a depthwise layer (or no groups key); found "
                             f"groups={g}, in_channels={self.in_channels}")
        if self.in_channels % g or self.out_channels % g:
            raise ValueError(f"groups that divide in_channels and out_channels; found groups={g}, "
                             f"in_channels={self.in_channels}, out_channels={self.out_channels}")
        t, b, left, r = self.pads
        (kh, kw), (dh, dw) = self.kernel_hw, self.dilation_hw
        eh, ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
        if eh > self.in_h + t + b or ew > self.in_w + left + r:
            raise ValueError(f"a filter no larger than the padded input; found a {eh}x{ew} (dilated) filter "
                             f"on a {self.in_h + t + b}x{self.in_w + left + r} padded input")
        _check_macs(self.gemm)
        return self

    def shape_notes(self) -> list[str]:
        """Shapes that do not divide: the last input rows/columns that no window covers although windows
        otherwise cover the input without gaps (dilated filter >= stride), as in SCALE-Sim's alexnet.csv conv1
        (224 - 11 is not a multiple of 4: the last input row is never used). Padding absorbs the remainder in
        the usual networks (ResNet's 7x7/2 on 224 with padding 3), so they get no note."""
        notes = []
        t, _, left, _ = self.pads
        oh, ow = self.out_hw
        for axis, size, pad0, out, k, s_, d in (("rows", self.in_h, t, oh, self.kernel_hw[0],
                                                 self.stride_hw[0], self.dilation_hw[0]),
                                                ("columns", self.in_w, left, ow, self.kernel_hw[1],
                                                 self.stride_hw[1], self.dilation_hw[1])):
            eff = (k - 1) * d + 1
            last_end = (out - 1) * s_ - pad0 + eff
            if eff >= s_ and last_end < size:
                notes.append(f"the output does not divide: {size} input {axis}, filter {eff}, stride {s_}, "
                             f"padding {pad0} before -> the last {size - last_end} input {axis} are never "
                             "used")
        return notes

    def covered_input_hw(self) -> tuple[int, int]:
        """Input rows and columns some window touches (a 1x1 stride-2 conv reads every other one): the unique
        ifmap a layer needs is ``batch * in_channels * covered_h * covered_w`` elements."""
        t, _, left, _ = self.pads
        out = []
        for size, pad0, o, k, s_, d in ((self.in_h, t, self.out_hw[0], self.kernel_hw[0], self.stride_hw[0],
                                         self.dilation_hw[0]),
                                        (self.in_w, left, self.out_hw[1], self.kernel_hw[1],
                                         self.stride_hw[1], self.dilation_hw[1])):
            out.append(_covered(size, pad0, o, k, s_, d))
        return out[0], out[1]

    @property
    def gemm(self) -> GemmView:
        oh, ow = self.out_hw
        kh, kw = self.kernel_hw
        g = self.n_groups
        return GemmView(m=self.batch * oh * ow, k=self.in_channels // g * kh * kw, n=self.out_channels // g,
                        groups=g)


def _covered(size: int, pad0: int, o: int, k: int, s: int, d: int) -> int:
    """How many of the input positions ``0 .. size-1`` some window reads: the union over filter taps
    ``j < k`` of ``j*d - pad0 + i*s`` for ``i < o``. Taps with the same ``(j*d) mod s`` read one residue class
    mod ``s``, each an interval of ``o`` consecutive members; the intervals of a class are merged, clipped to
    the input, and counted, so the cost is O(k log k), not O(k*o) (a 10^7-row input must not take minutes)."""
    classes: dict[int, list[tuple[int, int]]] = {}
    for j in range(k):
        first = j * d - pad0
        r = first % s
        q = (first - r) // s  # first = q*s + r: the window positions are (q .. q+o-1)*s + r
        lo = max(q, 0)  # i'*s + r >= 0 for every i' >= 0, as 0 <= r < s
        hi = min(q + o - 1, (size - 1 - r) // s)  # i'*s + r <= size - 1
        if lo <= hi:
            classes.setdefault(r, []).append((lo, hi))
    total = 0
    for spans in classes.values():
        spans.sort()
        cur_lo, cur_hi = spans[0]
        for lo, hi in spans[1:]:
            if lo > cur_hi + 1:
                total += cur_hi - cur_lo + 1
                cur_lo, cur_hi = lo, hi
            else:
                cur_hi = max(cur_hi, hi)
        total += cur_hi - cur_lo + 1
    return total


class Gemm(_LayerBase):
    """A matrix product (M, K) x (K, N), ``count`` times (e.g. one per attention head).

    ``op: fc`` is a fully connected layer: ``m`` is the batch (default 1). For an attention matmul (both
    operands activations) the second operand takes ``weight_bits``.
    """

    op: Literal["gemm", "fc"]
    m: int = Field(default=1, gt=0)
    k: int = Field(gt=0)
    n: int = Field(gt=0)
    count: int = Field(default=1, gt=0)
    weight_group_size: int | None = Field(default=None, gt=0, description="weight-only quantization: weights "
                                          "per scale along K (W4A16 with group scales); none: per tensor")
    scale_bits: int = Field(default=16, ge=1, le=32, description="bits of each group scale")

    @property
    def n_groups(self) -> int:
        return self.count

    @property
    def scale_elements(self) -> int:
        """Group scales of the (K, N) operand: ``ceil(K / weight_group_size) * N * count`` (0 without
        groups)."""
        if self.weight_group_size is None:
            return 0
        return -(-self.k // self.weight_group_size) * self.n * self.count

    @model_validator(mode="after")
    def _size(self) -> Gemm:
        _check_macs(self.gemm)
        return self

    @property
    def gemm(self) -> GemmView:
        return GemmView(m=self.m, k=self.k, n=self.n, groups=self.count)


Layer = Annotated[Conv2d | Gemm, Field(discriminator="op")]

#: The non-GEMM op kinds (run on the vector unit).
VECTOR_OPS = ("add", "mul", "maxpool", "avgpool", "concat", "softmax", "layernorm", "gelu", "silu", "relu",
              "requant", "sigmoid", "tanh", "cumsum", "copy", "div", "sqrt", "quantize")


class VectorOp(_Frozen):
    """A non-GEMM node: element-wise (``add``, ``mul``, ``div``, ``sqrt``, ``relu``, ``gelu``, ``silu``,
    ``requant``, ``sigmoid``, ``tanh``), a dynamic quantization (``quantize``: ONNX DynamicQuantizeLinear,
    the tensor's min and max, then scale, round and clamp each element to ``bits``), a running sum
    (``cumsum``), a pooling window (``maxpool``,
    ``avgpool``), data movement only (``concat``; ``copy``: resize/pad/tile, ``elements`` = its output's), or
    a row-wise normalization (``softmax``, ``layernorm``).

    ``elements``: output elements (default: inferred; pooling from its window, concat the sum of its inputs,
    anything else its first input's). ``row``: elements per normalized row (softmax, layernorm; default: the
    producer's row, e.g. a GEMM's N). ``bits``: bits of the output elements (default: the first input's).
    Pools take ``kernel``/``stride``/``padding`` over a ``channels x in_h x in_w`` input (default: the
    producer's output shape); no ``kernel``: a global pool (one output per channel).

    ``constant``: elements of a constant operand (a bias, a scale, a divisor; ONNX ``Add(x, c)``,
    ``Mul(x, c)``, ``Div(x, c)``): an ``add``, ``mul`` or ``div`` then takes one input (the activation, which
    sizes the node) instead of two, and the constant is read once from DRAM at the node's ``bits`` (by each
    node that uses it; assumed: it is not kept on chip).
    """

    name: str = Field(min_length=1)
    op: Literal["add", "mul", "maxpool", "avgpool", "concat", "softmax", "layernorm", "gelu", "silu", "relu",
                "requant", "sigmoid", "tanh", "cumsum", "copy", "div", "sqrt", "quantize"]
    inputs: tuple[str, ...] | None = Field(default=None, min_length=1)
    elements: int | None = Field(default=None, gt=0)
    row: int | None = Field(default=None, gt=0)
    bits: int | None = Field(default=None, ge=1, le=32)
    channels: int | None = Field(default=None, gt=0)
    in_h: int | None = Field(default=None, gt=0)
    in_w: int | None = Field(default=None, gt=0)
    kernel: Pair | None = None
    stride: Pair | None = None
    padding: Pair = 0
    constant: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _check(self) -> VectorOp:
        pool_keys = [k for k in ("channels", "in_h", "in_w", "kernel", "stride") if getattr(self,
                                                                                            k) is not None]
        if self.op not in ("maxpool", "avgpool") and (pool_keys or self.padding != 0):
            raise ValueError(f"{', '.join(pool_keys or ['padding'])} only on maxpool/avgpool; found op "
                             f"{self.op}")
        if self.row is not None and self.op not in ("softmax", "layernorm"):
            raise ValueError(f"row only on softmax/layernorm; found op {self.op}")
        if self.constant is not None and self.op not in ("add", "mul", "div"):
            raise ValueError(f"constant only on add/mul/div; found op {self.op}")
        want = 1 if self.constant is not None else 2
        if self.op in ("add", "mul", "div") and self.inputs is not None and len(self.inputs) != want:
            raise ValueError(f"{'one input (and a constant)' if want == 1 else 'two inputs'} for {self.op}; "
                             f"found {list(self.inputs)}")
        for key in ("kernel", "stride"):
            v = getattr(self, key)
            if v is not None and min(_pair(v)) <= 0:
                raise ValueError(f"{key} > 0; found {v!r}")
        if min(_pair(self.padding)) < 0:
            raise ValueError(f"padding >= 0; found {self.padding!r}")
        return self

    def pool_out(self, c: int, h: int, w: int) -> tuple[int, int, int]:
        """(channels, out_h, out_w) of a pool over a ``c x h x w`` input (PyTorch's floor rule)."""
        if self.kernel is None:
            return c, 1, 1
        (kh, kw), (ph, pw) = _pair(self.kernel), _pair(self.padding)
        sh, sw = _pair(self.stride) if self.stride is not None else (kh, kw)
        return c, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1

    @property
    def window(self) -> int:
        """Input elements each pooled output combines (1 for a non-pool; ``h*w`` of a global pool, set by the
        graph)."""
        return math.prod(_pair(self.kernel)) if self.kernel is not None else 0


Node = Annotated[Conv2d | Gemm | VectorOp, Field(discriminator="op")]


class Workload(_Frozen):
    """A network: a name, default bit-widths and its nodes in execution order (YAML key ``layers``; names
    unique). :attr:`layers` are the GEMM layers alone (what the array runs), :attr:`nodes` all of them.

    ``weight_symmetric`` / ``act_symmetric`` (default true, each layer may override): whether the weights /
    input activations are quantized symmetrically (zero point 0). A non-zero zero point adds the cross terms
    of sum((x - z_x)(w - z_w)) = sum(xw) - z_w*sum(x) - z_x*sum(w) + K*z_x*z_w to every output, which the
    energy model charges (:mod:`hwsim.energy`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, populate_by_name=True,
                              serialize_by_alias=True)
    __union_tags__ = ("conv2d", "depthwise", "gemm", "fc", *VECTOR_OPS)

    name: str
    source: str = ""
    weight_bits: int = Field(default=8, ge=1, le=16)
    act_bits: int = Field(default=8, ge=1, le=16)
    weight_symmetric: bool = True
    act_symmetric: bool = True
    nodes: tuple[Node, ...] = Field(min_length=1, alias="layers")
    _transformer: dict[str, Any] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _unique(self) -> Workload:
        seen: set[str] = set()
        for layer in self.nodes:
            if layer.name in seen:
                raise ValueError(f"unique layer names; found {layer.name!r} twice")
            if layer.name == "input":
                raise ValueError("no node named 'input' (the network input's name)")
            seen.add(layer.name)
        if not any(not isinstance(n, VectorOp) for n in self.nodes):
            raise ValueError("at least one GEMM layer (conv2d, depthwise, gemm, fc); found only non-GEMM ops")
        return self

    @cached_property
    def layers(self) -> tuple[Conv2d | Gemm, ...]:
        """The GEMM layers in order (the non-GEMM ops left out)."""
        return tuple(n for n in self.nodes if not isinstance(n, VectorOp))

    def graph(self, source: str = "<workload>", *, check_channels: bool = False):
        """The checked tensor graph (:class:`hwsim.spec.WorkloadGraph`); ``check_channels``: also refuse a
        layer whose channels do not match the tensor it reads (:func:`hwsim.spec.build_graph`).

        Raises
        ------
        SpecError
            An unknown input name, a tensor consumed before it is produced (a cycle), naming ``source`` and
            ``layers[i].inputs``; with ``check_channels``, ``layers[i].in_channels`` or ``layers[i].k``.
        """
        from ._graph import build_graph

        return build_graph(self, source, check_channels=check_channels)

    def shape_warnings(self, source: str = "") -> list[str]:
        """One line per layer whose shape does not divide, naming the layer (see
        :meth:`Conv2d.shape_notes`)."""
        out = []
        for i, layer in enumerate(self.layers):
            for note in layer.shape_notes() if isinstance(layer, Conv2d) else ():
                out.append(f"{source + ': ' if source else ''}layers[{i}] ({layer.name}): {note}")
        return out

    def asymmetric(self, layer: Conv2d | Gemm) -> tuple[bool, bool]:
        """(weights have a non-zero zero point, activations have one) for a layer: its own setting, else the
        workload's."""
        ws = self.weight_symmetric if layer.weight_symmetric is None else layer.weight_symmetric
        acts = self.act_symmetric if layer.act_symmetric is None else layer.act_symmetric
        return (not ws, not acts)

    def bits(self, layer: Conv2d | Gemm) -> tuple[int, int]:
        """(weight_bits, act_bits) of a layer: its own, else the workload's defaults."""
        return (layer.weight_bits or self.weight_bits, layer.act_bits or self.act_bits)

    @property
    def transformer(self) -> dict[str, Any] | None:
        """The ``transformer:`` block this workload was generated from (a copy), or None."""
        return None if self._transformer is None else dict(self._transformer)

    def with_default_bits(self, weight_bits: int | None = None, act_bits: int | None = None) -> Workload:
        """This workload with other default ``weight_bits`` / ``act_bits`` (None: unchanged), as if the
        workload file said so. A generated transformer is generated again from its block, so what the
        generator derives from the defaults follows them and what the block sets stays: the KV cache keeps
        an explicit ``kv_bits`` (else takes ``act_bits``), attention's activation operands take ``act_bits``.
        Any other workload: the defaults replaced (a layer's own bits still win).

        Raises
        ------
        SpecError
            Bits out of range (naming ``weight_bits`` / ``act_bits``).
        """
        wb = self.weight_bits if weight_bits is None else weight_bits
        ab = self.act_bits if act_bits is None else act_bits
        data = self.model_dump(mode="python", by_alias=True)
        data.update(weight_bits=wb, act_bits=ab)
        if self._transformer is None:
            return validate(Workload, data, f"<workload {self.name}>")
        del data["layers"]
        return generate_workload({**data, "transformer": self._transformer}, f"<workload {self.name}>")

    @property
    def total_macs(self) -> int:
        return sum(layer.gemm.macs for layer in self.layers)


def expand_transformer(data: dict, source: str) -> dict:
    """A workload mapping with a ``transformer:`` block (:mod:`hwsim.spec._transformer`) -> the same mapping
    with its generated ``layers``.

    Raises
    ------
    SpecError
        A bad ``transformer`` block (naming ``transformer.key``), or ``layers`` given as well.
    """
    from ..errors import Found, SpecError
    from ._transformer import TransformerConfig, transformer_layers

    if "layers" in data:
        raise SpecError(source, "layers", "either layers or a transformer block", Found("both"))
    block = data["transformer"]
    if not isinstance(block, dict):
        raise SpecError(source, "transformer", "a mapping of keys", Found(f"a {type(block).__name__}"))
    from ._transformer import MODELS

    if "model" in block and block["model"] not in MODELS:  # (pydantic's loc drops a key named 'model')
        raise SpecError(source, "transformer.model", f"one of {', '.join(MODELS)}", block["model"])
    cfg = validate(TransformerConfig, block, source, prefix="transformer")
    bad = cfg.problem()
    if bad is not None:
        raise SpecError(source, f"transformer.{bad[0]}", bad[1], Found(bad[2]))
    rest = {k: v for k, v in data.items() if k != "transformer"}
    wb, ab = rest.get("weight_bits", 8), rest.get("act_bits", 8)
    if not isinstance(wb, int) or not isinstance(ab, int):  # Workload's validation names the key
        return {**rest, "layers": []}
    rest.setdefault("name", f"{cfg.model or 'transformer'}_{cfg.phase}")
    rest.setdefault("source", f"hwsim.spec transformer generator: {cfg.model or 'custom'} {cfg.phase} "
                    + (f"context {cfg.context}" if cfg.phase == "decode" else f"seq_len {cfg.seq_len}")
                    + f", batch {cfg.batch}")
    return {**rest, "layers": transformer_layers(cfg, act_bits=ab, weight_bits=wb)}


def transformer_workload(name: str | None = None, *, weight_bits: int = 8, act_bits: int = 8,
                         **transformer: Any) -> Workload:
    """A transformer workload from the keys of a ``transformer:`` block
    (:class:`hwsim.spec.TransformerConfig`), e.g. ``transformer_workload(model="gpt2_small", phase="decode",
    context=1024)``.

    Raises
    ------
    SpecError
        A bad key, naming ``transformer.key``.
    """
    data: dict[str, Any] = {"weight_bits": weight_bits, "act_bits": act_bits, "transformer": transformer}
    if name:
        data["name"] = name
    return generate_workload(data, "<transformer>")


def generate_workload(data: dict[str, Any], source: str) -> Workload:
    """A workload mapping with a ``transformer:`` block, generated, validated and checked; the workload
    remembers its block (:meth:`Workload.with_default_bits` generates it again).

    Raises
    ------
    SpecError
        A bad block or workload key, naming ``source`` and the key.
    """
    block = data["transformer"]
    wl = validate(Workload, expand_transformer(data, source), source)
    wl.graph(source, check_channels=True)
    wl._transformer = dict(block)
    return wl


def load_workload_yaml(path: str | Path) -> Workload:
    """Load and validate a workload YAML (see ``workloads/resnet18.yaml``).

    Raises
    ------
    SpecError
        Missing file, bad YAML, unknown key, an impossible layer (e.g. a filter larger than its padded input),
        a layer whose channels do not match the tensor it reads, naming the file and ``layers[i].key``.
    """
    data = load_yaml(path)
    if isinstance(data, dict) and "transformer" in data:
        return generate_workload(data, str(path))
    wl = validate(Workload, data, str(path))
    wl.graph(str(path), check_channels=True)  # checked on loading (unknown inputs, cycles, channels)
    return wl
