"""Typed, immutable specs: the accelerator, the workload; YAML loading with precise errors."""

from ._arch import (LOOP_DIMS, OPERANDS, ArchSpec, AreaOverrides, ArrayConfig, ArrayUnroll, DramConfig,
                    EnergyOverrides, MemoryConfig, MemoryLevel, PEConfig, SramConfig, TimingConfig, load_arch)
from ._base import SpecModel
from ._loader import load_yaml, validate
from ._quantcfg import LayerBits, QuantConfig, load_quant_config
from ._workload import Conv2d, Gemm, GemmView, Layer, Workload, load_workload_yaml

__all__ = [
    # _arch
    "ArchSpec", "ArrayConfig", "ArrayUnroll", "LOOP_DIMS", "PEConfig", "SramConfig", "DramConfig",
    "MemoryConfig", "MemoryLevel", "OPERANDS",
    "EnergyOverrides", "AreaOverrides",
    "TimingConfig", "load_arch",
    # _workload
    "Conv2d", "Gemm", "GemmView", "Layer", "Workload", "load_workload_yaml",
    # _quantcfg
    "QuantConfig", "LayerBits", "load_quant_config",
    # _loader
    "load_yaml", "validate",
    # _base
    "SpecModel",
]
