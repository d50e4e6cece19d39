"""The event model: an in-order DMA engine over DRAM and the array, as SimPy processes or an equal fast
recurrence; the chip-level model of several cores sharing the DRAM channel and the network links."""

from ._chip import (
    ARRAY_UNIT,
    MAX_PASSES,
    NUMBA_TASKS,
    VECTOR_UNIT,
    ChipNode,
    ChipSchedule,
    chip_schedule,
    chip_tasks,
    warm_up_chip,
)
from ._event import LayerTiming, dma_order, simulate_tiles, split_even
from ._graph import schedule_nodes
from ._recurrence import use_numba, warm_up
from ._tasks import schedule_tasks

__all__ = ["LayerTiming", "dma_order", "simulate_tiles", "split_even", "use_numba", "warm_up",
           "schedule_nodes", "schedule_tasks", "ChipNode", "ChipSchedule", "chip_schedule", "chip_tasks",
           "warm_up_chip", "ARRAY_UNIT", "VECTOR_UNIT", "NUMBA_TASKS", "MAX_PASSES"]
