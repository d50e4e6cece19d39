"""Typed, immutable specs: the accelerator, the workload; YAML loading with precise errors.

Each name is imported from its module when first used (PEP 562 module ``__getattr__``): ``load_yaml`` and
``validate`` need PyYAML alone, and a sweep file is validated without building the arch and workload models
first (``docs/cli_startup.md``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:  # the lazy names, for type checkers
    from ._arch import (
        LOOP_DIMS,
        OPERANDS,
        VECTOR_OP_CLASSES,
        ArchSpec,
        AreaOverrides,
        ArrayConfig,
        ArrayUnroll,
        DramConfig,
        EnergyOverrides,
        MemoryConfig,
        MemoryLevel,
        PEConfig,
        SramConfig,
        TimingConfig,
        VectorUnitConfig,
        load_arch,
    )
    from ._base import SpecModel
    from ._cores import HUB, CoresConfig, CoreSpec, NocConfig
    from ._graph import INPUT, TensorInfo, WorkloadGraph, build_graph
    from ._loader import load_yaml, validate
    from ._quantcfg import LayerBits, QuantConfig, load_quant_config
    from ._transformer import MODELS as TRANSFORMER_MODELS
    from ._transformer import TransformerConfig
    from ._workload import (
        VECTOR_OPS,
        Conv2d,
        Gemm,
        GemmView,
        Layer,
        Node,
        VectorOp,
        Workload,
        expand_transformer,
        generate_workload,
        load_workload_yaml,
        transformer_workload,
    )

#: module -> the public names it defines (``TRANSFORMER_MODELS`` is ``_transformer.MODELS``); the same names
#: as ``__all__`` (tests/test_lazy_imports.py)
_MODULES: dict[str, tuple[str, ...]] = {
    "_arch": ("ArchSpec", "ArrayConfig", "ArrayUnroll", "LOOP_DIMS", "PEConfig", "SramConfig", "DramConfig",
              "MemoryConfig", "MemoryLevel", "OPERANDS", "EnergyOverrides", "AreaOverrides", "TimingConfig",
              "VectorUnitConfig", "VECTOR_OP_CLASSES", "load_arch"),
    "_workload": ("Conv2d", "Gemm", "GemmView", "Layer", "Node", "VectorOp", "VECTOR_OPS", "Workload",
                  "load_workload_yaml", "expand_transformer", "generate_workload", "transformer_workload"),
    "_transformer": ("TRANSFORMER_MODELS", "TransformerConfig"),
    "_graph": ("INPUT", "TensorInfo", "WorkloadGraph", "build_graph"),
    "_quantcfg": ("QuantConfig", "LayerBits", "load_quant_config"),
    "_loader": ("load_yaml", "validate"),
    "_cores": ("HUB", "CoreSpec", "CoresConfig", "NocConfig"),
    "_base": ("SpecModel",),
}
_WHERE = {name: mod for mod, names in _MODULES.items() for name in names}
_RENAMED = {"TRANSFORMER_MODELS": "MODELS"}

__all__ = [
    # _arch
    "ArchSpec", "ArrayConfig", "ArrayUnroll", "LOOP_DIMS", "PEConfig", "SramConfig", "DramConfig",
    "MemoryConfig", "MemoryLevel", "OPERANDS",
    "EnergyOverrides", "AreaOverrides",
    "TimingConfig", "VectorUnitConfig", "VECTOR_OP_CLASSES", "load_arch",
    # _workload
    "Conv2d", "Gemm", "GemmView", "Layer", "Node", "VectorOp", "VECTOR_OPS", "Workload", "load_workload_yaml",
    "expand_transformer", "generate_workload", "transformer_workload",
    # _transformer
    "TRANSFORMER_MODELS", "TransformerConfig",
    # _graph
    "INPUT", "TensorInfo", "WorkloadGraph", "build_graph",
    # _quantcfg
    "QuantConfig", "LayerBits", "load_quant_config",
    # _loader
    "load_yaml", "validate",
    # _cores
    "HUB", "CoreSpec", "CoresConfig", "NocConfig",
    # _base
    "SpecModel",
]


__getattr__, __dir__ = lazy_names(__name__, _WHERE, __all__, renamed=_RENAMED)
