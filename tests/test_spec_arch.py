"""The arch YAML: shipped files load; bad input gets an error naming file, key, expected and found."""

from __future__ import annotations

import re

import pytest

from hwsim.errors import SpecError
from hwsim.spec import load_arch

from .utils import ROOT, make_arch


@pytest.mark.parametrize("name", ["edge_32x32", "tpu_v1", "bitfusion_16x16"])
def test_shipped_archs_load(name):
    arch = load_arch(ROOT / "arch" / f"{name}.yaml")
    assert arch.name == name


def test_tpu_v1_matches_the_paper():
    # Jouppi et al., ISCA 2017: 65,536 8-bit MACs at 700 MHz = 92 TOPS (2 ops per MAC): 65536*2*700e6 =
    # 91.75e12
    a = load_arch(ROOT / "arch" / "tpu_v1.yaml")
    assert a.array.rows * a.array.cols == 65536
    assert a.array.dataflow == "ws"
    assert a.array.rows * a.array.cols * 2 * a.clock_mhz * 1e6 == pytest.approx(91.75e12, rel=1e-3)
    # 24 MiB unified buffer, 4 MiB accumulators
    assert a.memory.ifmap_sram.size_kib == 24 * 1024
    assert a.memory.ofmap_sram.size_kib == 4 * 1024


def _write(tmp_path, text):
    p = tmp_path / "a.yaml"
    p.write_text(text)
    return p


BASE = (ROOT / "arch" / "edge_32x32.yaml").read_text()


def test_unknown_key_is_an_error(tmp_path):
    p = _write(tmp_path, BASE.replace("dataflow: ws", "dataflow: ws\n  dataflw: os"))
    with pytest.raises(SpecError, match=re.escape(f"{p}: array.dataflw: expected one of the known keys "
                                                  "(cols, dataflow, rows, systolic, unroll), found unknown "
                                                  "key 'dataflw'")):
        load_arch(p)


def test_zero_size_is_an_error(tmp_path):
    p = _write(tmp_path, BASE.replace("ifmap_sram: {size_kib: 64", "ifmap_sram: {size_kib: 0"))
    with pytest.raises(SpecError,
                       match=re.escape(f"{p}: memory.ifmap_sram.size_kib: expected a value greater "
                                                  "than 0, found 0")):
        load_arch(p)


def test_wrong_type_is_an_error(tmp_path):
    p = _write(tmp_path, BASE.replace("rows: 32 ", "rows: many "))
    with pytest.raises(SpecError,
                       match=r"^.*a\.yaml: array\.rows: expected an integer, found 'many' \(a string\)$"):
        load_arch(p)


def test_bad_dataflow(tmp_path):
    p = _write(tmp_path, BASE.replace("dataflow: ws", "dataflow: rs"))
    with pytest.raises(SpecError, match=r"array\.dataflow: expected 'ws', 'os' or 'is', found 'rs'$"):
        load_arch(p)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(SpecError, match=r"nope\.yaml: expected an existing YAML file, found 'no such file'$"):
        load_arch(tmp_path / "nope.yaml")
    p = _write(tmp_path, "name: [unclosed\n")
    with pytest.raises(SpecError, match=r"a\.yaml: expected valid YAML, found 'a syntax error at line 2"):
        load_arch(p)


def test_bit_fusion_needs_power_of_two_bricks(tmp_path):
    with pytest.raises(SpecError,
                       match=r"pe: expected for bit_fusion, operand_bits equal to brick_bits times a "
                                        r"power of two, found operand_bits=6, brick_bits=2$"):
        make_arch(**{"pe.precision_mode": "bit_fusion", "pe.operand_bits": 6})


def test_replace_rejects_unknown_keys():
    with pytest.raises(SpecError, match=r"array\.rowz: expected an existing arch key"):
        make_arch(**{"array.rowz": 3})
    assert make_arch(**{"array.rows": 3}).array.rows == 3
