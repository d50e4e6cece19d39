"""Pareto fronts: the points no other point beats on every objective."""

from __future__ import annotations

import numpy as np

__all__ = ["pareto_mask"]


def pareto_mask(values: np.ndarray, maximize: list[bool]) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``values``.

    Parameters
    ----------
    values : ndarray, shape (n_points, n_objectives), float
        One row per point. NaN rows are never on the front.
    maximize : list of bool, length n_objectives
        Whether each objective is to be maximized (else minimized).

    A point is dominated when another is at least as good on every objective and strictly better on one;
    exact duplicates of a front point are all on the front.

    Raises
    ------
    ValueError
        ``maximize`` does not have one entry per column.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != len(maximize):
        raise ValueError(f"values must have shape (n, {len(maximize)}), not {v.shape}")
    sign = np.where(np.asarray(maximize), -1.0, 1.0)  # turn every objective into a minimization
    c = v * sign
    ok = ~np.isnan(c).any(axis=1)
    mask = np.zeros(len(c), dtype=bool)
    idx = np.flatnonzero(ok)
    cc = c[idx]
    for j, i in enumerate(idx):
        le = (cc <= cc[j]).all(axis=1)
        lt = (cc < cc[j]).any(axis=1)
        mask[i] = not (le & lt).any()
    return mask
