"""The mixed-precision ILP equals brute force; negative sensitivities are clamped and logged."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from hwsim.explore._ilp import LayerOption, brute_force_mixed_precision, solve_mixed_precision


def test_by_hand():
    # two layers, options 8/8 (no loss, cost 10) and 4/4 (loss 1 and 3, cost 4): budget 14 -> only one layer may
    # drop to 4/4; the cheaper loss is layer a's -> a=4/4, b=8/8, total sensitivity 1, cost 14
    opts = {"a": [LayerOption("a", (8, 8), 0.0, {"c": 10}), LayerOption("a", (4, 4), 1.0, {"c": 4})],
            "b": [LayerOption("b", (8, 8), 0.0, {"c": 10}), LayerOption("b", (4, 4), 3.0, {"c": 4})]}
    r = solve_mixed_precision(opts, {"c": 14})
    assert (r.bits, r.sensitivity, r.costs, r.status) == ({"a": (4, 4), "b": (8, 8)}, 1.0, {"c": 14}, "Optimal")
    assert solve_mixed_precision(opts, {"c": 7}).status == "Infeasible"


def test_equals_brute_force_on_random_cases():
    rng = np.random.default_rng(0)
    for _ in range(40):
        n_layers, n_opts = int(rng.integers(2, 5)), int(rng.integers(2, 4))
        opts = {}
        for li in range(n_layers):
            lay = f"l{li}"
            opts[lay] = [LayerOption(lay, (8 - 2 * k, 8 - 2 * k), float(rng.random() * (k + 1)),
                                     {"cycles": float(rng.integers(1, 100)), "bytes": float(rng.integers(1, 50))})
                         for k in range(n_opts)]
        budgets = {"cycles": float(rng.integers(50, 300)), "bytes": float(rng.integers(20, 150))}
        ilp, bf = solve_mixed_precision(opts, budgets), brute_force_mixed_precision(opts, budgets)
        assert ilp.status == bf.status
        if bf.status == "Optimal":
            assert ilp.sensitivity == pytest.approx(bf.sensitivity, abs=1e-9)
            assert all(ilp.costs[k] <= budgets[k] + 1e-9 for k in budgets)


def test_negative_sensitivity_is_clamped_and_logged(caplog):
    opts = {"a": [LayerOption("a", (8, 8), 0.0, {"c": 2}), LayerOption("a", (4, 4), -0.01, {"c": 1})]}
    with caplog.at_level(logging.WARNING):
        r = solve_mixed_precision(opts, {"c": 1})
    assert r.bits == {"a": (4, 4)} and r.sensitivity == 0.0
    assert "negative sensitivity -0.01 treated as 0" in caplog.text


def test_bad_budget_name():
    opts = {"a": [LayerOption("a", (8, 8), 0.0, {"c": 2})]}
    with pytest.raises(ValueError, match=r"^budget 'energy' is not a cost of every option of layer 'a'$"):
        solve_mixed_precision(opts, {"energy": 1})
