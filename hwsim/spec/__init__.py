"""Typed, immutable specs: the accelerator, the workload; YAML loading with precise errors."""

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
