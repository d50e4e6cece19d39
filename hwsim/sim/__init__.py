"""The event model: an in-order DMA engine over DRAM and the array, as SimPy processes or an equal fast
recurrence."""

from ._event import LayerTiming, dma_order, simulate_tiles, split_even
from ._graph import schedule_nodes
from ._recurrence import use_numba, warm_up

__all__ = ["LayerTiming", "dma_order", "simulate_tiles", "split_even", "use_numba", "warm_up",
           "schedule_nodes"]
