"""The SimPy event model: DRAM as a shared resource, DMA reader/writer and array processes, stalls."""

from ._event import LayerTiming, simulate_tiles, split_even

__all__ = ["LayerTiming", "simulate_tiles", "split_even"]
