"""``hwsim verify``: a quantized ONNX model on hwsim's integer datapath against onnxruntime, tensor by tensor.

Every integer tensor that a node of the model produces is compared element by element (the count ``N`` of
differing elements out of ``M`` compared ones is the verdict; ``N = 0`` passes). For each differing tensor
the report adds its first differing element and a *local* count: the same node re-run on onnxruntime's
values of its inputs, so that a node whose own semantics differ is told apart from one that only receives a
difference from upstream. With an arch (``pe.acc_bits``, ``pe.acc_mode``, ``pe.mult_bits``) or another
requantization profile, the datapath runs under that hardware and the report gives, per GEMM-like node,
accumulator overflow events, wrapped multiplier operands, the reduction length and the static accumulator
bound ``b_a + b_w + ceil(log2 K)`` (a warning when it exceeds the accumulator).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx

from ..errors import Found, SpecError, api_source, input_file
from ._config import DatapathConfig
from ._graph import INT_TYPES, QGraph, duplicate_quantize_nodes, load_model, lower_qdq, rewrite_s8_to_u8
from ._ops import reduction_bound_bits
from ._ops_float import compare_float, within_tolerance
from ._reference import run_onnxruntime
from ._run import check_supported, execute
from ._targets import TARGETS, host_info, resolve_target

__all__ = ["VerifyReport", "verify", "random_inputs", "load_inputs", "load_expected", "config_from_arch"]

#: The relative end-to-end difference (max |diff| / max |output|) between hwsim's free-running float outputs
#: and onnxruntime's default session above which verify warns: far above float32 rounding accumulated over a
#: network (~1e-6), below one code of an 8-bit output quantizer over its range (1/255 = 3.9e-3).
DEFAULT_SESSION_WARN_REL = 1e-3

#: The relative difference (max |diff| / max |output|) of a default-session output computed through QDQ groups
#: onnxruntime keeps in float32 above which verify warns (the output is not counted either way): last-bit
#: float differences that move codes and grow reached 0.06 on MobileNetV2 (int8-activation QDQ, a trial).
FLOAT_GROUPS_WARN_REL = 0.2

_GEMM_OPS = ("QLinearConv", "QLinearMatMul", "QGemm", "ConvInteger", "MatMulInteger")


@dataclass
class VerifyReport:
    """The outcome of :func:`verify`: ``mismatches`` of ``elements`` compared, the JSON-ready ``data`` and
    the printable ``lines``."""

    mismatches: int
    elements: int
    data: dict
    lines: list[str] = field(default_factory=list)
    #: with a datapath other than onnxruntime's (``--arch``, a profile...) on a host whose onnxruntime
    #: saturates int16 pair sums: the mismatches the datapath causes (against onnxruntime's exact integer
    #: arithmetic); None: every mismatch counts
    datapath_mismatches: int | None = None

    @property
    def passed(self) -> bool:
        """No mismatch caused by the datapath under test (:attr:`datapath_mismatches` when set)."""
        if self.datapath_mismatches is not None:
            return self.datapath_mismatches == 0
        return self.mismatches == 0


def _np_dtype(t: int) -> np.dtype:
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t))


def random_inputs(g: QGraph, seed: int) -> dict[str, np.ndarray]:
    """Seeded random values for every graph input.

    A float input that feeds a QuantizeLinear with constant scalar scale ``s`` and zero point ``z`` is drawn
    uniformly from the quantizer's real range ``[(qmin - z) s, (qmax - z) s]`` widened by 10 % (so both
    saturation ends occur); another float input from a standard normal; an integer input uniformly over its
    type. Unknown (symbolic) dimensions are 1.
    """
    rng = np.random.default_rng(seed)
    feeds = {}
    for name in g.inputs:
        shape = tuple(d if d else 1 for d in (g.shapes.get(name) or ()))
        t = g.types.get(name)
        dt = _np_dtype(t)
        if dt.kind == "f":
            lo, hi = None, None
            for ci in g.consumers.get(name, []):
                c = g.nodes[ci]
                if c.op_type == "QuantizeLinear" and c.input[0] == name:
                    s = g.inits.get(c.input[1])
                    z = g.inits.get(c.input[2]) if len(c.input) > 2 and c.input[2] else np.zeros((), np.uint8)
                    if s is not None and s.size == 1 and z is not None and z.size == 1:
                        info = np.iinfo(z.dtype)
                        zz = int(z.reshape(-1)[0])
                        lo = float(s.reshape(-1)[0]) * (info.min - zz)
                        hi = float(s.reshape(-1)[0]) * (info.max - zz)
                    break
            if lo is None:
                feeds[name] = rng.standard_normal(shape).astype(dt)
            else:
                pad = 0.1 * (hi - lo)
                feeds[name] = rng.uniform(lo - pad, hi + pad, shape).astype(dt)
        elif dt.kind in "iu":
            info = np.iinfo(dt)
            feeds[name] = rng.integers(max(info.min, -(1 << 15)), min(info.max, 1 << 15) + 1,
                                       shape).astype(dt)
        else:
            raise SpecError(g.path, f"input {name!r}", "a float or integer input", Found(f"type {dt}"))
    return feeds


def _open_npz(path, what: str):
    """``(path, NpzFile)`` of an ``.npz`` of ``what`` (inputs, recorded outputs); a missing file, a directory,
    a file that is not a zip archive (``np.load`` would try pickle and call it "pickled data") or an
    unreadable archive is a :class:`SpecError` naming the file."""
    import zipfile

    p = Path(input_file(path, f"an existing .npz file of {what}"))
    if not zipfile.is_zipfile(p):
        raise SpecError(str(p), "", f"an .npz file of {what} (a zip archive of .npy arrays, numpy.savez)",
                        Found(f"a file that is not a zip archive (starts with {p.read_bytes()[:8]!r})"))
    try:
        return p, np.load(p, allow_pickle=False)
    except Exception as e:
        raise SpecError(str(p), "", f"an .npz file of {what}",
                        Found(f"{type(e).__name__}: {str(e)[:160]}")) from None


def _keys_found(keys) -> Found:
    """What an ``.npz`` lacking a wanted key holds instead: its keys (at most 8)."""
    ks = list(keys)
    if not ks:
        return Found("no arrays")
    more = f", ... ({len(ks)} in all)" if len(ks) > 8 else ""
    return Found(f"keys {', '.join(repr(k) for k in ks[:8])}{more}")


def load_inputs(path, g: QGraph) -> dict[str, np.ndarray]:
    """Inputs from an ``.npz`` with one array per graph input, each of the input's dtype (as onnxruntime,
    which refuses another dtype: a float64 array for a float32 input is not narrowed) and, if float, finite.

    Raises
    ------
    SpecError
        Missing file or input, an unknown key, a dtype/shape that contradicts the graph, NaN or inf values
        (names the key).
    """
    p, z = _open_npz(path, "inputs")
    feeds = {}
    with z:
        for k in z.files:
            if k not in g.inputs:
                raise SpecError(str(p), k, f"one of the model's inputs {g.inputs}", Found(f"key {k!r}"))
        for name in g.inputs:
            if name not in z.files:
                raise SpecError(str(p), name, "an array for every model input", _keys_found(z.files))
            try:
                a = np.asarray(z[name])
            except Exception as e:  # a truncated archive or array, an object array (pickle)
                raise SpecError(str(p), name, "a readable .npy array", Found(f"{type(e).__name__}: "
                                                                              f"{str(e)[:160]}")) from None
            want = _np_dtype(g.types[name])
            if a.dtype != want:  # onnxruntime refuses it too (INVALID_ARGUMENT: Unexpected input data type)
                raise SpecError(str(p), name, f"{want} (the model's input {name!r})", Found(str(a.dtype)))
            if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
                # onnxruntime runs them, but QuantizeLinear of NaN/inf has no defined code (numpy's cast
                # warns and hwsim's codes would differ from onnxruntime's for no fault of either)
                nan, inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
                what = ", ".join(f"{c} {w}" for c, w in ((nan, "NaN"), (inf, "inf")) if c)
                raise SpecError(str(p), name, "finite values", Found(what))
            shape = g.shapes.get(name)
            if shape is not None and (len(shape) != a.ndim
                                      or any(d and d != s for d, s in zip(shape, a.shape, strict=False))):
                raise SpecError(str(p), name, f"shape {tuple(d if d else '?' for d in shape)}",
                                Found(f"shape {a.shape}"))
            feeds[name] = a
    return feeds


def config_from_arch(path, *, profile: str = "ort_cpu") -> DatapathConfig:
    """The datapath of an arch YAML: ``pe.acc_bits``, ``pe.acc_mode`` and (if the spec has it)
    ``pe.mult_bits``."""
    from ..spec import load_arch

    arch = load_arch(path)
    pe = arch.pe
    return DatapathConfig(acc_bits=int(pe.acc_bits), acc_mode=str(pe.acc_mode),
                          mult_bits=getattr(pe, "mult_bits", None), profile=profile,
                          operand_bits=int(pe.operand_bits))


def _integer_tensors(g: QGraph, values: dict[str, np.ndarray]) -> list[str]:
    """Node outputs of integer type (the type from shape inference, else from hwsim's value: contrib ops such
    as QGemm have no ONNX shape inference)."""
    names = []
    for n in g.nodes:
        for o in n.output:
            if not o:
                continue
            t = g.types.get(o)
            if t in INT_TYPES or (not t and o in values and values[o].dtype.kind in "iu"):
                names.append(o)
    return names


def _duplicate_outputs(g: QGraph) -> dict[str, str]:
    """``{output: first output}`` of the repeated QuantizeLinear nodes onnxruntime merges
    (:func:`hwsim.onnxq._graph.duplicate_quantize_nodes`, the ``DedicatedQDQPair`` pairs). Requested as
    outputs of the instrumented session, even one of them kept the QDQ groups around them unfused, in
    float32 (a trial's MobileNetV2: 77,517 mismatches against a session that was not the default one), so
    :func:`verify` requests none of them."""
    return {g.nodes[i].output[0]: g.nodes[j].output[0] for i, j in duplicate_quantize_nodes(g).items()}


def _first_diff(a: np.ndarray, b: np.ndarray, diff: np.ndarray | None = None) -> dict:
    diff = (a != b) if diff is None else diff
    # argmax of the flat mask finds the first True without listing every differing index (np.argwhere did)
    t = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff.reshape(-1))), diff.shape))
    return {"index": list(t), "hwsim": int(a[t]), "onnxruntime": int(b[t])}


def _differing_nodes(names, run, ort_vals) -> set[str]:
    """Producers of the compared tensors whose values differ from onnxruntime's (shape or elements)."""
    out = set()
    for nm in names:
        if nm in ort_vals:
            h, o = run.values[nm], np.asarray(ort_vals[nm])
            if h.shape != o.shape or not np.array_equal(h, o):
                out.add(run.producer[nm])
    return out


def _bits_needed(v: int) -> int:
    return int(v).bit_length() + 1 if v else 1


def load_expected(path, g: QGraph, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Recorded reference tensors from an ``.npz``: one array per graph output (by name), optionally more
    tensors of the model (by name).

    ``values`` are hwsim's tensors of the same run: each recorded array must have the dtype and shape of the
    tensor hwsim computed under that name.

    Raises
    ------
    SpecError
        Missing or unreadable file, a graph output missing, a key that names no tensor of the model, a
        dtype or shape that differs (each names the file and the tensor).
    """
    p, z = _open_npz(path, "recorded outputs")
    rec = {}
    with z:
        for name in g.outputs:
            if name not in z.files:
                raise SpecError(str(p), name, f"an array for every model output ({', '.join(g.outputs)})",
                                _keys_found(z.files))
        for k in z.files:
            if k not in values:
                raise SpecError(str(p), k, "the name of a model output or tensor", Found(f"key {k!r}"))
            a, h = np.asarray(z[k]), values[k]
            if a.dtype != h.dtype:
                raise SpecError(str(p), k, f"dtype {h.dtype} (as the model computes it)",
                                Found(f"dtype {a.dtype}"))
            if a.shape != h.shape:
                raise SpecError(str(p), k, f"shape {h.shape} (as the model computes it)",
                                Found(f"shape {a.shape}"))
            rec[k] = a
    return rec


def _target_record(tgt, host) -> dict:
    return {"name": tgt.name, "description": tgt.description, "u8s8_int16_pairs": tgt.u8s8_int16_pairs,
            "note": tgt.note, "host": {"target": host.target, "cpu_flags": list(host.flags),
                                       "machine": host.machine,
                                       "onnxruntime_probe": host.probe, "probe_note": host.probe_note}}


def _verify_recorded(model, g0, g, feeds, run, ref_run, cfg, tgt, host, expected, inputs, seed, out, arch,
                     exact_run=None):
    """:func:`verify` against tensors recorded by onnxruntime on ``tgt`` (no onnxruntime run here): ``run`` is
    hwsim's model of a default session (int8 QDQ groups as that session runs them on x86); ``exact_run`` the
    same graph under onnxruntime's exact integer arithmetic (a datapath other than onnxruntime's on a
    pair-saturating target: the mismatches are attributed)."""
    import onnxruntime

    from .. import __version__

    rec = load_expected(expected, g0, run.values)
    # the QDQ groups onnxruntime's x86 optimizer keeps in float32 run on MLAS's float kernels, whose rounding
    # hwsim does not reproduce: a recorded output after them may differ by codes that grew from a last-bit
    # difference. Still counted (a recording has no integer tensor to fall back on: not counting would pass
    # a model on nothing), and said so
    drift = sorted(g.ort_x86_float) if tgt.name != "arm64" else []
    tol_nodes = sorted({str(run.producer.get(t, t)) for t in run.tolerance})
    tensors, total, bad = [], 0, 0
    for nm, o in rec.items():
        h = run.values[nm]
        if h.dtype.kind == "f" and run.tolerance:  # float ops of onnxruntime's own: within the tolerance
            diff = ~within_tolerance(h, o) if h.shape == o.shape else np.ones(o.shape, bool)
        else:
            diff = h != o if h.dtype.kind == "f" else h.astype(np.int64) != o.astype(np.int64)
        nbad = int(np.count_nonzero(diff))
        entry = {"name": nm, "node": run.producer.get(nm), "op": run.op.get(nm), "dtype": str(o.dtype),
                 "shape": list(o.shape), "elements": int(o.size), "mismatches": nbad, "counted": True}
        if nbad and h.dtype.kind in "iu":
            entry["max_abs_diff"] = int(np.abs(h.astype(np.int64) - o.astype(np.int64)).max())
            entry["first_mismatch"] = _first_diff(h.astype(np.int64), o.astype(np.int64))
            entry["first_mismatch"]["recorded"] = entry["first_mismatch"].pop("onnxruntime")
        if not cfg.is_reference:
            entry["reference_datapath_mismatches"] = int(np.count_nonzero(ref_run.values[nm] != o))
        if exact_run is not None:
            _attribute(entry, diff, h, exact_run.values[nm],
                       tolerance=h.dtype.kind == "f" and bool(run.tolerance))
        total += int(o.size)
        bad += nbad
        tensors.append(entry)
    layers, warnings = _layer_rows(g, run, ref_run, cfg, exact_run, feeds, tgt.u8s8_int16_pairs)
    notes = list(g0.notes)
    if drift and bad:
        notes.append(f"the default session computes {len(drift)} QDQ group(s) of this model in float32 "
                     f"({', '.join(drift[:4])}{', ...' if len(drift) > 4 else ''}) on MLAS's kernels, whose "
                     "rounding hwsim does not reproduce: a last-bit difference that moves a code there can "
                     "grow through the later layers, so these mismatches may be the reference's, not the "
                     "datapath's. Verify the model live on that machine, where its integer tensors are "
                     "compared one by one and such outputs are reported, not counted")
    elif tol_nodes and bad:
        notes.append(f"{len(tol_nodes)} float op(s) of this model ({', '.join(tol_nodes[:4])}"
                     f"{', ...' if len(tol_nodes) > 4 else ''}) compute in float32 with onnxruntime's own "
                     "kernels, whose rounding hwsim reproduces only within a tolerance: a last-bit "
                     "difference that moves a code after them can grow through the later layers, so these "
                     "mismatches may be the reference's, not the datapath's. Verify the model live on that "
                     "machine, where the nodes after those ops run on onnxruntime's values of them and every "
                     "integer tensor is compared bit for bit")
    dp_bad = None if exact_run is None else sum(t["datapath_mismatches"] for t in tensors)
    if dp_bad is not None:
        notes.append(_attribution_note(cfg, arch, tgt, bad, dp_bad,
                                       sum(t["reference_pair_saturation_mismatches"] for t in tensors)))
    data = {
        "model": str(model), "hwsim_version": __version__, "onnxruntime_version": onnxruntime.__version__,
        "reference": f"recorded: {expected}", "target": _target_record(tgt, host),
        "session_options": None,
        "inputs": {"source": str(inputs) if inputs is not None else f"random, seed {seed}",
                   "shapes": {k: list(v.shape) for k, v in feeds.items()}},
        "datapath": {"acc_bits": cfg.acc_bits, "acc_mode": cfg.acc_mode, "mult_bits": cfg.mult_bits,
                     "zero_point_mode": cfg.zero_point_mode, "int16_pairs": cfg.int16_pairs,
                     "profile": cfg.profile, "rounding": cfg.rounding,
                     "arch": None if arch is None else str(arch), "onnxruntime_semantics": cfg.is_reference},
        "lowered": [{"node": k, "from": v} for k, v in g.lowered_from.items()],
        "mismatches": bad, "elements": total,
        "result": "pass" if (bad if dp_bad is None else dp_bad) == 0 else "fail",
        "tensors": tensors, "layers": layers, "warnings": warnings, "notes": notes,
        "datapath_mismatches": dp_bad, "reference_pair_saturation": exact_run is not None,
        "onnxruntime_x86_float_groups": g.ort_x86_float,
    }
    lines = [f"warning: {w}" for w in warnings]
    lines.append(f"target {tgt.name} (host {host.target}); reference: outputs recorded in {expected}")
    for t in tensors:
        if t["mismatches"]:
            why = ("" if dp_bad is None else f"; {t['datapath_mismatches']} from the datapath, "
                   f"{t['reference_pair_saturation_mismatches']} from onnxruntime's int16 pair saturation")
            lines.append(f"{t['name']} ({t['op']} {t['node']!r}): {t['mismatches']} of {t['elements']} "
                         f"differ from the recorded values{why}")
    lines += [f"note: {n}" for n in notes[len(g0.notes):]]
    lines.append(f"mismatches: {bad} of {total}" + ("" if dp_bad is None or dp_bad == bad else
                                                     f" ({dp_bad} caused by the datapath)"))
    if out is not None:
        od = Path(out)
        od.mkdir(parents=True, exist_ok=True)
        (od / "verify.json").write_text(json.dumps(data, indent=1) + "\n")
    return VerifyReport(mismatches=bad, elements=total, data=data, lines=lines, datapath_mismatches=dp_bad)


def _float_tensors(g: QGraph, run, skip: set[str]) -> list[str]:
    """Float tensors computed by the lowered graph's float nodes (DequantizeLinear outputs excluded: exposing
    them as graph outputs would stop onnxruntime from fusing their QDQ groups)."""
    out = []
    for n in g.nodes:
        if n.op_type == "DequantizeLinear" or n.op_type in _GEMM_OPS:
            continue
        for o in n.output:
            if o and o not in skip and o in run.values and run.values[o].dtype.kind == "f":
                out.append(o)
    return out


def _has_x86_u8(g0: QGraph) -> bool:
    """True when the model has int8 QuantizeLinear nodes (onnxruntime's default x86 session may rewrite
    them)."""
    return any(n.op_type == "QuantizeLinear" and g0.types.get(n.output[0]) == onnx.TensorProto.INT8
               for n in g0.nodes)


def _same_float(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise bit-for-bit equality of two float arrays (NaN equals NaN)."""
    return (a == b) | (np.isnan(a) & np.isnan(b))


def _attribute(entry: dict, diff: np.ndarray, h: np.ndarray, exact: np.ndarray, *, tolerance: bool = False
               ) -> None:
    """Split a tensor's mismatches (``diff``: hwsim's datapath against the reference): an element where the
    datapath also differs from onnxruntime's exact integer arithmetic (``exact``) is the datapath's own
    (``datapath_mismatches``), one where it equals it is the reference's int16 pair saturation
    (``reference_pair_saturation_mismatches``); the two add up to the mismatches."""
    if h.shape != exact.shape:
        own = diff
    elif h.dtype.kind == "f":
        own = diff & ~(within_tolerance(h, exact) if tolerance else _same_float(h, exact))
    else:
        own = diff & (h.astype(np.int64) != exact.astype(np.int64))
    entry["datapath_mismatches"] = int(np.count_nonzero(own))
    entry["reference_pair_saturation_mismatches"] = int(np.count_nonzero(diff)) - entry["datapath_mismatches"]


def _attribution_note(cfg: DatapathConfig, arch, tgt, bad: int, dp_bad: int, sat: int) -> str:
    """The note that splits a datapath's mismatches between the datapath and the reference's int16 pair
    saturation (docs/verification.md, "Hardware options")."""
    acc = f"{cfg.acc_bits}-bit {cfg.acc_mode} accumulator"
    name = f"the arch's {acc}" if arch is not None else f"{acc}, profile {cfg.profile}"
    pairs = "int16 pair sums" if cfg.int16_pairs else "exact products"
    return (f"the datapath is not onnxruntime's ({name}, {pairs}) and the reference onnxruntime (target "
            f"{tgt.name}) sums u8 x s8 product pairs with int16 saturation: of the {bad} mismatches, "
            f"{dp_bad} are the datapath's own (it differs from onnxruntime's exact integer arithmetic too: "
            f"the ONNX spec's, onnxruntime's on VNNI hosts), {sat} the reference's saturation (the datapath "
            "equals exact arithmetic there); the exit code counts the datapath's own")


def _layer_rows(g: QGraph, run, ref_run, cfg: DatapathConfig, exact_run=None, feeds=None,
                pairs: bool = False) -> tuple[list[dict], list[str]]:
    """Per GEMM-like node: reduction length, operand bits, the accumulator rule and what was observed.

    ``observed_bits`` is the largest sum's width: exact (``observed_bits_exact``) from ``exact_run`` when the
    caller has one, or, on a pair-saturating target (``pairs``), for the nodes whose bound exceeds the
    accumulator (those a warning names) from an exact run of those nodes on ``ref_run``'s inputs; otherwise
    ``ref_run``'s sums, which on such a target are the saturated ones (smaller).
    """
    layers, warnings = [], []
    if exact_run is None and pairs and feeds is not None:
        # the reference sums pairs with int16 saturation: the nodes whose bound exceeds the accumulator (the
        # ones a warning names) are run again with exact sums, on the same inputs
        over = [g.names[i] for i, n in enumerate(g.nodes) if n.op_type in _GEMM_OPS
                and run.stats[g.names[i]].k and reduction_bound_bits(
                    run.stats[g.names[i]].k, run.stats[g.names[i]].a_bits,
                    run.stats[g.names[i]].w_bits) > cfg.acc_bits]
        if over:
            from ._run import execute

            exact_run = execute(g, feeds, DatapathConfig(), inputs_from=ref_run.values, only=over)
    for i, n in enumerate(g.nodes):
        if n.op_type not in _GEMM_OPS:
            continue
        st = run.stats[g.names[i]]
        rule = reduction_bound_bits(st.k, st.a_bits, st.w_bits) if st.k else None
        exact_st, exact = ref_run.stats[g.names[i]], not pairs
        if exact_run is not None and exact_run.stats.get(g.names[i]) is not None:
            exact_st, exact = exact_run.stats[g.names[i]], True
        need = _bits_needed(exact_st.max_abs_acc) if exact_st.max_abs_acc is not None else None
        row = {"node": g.names[i], "op": n.op_type, "k": st.k, "a_bits": st.a_bits, "w_bits": st.w_bits,
               "rule_bits": rule, "observed_bits": need, "observed_bits_exact": exact,
               "acc_bits": cfg.acc_bits, "acc_mode": cfg.acc_mode, "acc_overflow": st.acc_overflow}
        if cfg.mult_bits is not None:
            row["mult_bits"] = cfg.mult_bits
            row["mult_overflow"] = st.mult_overflow
        if g.names[i] in g.lowered_from:
            row["lowered_from"] = g.lowered_from[g.names[i]]
        layers.append(row)
        if rule is not None and rule > cfg.acc_bits:
            warnings.append(f"node {g.names[i]!r}: b_a + b_w + ceil(log2 K) = {st.a_bits} + {st.w_bits} + "
                            f"{rule - st.a_bits - st.w_bits} = {rule} bits exceeds the {cfg.acc_bits}-bit "
                            f"accumulator (K = {st.k}); these inputs needed {need} bits")
        if cfg.operand_bits is not None and max(st.a_bits or 0, st.w_bits or 0) > cfg.operand_bits:
            warnings.append(f"node {g.names[i]!r}: {max(st.a_bits, st.w_bits)}-bit operands exceed the PE's "
                            f"native {cfg.operand_bits} bits (pe.operand_bits); the arithmetic is modelled "
                            f"as if "
                            f"they fit")
        if cfg.mult_bits is not None and st.mult_overflow:
            warnings.append(f"node {g.names[i]!r}: {st.mult_overflow} zero-shifted operands do not fit the "
                            f"{cfg.mult_bits}-bit multiplier")
    return layers, warnings


def _is_quantized_op(n) -> bool:
    op = n.op_type
    return (op.startswith(("QLinear", "Quantize", "Dequantize", "DynamicQuantize")) or op.endswith("Integer")
            or (n.domain == "com.microsoft" and op.startswith("Q")))


def _check_quantized(g0: QGraph) -> None:
    """A model with no quantized node (a float model): nothing for the integer datapath to verify."""
    if any(_is_quantized_op(n) for n in g0.nodes):
        return
    ops = sorted({n.op_type for n in g0.nodes})
    raise SpecError(g0.path, "", "a quantized ONNX model (QuantizeLinear/DequantizeLinear, QLinear*, "
                    "ConvInteger, MatMulInteger, DynamicQuantizeLinear nodes)",
                    Found(f"a float model ({len(g0.nodes)} nodes: {', '.join(ops[:6])}"
                          f"{', ...' if len(ops) > 6 else ''}): no quantized node to verify"),
                    detail="quantize it first, e.g. onnxruntime.quantization.quantize_static")


def verify(model, *, inputs=None, seed: int = 0, out=None, config: DatapathConfig | None = None,
           arch=None, target: str = "host", expected=None) -> VerifyReport:
    """Run ``model`` on hwsim's datapath and compare it with onnxruntime (live on this host, or outputs
    recorded on the target machine).

    Live (no ``expected``): every integer tensor is compared with onnxruntime run here; the target must be
    this host's. Recorded (``expected``): the graph outputs (and any further tensor the file names) are
    compared
    with the arrays in ``expected``, computed by onnxruntime on ``target``; any target can be verified on any
    host this way.

    Parameters
    ----------
    model : str or Path
        A quantized ONNX model (QOperator or QDQ form).
    inputs : str or Path, optional
        An ``.npz`` of inputs (:func:`load_inputs`); default: :func:`random_inputs` with ``seed``.
    seed : int, default 0
    out : str or Path, optional
        Folder for ``verify.json``.
    config : DatapathConfig, optional
        The datapath (default: onnxruntime's own semantics).
    arch : str or Path, optional
        Recorded in the report (the caller builds ``config`` from it with :func:`config_from_arch`).
    target : str, default "host"
        The machine whose onnxruntime kernels are reproduced: ``"host"`` or a name of :data:`TARGETS`.
    expected : str or Path, optional
        An ``.npz`` of recorded outputs, one array per graph output (by name), e.g. from a default
        onnxruntime session on the deployment machine (:func:`load_expected`). Required when ``target`` is not
        this host's.

    Returns
    -------
    VerifyReport

    Raises
    ------
    SpecError
        Bad model, inputs or an unsupported op (names the file and node or tensor); a float model (no
        quantized node: "no quantized node to verify"); an unknown target; a
        target other than the host's without ``expected``; an ``expected`` file without an output, or with a
        shape or dtype that differs (names the tensor).
    """
    host = host_info()
    if not isinstance(target, str) or (target != "host" and target not in TARGETS):
        raise SpecError(api_source("verify"), "target", f"one of host, {', '.join(TARGETS)}", target)
    tgt = resolve_target(target)
    if expected is None and tgt.name != host.target:
        raise SpecError(api_source("verify"), "target", f"this host's target ({host.target}) unless expected "
                        f"gives outputs recorded on {tgt.name}", target)
    cfg = replace(config or DatapathConfig(), target=tgt.name)
    g0 = load_model(model)
    g = lower_qdq(g0)
    check_supported(g)  # (an unsupported op is named first, even in a float model)
    _check_quantized(g0)
    feeds = load_inputs(inputs, g0) if inputs is not None else random_inputs(g0, seed)
    run = execute(g, feeds, cfg)
    ref_cfg = DatapathConfig(target=tgt.name)
    ref_run = run if cfg.is_reference else execute(g, feeds, ref_cfg)
    # what the user deploys: the unmodified model under a default session. hwsim runs it as that session
    # does on x86 (int8 groups rewritten to uint8, the groups it cannot rewrite in float32) and counts its
    # graph outputs; the instrumented tensors above come from the session.qdqisint8allowed=1 run
    def_run, def_why, def_graph = run, "", g
    if tgt.name != "arm64" and (g.ort_x86_float or _has_x86_u8(g0)):
        g_u8 = rewrite_s8_to_u8(g0)
        g_def = lower_qdq(g_u8, keep_float=g.ort_x86_float)
        if g.ort_x86_float or g_u8.types != g0.types:
            try:
                check_supported(g_def)
                def_run, def_graph = execute(g_def, feeds, cfg), g_def
            except SpecError as e:
                def_run, def_why = None, str(e)
    if expected is not None:
        if def_run is None:
            raise SpecError(str(model), "", "a model whose default onnxruntime session hwsim can run",
                            Found(def_why))
        exact_def = (execute(def_graph, feeds, DatapathConfig())
                     if not cfg.is_reference and tgt.u8s8_int16_pairs else None)
        return _verify_recorded(model, g0, g, feeds, def_run, ref_run, cfg, tgt, host, expected, inputs, seed,
                                out, arch, exact_def)
    names = [n for n in _integer_tensors(g0, run.values) if n in run.values]
    fnames = _float_tensors(g, run, set(names))
    types = dict(g0.types)
    for nm in names + fnames:
        if not types.get(nm):
            types[nm] = onnx.helper.np_dtype_to_tensor_dtype(run.values[nm].dtype)
    # repeated nodes (DedicatedQDQPair): not requested, so that onnxruntime merges and fuses them as the
    # default session does; the nodes that read them are compared
    dup = _duplicate_outputs(g0)
    hidden = {o for pair in dup.items() for o in pair if o not in g0.outputs}
    request = [o for o in names + [o for o in fnames + g0.outputs if o not in names] if o not in hidden]
    ort_vals, default_out, ort_notes = run_onnxruntime(g0.model, feeds, request, types, source=g0.path)
    if hidden:
        names = [o for o in names if o not in hidden]
        fnames = [o for o in fnames if o not in hidden]
        ort_notes.append(f"{len(hidden)} output(s) of repeated nodes ({', '.join(sorted(hidden)[:3])}"
                         f"{', ...' if len(hidden) > 3 else ''}) are not compared: requested as outputs, "
                         "they would keep onnxruntime from merging the repeats (common-subexpression "
                         "elimination) and fusing their QDQ groups as the default session does; the nodes "
                         "that read them are compared, and so the node(s) computing them ("
                         + ", ".join(sorted({str(run.producer.get(o)) for o in hidden})) + ") only through "
                         "their readers")
    notes = list(g.notes) + ort_notes
    if run.tolerance:  # run again with onnxruntime's values of the float ops compared within a tolerance
        free = run
        anchor = {k: v for k, v in ort_vals.items() if k in run.tolerance}
        run = execute(g, feeds, cfg, anchor=anchor)
        ref_run = run if cfg.is_reference else execute(g, feeds, ref_cfg, anchor=anchor)
        end = def_run if def_run is not None else free
        notes.append(f"{len(anchor)} float tensor(s) of ops whose float32 result depends on onnxruntime's "
                     "implementation (Softmax, LayerNormalization, Erf, MatMul, Conv, ReduceMean...) are "
                     "compared within a tolerance, and the nodes after them run on onnxruntime's values of "
                     f"them, so that the integer tensors downstream are compared bit for bit")
        float_free = {o: compare_float(end.values[o], np.asarray(default_out[o]), tolerance=True)
                      for o in g0.outputs if o in default_out and o in end.values
                      and end.values[o].dtype.kind == "f"}
        # end to end, the float ops' last-bit differences reach the outputs (and can move a dynamic
        # quantization code): those outputs are reported above, not counted
        def_run, def_why = None, ("its float ops run on onnxruntime's own kernels (fused Gelu, "
                                  "DynamicQuantizeMatMul...), compared per node above")
    else:
        float_free = {}
    # the datapath under test is the accelerator's (exact products); on a host whose onnxruntime sums u8 x s8
    # product pairs with int16 saturation, its differences from that onnxruntime are split between the
    # datapath and the reference: the datapath is compared also with onnxruntime's exact integer arithmetic
    # (the ONNX spec's, and onnxruntime's on VNNI hosts)
    exact_run = None
    if not cfg.is_reference and tgt.u8s8_int16_pairs:
        exact_run = execute(g, feeds, DatapathConfig(), anchor={k: v for k, v in ort_vals.items()
                                                                 if k in run.tolerance} or None)
    if g.ort_x86_float:
        notes.append(f"onnxruntime's default x86 optimizer leaves {len(g.ort_x86_float)} QDQ group(s) of "
                     f"this model in float32 ({', '.join(sorted(g.ort_x86_float))}: it rewrites int8 Q/DQ "
                     "pairs to uint8 only where it sees the pair whole); the tensors are compared with "
                     "onnxruntime's integer kernels (session.qdqisint8allowed=1), the final outputs with "
                     f"the default session, "
                     f"which hwsim runs with those groups in float32")
    if def_run is None and float_free:
        notes.append(f"the default session's outputs are compared end to end and not counted: {def_why}")
    elif def_run is None:
        notes.append(f"hwsim cannot run the default session's float groups ({def_why}); its outputs are not "
                     f"compared")
    default_equal, default_tensors, warnings_default = {}, [], []
    for o, v in default_out.items():
        if def_run is None or o not in def_run.values:
            continue
        h, v = def_run.values[o], np.asarray(v)
        nd = int(np.count_nonzero(h != v)) if h.shape == v.shape and h.dtype == v.dtype else int(v.size)
        default_equal[o] = nd == 0
        through_float = bool(g.ort_x86_float) and def_graph is not g   # (arm64: no such groups)
        rel = 0.0
        if nd and h.shape == v.shape:
            d = np.abs(h.astype(np.float64) - v.astype(np.float64))
            rel = float(d.max()) / max(float(np.abs(v.astype(np.float64)).max()), 1e-30)
        if cfg.is_reference and through_float and nd and rel > FLOAT_GROUPS_WARN_REL:
            warnings_default.append(f"output {o!r} of the default session differs by up to {rel:.2g} of its "
                                    f"largest value, more than the last-bit growth measured on real networks "
                                    f"(MobileNetV2: 0.06; the limit is {FLOAT_GROUPS_WARN_REL:g}): hwsim's "
                                    "model of the float32 groups may be wrong (not counted; the integer "
                                    "tensors are)")
        elif cfg.is_reference and through_float and nd:
            notes.append(f"output {o!r} of the default session differs in {nd} of {v.size} elements, not "
                         "counted: its float32 groups run on MLAS's kernels, whose rounding order hwsim "
                         "does not reproduce; a last-bit difference that crosses a QuantizeLinear rounding "
                         "boundary moves a code, and the layers after it can grow that difference. The "
                         "integer tensors above (onnxruntime's integer kernels, session.qdqisint8allowed=1) "
                         "are compared and counted bit for bit")
        if cfg.is_reference and (def_run is not run or o not in names):  # not already compared above
            default_tensors.append({"name": o, "node": def_run.producer.get(o), "op": def_run.op.get(o),
                                    "session": "default", "dtype": str(v.dtype), "shape": list(v.shape),
                                    "elements": int(v.size), "mismatches": nd,
                                    "max_rel_diff": rel, "counted": not through_float})
        elif nd and not cfg.is_reference:
            notes.append(f"output {o!r} differs from the unmodified model under default onnxruntime options "
                         f"in {nd} of {v.size} elements (not counted: the datapath is not onnxruntime's)")
    tensors, total, bad = [], 0, 0
    local = None
    node_of = {g.names[i]: n for i, n in enumerate(g.nodes)}
    for nm in names:
        if nm not in ort_vals:
            notes.append(f"onnxruntime did not return tensor {nm!r}; not compared")
            continue
        h, o = run.values[nm], np.asarray(ort_vals[nm])
        prod = run.producer[nm]
        st = run.stats.get(prod)
        entry = {"name": nm, "node": prod, "op": run.op[nm], "dtype": str(o.dtype), "shape": list(o.shape),
                 "elements": int(o.size), "counted": True}
        if h.shape != o.shape:
            entry.update(mismatches=int(o.size),
                         error=f"shape {list(h.shape)} vs onnxruntime {list(o.shape)}")
            nbad = int(o.size)
        else:
            # byte tensors compare as int16 (their differences fit): no int64 copies of every tensor
            wide = np.int16 if h.dtype.itemsize == 1 and o.dtype.itemsize == 1 else np.int64
            diff = (h != o) if h.dtype == o.dtype else (h.astype(wide) != o.astype(wide))
            nbad = int(np.count_nonzero(diff))
            entry["mismatches"] = nbad
            if nbad:
                h64, o64 = h.astype(wide), o.astype(wide)
                entry["max_abs_diff"] = int(np.abs(h64 - o64).max())
                entry["first_mismatch"] = _first_diff(h64, o64, diff)
                if local is None:  # only the nodes whose tensors differ are rerun (and what they need)
                    local = execute(g, feeds, cfg, inputs_from=ort_vals,
                                    only=_differing_nodes(names, run, ort_vals))
                lv = local.values[nm]
                entry["local_mismatches"] = int(np.count_nonzero(lv.astype(np.int64) != o.astype(np.int64)))
                unseen = sorted(hidden & set(node_of[prod].input)) if prod in node_of else []
                if unseen:   # an input onnxruntime did not return: the local run used hwsim's own value
                    del entry["local_mismatches"]
                    entry["local_inputs_not_returned"] = unseen
                if local.stats.get(prod) is not None and local.stats[prod].acc_overflow:
                    entry["local_acc_overflow"] = local.stats[prod].acc_overflow
            if not cfg.is_reference:
                entry["reference_datapath_mismatches"] = int(np.count_nonzero(
                    ref_run.values[nm].astype(np.int64) != o.astype(np.int64)))
            if exact_run is not None:
                _attribute(entry, diff, h, exact_run.values[nm])
        if exact_run is not None and h.shape != o.shape:
            entry["datapath_mismatches"], entry["reference_pair_saturation_mismatches"] = nbad, 0
        if st is not None:
            entry["acc_overflow"] = st.acc_overflow
            if cfg.mult_bits is not None:
                entry["mult_overflow"] = st.mult_overflow
        total += int(o.size)
        bad += nbad
        tensors.append(entry)
    float_tensors = []
    for nm in fnames:
        if nm not in ort_vals:
            continue
        tol = nm in run.tolerance
        h = run.own.get(nm, run.values[nm]) if tol else run.values[nm]
        o = np.asarray(ort_vals[nm])
        entry = {"name": nm, "node": run.producer[nm], "op": run.op[nm], "dtype": str(o.dtype),
                 "shape": list(o.shape), "elements": int(o.size), "counted": True}
        entry.update(compare_float(h, o, tolerance=tol))
        if exact_run is not None:
            ex = exact_run.own.get(nm, exact_run.values[nm]) if tol else exact_run.values[nm]
            if h.shape == o.shape:
                _attribute(entry, ~within_tolerance(h, o) if tol else ~_same_float(h, o), h, ex,
                           tolerance=tol)
            else:
                entry["datapath_mismatches"], entry["reference_pair_saturation_mismatches"] = int(o.size), 0
        total += int(o.size)
        bad += entry["mismatches"]
        float_tensors.append(entry)
    for t in default_tensors:   # through float32 groups hwsim does not reproduce: reported, not counted
        if t["counted"]:
            total += t["elements"]
            bad += t["mismatches"]
        tensors.append(t)
    layers, warnings = _layer_rows(g, run, ref_run, cfg, exact_run, feeds, tgt.u8s8_int16_pairs)
    warnings += warnings_default
    dp_bad = (None if exact_run is None else
              sum(t.get("datapath_mismatches", 0) for t in tensors + float_tensors))
    if dp_bad is not None:
        sat = sum(t.get("reference_pair_saturation_mismatches", 0) for t in tensors + float_tensors)
        notes.append(_attribution_note(cfg, arch, tgt, bad, dp_bad, sat))
    if not names:
        notes.append("the model produces no integer tensor: nothing was compared")
    floats = {}
    for o in g0.outputs:
        if o in run.values and o in ort_vals and run.values[o].dtype.kind == "f":
            floats[o] = bool(np.array_equal(run.values[o], np.asarray(ort_vals[o])))
    import onnxruntime

    from .. import __version__

    data = {
        "model": str(model), "hwsim_version": __version__, "onnxruntime_version": onnxruntime.__version__,
        "inputs": {"source": str(inputs) if inputs is not None else f"random, seed {seed}",
                   "shapes": {k: list(v.shape) for k, v in feeds.items()}},
        "reference": "onnxruntime, live on this host",
        "target": _target_record(tgt, host),
        "session_options": {"graph_optimization_level": "ORT_ENABLE_ALL (default)",
                            "session.qdqisint8allowed": "1 for the instrumented run of the integer tensors; "
                                                        "default (unset) for the final outputs",
                            "providers": ["CPUExecutionProvider"]},
        "datapath": {"acc_bits": cfg.acc_bits, "acc_mode": cfg.acc_mode, "mult_bits": cfg.mult_bits,
                     "zero_point_mode": cfg.zero_point_mode, "int16_pairs": cfg.int16_pairs,
                     "profile": cfg.profile, "rounding": cfg.rounding,
                     "arch": None if arch is None else str(arch), "onnxruntime_semantics": cfg.is_reference},
        "lowered": [{"node": k, "from": v} for k, v in g.lowered_from.items()],
        "mismatches": bad, "elements": total,
        "result": "pass" if (bad if dp_bad is None else dp_bad) == 0 else "fail",
        "tensors": tensors, "layers": layers, "warnings": warnings, "notes": notes,
        "float_outputs_equal": floats,
        "datapath_mismatches": dp_bad, "reference_pair_saturation": exact_run is not None,
        "float_tensors": float_tensors,
        "default_session_float_outputs": float_free,
        "default_session_outputs_equal": default_equal,
        "onnxruntime_x86_float_groups": g.ort_x86_float,
    }
    lines = []
    for w in warnings:
        lines.append(f"warning: {w}")
    lines.append(f"target {tgt.name} (host flags: {' '.join(host.flags) or 'unknown'}; onnxruntime probe "
                 f"{host.probe}: {'int16 pairs' if host.int16_pairs else 'exact'}); reference: onnxruntime "
                 f"{onnxruntime.__version__} on this host")
    for t in tensors:
        if t["mismatches"]:
            extra = f", {t['local_mismatches']} on onnxruntime's inputs" if "local_mismatches" in t else ""
            ov = f", accumulator overflow {t['acc_overflow']}" if t.get("acc_overflow") else ""
            if t.get("local_acc_overflow"):
                ov += f" ({t['local_acc_overflow']} on onnxruntime's inputs)"
            sess = " (default session)" if t.get("session") == "default" else ""
            if not t.get("counted", True):
                sess = " (default session, through float32 groups: not counted)"
            why = ""
            if "reference_pair_saturation_mismatches" in t:
                why = (f"; {t['datapath_mismatches']} from the datapath, "
                       f"{t['reference_pair_saturation_mismatches']} from onnxruntime's int16 pair "
                       "saturation")
            lines.append(f"{t['name']} ({t['op']} {t['node']!r}){sess}: {t['mismatches']} of {t['elements']} "
                         f"differ{extra}{ov}{why}")
    for t in float_tensors:
        if t["mismatches"]:
            lines.append(f"{t['name']} ({t['op']} {t['node']!r}, float32 {t['compare']}): {t['mismatches']} "
                         f"of {t['elements']} differ, max |diff| {t.get('max_abs_diff', float('nan')):.3g}")
    if float_tensors:
        nt = sum(t["compare"] == "tolerance" for t in float_tensors)
        worst = max((t.get("max_rel_diff", 0.0) for t in float_tensors if t["compare"] == "tolerance"),
                    default=0.0)
        lines.append(f"float tensors: {len(float_tensors) - nt} compared bit for bit, {nt} within a "
                     f"tolerance (largest |diff| / max|onnxruntime| {worst:.2g})")
    for o, c in float_free.items():
        rel = c.get("max_rel_diff", 0.0)
        # beyond float rounding (the tolerance comparisons above measure ~1e-7 relative): the default session
        # computes something hwsim's run of the graph as written does not (a fusion such as DQ -> Softmax ->
        # Q into QLinearSoftmax, a code moved by an upstream float op): say so loudly, still not counted
        warn = rel > DEFAULT_SESSION_WARN_REL
        c["warning"] = bool(warn)
        lines.append(f"{'warning: ' if warn else ''}float output {o!r}, hwsim end to end vs onnxruntime's "
                     f"default session (not counted): max |diff| {c.get('max_abs_diff', float('nan')):.3g} "
                     f"({rel:.2g} of max|output|)"
                     + (f"; above {DEFAULT_SESSION_WARN_REL:g}, more than float rounding: the deployed "
                        "session fuses ops hwsim runs apart (e.g. DQ -> Softmax -> Q into QLinearSoftmax) or "
                        "a last-bit float difference moved a code that grows through the layers; the "
                        "tensors above are compared per node (docs/verification.md)" if warn else ""))
    for o, same in floats.items():
        if not same and o not in float_free:
            lines.append(f"float output {o!r} differs from onnxruntime's (not counted: not an integer "
                         "tensor)")
    for nt in notes:
        lines.append(f"note: {nt}")
    lines.append(f"mismatches: {bad} of {total}" + ("" if dp_bad is None or dp_bad == bad else
                                                     f" ({dp_bad} caused by the datapath)"))
    if out is not None:
        od = Path(out)
        od.mkdir(parents=True, exist_ok=True)
        (od / "verify.json").write_text(json.dumps(data, indent=1) + "\n")
    return VerifyReport(mismatches=bad, elements=total, data=data, lines=lines, datapath_mismatches=dp_bad)
