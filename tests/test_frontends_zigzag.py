"""ZigZag 3.9.1 accelerator YAML taken as it is (hwsim import-zigzag, or the file given to simulate): the
import of ZigZag's own tpu_like and edge_tpu_like equals the hand translations arch/zigzag_*.yaml (whose
comments derive every number), and what hwsim cannot express is named."""

from __future__ import annotations

import warnings

import pytest

from hwsim.cli import main
from hwsim.errors import SpecError
from hwsim.frontends import arch_from_zigzag
from hwsim.spec import load_arch

from .utils import ROOT

DATA = ROOT / "tests/data/zigzag/hardware"


def _unroll_from_mapping(name):
    """array.unroll as ZigZag's default spatial mapping gives it for tpu_like (D1 -> columns, D2 -> rows; a
    two-dimensional array), None for edge_tpu_like (its arch file keeps the im2col view, see the file)."""
    import yaml
    if name != "tpu_like":
        return None
    m = next(e for e in yaml.safe_load((ROOT / f"tests/data/zigzag/mapping/{name}.yaml").read_text())
             if e["name"] == "default")["spatial_mapping"]
    dims = {d: [x.split(",")[0].strip() for x in v] for d, v in m.items()}
    return {"rows": [[d, 0] for d in dims["D2"]], "cols": [[d, 0] for d in dims["D1"]]}


@pytest.mark.parametrize("name", ["tpu_like", "edge_tpu_like"])
def test_import_equals_the_hand_translation(name):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        arch = arch_from_zigzag(DATA / f"{name}.yaml")
    hand = load_arch(ROOT / f"arch/zigzag_{name}.yaml")
    got, want = arch.model_dump(mode="json"), hand.model_dump(mode="json")
    for k in ("description", "source"):
        got.pop(k), want.pop(k)
    # the hand translation also says what ZigZag's mapping file unrolls (array.unroll), which the hardware
    # file does not hold: tpu_like's D1 = K on the columns, D2 = C on the rows
    assert want["array"].pop("unroll") == _unroll_from_mapping(name)
    got["array"].pop("unroll")
    assert got == want
    msgs = " | ".join(str(x.message) for x in w)
    assert "operational_array.unit_area" in msgs
    if name == "tpu_like":
        # ZigZag's own file gives sram_2MB's ports twice; PyYAML (and so ZigZag) keeps the last
        assert "key 'ports' given twice (lines 67 and 74); the last is used" in msgs
    else:
        # 8 x 8 x 4 x 4: D2..D4 folded into 128 rows; the register files ZigZag shares among PEs are per PE
        # here
        assert "array dimensions ['D2', 'D3', 'D4'] (sizes [8, 4, 4]) folded into 128 rows" in msgs
        assert "rf_1B served_dimensions ['D3', 'D4'] (one per PE in hwsim)" in msgs
        assert "not modelled" in arch.description


def test_eyeriss_like_from_the_wheel_simulates(tmp_path, capsys):
    # Eyeriss-like: 12 x 14, three per-PE register files, three SRAMs; given to simulate as it is
    rc = main(["simulate", str(DATA / "eyeriss_like.yaml"), str(ROOT / "workloads/digits_cnn.yaml"),
               "--out", str(tmp_path / "o")])
    assert rc == 0
    arch = arch_from_zigzag(DATA / "eyeriss_like.yaml")
    assert (arch.array.rows, arch.array.cols) == (12, 14)
    assert [lv.kind for lv in arch.memory.hierarchy()] == ["rf"] * 3 + ["sram"] * 3 + ["dram"]
    # rf_16B holds O with 24-bit ports: the accumulator width
    assert arch.pe.acc_bits == 24
    assert "area 0.3" in capsys.readouterr().err


def test_import_zigzag_command(tmp_path, capsys):
    out = tmp_path / "tpu.yaml"
    assert main(["import-zigzag", str(DATA / "tpu_like.yaml"), "--out", str(out)]) == 0
    ex = {"description": True, "source": True, "array": {"unroll"}}
    assert load_arch(out).model_dump(exclude=ex) == load_arch(ROOT / "arch/zigzag_tpu_like.yaml").model_dump(
        exclude=ex)
    assert main(["import-zigzag", str(DATA / "tpu_like.yaml"), "--out", str(out)]) == 2
    assert "expected a path that does not exist yet" in capsys.readouterr().err


def test_zigzag_errors_name_the_key(tmp_path):
    text = (DATA / "edge_tpu_like.yaml").read_text()
    p = tmp_path / "z.yaml"
    p.write_text(text.replace("r_cost: 22.9", "r_cost: 22.9\n    r_costt: 1"))
    with pytest.raises(SpecError,
                       match=r"z\.yaml: memories\.sram_32KB\.r_costt: expected one of the known keys"):
        arch_from_zigzag(p)
    p.write_text(text.replace("operands: [I1, I2, O]", "operands: [I1, O]"))
    with pytest.raises(SpecError,
                       match=r"memories\.dram\.operands: expected the last memory \(DRAM\) holding I1, I2"):
        arch_from_zigzag(p)
    p.write_text(text.replace("unit_energy: 0.04", "unit_energy: 0.04\n  is_imc: true"))
    with pytest.raises(SpecError, match=r"operational_array\.is_imc: expected a digital array"):
        arch_from_zigzag(p)
