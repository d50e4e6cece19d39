"""The spec fields the energy and area model reads: area overrides in the arch, zero points in the
workload."""

from __future__ import annotations

import pytest

from hwsim.errors import SpecError
from hwsim.spec import Workload, validate

from .utils import make_arch


def test_area_overrides_validate_and_name_the_key():
    arch = make_arch(**{"area.pe_um2": 700.0, "memory.ifmap_sram.area_mm2": 0.5})
    assert arch.area.pe_um2 == 700.0
    assert {lv.name: lv.area_mm2 for lv in arch.memory.hierarchy()}["ifmap_sram"] == 0.5
    with pytest.raises(SpecError, match=r"area\.mult_8b_um2: expected a value greater than or equal to 0, "
                                        r"found -1"):
        make_arch(**{"area.mult_8b_um2": -1})
    with pytest.raises(SpecError, match=r"area\.pe_mm2"):
        make_arch().replace(**{"area.pe_mm2": 1.0})


def test_dram_has_no_die_area():
    data = make_arch().model_dump(mode="python")
    data["memory"] = {"levels": [
        {"name": "buf", "kind": "sram", "operands": ["ifmap", "filter", "ofmap"], "size_kib": 64},
        {"name": "dram", "kind": "dram", "operands": ["ifmap", "filter", "ofmap"],
         "bandwidth_bytes_per_cycle": 8, "area_mm2": 1.0}]}
    with pytest.raises(SpecError, match=r"memory\.levels\[1\]: .*no area_mm2 on the dram level"):
        validate(type(make_arch()), data, "<t>")


def test_zero_points_default_symmetric_and_layers_override():
    w = validate(Workload, {"name": "w", "act_symmetric": False, "layers": [
        {"name": "a", "op": "fc", "k": 4, "n": 4},
        {"name": "b", "op": "fc", "k": 4, "n": 4, "act_symmetric": True, "weight_symmetric": False}]}, "<t>")
    assert [w.asymmetric(layer) for layer in w.layers] == [(False, True), (True, False)]
    plain = validate(Workload, {"name": "w", "layers": [{"name": "a", "op": "fc", "k": 4, "n": 4}]}, "<t>")
    assert plain.asymmetric(plain.layers[0]) == (False, False)
    with pytest.raises(SpecError, match=r"<t>: layers\[0\]\.act_symmetric: expected true or false, "
                                        r"found 'maybe' \(a string\)$"):
        validate(Workload, {"name": "w", "layers": [{"name": "a", "op": "fc", "k": 4, "n": 4,
                                                     "act_symmetric": "maybe"}]}, "<t>")
