"""The command line starts light and answers bad input and Ctrl-C at once (docs/cli_startup.md).

``import hwsim`` and ``import hwsim.cli`` import no numpy, numba, pandas, pydantic or plotly (PEP 562 lazy
names in the packages' ``__init__``); a bad input file is rejected before the machinery behind it is
imported; the console script turns Ctrl-C at any moment into one line and exit code 130. Each check runs in a
fresh interpreter (this test session has imported everything long ago), so it fails as soon as someone adds
an eager import back.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: What the command line must not import before it runs a subcommand, nor to reject a bad input file: the
#: heavy third-party packages and hwsim's modules built on them (the arch models, the pipeline, the runner).
HEAVY = ("numpy", "numba", "pandas", "pyarrow", "plotly", "scipy", "sklearn", "onnx", "onnxruntime", "simpy",
         "torch", "hwsim._pipeline", "hwsim.energy", "hwsim.spec._arch", "hwsim.spec._workload",
         "hwsim.explore._runner", "hwsim.explore._spec", "hwsim.onnxq", "hwsim.datapath", "hwsim.report")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _fresh(code: str) -> dict:
    """Run ``code`` in a new interpreter; it leaves its result in ``out`` (a dict), returned with the sorted
    names of the modules imported (``modules``)."""
    prog = ("import json, sys\nout = {}\n" + textwrap.dedent(code)
            + "\nout['modules'] = sorted(sys.modules)\nprint(json.dumps(out))\n")
    p = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, env=_env(), cwd=ROOT,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]


def test_package_and_cli_import_light():
    out = _fresh("import hwsim\nout['before_cli'] = sorted(sys.modules)\nimport hwsim.cli\n")
    assert _heavy(out["before_cli"]) == []
    assert _heavy(out["modules"]) == []
    assert "pydantic" not in out["modules"] and "yaml" not in out["modules"]
    hwsim_modules = sorted(m for m in out["modules"] if m.startswith("hwsim"))
    assert hwsim_modules == ["hwsim", "hwsim.cli", "hwsim.errors"]


@pytest.mark.parametrize("pkg", ["hwsim", "hwsim.spec", "hwsim.explore", "hwsim.frontends", "hwsim.numerics"])
def test_lazy_names_resolve(pkg):
    """Every name of a lazy package's ``__all__`` resolves (``pkg.NAME`` and ``from pkg import NAME``), is
    listed by ``dir()``, and its lazy table names exactly those; a name not exported is an AttributeError."""
    mod = importlib.import_module(pkg)
    table = set(mod._API_NAMES) | {"__version__"} if pkg == "hwsim" else set(mod._WHERE)
    assert table == set(mod.__all__)
    assert set(mod.__all__) <= set(dir(mod))
    for name in mod.__all__:
        assert getattr(mod, name) is not None
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        getattr(mod, "no_such_name")  # noqa: B009 - the lazy __getattr__ is what is tested


def test_lazy_names_in_a_fresh_interpreter():
    """What the eager ``__init__`` gave stays: ``hwsim.X`` for the API, ``from hwsim import X``, the
    subpackages as attributes after ``import hwsim`` alone, ``hwsim.spec.TRANSFORMER_MODELS`` (a renamed
    import) and ``hwsim.quant.PROFILES`` (re-exported from numerics) as the same objects."""
    out = _fresh("""
        import hwsim
        from hwsim import SweepOutcome, load_arch
        out['api'] = [hwsim.simulate.__module__, load_arch.__module__, SweepOutcome.__module__]
        out['arch'] = hwsim.spec.ArchSpec.__module__
        out['explore'] = hwsim.explore.read_sweep_spec.__module__
        import hwsim.spec._transformer as t, hwsim.numerics._modes as m
        out['same'] = [hwsim.spec.TRANSFORMER_MODELS is t.MODELS, hwsim.quant.PROFILES is m.PROFILES]
        out['dir'] = sorted(set(hwsim.__all__) - set(dir(hwsim)))
    """)
    assert out["api"] == ["hwsim._api"] * 3
    assert out["arch"] == "hwsim.spec._arch" and out["explore"] == "hwsim.explore._sweep_file"
    assert out["same"] == [True, True] and out["dir"] == []


def _deep_sweep(tmp_path: Path) -> Path:
    """A copy of the shipped digits sweep with a misspelt key three levels down (``precision.random.sed``)."""
    text = (ROOT / "sweeps/digits_codesign.yaml").read_text()
    text = text.replace("../", f"{ROOT}/").replace("bits: [2, 3, 4, 5, 6, 8], seed: 0",
                                                    "bits: [2, 3, 4, 5, 6, 8], sed: 0")
    assert "sed: 0" in text
    (tmp_path / "deep.yaml").write_text(text)
    return tmp_path / "deep.yaml"


def test_bad_input_rejected_before_heavy_imports(tmp_path):
    """Each bad input gets its one line and exit 2 having imported none of ``HEAVY`` (a sweep file is checked
    against its schema before the runner, an arch file read before the pipeline, a missing workload before
    the workload models, a missing model before the datapath; a missing or non-YAML file needs PyYAML
    alone)."""
    arch = (ROOT / "arch/edge_32x32.yaml").read_text()
    assert "  rows: 32 " in arch
    (tmp_path / "arch.yaml").write_text(arch.replace("  rows: 32 ", "  rows: abc "))
    (tmp_path / "empty.yaml").write_text("")
    cases = {
        "missing": (["sweep", str(tmp_path / "none.yaml")],
                    f"{tmp_path / 'none.yaml'}: expected an existing YAML file, found 'no such file'"),
        "empty": (["sweep", str(tmp_path / "empty.yaml")],
                  f"{tmp_path / 'empty.yaml'}: expected a mapping of keys at the top level, found an empty "
                  "file"),
        "deep": (["sweep", str(_deep_sweep(tmp_path))],
                 f"{tmp_path / 'deep.yaml'}: precision.random.sed: expected one of the known keys (bits, "
                 "count, seed), found unknown key 'sed'; did you mean 'seed'?"),
        "arch": (["simulate", str(tmp_path / "arch.yaml"), str(ROOT / "workloads/digits_cnn.yaml")],
                 f"{tmp_path / 'arch.yaml'}: array.rows: expected an integer, found 'abc' (a string)"),
        "workload": (["simulate", str(ROOT / "arch/edge_32x32.yaml"), str(tmp_path / "none.yaml")],
                     f"{tmp_path / 'none.yaml'}: expected an existing workload file (.yaml, .csv or .onnx), "
                     "found no such file"),
        "onnx": (["verify", str(tmp_path / "missing.onnx")],
                 f"{tmp_path / 'missing.onnx'}: expected an existing ONNX model file, found no such file"),
    }
    for name, (argv, message) in cases.items():
        out = _fresh(f"""
            import contextlib, io
            import hwsim.cli
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                out['rc'] = hwsim.cli.main({argv!r})
            out['err'] = err.getvalue()
        """)
        assert (out["rc"], out["err"]) == (2, f"hwsim: error: {message}\n"), name
        # the arch models are what validates an arch file (only them: not the workload's, nor the pipeline)
        arch_read = name in ("arch", "workload")
        assert _heavy(out["modules"]) == (["hwsim.spec._arch"] if arch_read else []), name
        if name in ("missing", "empty", "onnx"):  # the file itself: no schema, no pydantic
            assert "pydantic" not in out["modules"], name


def test_bad_sweep_starts_no_worker_server(tmp_path):
    """``run_sweep`` reads the sweep file before it starts the forkserver of its local pool: a bad file leaves
    no background process importing numba for seconds after the error."""
    out = _fresh(f"""
        from hwsim.errors import SpecError
        from hwsim.explore import run_sweep
        try:
            run_sweep({str(_deep_sweep(tmp_path))!r}, out={str(tmp_path / 'o')!r}, workers=2)
        except SpecError as e:
            out['err'] = str(e)
        from multiprocessing import forkserver
        out['server'] = forkserver._forkserver._forkserver_pid  # CPython's record of the server it started
    """)
    assert "precision.random.sed" in out["err"] and out["server"] is None


def test_console_script_ctrl_c_gives_one_line(tmp_path):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) 0.05, 0.3 and 1 s into ``hwsim sweep`` of
    the shipped digits sweep: while the command line, pydantic and the sweep machinery are imported, the
    sweep is resolved and its worker server started. Each time: exit 130 and one line, no traceback.

    The child runs the console script of ``pyproject.toml`` ``[project.scripts]`` as pip's wrapper does
    (``from MODULE import FUNC; sys.exit(FUNC())``), after writing one byte once the interpreter itself has
    started: Ctrl-C during the interpreter's own start-up (``site``, before any hwsim code) is Python's, and
    no entry point can catch it."""
    entry = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["hwsim"]
    module, func = entry.split(":")
    code = (f"import sys; sys.stdout.write('.'); sys.stdout.flush(); from {module} import {func}; "
            f"sys.exit({func}())")
    for delay in (0.05, 0.3, 1.0):
        out = tmp_path / f"out_{delay}"
        p = subprocess.Popen([sys.executable, "-c", code, "sweep", str(ROOT / "sweeps/digits_codesign.yaml"),
                              "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=_env(), cwd=tmp_path, start_new_session=True)
        try:
            assert p.stdout.read(1) == "."
            time.sleep(delay)
            os.killpg(p.pid, signal.SIGINT)
            _, err = p.communicate(timeout=60)
        finally:  # the pool's server may still be importing: end what this test started
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=60)
        lines = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("hwsim:")]
        assert "Traceback" not in err, (delay, err)
        assert p.returncode == 130, (delay, err)
        assert len(lines) == 1 and lines[0].startswith("hwsim: interrupted"), (delay, err)


def test_console_script_interrupted_while_importing():
    """Ctrl-C while the command line itself is still being imported (a window of milliseconds, too short to
    hit with a timed signal reliably): simulated by an import hook that raises KeyboardInterrupt when
    ``argparse`` (``hwsim.cli``'s first import) is imported. The console script's function catches it: one
    line, exit 130 (``hwsim.cli:main`` as the entry point printed a traceback here)."""
    entry = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["hwsim"]
    module, func = entry.split(":")
    code = textwrap.dedent(f"""
        import sys
        class Interrupt:
            def find_spec(self, name, path=None, target=None):
                if name == "argparse":
                    raise KeyboardInterrupt
        sys.modules.pop("argparse", None)
        sys.meta_path.insert(0, Interrupt())
        from {module} import {func}
        sys.exit({func}())
    """)
    p = subprocess.run([sys.executable, "-c", code, "sweep", str(ROOT / "sweeps/digits_codesign.yaml")],
                       capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=60)
    assert (p.returncode, p.stderr) == (130, "hwsim: interrupted\n")
