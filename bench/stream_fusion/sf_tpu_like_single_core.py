"""Stream 0.0.8 input: one TPU-like core (stream/inputs/examples/hardware/cores/TPU_like.py, the core of
Stream's TPU_like_quad_core example) with Stream's off-chip DRAM core (cores/offchip.py), joined by a 1x1
mesh (nocs/mesh_2d.py, 64-bit links, link energy 0 as in Stream's examples). Runs only in Stream's venv."""
from stream.classes.hardware.architecture.accelerator import Accelerator
from stream.inputs.examples.hardware.cores.offchip import get_offchip_core
from stream.inputs.examples.hardware.cores.TPU_like import get_core as get_tpu_core
from stream.inputs.examples.hardware.nocs.mesh_2d import get_2d_mesh

cores = [get_tpu_core(0)]
offchip_core = get_offchip_core(id=1)
cores_graph = get_2d_mesh(cores, 1, 1, 64, 0, offchip_core=offchip_core)
accelerator = Accelerator("TPU-like-single-core", cores_graph, offchip_core_id=1)
