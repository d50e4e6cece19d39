"""hwsim: co-design of quantized neural networks and the systolic-array accelerators that run them.

The public API (``docs/api.md``)::

    import hwsim
    arch = hwsim.load_arch("arch/edge_32x32.yaml")
    sim = hwsim.simulate(arch, hwsim.load_workload("workloads/resnet18.yaml"), weight_bits=4, act_bits=8)
    sim.layers          # pandas DataFrame, one row per layer, units in the column names
    sim.to_dir("results/r18")

The integer side is under :mod:`hwsim.quant` (quantizers, calibration, PTQ) and :mod:`hwsim.datapath`
(bit-accurate kernels); the specs under :mod:`hwsim.spec`.
"""

__version__ = "0.1.0"

from ._api import (  # noqa: E402
    Simulation,
    SweepOutcome,
    Verification,
    load_arch,
    load_workload,
    simulate,
    sweep,
    verify,
)

__all__ = ["__version__", "load_arch", "load_workload", "simulate", "Simulation", "sweep", "SweepOutcome",
           "verify", "Verification"]
