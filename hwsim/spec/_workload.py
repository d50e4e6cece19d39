"""Workloads: a network as a list of layers, each viewed as one or more GEMMs.

Layer kinds (``op``): ``conv2d`` (stride, padding, dilation, groups), ``depthwise`` (a conv2d whose
``groups`` default to its input channels), ``gemm`` (an (M, K) x (K, N) product, ``count`` independent copies,
e.g. attention heads) and ``fc`` (a fully connected layer: a GEMM with M = batch).

GEMM view (``../shared/DESIGN.md``, "Modelling notes"; SCALE-Sim's operand matrices,
``scalesim/compute/operand_matrix.py``): a conv2d is ``groups`` GEMMs, each with
``M = batch * H_out * W_out`` (ofmap pixels), ``K = C_in/groups * R * S`` (window) and
``N = C_out/groups`` (filters).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ._base import SpecModel
from ._loader import load_yaml, validate

__all__ = ["Conv2d", "Gemm", "Layer", "Workload", "GemmView", "load_workload_yaml"]


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


#: The most MACs one layer may have: cycle and byte counts stay exact in float64 and far inside int64 (the event
#: model's type). 2**53 MACs is ~9e15: 2,000 times GPT-3's per-token forward pass.
MAX_LAYER_MACS = 2 ** 53


def _check_macs(g: "GemmView") -> None:
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
    act_symmetric: bool | None = Field(default=None, description="input activations quantized with zero point "
                                       "0 (default: the workload's)")
    relu: bool = False


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
            for size, s, k, d in zip((self.in_h, self.in_w), self.stride_hw, self.kernel_hw, self.dilation_hw):
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
    def _check(self) -> "Conv2d":
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
            raise ValueError(f"a filter no larger than the padded input; found a {eh}x{ew} (dilated) filter on "
                             f"a {self.in_h + t + b}x{self.in_w + left + r} padded input")
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
        for axis, size, pad0, out, k, s_, d in (("rows", self.in_h, t, oh, self.kernel_hw[0], self.stride_hw[0],
                                                 self.dilation_hw[0]),
                                                ("columns", self.in_w, left, ow, self.kernel_hw[1],
                                                 self.stride_hw[1], self.dilation_hw[1])):
            eff = (k - 1) * d + 1
            last_end = (out - 1) * s_ - pad0 + eff
            if eff >= s_ and last_end < size:
                notes.append(f"the output does not divide: {size} input {axis}, filter {eff}, stride {s_}, padding "
                             f"{pad0} before -> the last {size - last_end} input {axis} are never used")
        return notes

    def covered_input_hw(self) -> tuple[int, int]:
        """Input rows and columns some window touches (a 1x1 stride-2 conv reads every other one): the unique
        ifmap a layer needs is ``batch * in_channels * covered_h * covered_w`` elements."""
        t, _, left, _ = self.pads
        out = []
        for size, pad0, o, k, s_, d in ((self.in_h, t, self.out_hw[0], self.kernel_hw[0], self.stride_hw[0],
                                         self.dilation_hw[0]),
                                        (self.in_w, left, self.out_hw[1], self.kernel_hw[1], self.stride_hw[1],
                                         self.dilation_hw[1])):
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

    @property
    def n_groups(self) -> int:
        return self.count

    @model_validator(mode="after")
    def _size(self) -> "Gemm":
        _check_macs(self.gemm)
        return self

    @property
    def gemm(self) -> GemmView:
        return GemmView(m=self.m, k=self.k, n=self.n, groups=self.count)


Layer = Annotated[Union[Conv2d, Gemm], Field(discriminator="op")]


class Workload(_Frozen):
    """A network: a name, default bit-widths and an ordered list of layers (names unique).

    ``weight_symmetric`` / ``act_symmetric`` (default true, each layer may override): whether the weights /
    input activations are quantized symmetrically (zero point 0). A non-zero zero point adds the cross terms of
    sum((x - z_x)(w - z_w)) = sum(xw) - z_w*sum(x) - z_x*sum(w) + K*z_x*z_w to every output, which the energy
    model charges (:mod:`hwsim.energy`).
    """

    __union_tags__ = ("conv2d", "depthwise", "gemm", "fc")

    name: str
    source: str = ""
    weight_bits: int = Field(default=8, ge=1, le=16)
    act_bits: int = Field(default=8, ge=1, le=16)
    weight_symmetric: bool = True
    act_symmetric: bool = True
    layers: tuple[Layer, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> "Workload":
        seen: set[str] = set()
        for layer in self.layers:
            if layer.name in seen:
                raise ValueError(f"unique layer names; found {layer.name!r} twice")
            seen.add(layer.name)
        return self

    def shape_warnings(self, source: str = "") -> list[str]:
        """One line per layer whose shape does not divide, naming the layer (see :meth:`Conv2d.shape_notes`)."""
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
    def total_macs(self) -> int:
        return sum(layer.gemm.macs for layer in self.layers)


def load_workload_yaml(path: str | Path) -> Workload:
    """Load and validate a workload YAML (see ``workloads/resnet18.yaml``).

    Raises
    ------
    SpecError
        Missing file, bad YAML, unknown key, an impossible layer (e.g. a filter larger than its padded input),
        naming the file and ``layers[i].key``.
    """
    data = load_yaml(path)
    return validate(Workload, data, str(path))
