"""Importers: other tools' inputs as hwsim specs.

* SCALE-Sim 3.0.0 (:mod:`hwsim.frontends._scalesim`): topology CSVs (conv and GEMM form) as a
  :class:`~hwsim.spec.Workload`, ``.cfg`` files as an :class:`~hwsim.spec.ArchSpec`, and arch YAML output.
* ZigZag 3.9.1 accelerator YAML (:mod:`hwsim.frontends._zigzag`) as an :class:`~hwsim.spec.ArchSpec`.
* ONNX graphs, float, QDQ or QOperator (:mod:`hwsim.frontends._onnx`): GEMM layer shapes and the non-GEMM
  nodes (needs ``onnx``, imported on first use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:  # the lazy names, for type checkers
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

#: name -> the module that defines it (the names of ``__all__``, imported on first use: PEP 562; probing an
#: arch file for ZigZag's format needs no ONNX or SCALE-Sim reader)
_WHERE = {"read_onnx_shapes": "_onnx", "arch_from_scalesim_cfg": "_scalesim",
          "read_scalesim_cfg": "_scalesim", "read_topology_csv": "_scalesim",
          "scalesim_conv_padding": "_scalesim", "write_arch_yaml": "_scalesim",
          "arch_from_zigzag": "_zigzag", "is_zigzag_hardware": "_zigzag"}


__getattr__, __dir__ = lazy_names(__name__, _WHERE, __all__)
