"""A cycle-stepped systolic array (WS, OS, IS) for small arrays: registers move one PE per cycle.

Every PE holds its registers as numpy arrays over the array (``rows x cols``); one loop iteration is one
clock cycle in which every operand register hands its value to the neighbour (right or down) and every PE
does one multiply-accumulate. The GEMM ``(M, K) x (K, N)`` is cut into folds as
:func:`hwsim.mapping.map_layer` cuts it (``shared/DESIGN.md`` "Dataflows"), each fold streamed as a zero-padded
full tile, folds back to back:

``os`` (output stationary; Sr = M, Sc = N, T = K)
    ``a[i, k]`` enters row ``i`` from the left at cycle ``k + i`` and moves right; ``b[k, j]`` enters column
    ``j`` from the top at cycle ``k + j`` and moves down; PE (i, j) accumulates ``a[i,k] b[k,j]`` at cycle
    ``k + i + j``. The last PE takes its last product at cycle ``(T-1) + (R-1) + (C-1)``: a fold lasts
    ``(R-1) + T + (C-1)`` cycles.
``ws`` (weight stationary; Sr = K, Sc = N, T = M)
    ``R`` cycles shift the weight tile in from the top (row ``r`` ends up holding ``w[r, :]``); then ``a[m, k]``
    enters row ``k`` at cycle ``R + m + k`` and moves right, and partial sums move down, so output ``(m, j)``
    leaves the bottom row at cycle ``R + m + (R-1) + j``: a fold lasts ``(2R-1) + T + (C-1)`` cycles. The
    partial sums of the previous K fold enter at the top of each column (read back from the output buffer), so
    every output receives its products in ``k`` order, as :func:`hwsim.datapath.gemm_acc` adds them.
``is`` (input stationary; Sr = K, Sc = M, T = N)
    the ``ws`` machine with the roles of the operands swapped: the ``K x M`` input tile is stationary and the
    weights stream (it computes ``C^T``).

These are the per-fold counts of ``hwsim/mapping/_plan.py`` (hwsim convention), so the simulated cycle count
equals ``map_layer(...).compute_cycles`` for every shape (checked in ``tests/test_systolic.py``). A partial
fold runs the full tile's schedule (padded PEs compute zeros), as the timing model charges it;
``last_output_cycles`` records when each fold's last *valid* result appeared, i.e. how much earlier a
controller that knew the tile's true size could start the next fold.

Accumulators: ``wrap`` keeps exact sums and reduces them to ``acc_bits`` at the end (order-independent);
``saturate`` clamps after every addition in the PE's order (products in ``k`` order, the bias last).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._layers import _acc_args, _bias_vector, _finish, _int_array, _int_scalar, _shifted, _zero_point_vector

__all__ = ["SystolicResult", "systolic_gemm"]


@dataclass(frozen=True)
class SystolicResult:
    """The outcome of :func:`systolic_gemm`.

    ``acc``: (M, N) int64 register contents (as :func:`hwsim.datapath.gemm_acc` returns them);
    ``overflow``: outputs out of range (wrap) or saturation events (saturate); ``cycles``: total clock
    cycles, folds back to back; ``fold_cycles``: cycles of each fold; ``last_output_cycles``: per fold, the
    cycle (counted from the fold's start, 1-based) at which its last valid result was produced; ``folds``.
    """

    acc: np.ndarray
    overflow: int
    cycles: int
    folds: int
    fold_cycles: tuple[int, ...]
    last_output_cycles: tuple[int, ...]


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _add(acc, v, lo, hi, saturate):
    s = acc + v
    if not saturate:
        return s, 0
    c = np.clip(s, lo, hi)
    return c, int(np.count_nonzero(c != s))


def _os_fold(a_t, b_t, R, C, lo, hi, saturate):
    """One output-stationary fold. a_t (R, T), b_t (T, C) zero-padded tiles; valid masks likewise."""
    T = a_t.shape[1]
    a_reg = np.zeros((R, C), np.int64)
    b_reg = np.zeros((R, C), np.int64)
    acc = np.zeros((R, C), np.int64)
    events = 0
    rr = np.arange(R)
    cc = np.arange(C)
    cycles = (R - 1) + T + (C - 1)
    for t in range(cycles):
        a_reg[:, 1:] = a_reg[:, :-1]
        k_in = t - rr
        ok = (k_in >= 0) & (k_in < T)
        a_reg[:, 0] = np.where(ok, a_t[rr, np.clip(k_in, 0, T - 1)], 0)
        b_reg[1:, :] = b_reg[:-1, :]
        k_in = t - cc
        ok = (k_in >= 0) & (k_in < T)
        b_reg[0, :] = np.where(ok, b_t[np.clip(k_in, 0, T - 1), cc], 0)
        acc, ev = _add(acc, a_reg * b_reg, lo, hi, saturate)
        events += ev
    return acc, events, cycles


def _ws_fold(w_t, s_t, psum_in, R, C, lo, hi, saturate):
    """One weight-stationary fold: w_t (R, C) stationary tile, s_t (T, R) streamed rows, psum_in (T, C).

    Returns the (T, C) outputs leaving the bottom row, saturation events, the fold's cycles and the cycle of
    each output's exit (T, C).
    """
    T = s_t.shape[0]
    w_reg = np.zeros((R, C), np.int64)
    for t in range(R):  # weight load: shift down from the top, last row first
        w_reg[1:, :] = w_reg[:-1, :]
        w_reg[0, :] = w_t[R - 1 - t, :]
    x_reg = np.zeros((R, C), np.int64)
    x_idx = np.full((R, C), -1, np.int64)  # which stream row (m) each x register carries
    p_reg = np.zeros((R, C), np.int64)
    p_idx = np.full((R, C), -1, np.int64)
    out = np.zeros((T, C), np.int64)
    exit_cycle = np.zeros((T, C), np.int64)
    events = 0
    rr = np.arange(R)
    cc = np.arange(C)
    cycles = (2 * R - 1) + T + (C - 1)
    for t in range(R, cycles):
        x_reg[:, 1:] = x_reg[:, :-1]
        x_idx[:, 1:] = x_idx[:, :-1]
        m_in = t - R - rr
        ok = (m_in >= 0) & (m_in < T)
        x_reg[:, 0] = np.where(ok, s_t[np.clip(m_in, 0, T - 1), rr], 0)
        x_idx[:, 0] = np.where(ok, m_in, -1)
        # partial sums: row r takes row r-1's value of the previous cycle; row 0 takes the previous K fold's
        above = np.empty_like(p_reg)
        above[1:, :] = p_reg[:-1, :]
        above_idx = np.empty_like(p_idx)
        above_idx[1:, :] = p_idx[:-1, :]
        m_top = x_idx[0, :]
        above[0, :] = np.where(m_top >= 0, psum_in[np.clip(m_top, 0, T - 1), cc], 0)
        above_idx[0, :] = m_top
        # the x value at (r, c) belongs to stream row x_idx; it meets the partial sum of the same row
        p_new, ev = _add(above, np.where(x_idx >= 0, x_reg * w_reg, 0), lo, hi, saturate)
        events += ev
        p_reg = p_new
        p_idx = x_idx.copy()
        m_out = p_idx[R - 1, :]
        done = m_out >= 0
        out[m_out[done], cc[done]] = p_reg[R - 1, done]
        exit_cycle[m_out[done], cc[done]] = t + 1
    return out, events, cycles, exit_cycle


def systolic_gemm(a_q: np.ndarray, b_q: np.ndarray, *, a_zp, b_zp, rows: int, cols: int, dataflow: str,
                  bias: np.ndarray | None = None, acc_bits: int = 32, acc_mode: str = "wrap") -> SystolicResult:
    """Run ``(a_q - a_zp) @ (b_q - b_zp) + bias`` on a cycle-stepped ``rows x cols`` systolic array.

    Parameters
    ----------
    a_q : numpy.ndarray, shape (M, K), integer
        Activations (the ifmap operand in the GEMM view).
    b_q : numpy.ndarray, shape (K, N), integer
        Weights (the filter operand).
    a_zp, b_zp : int, and int or (N,) ints
        Zero points (the PEs multiply zero-shifted operands).
    rows, cols : int >= 1
        Array size (R, C).
    dataflow : {"os", "ws", "is"}
    bias : numpy.ndarray of int, shape (N,), optional
        Added last, in the output stage.
    acc_bits, acc_mode
        As :func:`hwsim.datapath.gemm_acc`.

    Returns
    -------
    SystolicResult
        ``acc`` equals ``gemm_acc(...)[0]`` and ``overflow`` its count for the same arguments;
        ``cycles`` equals ``hwsim.mapping.map_layer(...).compute_cycles`` for a fixed-precision PE (hwsim
        timing convention).

    Raises
    ------
    TypeError, ValueError
        Bad operands (as :func:`gemm_acc`), array size or dataflow.
    """
    _int_array(a_q, "a_q", 2, "(M, K)")
    _int_array(b_q, "b_q", 2, "(K, N)")
    m_rows, k_red = a_q.shape
    if b_q.shape[0] != k_red:
        raise ValueError(f"b_q must have K = {k_red} rows (the columns of a_q), not {b_q.shape[0]}")
    n_cols = b_q.shape[1]
    if dataflow not in ("os", "ws", "is"):
        raise ValueError(f"dataflow must be 'os', 'ws' or 'is', not {dataflow!r}")
    for name, v in (("rows", rows), ("cols", cols)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, not {v!r}")
    R, C = int(rows), int(cols)
    bits, lo, hi = _acc_args(acc_bits, acc_mode)
    sat = acc_mode == "saturate"
    az = _int_scalar(a_zp, "a_zp")
    bz = _zero_point_vector(b_zp, "b_zp", n_cols, "column")
    b = _bias_vector(bias, n_cols, "column")
    A = _shifted(a_q, az, "a_q").astype(np.int64)
    B = _shifted(b_q, bz.reshape(1, -1), "b_q").astype(np.int64)
    out = np.zeros((m_rows, n_cols), np.int64)
    events = 0
    fold_cycles, last = [], []
    if dataflow == "os":
        for i0 in range(0, m_rows, R):
            for j0 in range(0, n_cols, C):
                r_used, c_used = min(R, m_rows - i0), min(C, n_cols - j0)
                a_t = np.zeros((R, k_red), np.int64)
                a_t[:r_used] = A[i0:i0 + r_used]
                b_t = np.zeros((k_red, C), np.int64)
                b_t[:, :c_used] = B[:, j0:j0 + c_used]
                acc, ev, cyc = _os_fold(a_t, b_t, R, C, lo, hi, sat)
                out[i0:i0 + r_used, j0:j0 + c_used] = acc[:r_used, :c_used]
                events += ev
                fold_cycles.append(cyc)
                last.append((k_red - 1) + (r_used - 1) + (c_used - 1) + 1)
    else:
        # ws: stationary = B (K x N), stream = A rows (M x K); is: stationary = A^T (K x M), stream = B^T rows
        S, X = (B, A) if dataflow == "ws" else (A.T, B.T)
        res = np.zeros((X.shape[0], S.shape[1]), np.int64)
        n_stat = S.shape[1]
        T = X.shape[0]
        for j0 in range(0, n_stat, C):
            c_used = min(C, n_stat - j0)
            psum = np.zeros((T, C), np.int64)
            for k0 in range(0, k_red, R):
                r_used = min(R, k_red - k0)
                w_t = np.zeros((R, C), np.int64)
                w_t[:r_used, :c_used] = S[k0:k0 + r_used, j0:j0 + c_used]
                s_t = np.zeros((T, R), np.int64)
                s_t[:, :r_used] = X[:, k0:k0 + r_used]
                psum, ev, cyc, exit_cycle = _ws_fold(w_t, s_t, psum, R, C, lo, hi, sat)
                events += ev
                fold_cycles.append(cyc)
                last.append(int(exit_cycle[:, :c_used].max()))
            res[:, j0:j0 + c_used] = psum[:, :c_used]
        out = res if dataflow == "ws" else res.T
    if sat:
        events += _finish(out, b, (1, n_cols), bits, lo, hi, acc_mode)
    else:
        events = _finish(out, b, (1, n_cols), bits, lo, hi, acc_mode)
    return SystolicResult(acc=out, overflow=int(events), cycles=int(sum(fold_cycles)), folds=len(fold_cycles),
                          fold_cycles=tuple(fold_cycles), last_output_cycles=tuple(last))
