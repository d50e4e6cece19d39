"""How a layer lands on the array: GEMM view, folds per dataflow, fill/drain, SRAM accesses, DRAM bytes."""

from ._plan import LayerMapping, map_layer
from ._precision import PrecisionFactors, precision_factors
from ._scalesim_memory import ScaleSimMemory, scalesim_memory
from ._vector import vector_op_counts

__all__ = ["LayerMapping", "map_layer", "PrecisionFactors", "precision_factors", "ScaleSimMemory",
           "scalesim_memory", "vector_op_counts"]
