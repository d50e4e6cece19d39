"""Golden vectors for an RTL systolic array: per layer and fold, what each PE holds, what enters each edge in
each cycle, and what leaves the array when (``hwsim vectors``; format in ``docs/rtl.md``).

The vectors come from :func:`hwsim.datapath.systolic_gemm` with ``trace=True`` (the cycle-stepped array, the
machine of ``hwsim/rtl/systolic_array.v``); the accumulators are cross-checked against
:func:`hwsim.datapath.gemm_acc` / :func:`hwsim.datapath.conv2d_acc` before anything is written, and the final
ofmap codes come from :func:`hwsim.quant.requantize` (profile ``ort_cpu``).

Operands of a workload layer are seeded random codes over the full code range (extremes included): the ifmap
unsigned ``act_bits`` with a seeded zero point (0 when the layer is symmetric for activations), the weights
signed ``weight_bits`` with zero point 0 (a seeded one when asymmetric), an int32 bias. A conv is lowered by
im2col: GEMM rows ``(n, oh, ow)``, reduction ``(c, r, s)`` within a group, padding = the ifmap zero point.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..datapath import conv2d_acc, gemm_acc, systolic_gemm
from ..errors import SOURCE_ARG, Found, SpecError
from ..mapping import map_layer
from ..quant import requantize
from ..spec import ArchSpec, Conv2d, Gemm, Workload

__all__ = ["LayerOperands", "random_operands", "conv_operands", "layer_vectors", "write_vectors",
           "write_layer_vectors", "hex_bytes", "DEFAULT_MAX_BYTES",
           "rtl_parameters",
           "check_rtl_arch", "VECTOR_FORMAT"]

#: The manifest's ``format`` value.
VECTOR_FORMAT = "hwsim-vectors/1"
_DF_CODE = {"os": 0, "ws": 1, "is": 2}


@dataclass(frozen=True)
class LayerOperands:
    """The integer operands of one layer as ``groups`` GEMMs.

    ``a_q``: tuple of (M, K) int64 ifmap codes (im2col rows for a conv), one per group; ``b_q``: tuple of
    (K, N) int64 filter codes; ``bias``: tuple of (N,) int64; zero points and code widths/signedness;
    ``x_q``/``w_q``: the conv's raw NCHW / KCRS tensors (None for a GEMM), kept for the cross-check;
    ``ofmap``/``requant``: a real node's output codes and how they were made (None: the vectors requantize
    with a synthetic multiplier).
    """

    name: str
    a_q: tuple
    b_q: tuple
    bias: tuple
    a_zp: int
    b_zp: int
    a_bits: int
    a_signed: bool
    b_bits: int
    b_signed: bool
    x_q: np.ndarray | None = None
    w_q: np.ndarray | None = None
    ofmap: np.ndarray | None = None
    requant: dict | None = None


def _code_range(bits: int, signed: bool) -> tuple[int, int]:
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def _edge_bits(bits: int, signed: bool, zp: int) -> int:
    """Signed width of ``code - zp`` over every code (the PE's multiplier operand width)."""
    lo, hi = _code_range(bits, signed)
    lo, hi = lo - zp, hi - zp
    w = 1
    while not (-(1 << (w - 1)) <= lo and hi <= (1 << (w - 1)) - 1):
        w += 1
    return w


def _im2col(x: np.ndarray, layer: Conv2d, zp: int, group: int) -> np.ndarray:
    """(N*Ho*Wo, Cg*kh*kw) rows of one group's input windows, padded with ``zp``; columns (c, r, s)."""
    n, c, h, w = x.shape
    g = layer.n_groups
    cg = c // g
    kh, kw = layer.kernel_hw
    sh, sw = layer.stride_hw
    dh, dw = layer.dilation_hw
    pt, pb, pl, pr = layer.pads
    ho, wo = layer.out_hw
    xp = np.full((n, cg, h + pt + pb, w + pl + pr), zp, np.int64)
    xp[:, :, pt:pt + h, pl:pl + w] = x[:, group * cg:(group + 1) * cg]
    cols = np.empty((n, ho, wo, cg, kh, kw), np.int64)
    for r in range(kh):
        for s in range(kw):
            cols[:, :, :, :, r, s] = xp[:, :, r * dh:r * dh + sh * ho:sh, s * dw:s * dw + sw * wo:sw] \
                .transpose(0, 2, 3, 1)
    return cols.reshape(n * ho * wo, cg * kh * kw)


def conv_operands(layer: Conv2d, x: np.ndarray, w: np.ndarray, bias: np.ndarray, *, a_zp: int, b_zp: int,
                  a_bits: int, a_signed: bool, b_bits: int, b_signed: bool, **extra) -> LayerOperands:
    """A conv's operands from its NCHW ifmap codes ``x``, KCRS weight codes ``w`` and (K,) bias, lowered to
    one im2col GEMM per group (module docstring)."""
    g = layer.gemm
    x = np.asarray(x).astype(np.int64)
    w = np.asarray(w).astype(np.int64)
    bias = np.asarray(bias).astype(np.int64)
    a_q = tuple(_im2col(x, layer, a_zp, gi) for gi in range(g.groups))
    b_q = tuple(w[gi * g.n:(gi + 1) * g.n].reshape(g.n, -1).T.copy() for gi in range(g.groups))
    bs = tuple(bias[gi * g.n:(gi + 1) * g.n] for gi in range(g.groups))
    return LayerOperands(layer.name, a_q, b_q, bs, a_zp, b_zp, a_bits, a_signed, b_bits, b_signed, x, w,
                         **extra)


def random_operands(layer: Conv2d | Gemm, *, weight_bits: int, act_bits: int, asymmetric=(False, False),
                    seed: int = 0) -> LayerOperands:
    """Seeded random codes for one layer (module docstring). ``asymmetric`` = (weights, activations)."""
    rng = np.random.default_rng(seed)
    a_lo, a_hi = _code_range(act_bits, False)
    b_lo, b_hi = _code_range(weight_bits, True)
    a_zp, b_zp = _random_zero_points(rng, weight_bits, act_bits, asymmetric)
    g = layer.gemm
    bias_span = 1 << min(30, act_bits + weight_bits + 2)
    if isinstance(layer, Conv2d):
        kh, kw = layer.kernel_hw
        x = rng.integers(a_lo, a_hi + 1, (layer.batch, layer.in_channels, layer.in_h, layer.in_w))
        w = rng.integers(b_lo, b_hi + 1, (layer.out_channels, layer.in_channels // g.groups, kh, kw))
        bias = rng.integers(-bias_span, bias_span, layer.out_channels)
        return conv_operands(layer, x, w, bias, a_zp=a_zp, b_zp=b_zp, a_bits=act_bits, a_signed=False,
                             b_bits=weight_bits, b_signed=True)
    a_q = tuple(rng.integers(a_lo, a_hi + 1, (g.m, g.k)) for _ in range(g.groups))
    b_q = tuple(rng.integers(b_lo, b_hi + 1, (g.k, g.n)) for _ in range(g.groups))
    bs = tuple(rng.integers(-bias_span, bias_span, g.n) for _ in range(g.groups))
    return LayerOperands(layer.name, a_q, b_q, bs, a_zp, b_zp, act_bits, False, weight_bits, True)


def _random_zero_points(rng, weight_bits: int, act_bits: int, asymmetric) -> tuple[int, int]:
    """(a_zp, b_zp): the first draws of a layer's generator (:func:`random_operands`)."""
    a_lo, a_hi = _code_range(act_bits, False)
    b_lo, b_hi = _code_range(weight_bits, True)
    a_zp = int(rng.integers(a_lo, a_hi + 1)) if asymmetric[1] else 0
    b_zp = int(rng.integers(b_lo, b_hi + 1)) if asymmetric[0] else 0
    return a_zp, b_zp


def check_rtl_arch(arch: ArchSpec, source: str = "<arch>") -> None:
    """Refuse an arch the reference RTL cannot express (``SpecError`` naming the key).

    The RTL has one MAC per PE per cycle on full-width operands and one stationary operand per PE: a
    ``pe.precision_mode`` other than ``fixed``, a ``pe.mult_bits`` (narrowing multiplier) or a per-PE register
    file that holds several stationary operands (its schedule differs) are not expressible.
    """
    if arch.pe.precision_mode != "fixed":
        raise SpecError(source, "pe.precision_mode", "fixed (the reference RTL: one full-width MAC per PE)",
                        arch.pe.precision_mode)
    if arch.pe.mult_bits is not None:
        raise SpecError(source, "pe.mult_bits", "no mult_bits (the reference RTL multiplies full-width "
                        "zero-shifted operands)", arch.pe.mult_bits)
    for i, lv in enumerate(arch.memory.hierarchy()):
        if lv.instances == "per_pe" and "ofmap" in lv.operands and arch.array.dataflow in ("ws", "is"):
            raise SpecError(source, f"memory.levels[{i}]", "no per-PE level holding partial sums (the "
                            "reference RTL holds one stationary operand per PE)", "a per-PE level with ofmap")


def rtl_parameters(arch: ArchSpec, ops: LayerOperands, edge_bits: tuple[int, int] | None = None) -> dict:
    """Parameters of ``hwsim_systolic_array`` for this arch and layer's operands (``docs/rtl.md``).

    ``edge_bits`` = (ifmap, filter) lane widths to use instead of the narrowest that holds ``code - zp``
    (e.g. one RTL build for several layers); ``ValueError`` if narrower than that.
    """
    df = arch.array.dataflow
    ea = _edge_bits(ops.a_bits, ops.a_signed, ops.a_zp)
    eb = _edge_bits(ops.b_bits, ops.b_signed, ops.b_zp)
    if edge_bits is not None:
        if edge_bits[0] < ea or edge_bits[1] < eb:
            raise ValueError(f"{ops.name}: edge bits {edge_bits} narrower than the operands need "
                             f"({ea}, {eb})")
        ea, eb = edge_bits
    left, top = (eb, ea) if df == "is" else (ea, eb)
    return {"ROWS": arch.array.rows, "COLS": arch.array.cols, "DATAFLOW": _DF_CODE[df], "L_BITS": left,
            "T_BITS": top, "ACC_BITS": arch.pe.acc_bits, "SATURATE": int(arch.pe.acc_mode == "saturate")}


def _wrap(v: np.ndarray, bits: int) -> np.ndarray:
    """Two's-complement reduction to ``bits`` (the register's content), as int64."""
    lo = -(1 << (bits - 1))
    return ((v.astype(np.int64) - lo) & ((1 << bits) - 1)) + lo


def _hex_text(v: np.ndarray, bits: int) -> str:
    """``$readmemh`` text: one packed word per row of ``v`` (cycles, lanes), lane 0 in the least significant
    bits, each lane ``bits`` wide two's complement; leading zeros kept (fixed width per line)."""
    v = np.asarray(v, np.int64)
    rows, lanes = v.shape
    u = v & np.int64((1 << bits) - 1)
    flat = ((u[:, :, None] >> np.arange(bits)) & 1).reshape(rows, lanes * bits).astype(np.uint8)
    digits = -(-(lanes * bits) // 4)
    pad = digits * 4 - lanes * bits
    if pad:
        flat = np.concatenate([flat, np.zeros((rows, pad), np.uint8)], axis=1)
    nib = (flat.reshape(rows, digits, 4) << np.arange(4, dtype=np.uint8)).sum(axis=2).astype(np.uint8)
    chars = np.frombuffer(b"0123456789abcdef", np.uint8)[nib[:, ::-1]]
    text = np.concatenate([chars, np.full((rows, 1), ord("\n"), np.uint8)], axis=1)
    return text.tobytes().decode("ascii")


def _requant_params(acc: np.ndarray, out_bits: int) -> tuple[float, int, int, int]:
    """A float32 multiplier that maps the accumulators' spread onto the output codes (unsigned, zp mid)."""
    qmin, qmax = 0, (1 << out_bits) - 1
    spread = float(np.abs(acc).max()) if acc.size else 1.0
    mult = float(np.float32((qmax - qmin) / (2.0 * max(spread, 1.0))))
    return mult, (qmax + 1) // 2, qmin, qmax


def layer_vectors(layer: Conv2d | Gemm, arch: ArchSpec, ops: LayerOperands, *, where: str = "<arch>",
                  edge_bits: tuple[int, int] | None = None) -> dict:
    """Run the stepped array on one layer's operands; return the streams, expected outputs and counts.

    Returns a dict with ``manifest`` (JSON-ready), ``streams`` (name -> (cycles, lanes) int64 arrays, folds
    concatenated; values as the registers hold them), ``stationary`` ((folds * R, C) int64) and ``arrays``
    (the npz content).

    Raises
    ------
    SpecError
        The arch cannot be expressed by the RTL (:func:`check_rtl_arch`).
    RuntimeError
        The stepped array disagreed with the datapath (a bug).
    """
    check_rtl_arch(arch, where)
    pe = arch.pe
    df, R, C = arch.array.dataflow, arch.array.rows, arch.array.cols
    lm = map_layer(layer, arch, weight_bits=ops.b_bits, act_bits=ops.a_bits, where=where)
    params = rtl_parameters(arch, ops, edge_bits)
    acc_bits, mode = pe.acc_bits, pe.acc_mode
    names = ["left_data", "left_valid", "left_last", "top_data"] if df == "os" else \
        ["top_data", "load", "left_data", "left_valid", "psum_in"]
    lane_bits = {"left_data": params["L_BITS"], "left_valid": 1, "left_last": 1, "top_data": params["T_BITS"],
                 "load": 1, "psum_in": acc_bits, "out_data": acc_bits, "out_valid": 1}
    streams = {k: [] for k in names + ["out_data", "out_valid"]}
    stationary, folds, accs, exits, exit_folds = [], [], [], [], []
    offset = 0
    for gi in range(len(ops.a_q)):
        res = systolic_gemm(ops.a_q[gi], ops.b_q[gi], a_zp=ops.a_zp, b_zp=ops.b_zp, rows=R, cols=C,
                            dataflow=df, acc_bits=acc_bits, acc_mode=mode, trace=True)
        ref, _ = gemm_acc(ops.a_q[gi], ops.b_q[gi], a_zp=ops.a_zp, b_zp=ops.b_zp, acc_bits=acc_bits,
                          acc_mode=mode, fast=mode == "wrap")
        if not np.array_equal(res.acc, ref):
            raise RuntimeError(f"{layer.name}: the stepped array differs from gemm_acc (a bug)")
        accs.append(res.acc)
        exits.append(res.exit_cycle)
        exit_folds.append(res.exit_fold + len(folds))
        for tr in res.trace:
            for k in names:
                v = tr.inputs[k]
                streams[k].append(_wrap(v, acc_bits) if k == "psum_in" else v)
            streams["out_data"].append(np.where(tr.out_valid > 0, _wrap(tr.out_data, acc_bits), 0))
            streams["out_valid"].append(tr.out_valid)
            if tr.stationary is not None:
                stationary.append(tr.stationary)
            folds.append({"index": len(folds), "group": gi, "row0": tr.row0, "col0": tr.col0,
                          "rows_used": tr.rows_used, "cols_used": tr.cols_used, "cycle_offset": offset,
                          "cycles": tr.cycles, "last_valid_cycle": tr.last_valid_cycle})
            offset += tr.cycles
    acc = np.stack(accs)  # (groups, M, N) register contents, no bias
    if ops.x_q is not None:  # cross-check the im2col lowering against the conv datapath
        ref, _ = conv2d_acc(ops.x_q, ops.w_q, x_zp=ops.a_zp, w_zp=ops.b_zp, stride=layer.stride_hw,
                            pads=layer.pads, dilation=layer.dilation_hw, groups=layer.n_groups,
                            acc_bits=acc_bits, acc_mode=mode, fast=mode == "wrap")
        n, _, ho, wo = ref.shape
        mine = acc.reshape(len(accs), n, ho, wo, -1).transpose(1, 0, 4, 2, 3).reshape(ref.shape)
        if not np.array_equal(mine, ref):
            raise RuntimeError(f"{layer.name}: the im2col GEMMs differ from conv2d_acc (a bug)")
    # output stage: the bias (saturating in saturate mode, as gemm_acc adds it last), then requantization
    biased = []
    for gi in range(len(accs)):
        b, _ = gemm_acc(ops.a_q[gi], ops.b_q[gi], a_zp=ops.a_zp, b_zp=ops.b_zp, bias=ops.bias[gi],
                        acc_bits=acc_bits, acc_mode=mode, fast=mode == "wrap")
        biased.append(b)
    biased = np.stack(biased)
    if ops.ofmap is None:
        mult, y_zp, qmin, qmax = _requant_params(biased, ops.a_bits)
        ofmap = requantize(biased, np.float32(mult), zero_point=y_zp, qmin=qmin, qmax=qmax, profile="ort_cpu")
        requant = {"profile": "ort_cpu", "multiplier_f32": mult, "out_bits": ops.a_bits, "out_signed": False,
                   "out_zero_point": y_zp, "bias": "int32 per output channel, added after the array"}
    else:
        ofmap, requant = ops.ofmap, ops.requant
    cat = {k: np.concatenate(v) for k, v in streams.items()}
    drain = R - 1 if df == "os" else 0
    conv_off = 1 if arch.timing.convention == "scalesim" else 0
    for f in folds:
        f["timing_model_cycles"] = lm.cycles_per_fold
    stat_name = {"os": None, "ws": "filter", "is": "ifmap"}[df]
    manifest = {
        "layer": layer.name, "op": layer.op,
        "gemm": {"m": lm.m, "k": lm.k, "n": lm.n, "groups": lm.groups},
        "dataflow": df, "rows": R, "cols": C,
        "operands": {
            "ifmap": {"bits": ops.a_bits, "signed": ops.a_signed, "zero_point": ops.a_zp,
                      "edge_bits": _edge_bits(ops.a_bits, ops.a_signed, ops.a_zp)},
            "filter": {"bits": ops.b_bits, "signed": ops.b_signed, "zero_point": ops.b_zp,
                       "edge_bits": _edge_bits(ops.b_bits, ops.b_signed, ops.b_zp)},
        },
        "stationary": stat_name,
        "left_operand": "filter" if df == "is" else "ifmap",
        "top_operand": "ifmap" if df == "is" else "filter",
        "accumulator": {"bits": acc_bits, "mode": mode, "signed": True},
        "rtl_parameters": params,
        "lanes": {k: [int(cat[k].shape[1]), lane_bits[k]] for k in cat},
        "fold_order": ("groups, then row folds of M (R rows), then column folds of N (C columns)"
                       if df == "os" else
                       "groups, then column folds of the stationary operand's columns (C), then row folds "
                       "of K (R rows; each K fold's outputs are the next one's psum_in)"),
        "folds": folds,
        "cycles": {"total": offset, "timing_model_per_fold": lm.cycles_per_fold,
                   "timing_model_compute": lm.compute_cycles, "timing_convention": arch.timing.convention,
                   "m_tiles": lm.m_tiles, "n_tiles": lm.n_tiles, "os_drain_per_fold": drain,
                   "rule": "measured cycles per fold = timing_model_per_fold + os_drain_per_fold; "
                           "timing_model_compute also repeats fill and drain per M (ws) or N (is) tile when "
                           "the mapper tiles (m_tiles, n_tiles > 1)"
                           + (" and is one less per GEMM (scalesim convention)" if conv_off else "")},
        "requant": requant,
    }
    arrays = {"acc": acc, "acc_biased": biased, "exit_cycle": np.stack(exits),
              "exit_fold": np.stack(exit_folds), "ofmap_codes": ofmap, "bias": np.stack(ops.bias),
              "a_q": np.stack(ops.a_q), "b_q": np.stack(ops.b_q)}
    if ops.x_q is not None:
        arrays["x_q"], arrays["w_q"] = ops.x_q, ops.w_q
    arrays.update({f"stream_{k}": v for k, v in cat.items()})
    stat = np.concatenate(stationary) if stationary else np.zeros((0, C), np.int64)
    arrays["stationary"] = stat
    return {"manifest": manifest, "streams": cat, "stationary": stat, "arrays": arrays,
            "lane_bits": lane_bits}


#: ``hwsim vectors`` refuses to write more hex than this unless ``--max-bytes`` or ``--force`` says so (one
#: ResNet-50 layer on a 32x32 array is about 263 MB).
DEFAULT_MAX_BYTES = 256 * 2 ** 20


def hex_bytes(layer: Conv2d | Gemm, arch: ArchSpec, ops: LayerOperands, *,
              edge_bits: tuple[int, int] | None = None, where: str = "<arch>") -> int:
    """The bytes of the ``$readmemh`` files :func:`write_layer_vectors` writes for one layer, from the mapping
    alone (nothing is simulated): ``folds * (cycles_per_fold + drain)`` lines per stream (drain ``R - 1`` for
    os, else 0), each ``ceil(lanes * bits / 4)`` hex digits and a newline; os streams: ``R`` lanes of
    left_data/left_valid/left_last, ``C`` of top_data/out_data/out_valid; ws/is: ``C`` lanes of top_data,
    psum_in, out_data, out_valid, one of load, ``R`` of left_data/left_valid, and ``folds * R`` lines of the
    stationary operand (``C`` lanes). The compressed ``.npz`` (about a tenth of it) is not counted."""
    lm = map_layer(layer, arch, weight_bits=ops.b_bits, act_bits=ops.a_bits, where=where)
    p = rtl_parameters(arch, ops, edge_bits)
    R, C, acc, df = arch.array.rows, arch.array.cols, arch.pe.acc_bits, arch.array.dataflow
    L, T = p["L_BITS"], p["T_BITS"]

    def line(lanes: int, bits: int) -> int:
        return -(-(lanes * bits) // 4) + 1

    cycles = lm.folds * (lm.cycles_per_fold + (R - 1 if df == "os" else 0))
    if df == "os":
        per = line(R, L) + 2 * line(R, 1) + line(C, T) + line(C, acc) + line(C, 1)
        return cycles * per
    per = line(C, T) + line(1, 1) + line(R, L) + line(R, 1) + 2 * line(C, acc) + line(C, 1)
    return cycles * per + lm.folds * R * line(C, T)


def _check_size(arch: ArchSpec, pairs, max_bytes: int | None, edge_bits, where: str) -> None:
    if max_bytes is None:
        return
    sizes = [(layer.name, hex_bytes(layer, arch, ops, edge_bits=edge_bits, where=where))
             for layer, ops in pairs]
    total = sum(b for _, b in sizes)
    if total > max_bytes:
        big = max(sizes, key=lambda x: x[1])
        raise SpecError(SOURCE_ARG, "--max-bytes", f"vectors of at most {max_bytes:,} bytes (give "
                                                   "--max-bytes "
                        "N or --force to write more, --layer NAME for fewer layers)",
                        Found(f"{total:,} bytes of hex files for {len(sizes)} layer(s), the largest "
                              f"{big[0]} {big[1]:,}"), detail="nothing was written")


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def write_layer_vectors(arch: ArchSpec, items, out: str | Path, *, header: dict | None = None,
                        edge_bits: tuple[int, int] | None = None, where: str = "<arch>",
                        max_bytes: int | None = None) -> Path:
    """Write vectors of ``items`` = [(layer, LayerOperands, seed or None), ...] into ``out`` (see
    :func:`write_vectors`); ``header`` adds keys to the manifest.

    ``max_bytes``: refuse (``SpecError`` on ``--max-bytes``, before anything is written) when the hex files
    would exceed it (:func:`hex_bytes`); None: no limit."""
    check_rtl_arch(arch, where)
    _check_size(arch, [(layer, ops) for layer, ops, _ in items], max_bytes, edge_bits, where)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for layer, ops, seed in items:
        v = layer_vectors(layer, arch, ops, where=where, edge_bits=edge_bits)
        stem = _safe(layer.name)
        files = {}
        for k, arr in v["streams"].items():
            fn = f"{stem}.{k}.hex"
            (out / fn).write_text(_hex_text(arr, v["lane_bits"][k]))
            files[k] = fn
        if v["stationary"].shape[0]:
            fn = f"{stem}.stationary.hex"
            sb = v["manifest"]["rtl_parameters"]["T_BITS"]
            (out / fn).write_text(_hex_text(v["stationary"], sb))
            files["stationary"] = fn
        np.savez_compressed(out / f"{stem}.npz", **v["arrays"])
        m = v["manifest"]
        m["files"] = files
        m["npz"] = f"{stem}.npz"
        m["seed"] = seed
        entries.append(m)
    manifest = {"format": VECTOR_FORMAT, "arch": arch.name, **(header or {}),
                "cycle_convention": ("line c of an input file is driven in cycle c and captured by clock "
                                     "edge c+1; line c of out_data/out_valid is the output port right after "
                                     "edge c+1; a fold's cycles count edges from its first operand in to its "
                                     "last output out"),
                "hex_packing": "one word per line, lane 0 in the least significant bits, two's complement "
                               "lanes of the widths in 'lanes'",
                "layers": entries}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return out


def write_vectors(arch: ArchSpec, workload: Workload, out: str | Path, *, layers=None, bits=None,
                  seed: int = 0, arch_source: str = "<arch>", workload_source: str = "<workload>",
                  max_bytes: int | None = None) -> Path:
    """Write ``manifest.json``, ``$readmemh`` hex files and one npz per layer into ``out``.

    Parameters
    ----------
    layers : list of str, optional
        Layer names (default: every layer).
    bits : dict of layer name -> (weight_bits, act_bits), optional
        From a quantization config (default: the workload's).
    seed : int
        Seed of the random operands; layer ``i`` of the workload uses ``seed + i``.
    max_bytes : int, optional
        Refuse when the hex files would be larger (:func:`write_layer_vectors`); None: no limit.

    Raises
    ------
    SpecError
        A layer name not in the workload (key ``--layer``), an arch the RTL cannot express, vectors larger
        than ``max_bytes`` (key ``--max-bytes``; nothing is written).
    """
    names = [ly.name for ly in workload.layers]
    wanted = list(layers) if layers else names
    for n in wanted:
        if n not in names:
            raise SpecError("command line", "--layer", f"a layer of workload {workload.name!r} "
                            f"({', '.join(names[:8])}{', ...' if len(names) > 8 else ''})", n)
    check_rtl_arch(arch, arch_source)
    stubs = []  # the size check first: operands need memory (a conv's im2col rows) and time
    for i, layer in enumerate(workload.layers):
        if layer.name in wanted:
            wb, ab = bits[layer.name] if bits else workload.bits(layer)
            a_zp, b_zp = _random_zero_points(np.random.default_rng(seed + i), wb, ab,
                                             workload.asymmetric(layer))
            stubs.append((layer, LayerOperands(layer.name, (), (), (), a_zp, b_zp, ab, False, wb, True)))
    _check_size(arch, stubs, max_bytes, None, arch_source)
    items = []
    for i, layer in enumerate(workload.layers):
        if layer.name not in wanted:
            continue
        wb, ab = bits[layer.name] if bits else workload.bits(layer)
        ops = random_operands(layer, weight_bits=wb, act_bits=ab, asymmetric=workload.asymmetric(layer),
                              seed=seed + i)
        items.append((layer, ops, seed + i))
    header = {"arch_file": str(arch_source), "workload": workload.name, "workload_file": str(workload_source),
              "operands_from": f"seeded random codes (numpy default_rng(seed + layer index), seed {seed})"}
    return write_layer_vectors(arch, items, out, header=header, where=arch_source, max_bytes=max_bytes)
