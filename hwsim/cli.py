"""The ``hwsim`` command.

Exit codes (``../shared/DESIGN.md``, "Contracts"): 0 success, 1 a check failed (``verify`` found a mismatch),
2 bad input (one line naming the file and key first, details after), 3 an internal error (a bug).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import SOURCE_ARG, HwsimError, SpecError, Terminated

__all__ = ["main"]


def _positive(v: str) -> int:
    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {v!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {n}")
    return n


def _workers_arg(v: str) -> int:
    import os

    from .explore import max_workers

    n = _positive(v)
    if n > max_workers():
        raise argparse.ArgumentTypeError(f"expected at most {max_workers()} worker processes (8 x the "
                                         f"{os.cpu_count() or 1} cores; a cluster: --scheduler), found {n}")
    return n


def _bits_arg(v: str) -> int:
    try:
        b = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer number of bits, found {v!r}") from None
    if not 1 <= b <= 16:
        raise argparse.ArgumentTypeError(f"expected bits between 1 and 16, found {b}")
    return b


def _fresh_dir(base: Path) -> Path:
    """``base`` if it does not exist or is empty, else the first of ``base_2``, ``base_3``, ... that does
    not."""
    if not base.exists() or (base.is_dir() and not any(base.iterdir())):
        return base
    i = 2
    while (base.parent / f"{base.name}_{i}").exists():
        i += 1
    return base.parent / f"{base.name}_{i}"


def _cmd_simulate(args: argparse.Namespace) -> int:
    from ._api import simulate

    sim = simulate(args.arch, args.workload, quant=args.quant, weight_bits=args.wbits, act_bits=args.abits,
                   engine=args.engine, reuse=args.reuse)
    res, arch, workload = sim.result, sim.arch, sim.workload
    # an explicit --out is written into (replacing the files); the default never replaces an earlier run
    out = Path(args.out) if args.out else _fresh_dir(Path("results") / "simulate")
    files = list(sim.to_dir(out).values())
    t = res.totals
    print(f"{workload.name} on {arch.name}: {len(res.rows)} layers, {int(t['macs']):,} MACs, "
          f"{int(t['total_cycles']):,} cycles ({int(t['stall_cycles']):,} stall), {t['latency_us']:,.1f} us, "
          f"{t['energy_pj'] / 1e6:,.2f} uJ, utilization {t['utilization']:.3f}; model "
          f"{res.model_cpu_s * 1e3:.1f} ms CPU")
    on_chip = sum(1 for x in res.tensor_rows if x["level"] != "dram")
    print(f"reuse {arch.timing.reuse}: {on_chip} of {len(res.tensor_rows)} tensors on chip, DRAM "
          f"{int(t['dram_read_bytes'] + t['dram_write_bytes']):,} bytes"
          + (f"; {len(res.vector_rows)} non-GEMM nodes, {int(t['vector_cycles']):,} vector-unit cycles"
             if res.vector_rows else ""))
    for note in res.notes:
        print(f"note: {note}")
    print(f"wrote {', '.join(str(f) for f in files)}")
    return 0


def _cmd_import_scalesim(args: argparse.Namespace) -> int:
    from .frontends import arch_from_scalesim_cfg, write_arch_yaml

    arch = arch_from_scalesim_cfg(args.cfg)
    out = Path(args.out) if args.out else Path(Path(args.cfg).stem + ".yaml")
    if out.exists() and not args.force:
        raise SpecError(SOURCE_ARG, "--out", "a path that does not exist yet (or --force to replace it)",
                        str(out), detail="nothing is overwritten")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_arch_yaml(arch, out)
    print(f"wrote {out} (clock_mhz {arch.clock_mhz:g}: SCALE-Sim has no clock, so latency in us assumes it; "
          f"edit clock_mhz for your design)")
    return 0


def _cmd_import_zigzag(args: argparse.Namespace) -> int:
    from .frontends import arch_from_zigzag, write_arch_yaml

    arch = arch_from_zigzag(args.hardware, dataflow=args.dataflow)
    out = Path(args.out) if args.out else Path(f"zigzag_{Path(args.hardware).stem}.yaml")
    if out.exists() and not args.force:
        raise SpecError(SOURCE_ARG, "--out", "a path that does not exist yet (or --force to replace it)",
                        str(out), detail="nothing is overwritten")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_arch_yaml(arch, out, comment="ZigZag 3.9.1 accelerator imported by hwsim import-zigzag "
                    "(hwsim/frontends/_zigzag.py gives the mapping)")
    print(f"wrote {out} (clock_mhz {arch.clock_mhz:g}: ZigZag counts cycles only, so latency in us assumes "
          f"it; dataflow {arch.array.dataflow}: ZigZag's hardware file has none)")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .explore import read_sweep_spec

    read_sweep_spec(args.sweep)  # a bad sweep file fails here, before the runner's imports (pandas, numba...)
    from .explore import run_sweep

    out = run_sweep(args.sweep, out=args.out, resume=args.resume, workers=args.workers,
                    scheduler=args.scheduler)
    print(f"wrote {out / 'points.csv'}, {out / 'points.parquet'}, {out / 'pareto.csv'}, "
          f"{out / 'report.html'}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from ._api import verify
    from .errors import api_source

    if args.dump_vectors and not args.arch:
        raise SpecError(SOURCE_ARG, "--dump-vectors", "--arch too (the array the vectors are for)", None)
    try:
        rep = verify(args.model, inputs=args.inputs, expected=args.expected, target=args.target,
                     arch=args.arch, profile=args.profile, rounding=args.rounding,
                     int16_pairs=args.int16_pairs, zero_point_mode=args.zero_point_mode, seed=args.seed,
                     out=None if args.dump_vectors else args.out)
    except SpecError as e:  # the API names its keyword; the command names the option
        if e.source == api_source("verify") and e.key in ("profile", "rounding", "zero_point_mode", "target",
                                                          "int16_pairs", "seed", "out", "inputs"):
            raise SpecError(SOURCE_ARG, "--" + e.key.replace("_", "-"), e.expected, e.found) from None
        raise
    if args.dump_vectors:  # issue 13 item 5: the nodes' vectors, for the RTL bench (docs/rtl.md)
        import json

        from .rtl import dump_vectors

        # the vectors first, verify.json last: an error in the vectors leaves no verify.json of a run that
        # did not finish
        try:
            v = dump_vectors(args.model, args.arch, args.dump_vectors, inputs=args.inputs, seed=args.seed,
                             out=Path(args.out) / "vectors")
        except SpecError as e:  # the node names come from --dump-vectors here (hwsim vectors: --layer)
            if e.source == SOURCE_ARG and e.key == "--layer":
                raise SpecError(SOURCE_ARG, "--dump-vectors", e.expected, e.found) from None
            raise
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "verify.json").write_text(json.dumps(dict(rep.data), indent=1) + "\n")
    print(f"wrote {Path(args.out) / 'verify.json'}")
    if args.dump_vectors:
        print(f"wrote {v / 'manifest.json'} (vectors of {', '.join(args.dump_vectors)})")
    for line in rep.lines:
        print(line)
    return 0 if rep.passed else 1


def _cmd_vectors(args: argparse.Namespace) -> int:
    from ._api import load_arch
    from .errors import Found
    from .rtl import (
        DEFAULT_MAX_BYTES,
        check_rtl_arch,
        missing_tools,
        onnx_operands,
        run_cosim,
        write_layer_vectors,
        write_vectors,
    )

    arch = load_arch(args.arch)
    if args.force and args.max_bytes is not None:
        raise SpecError(SOURCE_ARG, "--force", "--force or --max-bytes (they exclude each other)",
                        Found("both"))
    max_bytes = None if args.force else (args.max_bytes or DEFAULT_MAX_BYTES)
    if args.cosim and missing_tools():
        raise SpecError(SOURCE_ARG, "--cosim", "an RTL simulator and cocotb installed",
                        Found(", ".join(f"no {m}" for m in missing_tools())))
    if (args.workload is None) == (args.model is None):
        raise SpecError(SOURCE_ARG, "WORKLOAD", "a workload file or --model M.onnx (one of them)",
                        Found("both" if args.model else "neither"))
    if args.model is not None:
        if args.quant_yaml:
            raise SpecError(SOURCE_ARG, "--quant", "no --quant with --model (the model's codes set the bits)",
                            args.quant_yaml)
        check_rtl_arch(arch, str(args.arch))
        items = onnx_operands(args.model, arch, inputs=args.inputs, nodes=args.layer, seed=args.seed)
        header = {"arch_file": str(args.arch), "model": str(args.model),
                  "operands_from": f"the nodes' real operands on inputs {args.inputs}" if args.inputs else
                  f"the nodes' real operands on seeded random model inputs (seed {args.seed})"}
        out = write_layer_vectors(arch, items, args.out, header=header, where=str(args.arch),
                                  max_bytes=max_bytes)
    else:
        if args.inputs:
            raise SpecError(SOURCE_ARG, "--inputs", "--inputs only with --model", args.inputs)
        from ._io import load_workload

        workload = load_workload(args.workload)
        bits = None
        if args.quant_yaml:
            from .spec import load_quant_config

            bits = load_quant_config(args.quant_yaml, workload)
        out = write_vectors(arch, workload, args.out, layers=args.layer, bits=bits, seed=args.seed,
                            arch_source=str(args.arch), workload_source=str(args.workload),
                            max_bytes=max_bytes)
    import json

    manifest = json.loads((out / "manifest.json").read_text())
    for m in manifest["layers"]:
        c = m["cycles"]
        print(f"{m['layer']}: {len(m['folds'])} folds, {c['total']:,} cycles on the stepped array "
              f"({c['timing_model_per_fold']:,} + {c['os_drain_per_fold']} drain per fold)")
    if args.cosim:
        params = {json.dumps(m["rtl_parameters"], sort_keys=True) for m in manifest["layers"]}
        bad = 0
        for p in sorted(params):
            rep = run_cosim(out, json.loads(p), out / "rtl_build")
            for lay in rep["layers"]:
                n = sum(f["mismatches"] for f in lay["folds"])
                bad += n
                print(f"rtl {lay['layer']}: {n} mismatches, cycles per fold "
                      f"{sorted({f['rtl_cycles'] for f in lay['folds']})}")
        if bad:
            return 1
    size = sum((out / f).stat().st_size for m in manifest["layers"] for f in [*m["files"].values(), m["npz"]])
    print(f"wrote {out / 'manifest.json'} and the hex/npz files it lists ({size:,} bytes)")
    return 0


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line, ``hwsim: error: command line: ...`` and exit 2, as
    every other bad input (argparse prints its usage block first); ``--help`` is unchanged."""

    def error(self, message: str):  # noqa: ANN201 - argparse's signature (NoReturn)
        if message.startswith("argument "):  # "argument --wbits: expected ..." -> "--wbits: expected ..."
            message = message[len("argument "):]
        import re

        # argparse's own words -> this project's "expected ..., found ..."
        message = re.sub(r"invalid (\w+) value: (.*)$", r"expected a valid \1 value, found \2", message)
        message = re.sub(r"invalid choice: (.*) \(choose from (.*)\)$", r"expected one of \2, found \1",
                         message)
        cmd = self.prog.split(" ", 1)[1] + " " if " " in self.prog else ""
        self.exit(2, f"hwsim: error: {SOURCE_ARG}: {message} (hwsim {cmd}--help for usage)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="hwsim", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--version", action="version", version=f"hwsim {_version()}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("simulate", help="time and price a workload on an arch; write layers.csv, energy.csv, "
                       "bandwidth.csv, summary.json, report.html")
    s.add_argument("arch",
                   help="arch YAML (arch/*.yaml), a SCALE-Sim .cfg or a ZigZag accelerator YAML (read as "
                   "import-scalesim / import-zigzag read them, clock 1000 MHz)")
    s.add_argument("workload", help="workload: YAML, SCALE-Sim topology CSV, or float ONNX")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--quant", help="quantization YAML: per-layer weight_bits/act_bits")
    s.add_argument("--wbits", type=_bits_arg, help="uniform weight bits for every layer, 1..16 (a workload's "
                   "range); the arch's PEs take pe.min_bits..pe.operand_bits (else an error naming pe)")
    s.add_argument("--abits", type=_bits_arg, help="uniform activation bits for every layer, 1..16; the "
                   "arch's PEs take pe.min_bits..pe.operand_bits")
    s.add_argument("--reuse", choices=["none", "inter_layer", "fused"],
                   help="where tensors live between layers (default: the arch's timing.reuse, none): none = "
                   "through DRAM, inter_layer = on chip when they fit, fused = also depth-first row bands")
    s.add_argument("--engine", choices=["analytic", "simpy"],
                   help="event-model engine (default: the arch's timing.engine, analytic); both give equal "
                        "cycles")
    s.add_argument("--out",
                   help="output folder, written into (its files replaced); default: results/simulate, "
                   "or results/simulate_2, _3, ... if that holds an earlier run (never replaced)")
    s.set_defaults(func=_cmd_simulate)

    s = sub.add_parser("import-scalesim", help="turn a SCALE-Sim .cfg into an arch YAML")
    s.add_argument("cfg")
    s.add_argument("--out", help="arch YAML to write (default: <cfg stem>.yaml)")
    s.add_argument("--force", action="store_true", help="replace --out if it exists")
    s.set_defaults(func=_cmd_import_scalesim)

    s = sub.add_parser("import-zigzag",
                       help="turn a ZigZag 3.9.1 accelerator YAML into an arch YAML (simulate "
                       "also takes the ZigZag file as it is)")
    s.add_argument("hardware", help="ZigZag hardware YAML (zigzag/inputs/hardware/*.yaml)")
    s.add_argument("--out", help="arch YAML to write (default: zigzag_<stem>.yaml)")
    s.add_argument("--dataflow", choices=["ws", "os", "is"], default="ws",
                   help="the array's dataflow (ZigZag's hardware file has none; default ws)")
    s.add_argument("--force", action="store_true", help="replace --out if it exists")
    s.set_defaults(func=_cmd_import_zigzag)

    s = sub.add_parser("sweep",
                       help="evaluate every design point of a sweep; write points, pareto.csv, report")
    s.add_argument("sweep", help="sweep YAML (sweeps/*.yaml)")
    s.add_argument("--out", help="output folder (default: results/<sweep name>)")
    s.add_argument("--resume", action="store_true", help="skip the points already in the output folder")
    s.add_argument("--workers", type=_workers_arg, default=None,
                   help="local worker processes (default: the number of cores; 1 runs in this process)")
    s.add_argument("--scheduler", help="dask.distributed scheduler address (e.g. tcp://127.0.0.1:8786): run "
                   "the points on that cluster")
    s.set_defaults(func=_cmd_sweep)
    s = sub.add_parser("verify",
                       help="run a quantized ONNX model on the integer datapath and on onnxruntime; "
                       "compare every integer tensor")
    s.add_argument("model", help="quantized ONNX model (QOperator or QDQ form)")
    s.add_argument("--inputs", help=".npz with one array per model input (default: seeded random inputs)")
    s.add_argument("--out", default="results/verify", help="output folder for verify.json "
                   "(default: results/verify)")
    s.add_argument("--arch", help="arch YAML: run under its pe.acc_bits / pe.acc_mode (and pe.mult_bits)")
    s.add_argument("--profile", default="ort_cpu", help="requantization profile (default: ort_cpu; "
                   "see hwsim.quant.PROFILES)")
    s.add_argument("--rounding",
                   help="replace the profile's rounding: half_even, half_away, half_up, floor or "
                   "stochastic (seeded by --seed)")
    s.add_argument("--target", default="host", help="the machine whose onnxruntime integer kernels are "
                   "reproduced: host (default: this CPU, detected and probed), x86-avx2, x86-avx512-core, "
                   "x86-avx512-vnni, x86-avx-vnni, x86-sse, arm64; a target other than the host's needs "
                   "--expected")
    s.add_argument("--expected", help=".npz of graph outputs recorded by onnxruntime on the target machine "
                   "(by output name): compare with them instead of running onnxruntime here")
    s.add_argument("--int16-pairs", action="store_true", help="PEs sum product pairs with int16 saturation "
                   "(x86 vpmaddubsw), reduction in NHWC (r, s, c) order, on every GEMM-like node")
    s.add_argument("--zero-point-mode", default="shift",
                   help="shift (PEs multiply zero-shifted operands, the "
                   "default) or cross_term (raw codes; the zero-point correction is added to the accumulator "
                   "afterwards)")
    s.add_argument("--seed", type=int, default=0, help="seed of the random inputs and of stochastic rounding "
                   "(default: 0)")
    s.add_argument("--dump-vectors", action="append", metavar="NODE", help="write the RTL vectors of this "
                   "node (repeatable; needs --arch) into OUT/vectors (docs/rtl.md)")
    s.set_defaults(func=_cmd_verify)

    s = sub.add_parser("vectors", help="golden vectors for an RTL systolic array: per layer and fold the "
                       "stationary operands, edge streams per cycle, expected outputs and when they leave")
    s.add_argument("arch", help="arch YAML (arch/*.yaml)")
    s.add_argument("workload", nargs="?", help="workload: YAML, SCALE-Sim topology CSV, or float ONNX (or "
                   "--model)")
    s.add_argument("--quant", dest="quant_yaml", help="quantization YAML: per-layer weight_bits/act_bits")
    s.add_argument("--model", help="quantized ONNX model instead of WORKLOAD: its QLinearConv, ConvInteger, "
                   "QLinearMatMul, MatMulInteger and QGemm (a QDQ Gemm) nodes' real operands")
    s.add_argument("--inputs", help="with --model: .npz with one array per model input (default: seeded "
                   "random)")
    s.add_argument("--layer", action="append", help="a layer (or --model node) name (repeatable; default: "
                   "every one)")
    s.add_argument("--seed", type=int, default=0, help="seed of the random operand codes (default: 0; "
                   "layer i uses seed + i)")
    s.add_argument("--cosim", action="store_true", help="also run the reference RTL (hwsim/rtl) on the "
                   "vectors (needs iverilog and cocotb)")
    s.add_argument("--max-bytes", type=_positive, default=None, help="refuse to write more than this many "
                   "bytes of hex files, estimated from the mapping before anything is written (default: "
                   "256 MiB; "
                   "one ResNet-50 layer on a 32x32 array is about 263 MB)")
    s.add_argument("--force", action="store_true", help="write the vectors whatever their size")
    s.add_argument("--out", required=True, help="output folder")
    s.set_defaults(func=_cmd_vectors)
    return p


def _version() -> str:
    from . import __version__

    return __version__


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"hwsim: warning: {message}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> int:
    import warnings

    warnings.showwarning = _one_line_warning
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "quant", None) and (args.wbits or args.abits):
        parser.error("--quant and --wbits/--abits exclude each other")
    if getattr(args, "scheduler", None) is not None:
        if not args.scheduler.strip():
            parser.error("--scheduler needs an address such as tcp://HOST:8786")
        if args.workers:
            parser.error("--workers and --scheduler exclude each other (the cluster has its own workers)")
    try:
        return args.func(args)
    except SpecError as e:
        print(f"hwsim: error: {e}", file=sys.stderr)
        return 2
    except Terminated as e:  # SIGTERM during a sweep: as Ctrl-C, with the code of a SIGTERM death
        print(f"hwsim: terminated (SIGTERM){'; ' + str(e) if str(e) else ''}", file=sys.stderr)
        return 143
    except KeyboardInterrupt as e:
        print(f"hwsim: interrupted{'; ' + str(e) if str(e) else ''}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `hwsim simulate ... | head -1`
        sys.stderr.close()
        return 0
    except HwsimError as e:  # e.g. a sweep whose workers or scheduler died: the points written are kept
        print(f"hwsim: error: {e}", file=sys.stderr)
        return 2
    except ImportError as e:  # an optional package (onnxruntime, torch, scalesim, ...) absent or broken
        if (getattr(e, "name", None) or "").split(".")[0] == "hwsim":
            return _internal_error()  # hwsim's own import failed: a bug, not the user's installation
        from .errors import missing_dependency

        print(f"hwsim: error: {missing_dependency(e, needed_for=f'hwsim {args.command}')}", file=sys.stderr)
        return 2
    except OSError as e:  # an output path that is a file, unwritable, on a full disk...
        if not e.filename:
            print(f"hwsim: error: {type(e).__name__}: {e}", file=sys.stderr)
            return 2
        print(f"hwsim: error: {e.filename}: expected a writable path, found {e.strerror or e}",
              file=sys.stderr)
        return 2
    except Exception:  # a bug, not bad input: say so, and keep exit 1 for failed checks
        return _internal_error()


def _internal_error() -> int:
    import traceback

    traceback.print_exc()
    print("hwsim: internal error (a bug in hwsim; please report it with the command above)", file=sys.stderr)
    return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
