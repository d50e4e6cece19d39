"""The sweep file's schema (``sweeps/*.yaml``): the keys a sweep YAML may hold, their types and ranges.

Only pydantic and :class:`hwsim.spec.SpecModel`: a sweep file is validated against it without the arch and
workload models (:func:`hwsim.explore.read_sweep_spec`); :mod:`hwsim.explore._spec` then resolves it against
the arch and workload it names.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from ..spec import SpecModel

__all__ = ["SweepSpec", "QatSpec", "PrecisionSpace", "RandomPolicies", "IlpPolicies", "Bits", "OBJECTIVES",
           "ILP_COSTS"]


def _pair(v: Any) -> Any:
    """A precision policy's bits: a list of two (weight_bits, act_bits); anything else is an error in the
    project's words (pydantic's would be "Tuple should have at most 2 items after validation")."""
    if isinstance(v, list | tuple) and len(v) == 2:
        return v
    shown = f"[{', '.join(map(repr, v))}]" if isinstance(v, list | tuple) else repr(v)
    raise ValueError(f"[weight_bits, act_bits]; found {shown[:120]}")


#: (weight_bits, act_bits); each an integer (strict: hwsim.spec.SpecModel)
Bits = Annotated[tuple[int, int], BeforeValidator(_pair)]


_Strict = SpecModel


class RandomPolicies(_Strict):
    """``count`` random per-layer policies: each layer's weight and activation bits drawn from ``bits``."""

    count: int = Field(gt=0, le=100000)
    bits: tuple[int, ...] = Field(min_length=1)
    seed: int = 0


ILP_COSTS = ("total_cycles", "energy_pj", "weight_bytes", "bops")


class IlpPolicies(_Strict):
    """Mixed precision by ILP (HAWQ-V3), one policy per hardware point and budget.

    ``options``: the (weight_bits, act_bits) pairs a layer may take. ``sensitivity``: ``measured`` (the
    quality model's loss, run bit-accurately with one layer at an option and the others at ``reference``) or a
    CSV file with columns ``layer, weight_bits, act_bits`` and ``sensitivity_column`` (relative to the sweep
    file): ``sensitivity`` or ``omega`` (HAWQ's Hessian-weighted perturbation,
    :func:`hwsim.quant.layer_sensitivity`) as they are, or ``sqnr_db`` turned into the added noise-to-signal
    ratio ``10^(-SQNR/10) - 10^(-SQNR_ref/10)`` (independent quantization noises add in power). ``budgets``:
    cost -> fractions of the cost of the uniform ``reference`` policy on the same hardware; one ILP per
    fraction.
    """

    options: tuple[Bits, ...] = Field(min_length=1)
    reference: Bits = (8, 8)
    sensitivity: str = "measured"
    sensitivity_column: Literal["sensitivity", "omega", "sqnr_db"] = "sensitivity"
    budgets: dict[Literal["total_cycles", "energy_pj", "weight_bytes", "bops"], tuple[float, ...]] = Field(
        min_length=1)

    @field_validator("budgets")
    @classmethod
    def _fractions(cls, v: dict) -> dict:
        for k, fr in v.items():
            if not fr or any(not f > 0 for f in fr):
                raise ValueError(f"a non-empty list of fractions > 0 for every budget; found {k}: {list(fr)}")
        return v


class QatSpec(_Strict):
    """Quantization-aware training of every policy (:class:`hwsim.quant.QATConfig`; the sweep's ``qat:``
    block).

    With it, a policy's quality is the accuracy of the network trained by QAT at that policy and run on the
    integer datapath, instead of post-training quantization; trained networks are cached under ``<out>/qat``.
    """

    method: Literal["ste", "lsq", "lsq+", "pact"] = "lsq"
    epochs: int = Field(default=3, ge=1, le=200)
    lr: float = Field(default=2e-3, gt=0, le=1)
    batch_size: int = Field(default=128, ge=1, le=65536)
    distill: float = Field(default=0.0, ge=0, le=1)
    temperature: float = Field(default=2.0, gt=0, le=100)
    pact_decay: float = Field(default=1e-4, ge=0, le=1)
    max_train: int | None = Field(default=None, ge=1)
    seed: int = 0


class PrecisionSpace(_Strict):
    uniform: tuple[Bits, ...] = ()
    per_layer: tuple[dict[str, Bits], ...] = ()
    random: RandomPolicies | None = None
    ilp: IlpPolicies | None = None


#: The columns a sweep's ``objectives`` may name (besides the quality model's metric). ``area_mm2``: the die
#: area of the point's arch, mm^2 (:func:`hwsim.energy.area_breakdown`: PEs, on-chip memories, requantizers,
#: at the arch's ``energy.technology`` table; DRAM, the network and control not counted).
OBJECTIVES = ("total_cycles", "energy_pj", "latency_us", "weight_bytes", "bops", "dram_bytes", "utilization",
              "stall_cycles", "compute_cycles", "area_mm2")


class SweepSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=120)
    description: str = ""
    arch: str
    workload: str
    quality: str | None = None
    qat: QatSpec | None = None
    axes: dict[str, tuple[Any, ...]] = Field(default_factory=dict)
    precision: PrecisionSpace = PrecisionSpace(uniform=((8, 8),))
    baselines: tuple[Bits, ...] = ((8, 8), (4, 4))
    budgets: dict[Literal["total_cycles", "energy_pj", "weight_bytes", "bops"],
                  float] = Field(default_factory=dict)
    objectives: dict[str, Literal["min", "max"]] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if ".." in v:
            raise ValueError(f"a name without '..' (it names the output folder); found {v!r}")
        return v

    @field_validator("axes")
    @classmethod
    def _axes(cls, v: dict) -> dict:
        for k, vals in v.items():
            if len(vals) == 0:
                raise ValueError(f"a non-empty list of values for every axis; found axis {k!r} empty")
            if len({repr(x) for x in vals}) != len(vals):
                raise ValueError(f"distinct values on every axis; found axis {k!r} with {list(vals)}")
        return v
