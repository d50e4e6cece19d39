"""The quantization config of a run: uniform bits and per-layer overrides (``--quant QUANT.yaml``).

Example::

    weight_bits: 8        # every layer unless overridden
    act_bits: 8
    layers:
      conv1: {weight_bits: 8, act_bits: 8}
      fc: {weight_bits: 4}
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ..errors import SpecError
from ._loader import load_yaml, validate
from ._workload import Workload

__all__ = ["QuantConfig", "LayerBits", "load_quant_config"]


class LayerBits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    weight_bits: int | None = Field(default=None, ge=1, le=16)
    act_bits: int | None = Field(default=None, ge=1, le=16)


class QuantConfig(BaseModel):
    """Uniform ``weight_bits``/``act_bits`` (default: the workload's) and per-layer overrides."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    weight_bits: int | None = Field(default=None, ge=1, le=16)
    act_bits: int | None = Field(default=None, ge=1, le=16)
    layers: dict[str, LayerBits] = Field(default_factory=dict)

    def resolve(self, workload: Workload, source: str = "<quant>") -> dict[str, tuple[int, int]]:
        """(weight_bits, act_bits) of every layer of ``workload``.

        Raises
        ------
        SpecError
            A layer name the workload does not have.
        """
        names = [layer.name for layer in workload.layers]
        for k in self.layers:
            if k not in names:
                raise SpecError(source, f"layers.{k}", f"a layer of workload {workload.name!r}", k)
        out = {}
        for layer in workload.layers:
            w, a = workload.bits(layer)
            w = self.weight_bits or w
            a = self.act_bits or a
            lb = self.layers.get(layer.name)
            if lb is not None:
                w, a = lb.weight_bits or w, lb.act_bits or a
            out[layer.name] = (w, a)
        return out


def load_quant_config(path: str | Path, workload: Workload) -> dict[str, tuple[int, int]]:
    """Load a quantization YAML and resolve it against ``workload``; errors name the file and key."""
    cfg = validate(QuantConfig, load_yaml(path), str(path))
    return cfg.resolve(workload, str(path))
