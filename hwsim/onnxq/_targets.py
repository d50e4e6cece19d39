"""CPU targets: which integer arithmetic onnxruntime's CPU kernels perform on which machine.

onnxruntime's MLAS picks its quantized GEMM kernels at start-up from the CPU's features
(``onnxruntime/core/mlas/lib/platform.cpp``, ``MLAS_PLATFORM::MLAS_PLATFORM``). For the u8 x s8 kernels two
arithmetics result:

* **int16 pairs** (``vpmaddubsw``): AVX2 without VNNI (``MlasGemmU8S8KernelAvx2``,
  ``x86_64/QgemmU8S8KernelAvx2.S``; ``MlasGemvU8S8KernelAvx2``; ``MlasConvSymDispatchAvx2``) and AVX-512
  (BW/DQ/VL) without VNNI (``MlasGemmU8S8KernelAvx512Core``). Each pair of adjacent products along the packed
  K dimension is summed with int16 saturation.
* **exact**: AVX512-VNNI and AVX-VNNI (``vpdpbusd``: four products added into int32 without saturation),
  ARM64 (``udot``/``sdot``/``ummla`` or widening NEON), and the paths that widen to int16 first
  (``MlasGemmU8U8KernelAvx2``, ``vpmaddwd``), the depthwise kernels and the portable C++ kernel.

A *target* names one such machine. ``host`` is this machine: its flags (``/proc/cpuinfo``, else LLVM's host
features) say which target it is, and a one-node probe model run on onnxruntime confirms the arithmetic
(:func:`probe_onnxruntime`). Which ops use which kernel on a pair-saturating target is decided by
:func:`ort_int16_pairs` (sources in ``docs/verification.md``, "Targets").
"""

from __future__ import annotations

import functools
import platform
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Target", "TARGETS", "HostInfo", "host_info", "resolve_target", "probe_onnxruntime",
           "ort_int16_pairs", "PROBE_EXACT", "PROBE_PAIRS16"]


@dataclass(frozen=True)
class Target:
    """A machine whose onnxruntime integer kernels hwsim reproduces.

    ``u8s8_int16_pairs``: its u8 x s8 GEMM kernels saturate int16 pair sums (``vpmaddubsw``), else they are
    exact. ``note``: what else is known about the target's kernels. ``add_kernel``: which MLAS QLinearAdd
    kernel runs (``"avx2"``: ``intrinsics/avx2/qladd_avx2.cpp``, set by ``platform.cpp`` on every x86 host
    with AVX2 and FMA; ``"sse2"``: the SSE2 ``MlasQLinearAddKernelHelper`` of ``qladd.cpp``, the default
    ``QLinearAddS8Kernel``/``U8Kernel`` of an x86-64 host without AVX2; ``"neon"``: the fixed-point NEON
    helper of ``qladd.cpp``). ``mul_kernel``: which ``qlmul.cpp`` path runs QLinearMul (``"sse2"`` on every
    x86-64 host, ``"neon"`` on ARM64).
    """

    name: str
    description: str
    u8s8_int16_pairs: bool
    note: str = ""
    add_kernel: str = "avx2"
    mul_kernel: str = "sse2"


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("x86-avx2", "x86-64 with AVX2, no VNNI (e.g. AMD Zen 1-3, Intel Haswell to Coffee Lake)", True,
           "MlasGemmU8S8KernelAvx2 / MlasGemvU8S8KernelAvx2 / MlasConvSymKernelAvx2 (vpmaddubsw); recorded "
           "on such a host: tests/data/ort_avx2"),
    Target("x86-avx512-core", "x86-64 with AVX-512 BW/DQ/VL, no VNNI (e.g. Intel Skylake-SP)", True,
           "MlasGemmU8S8KernelAvx512Core (vpmaddubsw on zmm; the same AVX2 packing, so the same pairs); from "
           "the "
           "source only, not recorded on such a host"),
    Target("x86-avx512-vnni", "x86-64 with AVX512-VNNI (e.g. AMD Zen 4, Intel Cascade Lake and later)", False,
           "MlasGemmU8S8KernelAvx512Vnni (vpdpbusd, exact)"),
    Target("x86-avx-vnni", "x86-64 with AVX-VNNI, no AVX-512 (e.g. Intel Alder Lake)", False,
           "MlasGemmU8S8KernelAvxVnni (vpdpbusd on ymm, exact)"),
    Target("x86-sse", "x86-64 without AVX2", False,
           "MlasGemmU8X8DispatchSse (operands widened to int16, pmaddwd: exact); QLinearAdd: the SSE2 helper "
           "of qladd.cpp (separately rounded float32)", add_kernel="sse2"),
    Target("arm64", "AArch64 (NEON, dot product, i8mm)", False,
           "MlasGemmU8X8DispatchUdot / Neon / Ummla (exact integer GEMMs); QLinearAdd: the fixed-point NEON "
           "helper of qladd.cpp (float fallback outside its scale range), QLinearMul: qlmul.cpp's NEON path "
           "(one fmla); from the source and the Linux aarch64 wheel's machine code, not run on such a host; "
           "the int8 QDQ fusion is not modelled",
           add_kernel="neon", mul_kernel="neon"),
)}

#: The probe's MatMulInteger output (a = [[255, 255]], a_zero_point = 144, b = [[113], [113]]):
#: exact ``(255 - 144) * 113 * 2 = 25,086``; with int16 pairs ``sat16(255 * 113 * 2 = 57,630) = 32,767``,
#: minus the zero-point correction ``144 * (113 + 113) = 32,544``, gives ``223``.
PROBE_EXACT = 25086
PROBE_PAIRS16 = 223

_FLAG_RE = re.compile(r"\b(avx512\w*|avx_vnni\w*|avx2|amx\w*|fma|sse4_2|asimd\w*|sve\w*|i8mm)\b")


@dataclass(frozen=True)
class HostInfo:
    """This machine: the target its flags name, the flags, and what the onnxruntime probe returned."""

    target: str
    flags: tuple[str, ...]
    machine: str
    probe: int | None
    probe_note: str = ""

    @property
    def int16_pairs(self) -> bool:
        """The arithmetic onnxruntime was seen to use here (the probe), else the one the flags imply."""
        if self.probe is not None:
            return self.probe == PROBE_PAIRS16
        return TARGETS[self.target].u8s8_int16_pairs


def _cpu_flags() -> tuple[tuple[str, ...], str]:
    machine = platform.machine().lower()
    p = Path("/proc/cpuinfo")
    text = ""
    if p.is_file():
        try:
            text = p.read_text(errors="replace")
        except OSError:
            text = ""
    flags = set()
    for line in text.splitlines():
        if line.lower().startswith(("flags", "features")):
            flags.update(_FLAG_RE.findall(line.split(":", 1)[-1]))
    if not flags:
        try:  # LLVM's view of the host (macOS, or a /proc without flags)
            import llvmlite.binding as llvm

            feats = llvm.get_host_cpu_features()
            names = {"avx512vnni": "avx512_vnni", "avxvnni": "avx_vnni", "avx512bw": "avx512bw",
                     "avx512f": "avx512f", "avx2": "avx2", "fma": "fma", "neon": "asimd",
                     "dotprod": "asimddp"}
            flags.update(v for k, v in names.items() if feats.get(k))
        except Exception:  # pragma: no cover - llvmlite without feature detection
            pass
    return tuple(sorted(flags)), machine


def _target_from_flags(flags: tuple[str, ...], machine: str) -> str:
    f = set(flags)
    if machine in ("aarch64", "arm64"):
        return "arm64"
    if "avx512_vnni" in f and "avx512bw" in f:
        return "x86-avx512-vnni"
    if "avx_vnni" in f:
        return "x86-avx-vnni"
    if "avx512bw" in f:
        return "x86-avx512-core"
    if "avx2" in f:
        return "x86-avx2"
    return "x86-sse"


def probe_onnxruntime() -> int:
    """Run the one-node probe (a ``MatMulInteger``, see :data:`PROBE_EXACT`) on onnxruntime's CPU provider and
    return its int32 output: 25,086 where the u8 x s8 kernel is exact, 223 where it saturates int16 pairs."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    node = helper.make_node("MatMulInteger", ["a", "b", "az"], ["y"])
    a_info = helper.make_tensor_value_info("a", TensorProto.UINT8, [1, 2])
    g = helper.make_graph([node], "hwsim_probe", [a_info],
                          [helper.make_tensor_value_info("y", TensorProto.INT32, [1, 1])],
                          [numpy_helper.from_array(np.array([[113], [113]], np.int8), "b"),
                           numpy_helper.from_array(np.array(144, np.uint8), "az")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return int(s.run(None, {"a": np.array([[255, 255]], np.uint8)})[0].reshape(-1)[0])


@functools.lru_cache(maxsize=1)
def host_info() -> HostInfo:
    """This machine's target (from its flags) and the onnxruntime probe's output (cached)."""
    flags, machine = _cpu_flags()
    target = _target_from_flags(flags, machine)
    try:
        probe = probe_onnxruntime()
        note = ""
        if probe not in (PROBE_EXACT, PROBE_PAIRS16):
            note = (f"the onnxruntime probe returned {probe}, neither {PROBE_EXACT} (exact) nor "
                    f"{PROBE_PAIRS16}")
            probe = None
        elif (probe == PROBE_PAIRS16) != TARGETS[target].u8s8_int16_pairs:
            note = (f"the CPU flags name {target}, but onnxruntime's probe returned {probe} "
                    f"({'int16 pairs' if probe == PROBE_PAIRS16 else 'exact'}): the probe is followed")
            # an exact probe on a CPU whose flags name AVX2 or AVX-512 without VNNI (a VM hiding the VNNI
            # flag): a VNNI kernel ran, and the AVX2 QLinearAdd kernel with it, not the SSE2 one
            if probe == PROBE_PAIRS16:
                target = "x86-avx2"
            elif "avx2" in flags:
                target = "x86-avx512-vnni" if "avx512bw" in flags else "x86-avx-vnni"
            else:
                target = "x86-sse"
    except Exception as e:  # pragma: no cover - onnxruntime missing or broken
        probe, note = None, f"the onnxruntime probe did not run ({type(e).__name__}: {e})"
    return HostInfo(target=target, flags=flags, machine=machine, probe=probe, probe_note=note)


def resolve_target(name: str) -> Target:
    """The :class:`Target` called ``name`` (``"host"``: this machine's).

    Raises ``KeyError`` for another name."""
    if name == "host":
        return TARGETS[host_info().target]
    return TARGETS[name]


def ort_int16_pairs(target: str | Target, op: str, a_dtype, w_dtype, *, depthwise: bool = False) -> bool:
    """True when onnxruntime on ``target`` computes this GEMM-like node with int16 pair sums.

    Only u8 activations x s8 weights on a pair-saturating target, and only the kernels built on the u8 x s8
    QGEMM or ConvSym: ``QLinearConv`` (im2col + ``MlasGemm``, or ``MlasConvSym``; pairs along the NHWC
    reduction), ``QLinearMatMul``, ``QGemm``, ``MatMulInteger`` (pairs along K). Not: a depthwise
    ``QLinearConv`` (one input and one output channel per group: ``MlasConvDepthwise``, or
    ``MlasConvSymDepthwiseKernelAvx2``, both exact), ``ConvInteger`` (the weights are GEMM operand A,
    ``conv_integer.cc``), u8 x u8 (``MlasGemmU8U8KernelAvx2`` widens to int16: exact), s8 activations
    (left on the portable kernel on AVX2: exact).
    """
    t = TARGETS[target] if isinstance(target, str) else target
    if not t.u8s8_int16_pairs or op == "ConvInteger" or depthwise:
        return False
    return np.dtype(a_dtype) == np.uint8 and np.dtype(w_dtype) == np.int8
