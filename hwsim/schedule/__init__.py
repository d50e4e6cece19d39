"""Where each tensor lives over its lifetime: on chip when it fits (``timing.reuse: inter_layer``, ``fused``),
else in DRAM; an exact 0/1 placement over every step's capacity (:mod:`hwsim.schedule._place`)."""

from ._allocation import allocate_layers, auto_candidates
from ._multicore import split_key, split_workload
from ._place import Option, Placement, Reserve, place_tensors
from ._plan import TensorPlan, onchip_levels, schedule_tensors

__all__ = ["allocate_layers", "auto_candidates", "Option", "Placement", "Reserve", "TensorPlan",
           "onchip_levels", "place_tensors", "schedule_tensors", "split_key", "split_workload"]
