"""Mixed precision by integer linear programming (HAWQ-V3: Yao, Dong et al., ICML 2021, §3.4).

Each layer l picks exactly one option o (a (weight_bits, act_bits) pair): binary x[l, o], sum over o of
x[l, o] = 1. Minimize the total sensitivity sum x[l, o] * s[l, o] subject to budgets on additive costs
(cycles, energy, weight bytes, BOPS): sum x[l, o] * c[l, o] <= B. Layers run one after another on the array and
hwsim's timing and energy are per layer, so latency and energy are exactly additive. Solved with PuLP's CBC.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

__all__ = ["LayerOption", "solve_mixed_precision", "brute_force_mixed_precision", "MixedPrecisionResult"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayerOption:
    """One choice for one layer: its bits, its sensitivity (a loss, >= 0) and its costs (additive)."""

    layer: str
    bits: tuple[int, int]
    sensitivity: float
    costs: dict[str, float]


@dataclass(frozen=True)
class MixedPrecisionResult:
    """The chosen bits per layer (``None`` when no assignment meets the budgets), total sensitivity and
    costs."""

    bits: dict[str, tuple[int, int]] | None
    sensitivity: float
    costs: dict[str, float]
    status: str


def _clean(options: dict[str, list[LayerOption]]) -> dict[str, list[LayerOption]]:
    out = {}
    for layer, opts in options.items():
        if not opts:
            raise ValueError(f"layer {layer!r} must have at least one option")
        fixed = []
        for o in opts:
            if o.sensitivity < 0:
                log.warning("layer %s bits %s: negative sensitivity %.4g treated as 0 (quantizing it measured "
                            "no loss)", layer, o.bits, o.sensitivity)
                o = LayerOption(o.layer, o.bits, 0.0, o.costs)
            fixed.append(o)
        out[layer] = fixed
    return out


def _solver(pulp):
    """CBC: a system/extra install (COIN_CMD) when present, else the binary bundled with PuLP 3."""
    import warnings

    coin = pulp.COIN_CMD(msg=False)
    if coin.available():
        return coin
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # bundled CBC: deprecated for PuLP 4, fine on 3.x
        return pulp.PULP_CBC_CMD(msg=False)


def solve_mixed_precision(options: dict[str, list[LayerOption]], budgets: dict[str, float]) -> MixedPrecisionResult:
    """Minimize total sensitivity under ``budgets`` (cost name -> upper bound).

    Parameters
    ----------
    options : dict
        Layer name -> its options (each with the same cost names as ``budgets``).
    budgets : dict
        Upper bounds on the sums of costs.

    Negative sensitivities (a measured gain) are clamped to 0 and logged.

    Raises
    ------
    ValueError
        A layer without options, or a budget naming a cost the options do not have.
    """
    import pulp

    opts = _clean(options)
    for name in budgets:
        for layer, lo in opts.items():
            if any(name not in o.costs for o in lo):
                raise ValueError(f"budget {name!r} is not a cost of every option of layer {layer!r}")
    prob = pulp.LpProblem("mixed_precision", pulp.LpMinimize)
    x = {(lay, i): prob.add_variable(f"x_{j}_{i}", 0, 1, cat="Binary")
         for j, (lay, lo) in enumerate(opts.items()) for i in range(len(lo))}
    prob += pulp.lpSum(x[lay, i] * o.sensitivity for lay, lo in opts.items() for i, o in enumerate(lo))
    for lay, lo in opts.items():
        prob += pulp.lpSum(x[lay, i] for i in range(len(lo))) == 1
    for name, bound in budgets.items():
        prob += pulp.lpSum(x[lay, i] * o.costs[name] for lay, lo in opts.items() for i, o in enumerate(lo)) <= bound
    prob.solve(_solver(pulp))
    status = pulp.LpStatus[prob.status]
    if status != "Optimal":
        return MixedPrecisionResult(None, float("nan"), {}, status)
    chosen = {lay: next(o for i, o in enumerate(lo) if x[lay, i].value() > 0.5) for lay, lo in opts.items()}
    return MixedPrecisionResult({lay: o.bits for lay, o in chosen.items()},
                                sum(o.sensitivity for o in chosen.values()),
                                {k: sum(o.costs[k] for o in chosen.values()) for k in budgets}, status)


def brute_force_mixed_precision(options: dict[str, list[LayerOption]],
                                budgets: dict[str, float]) -> MixedPrecisionResult:
    """The same problem by enumeration (for tests and tiny cases); ties go to the first assignment found."""
    opts = _clean(options)
    best = None
    for combo in itertools.product(*opts.values()):
        costs = {k: sum(o.costs[k] for o in combo) for k in budgets}
        if all(costs[k] <= b + 1e-9 for k, b in budgets.items()):
            sens = sum(o.sensitivity for o in combo)
            if best is None or sens < best[0] - 1e-12:
                best = (sens, combo, costs)
    if best is None:
        return MixedPrecisionResult(None, float("nan"), {}, "Infeasible")
    return MixedPrecisionResult({o.layer: o.bits for o in best[1]}, best[0], best[2], "Optimal")
