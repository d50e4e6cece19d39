"""Golden vectors and the reference RTL array: what an RTL team verifies its systolic array against.

* :func:`write_vectors` (``hwsim vectors``): per layer and fold, the stationary operand per PE, the skewed
  edge streams per cycle, the expected outputs with the cycle each leaves the array, the final ofmap codes;
  ``$readmemh`` hex files, ``manifest.json`` and npz (``docs/rtl.md``).
* ``systolic_array.v``: a parameterised Verilog array (rows, cols, os/ws/is, operand and accumulator bits,
  wrap or saturate), the machine of :func:`hwsim.datapath.systolic_gemm`; :func:`run_cosim` drives it from
  the vectors with cocotb on Icarus Verilog.
* :func:`area_study`: Yosys cell counts of one PE per operand width and of a Bit Fusion PE against the
  technology table's area (``docs/validation_area.md``).
"""

from ._area import area_study, synth_cells
from ._cosim import RTL_SOURCE, TOPLEVEL, missing_tools, run_cosim
from ._onnx import GEMM_OPS, dump_vectors, onnx_operands
from ._vectors import (
    DEFAULT_MAX_BYTES,
    VECTOR_FORMAT,
    LayerOperands,
    check_rtl_arch,
    conv_operands,
    hex_bytes,
    layer_vectors,
    random_operands,
    rtl_parameters,
    write_layer_vectors,
    write_vectors,
)

__all__ = [
    # _vectors
    "write_vectors", "write_layer_vectors", "layer_vectors", "random_operands", "conv_operands",
    "LayerOperands",
    "rtl_parameters", "check_rtl_arch", "VECTOR_FORMAT", "hex_bytes", "DEFAULT_MAX_BYTES",
    # _onnx
    "onnx_operands", "dump_vectors", "GEMM_OPS",
    # _cosim
    "run_cosim", "missing_tools", "RTL_SOURCE", "TOPLEVEL",
    # _area
    "synth_cells", "area_study",
]
