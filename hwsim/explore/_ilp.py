"""Mixed precision by integer linear programming (HAWQ-V3: Yao, Dong et al., ICML 2021, §3.4).

Each layer l picks exactly one option o (a (weight_bits, act_bits) pair): binary x[l, o], sum over o of
x[l, o] = 1. Minimize the total sensitivity sum x[l, o] * s[l, o] subject to budgets on the costs (cycles,
energy, weight bytes, BOPS): total cost <= B. Solved with PuLP's CBC.

Layers run one after another on the array and hwsim's timing and energy are per layer, so a policy's cost is
the sum of its layers' costs; but a layer's cost depends on its own bits *and* on the width its outputs are
written at, which is the next layer's act_bits (``hwsim._pipeline.resolve_bits``: the layers are a chain in
order, the last one writes at its own act_bits). The costs are therefore not additive over independent
per-layer choices. The program is exact all the same: for each adjacent pair (l, l+1), a variable
y[l, o, a] in [0, 1] per option o of layer l and act width a among layer l+1's options, with

    sum_a y[l, o, a] = x[l, o]            sum_o y[l, o, a] = sum_{o' of l+1 with act_bits a} x[l+1, o']

and layer l's cost sum_{o, a} y[l, o, a] * c[l, o, a] (c[l, o, a]: layer l at o with outputs at a bits). For
binary x these rows and columns force y to the product x[l, o] * [layer l+1's act_bits = a] (the one option
with x = 1 has all its y-row mass in the one column whose sum is 1), so no McCormick relaxation gap remains
and y need not be integer. A pair whose cost is unknown (an output width the hardware cannot take) has y
fixed at 0. The chosen policy's costs are recomputed in plain arithmetic, in layer order, and a policy that
the solver's feasibility tolerance let over a budget is cut off and the program solved again.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["LayerOption", "solve_mixed_precision", "brute_force_mixed_precision", "MixedPrecisionResult",
           "policy_costs"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayerOption:
    """One choice for one layer: its bits, its sensitivity (a loss, >= 0) and its costs.

    ``costs`` are the layer's costs with its outputs at its own act_bits. ``costs_by_out_bits`` (optional)
    maps each output width (the next layer's act_bits) to the layer's costs at that width; a width missing
    from it cannot follow this option. Without it the costs do not depend on the output width.
    """

    layer: str
    bits: tuple[int, int]
    sensitivity: float
    costs: dict[str, float]
    costs_by_out_bits: Mapping[int, dict[str, float]] | None = field(default=None, compare=False)

    def cost_at(self, out_bits: int) -> dict[str, float] | None:
        """The layer's costs with its outputs at ``out_bits``; ``None`` when that width is not possible."""
        if self.costs_by_out_bits is None:
            return self.costs
        return self.costs_by_out_bits.get(int(out_bits))


@dataclass(frozen=True)
class MixedPrecisionResult:
    """The chosen bits per layer (``None`` when no assignment meets the budgets), total sensitivity and
    costs (exact: each layer at its output width)."""

    bits: dict[str, tuple[int, int]] | None
    sensitivity: float
    costs: dict[str, float]
    status: str


def policy_costs(combo: tuple[LayerOption, ...] | list[LayerOption], names: list[str] | tuple[str, ...]
                 ) -> dict[str, float] | None:
    """Total costs of one option per layer, the layers a chain in that order: layer l's outputs at layer
    l+1's act_bits, the last layer's at its own. Summed in layer order from 0 (as ``SimResult.totals``
    sums its rows). ``None`` when some layer cannot write at the width that follows it."""
    total: dict[str, float] = {k: 0.0 for k in names}
    for i, o in enumerate(combo):
        c = o.cost_at(combo[i + 1].bits[1] if i + 1 < len(combo) else o.bits[1])
        if c is None:
            return None
        for k in names:
            total[k] += c[k]
    return total


def _clean(options: dict[str, list[LayerOption]]) -> dict[str, list[LayerOption]]:
    out = {}
    for layer, opts in options.items():
        if not opts:
            raise ValueError(f"layer {layer!r} must have at least one option")
        fixed = []
        for o in opts:
            if o.sensitivity < 0:
                log.warning("layer %s bits %s: negative sensitivity %.4g treated as 0 (quantizing it "
                            "measured no loss)", layer, o.bits, o.sensitivity)
                o = LayerOption(o.layer, o.bits, 0.0, o.costs, o.costs_by_out_bits)
            fixed.append(o)
        out[layer] = fixed
    return out


def _check_names(opts: dict[str, list[LayerOption]], budgets: Mapping[str, float]) -> None:
    for name in budgets:
        for layer, lo in opts.items():
            if any(name not in t for o in lo for t in [o.costs, *(o.costs_by_out_bits or {}).values()]):
                raise ValueError(f"budget {name!r} is not a cost of every option of layer {layer!r}")


def _solver(pulp):
    """CBC: a system/extra install (COIN_CMD) when present, else the binary bundled with PuLP 3."""
    import warnings

    coin = pulp.COIN_CMD(msg=False)
    if coin.available():
        return coin
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # bundled CBC: deprecated for PuLP 4, fine on 3.x
        return pulp.PULP_CBC_CMD(msg=False)


def solve_mixed_precision(options: dict[str, list[LayerOption]], budgets: dict[str, float],
                          max_cuts: int = 20) -> MixedPrecisionResult:
    """Minimize total sensitivity under ``budgets`` (cost name -> upper bound), with each layer's cost at the
    width its outputs are written at (the module docstring gives the program).

    Parameters
    ----------
    options : dict
        Layer name -> its options (each with the same cost names as ``budgets``), in chain order.
    budgets : dict
        Upper bounds on the total costs.
    max_cuts : int
        How many times a policy the solver's tolerance let over a budget is cut off and the program solved
        again before giving up (status ``"Over budget after cuts"``).

    Negative sensitivities (a measured gain) are clamped to 0 and logged.

    Raises
    ------
    ValueError
        A layer without options, or a budget naming a cost the options do not have.
    """
    import pulp

    opts = _clean(options)
    _check_names(opts, budgets)
    layers = list(opts)
    prob = pulp.LpProblem("mixed_precision", pulp.LpMinimize)
    x = {(lay, i): prob.add_variable(f"x_{j}_{i}", 0, 1, cat="Binary")
         for j, (lay, lo) in enumerate(opts.items()) for i in range(len(lo))}
    prob += pulp.lpSum(x[lay, i] * o.sensitivity for lay, lo in opts.items() for i, o in enumerate(lo))
    for lay, lo in opts.items():
        prob += pulp.lpSum(x[lay, i] for i in range(len(lo))) == 1
    cost_terms: dict[str, list] = {name: [] for name in budgets}
    for j, lay in enumerate(layers):
        lo = opts[lay]
        if j + 1 == len(layers):  # the last layer writes at its own act_bits
            for i, o in enumerate(lo):
                c = o.cost_at(o.bits[1])
                if c is None:
                    prob += x[lay, i] == 0
                    continue
                for name in budgets:
                    cost_terms[name].append(x[lay, i] * c[name])
            continue
        nxt = layers[j + 1]
        widths = sorted({o.bits[1] for o in opts[nxt]})
        y = {}
        for i, o in enumerate(lo):
            for a in widths:
                c = o.cost_at(a)
                y[i, a] = prob.add_variable(f"y_{j}_{i}_{a}", 0, 0 if c is None else 1)
                if c is not None:
                    for name in budgets:
                        cost_terms[name].append(y[i, a] * c[name])
            prob += pulp.lpSum(y[i, a] for a in widths) == x[lay, i]
        for a in widths:
            prob += (pulp.lpSum(y[i, a] for i in range(len(lo)))
                     == pulp.lpSum(x[nxt, k] for k, o2 in enumerate(opts[nxt]) if o2.bits[1] == a))
    for name, bound in budgets.items():
        prob += pulp.lpSum(cost_terms[name]) <= bound
    for _ in range(max_cuts + 1):
        prob.solve(_solver(pulp))
        status = pulp.LpStatus[prob.status]
        if status != "Optimal":
            return MixedPrecisionResult(None, math.nan, {}, status)
        pick = {lay: next(i for i in range(len(lo)) if x[lay, i].value() > 0.5) for lay, lo in opts.items()}
        combo = [opts[lay][pick[lay]] for lay in layers]
        costs = policy_costs(combo, list(budgets))
        if costs is not None and all(costs[k] <= b for k, b in budgets.items()):
            return MixedPrecisionResult({o.layer: o.bits for o in combo}, sum(o.sensitivity for o in combo),
                                        costs, status)
        log.info("ILP: the solver's policy is over budget in exact arithmetic (%s); cut off, solving again",
                 costs)
        prob += pulp.lpSum(x[lay, i] for lay, i in pick.items()) <= len(layers) - 1
    return MixedPrecisionResult(None, math.nan, {}, "Over budget after cuts")


def brute_force_mixed_precision(options: dict[str, list[LayerOption]], budgets: dict[str, float],
                                cost: Callable[[dict[str, tuple[int, int]]], Mapping[str, float] | None]
                                | None = None) -> MixedPrecisionResult:
    """The same problem by enumeration (for tests and tiny cases); ties go to the first assignment found.

    ``cost`` (optional) prices a whole policy (layer -> bits) independently of the options' tables, e.g. by
    simulating it; ``None`` for a policy that cannot run. By default :func:`policy_costs` of the tables.
    """
    opts = _clean(options)
    _check_names(opts, budgets)
    names = list(budgets)
    best = None
    for combo in itertools.product(*opts.values()):
        if cost is None:
            costs = policy_costs(combo, names)
        else:
            got = cost({o.layer: o.bits for o in combo})
            costs = None if got is None else {k: got[k] for k in names}
        if costs is None:
            continue
        if all(costs[k] <= b for k, b in budgets.items()):
            sens = sum(o.sensitivity for o in combo)
            if best is None or sens < best[0] - 1e-12:
                best = (sens, combo, costs)
    if best is None:
        return MixedPrecisionResult(None, math.nan, {}, "Infeasible")
    return MixedPrecisionResult({o.layer: o.bits for o in best[1]}, best[0], best[2], "Optimal")
