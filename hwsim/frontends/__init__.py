"""Importers: other tools' inputs as hwsim specs.

* SCALE-Sim 3.0.0 (:mod:`hwsim.frontends._scalesim`): topology CSVs (conv and GEMM form) as a
  :class:`~hwsim.spec.Workload`, ``.cfg`` files as an :class:`~hwsim.spec.ArchSpec`, and arch YAML output.
* ZigZag 3.9.1 accelerator YAML (:mod:`hwsim.frontends._zigzag`) as an :class:`~hwsim.spec.ArchSpec`.
* ONNX graphs, float, QDQ or QOperator (:mod:`hwsim.frontends._onnx`): GEMM layer shapes and the non-GEMM
  nodes (needs ``onnx``, imported on first use).
"""

from ._onnx import read_onnx_shapes
from ._scalesim import (
    arch_from_scalesim_cfg,
    read_scalesim_cfg,
    read_topology_csv,
    scalesim_conv_padding,
    write_arch_yaml,
)
from ._zigzag import arch_from_zigzag, is_zigzag_hardware

__all__ = [
    "arch_from_scalesim_cfg",
    "arch_from_zigzag",
    "is_zigzag_hardware",
    "read_onnx_shapes",
    "read_scalesim_cfg",
    "read_topology_csv",
    "scalesim_conv_padding",
    "write_arch_yaml",
]
