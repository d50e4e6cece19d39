"""Scalars of the declared type only (hwsim.spec.SpecModel): pydantic's lax mode would read ``rows: "32"``,
``rows: 32.0``, ``rows: true`` as 32 and ``double_buffered: 1`` as true; README promises wrong types are
errors. Lists still validate into tuples (every shipped arch, workload and sweep loads: test_workloads,
test_spec_arch, test_explore)."""

from __future__ import annotations

import re

import pytest

from hwsim.errors import SpecError
from hwsim.explore import load_sweep
from hwsim.spec import Workload, load_arch, validate

from .utils import ROOT

ARCH = (ROOT / "arch" / "edge_32x32.yaml").read_text()


@pytest.mark.parametrize("old, new, message", [
    ("rows: 32 ", 'rows: "32" ', "array.rows: expected an integer, found '32' (a string)"),
    ("rows: 32 ", "rows: 32.0 ", "array.rows: expected an integer, found 32.0 (a float)"),
    ("rows: 32 ", "rows: true ", "array.rows: expected an integer, found true (a boolean)"),
    ("rows: 32 ", "rows: ", "array.rows: expected an integer, found null"),
    ("double_buffered: true", "double_buffered: 1",
     "memory.double_buffered: expected true or false, found 1 (an integer)"),
    ("double_buffered: true", "double_buffered: 'yes'",
     "memory.double_buffered: expected true or false, found 'yes' (a string)"),
    ("clock_mhz: 500", "clock_mhz: '500'", "clock_mhz: expected a number, found '500' (a string)"),
    ("clock_mhz: 500", "clock_mhz: false", "clock_mhz: expected a number, found false (a boolean)"),
    ("ifmap_sram: {size_kib: 64,", "ifmap_sram: {size_kib: '64',",
     "memory.ifmap_sram.size_kib: expected a number, found '64' (a string)"),
    ("ifmap_sram: {size_kib: 64, word_bits: 64}", "ifmap_sram: {size_kib: 64, word_bits: 64.0}",
     "memory.ifmap_sram.word_bits: expected an integer, found 64.0 (a float)"),
])
def test_arch_wrong_scalar_types_are_errors(tmp_path, old, new, message):
    assert old in ARCH
    p = tmp_path / "a.yaml"
    p.write_text(ARCH.replace(old, new, 1))
    with pytest.raises(SpecError, match=f"^{re.escape(f'{p}: {message}')}$"):
        load_arch(p)


def test_an_integer_is_a_valid_float_and_lists_become_tuples(tmp_path):
    p = tmp_path / "a.yaml"
    p.write_text(ARCH.replace(  # clock_mhz: 500, a YAML integer, is a valid float
        "  dataflow: ws ", "  systolic: [rows]\n  unroll: {rows: [C, FY, FX], cols: [K]}\n"
        "  dataflow: ws ", 1))
    a = load_arch(p)
    assert a.clock_mhz == 500.0 and a.array.rows == 32
    assert a.array.systolic == ("rows",) and a.array.unroll.rows == (("C", 0), ("FY", 0), ("FX", 0))


def test_workload_wrong_scalar_type_is_an_error():
    base = {"name": "w", "layers": [{"name": "a", "op": "fc", "k": 4, "n": 4}]}
    assert validate(Workload, base, "<t>").layers[0].gemm.k == 4
    for bad, msg in (("4", "'4' (a string)"), (4.0, "4.0 (a float)"), (True, "true (a boolean)")):
        data = {**base, "layers": [{"name": "a", "op": "fc", "k": bad, "n": 4}]}
        want = f"<t>: layers[0].k: expected an integer, found {msg}"
        with pytest.raises(SpecError, match=f"^{re.escape(want)}$"):
            validate(Workload, data, "<t>")
    with pytest.raises(SpecError, match=re.escape("<t>: weight_bits: expected an integer, found '8' "
                                                  "(a string)")):
        validate(Workload, {**base, "weight_bits": "8"}, "<t>")


SWEEP = (ROOT / "sweeps" / "digits_codesign.yaml").read_text().replace("../", f"{ROOT}/")


@pytest.mark.parametrize("old, new, message", [
    # pydantic's words were "expected tuple should have at most 2 items after validation, not 3" and
    # "expected a valid tuple, found 8"
    ("uniform: [[8, 8], [6, 6]", "uniform: [[8, 8, 8], [6, 6]",
     "precision.uniform[0]: expected [weight_bits, act_bits], found [8, 8, 8]"),
    ("uniform: [[8, 8], [6, 6]", "uniform: [8, [6, 6]",
     "precision.uniform[0]: expected [weight_bits, act_bits], found 8"),
    ("conv2: [4, 4], fc: [4, 4]}", "conv2: [4], fc: [4, 4]}",
     "precision.per_layer[0].conv2: expected [weight_bits, act_bits], found [4]"),
    ("uniform: [[8, 8], [6, 6]", "uniform: [['8', 8], [6, 6]",
     "precision.uniform[0][0]: expected an integer, found '8' (a string)"),
    ("uniform: [[8, 8], [6, 6], [5, 5], [4, 8], [4, 4], [3, 3], [2, 8], [2, 2]]", "uniform: 8",
     "precision.uniform: expected a list, found 8 (an integer)"),
    ("count: 24", "count: 24.0", "precision.random.count: expected an integer, found 24.0 (a float)"),
    # an axis value goes through the arch's own (strict) validation
    ("array.rows: [4, 8,", "array.rows: ['4', 8,",
     "axes.array.rows[0]: expected an integer, found '4' (a string)"),
])
def test_sweep_messages(tmp_path, old, new, message):
    assert old in SWEEP
    p = tmp_path / "s.yaml"
    p.write_text(SWEEP.replace(old, new, 1))
    with pytest.raises(SpecError, match=f"^{re.escape(f'{p}: {message}')}$"):
        load_sweep(p)
