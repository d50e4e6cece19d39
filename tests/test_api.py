"""The public API (``docs/api.md``): what it exports, that the CLI writes what it computes, frozen results."""

from __future__ import annotations

import csv
import dataclasses
import re
from pathlib import Path

import pytest

import hwsim
from hwsim.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_all_is_exactly_what_docs_api_documents():
    text = (ROOT / "docs" / "api.md").read_text()
    documented = set(re.findall(r"^### `hwsim\.(\w+)", text, flags=re.M))
    assert documented == set(hwsim.__all__)
    for name in hwsim.__all__:
        assert hasattr(hwsim, name), name


def test_docs_api_examples_do_their_work_under_the_main_guard():
    """A script that calls hwsim.sweep is imported again by every worker process (forkserver): its top level
    may only import and define; the work runs from the ``if __name__ == "__main__":`` guard. (The example is
    run as written by hand: a full digits_codesign sweep takes minutes.)"""
    import ast

    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "api.md").read_text(), flags=re.S)
    assert blocks
    for code in blocks:
        tree = ast.parse(code)
        if "hwsim.sweep(" not in code:
            continue
        for st in tree.body:
            guard = (isinstance(st, ast.If) and isinstance(st.test, ast.Compare)
                     and ast.unparse(st.test) == "__name__ == '__main__'")
            assert guard or isinstance(st, ast.Import | ast.ImportFrom | ast.FunctionDef), ast.unparse(st)
        # the guard calls main(), which holds the simulate and sweep calls
        main = next(st for st in tree.body if isinstance(st, ast.FunctionDef) and st.name == "main")
        assert "hwsim.sweep(" in ast.unparse(main) and "hwsim.simulate(" in ast.unparse(main)
        assert ast.unparse(tree.body[-1]) == "if __name__ == '__main__':\n    main()"


def test_simulate_equals_the_cli_files(tmp_path):
    sim = hwsim.simulate(hwsim.load_arch(ROOT / "arch/edge_32x32.yaml"),
                         hwsim.load_workload(ROOT / "workloads/resnet18.yaml"), weight_bits=4, act_bits=8)
    assert main(["simulate", str(ROOT / "arch/edge_32x32.yaml"), str(ROOT / "workloads/resnet18.yaml"),
                 "--wbits", "4", "--abits", "8", "--out", str(tmp_path / "cli")]) == 0
    with (tmp_path / "cli" / "layers.csv").open() as f:
        rows = list(csv.DictReader(f))
    df = sim.layers
    assert list(df.columns) == list(rows[0])
    assert list(df["layer"]) == [r["layer"] for r in rows]
    assert [int(v) for v in df["total_cycles"]] == [int(r["total_cycles"]) for r in rows]
    assert sim.totals["total_cycles"] == sum(int(r["total_cycles"]) for r in rows)
    # ResNet-18 has 1.814 G MACs (torchvision's figure; workloads/resnet18.yaml's own test pins it to 1 %)
    assert 1.80e9 < sim.totals["macs"] < 1.83e9
    assert set(sim.bits.values()) == {(4, 8, 8)}
    written = sim.to_dir(tmp_path / "api")
    assert sorted(written) == sorted(p.name for p in (tmp_path / "cli").iterdir())  # what the CLI writes
    for name in ("layers.csv", "energy.csv", "bandwidth.csv", "tensors.csv"):
        assert (tmp_path / "api" / name).read_text() == (tmp_path / "cli" / name).read_text(), name


def test_results_are_frozen_and_options_keyword_only():
    sim = hwsim.simulate(ROOT / "arch/edge_32x32.yaml", ROOT / "workloads/digits_cnn.yaml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        sim.result = None  # type: ignore[misc]
    with pytest.raises(TypeError):
        sim.totals["total_cycles"] = 0  # type: ignore[index]
    df = sim.layers
    df.loc[0, "total_cycles"] = -1  # a copy: the result is unchanged
    assert sim.layers.loc[0, "total_cycles"] > 0
    with pytest.raises(TypeError):
        # type: ignore
        hwsim.simulate(ROOT / "arch/edge_32x32.yaml", ROOT / "workloads/digits_cnn.yaml", 4, 4)


def test_quant_file_and_bits_exclude_each_other():
    with pytest.raises(hwsim.errors.SpecError, match="either quant or bits"):
        hwsim.simulate(ROOT / "arch/edge_32x32.yaml", ROOT / "workloads/resnet18.yaml",
                       quant=ROOT / "workloads/quant/resnet18_mixed.yaml", bits={"conv1": (8, 8)})


def test_bits_naming_no_layer_is_an_argument_error():
    # the error names the function and the argument, as the other bits errors do (it said "<bits>: nolayer:")
    with pytest.raises(hwsim.errors.SpecError) as e:
        hwsim.simulate(ROOT / "arch/edge_32x32.yaml", ROOT / "workloads/digits_cnn.yaml",
                       bits={"conv1": (8, 8), "nolayer": (4, 4)})
    assert str(e.value) == ("hwsim.simulate(): bits['nolayer']: expected a layer of workload 'digits_cnn' "
                            "(conv1, conv2, fc), found 'nolayer'")


def test_verify_on_a_recorded_avx2_case(tmp_path):
    """hwsim.verify on one of the 69 cases onnxruntime 1.32 computed on an AVX2 host (tests/data/ort_avx2):
    the x86-avx2 target reproduces its outputs exactly; the exact (VNNI) semantics miss codes there, because
    the near-255 operands overflow MLAS's int16 pair sums."""
    import numpy as np

    z = np.load(ROOT / "tests/data/ort_avx2/ort_avx2_cases.npz")
    name = "conv_u8s8_01"  # kind "conv u8s8 near-255"
    (tmp_path / "m.onnx").write_bytes(z[f"{name}/model"].tobytes())
    np.savez(tmp_path / "x.npz", **{k.split("/")[-1]: z[k] for k in z.files if k.startswith(f"{name}/in/")})
    np.savez(tmp_path / "y.npz", y=z[f"{name}/y"])
    ok = hwsim.verify(tmp_path / "m.onnx", inputs=tmp_path / "x.npz", expected=tmp_path / "y.npz",
                      target="x86-avx2")
    assert ok.passed and ok.mismatches == 0 and ok.elements == z[f"{name}/y"].size
    vnni = hwsim.verify(tmp_path / "m.onnx", inputs=tmp_path / "x.npz", expected=tmp_path / "y.npz",
                        target="x86-avx512-vnni")
    assert not vnni.passed and vnni.mismatches > 0
    assert vnni.data["target"]["name"] == "x86-avx512-vnni"
    assert vnni.data["target"]["u8s8_int16_pairs"] is False
    assert ok.data["target"]["u8s8_int16_pairs"] is True
    with pytest.raises(hwsim.errors.SpecError, match="profile"):
        hwsim.verify(tmp_path / "m.onnx", profile="nope")


def test_verify_keyword_errors_name_the_keyword(tmp_path, capsys):
    # each bad keyword: one SpecError naming hwsim.verify() and the keyword (the trial found "command line:
    # --target" for target=, and int16_pairs="yes", seed="3", out=123 accepted or raised TypeError)
    import numpy as np

    from hwsim.cli import main

    z = np.load(ROOT / "tests/data/ort_avx2/ort_avx2_cases.npz")
    m = tmp_path / "m.onnx"
    m.write_bytes(z["conv_u8s8_01/model"].tobytes())
    for kw, msg in [({"target": "bogus"}, "target: expected one of host, x86-avx2, x86-avx512-core"),
                    ({"target": None}, "target: expected one of host, "),
                    ({"int16_pairs": "yes"}, "int16_pairs: expected true or false, found 'yes'"),
                    ({"seed": "3"}, "seed: expected an integer >= 0, found '3'"),
                    ({"seed": 1.5}, "seed: expected an integer >= 0, found 1.5"),
                    ({"seed": True}, "seed: expected an integer >= 0, found True"),
                    ({"out": 123}, "out: expected a folder path (str or Path), found 123"),
                    ({"seed": -1}, "seed: expected an integer >= 0, found -1"),
                    ({"expected": tmp_path / "y.npz"}, "inputs: expected the .npz of inputs the recorded "
                                                       "outputs (expected) were computed from, found none"),
                    ({"out": m}, "out: expected a folder (verify.json is written into it), found the file "
                                 f"{m}")]:
        with pytest.raises(hwsim.errors.SpecError) as e:
            hwsim.verify(m, **kw)
        assert str(e.value).startswith("hwsim.verify(): " + msg), str(e.value)
    # a target other than this host's without a recording: named as the API's keyword
    from hwsim.onnxq import host_info

    other = "x86-avx512-vnni" if host_info().target == "x86-avx2" else "x86-avx2"
    with pytest.raises(hwsim.errors.SpecError) as e:
        hwsim.verify(m, target=other)
    h = host_info().target
    assert str(e.value).startswith(f"hwsim.verify(): target: expected this host's target ({h}) unless "
                                   f"expected gives outputs recorded on {other}, found '{other}'")
    # numpy integers and booleans are integers and booleans (a sweep's seeds often are numpy's)
    import numpy as np

    x = tmp_path / "x.npz"
    np.savez(x, **{k.split("/")[-1]: z[k] for k in z.files if k.startswith("conv_u8s8_01/in/")})
    ok = hwsim.verify(m, inputs=x, seed=np.int64(3), int16_pairs=np.False_)
    assert ok.mismatches == 0 and ok.data["inputs"]["source"] == str(x)
    # the command names its option
    assert main(["verify", str(m), "--seed", "-1", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "hwsim: error: command line: --seed: expected an integer >= 0, found -1", err
    # --int16-pairs under a saturating accumulator names the option and the arch key, not the model's node
    arch = tmp_path / "sat.yaml"
    text = (ROOT / "arch/edge_32x32.yaml").read_text()
    assert "acc_mode: wrap" in text
    arch.write_text(text.replace("acc_mode: wrap", "acc_mode: saturate"))
    assert main(["verify", str(m), "--arch", str(arch), "--int16-pairs", "--out", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"hwsim: error: command line: --int16-pairs: expected an arch whose pe.acc_mode is wrap, "
                   f"found pe.acc_mode saturate in {arch}"), err
