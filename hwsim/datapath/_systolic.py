"""A cycle-stepped systolic array (OS, WS, IS): operands move register to register; cycles are measured.

Every PE's registers are numpy arrays over the array (``rows x cols``); one loop iteration is one clock edge:
every register takes the value its neighbour (left or above) or the array edge offers in that cycle, and
every PE whose streamed operand is valid does one multiply-accumulate. The loop runs until the last output of
the fold has *left the array* (been written into the array's output register), counting the edges; nothing
in it knows a cycle formula. The machine is the one ``hwsim/rtl/systolic_array.v`` describes in Verilog,
register for register (``docs/rtl.md``); the co-simulation tests check that both agree bit and cycle.

Cycle convention: the inputs of cycle ``c`` (``c = 0, 1, ...``) are captured by clock edge ``c + 1``; a fold's
count is the edge that writes its last output into the output register, so the first operand in is edge 1.

The GEMM ``(M, K) x (K, N)`` is cut into folds as :func:`hwsim.mapping.map_layer` cuts it
(``shared/DESIGN.md`` "Dataflows"); every fold is a zero-padded full tile (padded PEs compute zeros on valid
streams, as the timing model charges a partial fold as a full one), and folds run one after the other.

``os`` (output stationary; Sr = M, Sc = N, T = K)
    ``a[i, k]`` enters row ``i`` from the left in cycle ``k + i`` with a ``last`` flag on ``k = T - 1`` and
    moves right; ``b[k, j]`` enters column ``j`` from the top in cycle ``k + j`` and moves down. PE (i, j)
    adds the product of the operands it takes in to its accumulator; on ``last`` it writes the finished sum
    into its output register and clears the accumulator. Output registers form one chain per column that moves
    *up*; the top row's output register is the output port. PE (i, j) finishes at edge ``T + i + j`` and its
    result reaches the port ``i`` edges later (no two results meet: result ``i'`` passes row ``i`` at edge
    ``T + 2i' - i + j``, PE ``i`` finishes at ``T + i + j``). Measured fold length: ``T + 2R + C - 3`` edges,
    i.e. the timing model's ``(R - 1) + T + (C - 1)`` (SCALE-Sim 3.0.0 ``systolic_compute_os.py`` stops at the
    last MAC) plus the ``R - 1`` edges the bottom row's result takes to climb to the port: the OS drain.
``ws`` (weight stationary; Sr = K, Sc = N, T = M)
    For ``R`` cycles the weight tile enters from the top with ``load`` set and shifts down (row ``r`` ends up
    holding ``w[r, :]``); then ``a[m, k]`` enters row ``k`` in cycle ``R + m + k`` and moves right, partial
    sums move down, and the partial sum of the previous K fold (0 for the first) enters the top of column
    ``j`` in cycle ``R + m + j``, so every output receives its products in ``k`` order, as
    :func:`hwsim.datapath.gemm_acc` adds them. The bottom row's partial-sum register is the output port.
    Measured fold length: ``2R + T + C - 2`` edges = the timing model's ``(2R - 1) + T + (C - 1)``.
``is`` (input stationary; Sr = K, Sc = M, T = N)
    the ``ws`` machine with the roles of the operands swapped: the ``K x M`` input tile is stationary and the
    weight columns stream (it computes ``C^T``); same counts.

Each register is checked as it moves: a partial sum must meet the streamed operand of the same output
(a ``RuntimeError`` if the skew were wrong), and an OS result must never meet another in the output chain.

Accumulators: ``wrap`` keeps exact sums and reduces them to ``acc_bits`` at the end (equal, modulo
``2^acc_bits``, to a register that wraps on every addition, as the RTL does); ``saturate`` clamps after every
addition in the PE's order (products in ``k`` order, the bias last, in the output stage).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._layers import _acc_args, _bias_vector, _finish, _int_array, _int_scalar, _shifted, _zero_point_vector

__all__ = ["SystolicResult", "FoldTrace", "systolic_gemm"]


@dataclass(frozen=True)
class FoldTrace:
    """What one fold's array saw and produced, cycle by cycle (recorded with ``systolic_gemm(trace=True)``).

    Attributes
    ----------
    index : int
        Fold number, in execution order.
    row0, col0 : int
        Offset of the tile in the (Sr, Sc) space (os: M, N; ws: K, N; is: K, M).
    rows_used, cols_used : int
        Valid rows and columns of the tile (the rest is zero padding).
    stationary : numpy.ndarray of int64, shape (R, C), or None
        The operand each PE holds after the load (ws: weights ``w[k0 + r, n0 + c]``, is: inputs
        ``a[m0 + c, k0 + r]``), zero-shifted; None for os.
    inputs : dict of str to numpy.ndarray of int64, each shape (cycles, lanes)
        The edge streams per cycle: os ``left_data`` (R), ``left_valid`` (R), ``left_last`` (R),
        ``top_data`` (C);
        ws/is ``top_data`` (C, the stationary tile, bottom row first), ``load`` (1), ``left_data`` (R),
        ``left_valid`` (R), ``psum_in`` (C, exact partial sums of the previous K fold).
    out_data, out_valid, out_tag : numpy.ndarray of int64, shape (cycles, C)
        The output port after edge ``c + 1``: value (exact sum), valid flag, and tag (os: the PE row ``i``
        of the tile; ws/is: the streamed row ``m`` resp. ``n``), -1 when not valid.
    cycles : int
        Measured edges from the first operand in to the last output out.
    last_valid_cycle : int
        Edge at which the last output of a valid (not padded) PE left.
    """

    index: int
    row0: int
    col0: int
    rows_used: int
    cols_used: int
    stationary: np.ndarray | None
    inputs: dict = field(repr=False)
    out_data: np.ndarray = field(repr=False)
    out_valid: np.ndarray = field(repr=False)
    out_tag: np.ndarray = field(repr=False)
    cycles: int = 0
    last_valid_cycle: int = 0


@dataclass(frozen=True)
class SystolicResult:
    """The outcome of :func:`systolic_gemm`.

    ``acc``: (M, N) int64 register contents (as :func:`hwsim.datapath.gemm_acc` returns them);
    ``overflow``: outputs out of range (wrap) or saturation events (saturate); ``cycles``: measured clock
    cycles, folds one after the other; ``fold_cycles``: measured cycles of each fold (first operand in to last
    output out); ``last_output_cycles``: per fold, the edge at which its last valid output left the array;
    ``exit_cycle``: (M, N) int64, the edge (counted from the start of the fold that produced the final value)
    at which each output left; ``exit_fold``: (M, N) the index of that fold; ``trace``: per-fold
    :class:`FoldTrace` when asked for, else None.
    """

    acc: np.ndarray
    overflow: int
    cycles: int
    folds: int
    fold_cycles: tuple[int, ...]
    last_output_cycles: tuple[int, ...]
    exit_cycle: np.ndarray = field(repr=False, default=None)
    exit_fold: np.ndarray = field(repr=False, default=None)
    trace: tuple[FoldTrace, ...] | None = field(repr=False, default=None)


def _clip(v, lo, hi, saturate, mask):
    """Saturate ``v`` (where ``mask``) and count the clamps; wrap mode keeps exact sums."""
    if not saturate:
        return v, 0
    c = np.clip(v, lo, hi)
    return c, int(np.count_nonzero((c != v) & mask))


def _limit(feed: int, R: int, C: int) -> int:
    # a guard against a machine that never drains (a bug), not a cycle count: any correct fold ends earlier
    return feed + 4 * (R + C) + 8


# -- output stationary ---------------------------------------------------------------------------------------

def _os_streams(a_t: np.ndarray, b_t: np.ndarray) -> dict:
    """Skewed edge streams of one OS fold: a_t (R, T) from the left, b_t (T, C) from the top."""
    R, T = a_t.shape
    C = b_t.shape[1]
    L = T + max(R, C) - 1  # cycle after the last operand's entry (row R-1 or column C-1)
    t = np.arange(L)[:, None]
    k = t - np.arange(R)[None, :]
    ok = (k >= 0) & (k < T)
    left = np.where(ok, a_t[np.arange(R)[None, :], np.clip(k, 0, T - 1)], 0)
    kb = t - np.arange(C)[None, :]
    okb = (kb >= 0) & (kb < T)
    top = np.where(okb, b_t[np.clip(kb, 0, T - 1), np.arange(C)[None, :]], 0)
    last = (ok & (k == T - 1)).astype(np.int64)
    return {"left_data": left, "left_valid": ok.astype(np.int64), "left_last": last, "top_data": top}


def _run_os(s: dict, R: int, C: int, lo: int, hi: int, sat: bool):
    left, lval, llast, top = s["left_data"], s["left_valid"] > 0, s["left_last"] > 0, s["top_data"]
    L = left.shape[0]
    a = np.zeros((R, C), np.int64)
    av = np.zeros((R, C), bool)
    al = np.zeros((R, C), bool)
    b = np.zeros((R, C), np.int64)
    acc = np.zeros((R, C), np.int64)
    out = np.zeros((R, C), np.int64)
    ov = np.zeros((R, C), bool)
    otag = np.full((R, C), -1, np.int64)
    pe_row = np.broadcast_to(np.arange(R)[:, None], (R, C))
    port_d, port_v, port_t = [], [], []
    events, done, t, need, limit = 0, 0, 0, R * C, _limit(L, R, C)
    while done < need:
        if t >= limit:
            raise RuntimeError(f"os array did not drain within {limit} cycles ({done} of {need} outputs)")
        a_in, av_in, al_in, b_in = np.empty_like(a), np.empty_like(av), np.empty_like(al), np.empty_like(b)
        a_in[:, 1:], av_in[:, 1:], al_in[:, 1:] = a[:, :-1], av[:, :-1], al[:, :-1]
        b_in[1:, :] = b[:-1, :]
        if t < L:
            a_in[:, 0], av_in[:, 0], al_in[:, 0], b_in[0, :] = left[t], lval[t], llast[t], top[t]
        else:
            a_in[:, 0], av_in[:, 0], al_in[:, 0], b_in[0, :] = 0, False, False, 0
        summed, ev = _clip(acc + np.where(av_in, a_in * b_in, 0), lo, hi, sat, av_in)
        events += ev
        fin = av_in & al_in
        up, upv, upt = np.zeros_like(out), np.zeros_like(ov), np.full_like(otag, -1)
        up[:-1], upv[:-1], upt[:-1] = out[1:], ov[1:], otag[1:]
        if np.any(fin & upv):
            raise RuntimeError("os output chain: a finished sum met another in the same register")
        out = np.where(fin, summed, up)
        ov = fin | upv
        otag = np.where(fin, pe_row, upt)
        acc = np.where(fin, 0, np.where(av_in, summed, acc))
        a, av, al, b = a_in, av_in, al_in, b_in
        port_d.append(out[0].copy())
        port_v.append(ov[0].copy())
        port_t.append(np.where(ov[0], otag[0], -1))
        done += int(np.count_nonzero(ov[0]))
        t += 1
    return np.array(port_d), np.array(port_v, dtype=np.int64), np.array(port_t), events, t


# -- weight / input stationary -------------------------------------------------------------------------------

def _ws_streams(w_t: np.ndarray, s_t: np.ndarray, psum_in: np.ndarray) -> dict:
    """Edge streams of one WS/IS fold: w_t (R, C) stationary, s_t (T, R) streamed rows, psum_in (T, C)."""
    R, C = w_t.shape
    T = s_t.shape[0]
    L = R + T + max(R, C) - 1
    top = np.zeros((L, C), np.int64)
    load = np.zeros((L, 1), np.int64)
    top[:R] = w_t[::-1]  # the bottom row enters first and is shifted down R - 1 times
    load[:R] = 1
    t = np.arange(L)[:, None]
    m = t - R - np.arange(R)[None, :]
    ok = (m >= 0) & (m < T)
    left = np.where(ok, s_t[np.clip(m, 0, T - 1), np.arange(R)[None, :]], 0)
    mp = t - R - np.arange(C)[None, :]
    okp = (mp >= 0) & (mp < T)
    psum = np.where(okp, psum_in[np.clip(mp, 0, T - 1), np.arange(C)[None, :]], 0)
    return {"top_data": top, "load": load, "left_data": left, "left_valid": ok.astype(np.int64),
            "psum_in": psum, "_left_tag": np.where(ok, m, -1), "_psum_tag": np.where(okp, mp, -1)}


def _run_ws(s: dict, R: int, C: int, lo: int, hi: int, sat: bool, T: int):
    top, load, left, lval = s["top_data"], s["load"][:, 0] > 0, s["left_data"], s["left_valid"] > 0
    psum, ltag, ptag = s["psum_in"], s["_left_tag"], s["_psum_tag"]
    L = left.shape[0]
    w = np.zeros((R, C), np.int64)
    x = np.zeros((R, C), np.int64)
    xv = np.zeros((R, C), bool)
    xt = np.full((R, C), -1, np.int64)
    p = np.zeros((R, C), np.int64)
    pt = np.full((R, C), -1, np.int64)
    pv = np.zeros((R, C), bool)
    port_d, port_v, port_t = [], [], []
    events, done, t, need, limit = 0, 0, 0, T * C, _limit(L, R, C)
    while done < need:
        if t >= limit:
            raise RuntimeError(f"ws array did not drain within {limit} cycles ({done} of {need} outputs)")
        x_in, xv_in, xt_in = np.empty_like(x), np.empty_like(xv), np.empty_like(xt)
        x_in[:, 1:], xv_in[:, 1:], xt_in[:, 1:] = x[:, :-1], xv[:, :-1], xt[:, :-1]
        above, above_t = np.empty_like(p), np.empty_like(pt)
        above[1:], above_t[1:] = p[:-1], pt[:-1]
        live = t < L
        x_in[:, 0] = left[t] if live else 0
        xv_in[:, 0] = lval[t] if live else False
        xt_in[:, 0] = ltag[t] if live else -1
        above[0] = psum[t] if live else 0
        above_t[0] = ptag[t] if live else -1
        if np.any(xv_in & (above_t != xt_in)):
            raise RuntimeError("ws array: a partial sum met the operand of another output (skew error)")
        summed, ev = _clip(above + x_in * w, lo, hi, sat, xv_in)  # the product uses the held weight
        events += ev
        p = np.where(xv_in, summed, 0)
        pv, pt = xv_in, np.where(xv_in, xt_in, -1)
        x, xv, xt = x_in, xv_in, xt_in
        if live and load[t]:  # the weight registers shift down at this edge (after the product used them)
            w = np.concatenate([top[t][None, :], w[:-1]], axis=0)
        port_d.append(p[R - 1].copy())
        port_v.append(pv[R - 1].copy())
        port_t.append(pt[R - 1].copy())
        done += int(np.count_nonzero(pv[R - 1]))
        t += 1
    if not np.array_equal(w, s["_stationary"]):
        raise RuntimeError("ws array: the loaded weights differ from the tile")
    return np.array(port_d), np.array(port_v, dtype=np.int64), np.array(port_t), events, t


def _pad_streams(streams: dict, cycles: int) -> dict:
    """Public input streams, cut or zero-padded to the fold's measured length."""
    out = {}
    for name, v in streams.items():
        if name.startswith("_"):
            continue
        if v.shape[0] > cycles:
            if np.any(v[cycles:]):
                raise RuntimeError(f"{name}: operands fed after the fold's last output")
            v = v[:cycles]
        elif v.shape[0] < cycles:
            v = np.concatenate([v, np.zeros((cycles - v.shape[0], v.shape[1]), v.dtype)])
        out[name] = v
    return out


def systolic_gemm(a_q: np.ndarray, b_q: np.ndarray, *, a_zp, b_zp, rows: int, cols: int, dataflow: str,
                  bias: np.ndarray | None = None, acc_bits: int = 32, acc_mode: str = "wrap",
                  trace: bool = False) -> SystolicResult:
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
        Added last, in the output stage (after the array).
    acc_bits, acc_mode
        As :func:`hwsim.datapath.gemm_acc`.
    trace : bool
        Record every fold's edge streams and output port (:class:`FoldTrace`).

    Returns
    -------
    SystolicResult
        ``acc`` equals ``gemm_acc(...)[0]`` and ``overflow`` its count for the same arguments. Measured
        cycles per fold: ws/is ``2R + T + C - 2`` and os ``T + 2R + C - 3``, i.e. the timing model's
        ``map_layer(...).cycles_per_fold`` (hwsim convention) for ws/is and that plus the ``R - 1`` OS drain
        (module docstring; checked in ``tests/test_systolic.py``).

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
    if m_rows < 1 or k_red < 1 or n_cols < 1:
        raise ValueError(f"M, K and N must be >= 1, found ({m_rows}, {k_red}, {n_cols})")
    R, C = int(rows), int(cols)
    bits, lo, hi = _acc_args(acc_bits, acc_mode)
    sat = acc_mode == "saturate"
    az = _int_scalar(a_zp, "a_zp")
    bz = _zero_point_vector(b_zp, "b_zp", n_cols, "column")
    b = _bias_vector(bias, n_cols, "column")
    A = _shifted(a_q, az, "a_q").astype(np.int64)
    B = _shifted(b_q, bz.reshape(1, -1), "b_q").astype(np.int64)
    out = np.zeros((m_rows, n_cols), np.int64)
    exit_cycle = np.zeros((m_rows, n_cols), np.int64)
    exit_fold = np.zeros((m_rows, n_cols), np.int64)
    events = 0
    fold_cycles, last, traces = [], [], []

    def record(r0, c0, r_used, c_used, stat, streams, port, cyc, last_valid):
        if trace:
            d, v, tg = port
            traces.append(FoldTrace(index=len(fold_cycles), row0=r0, col0=c0, rows_used=r_used,
                                    cols_used=c_used, stationary=stat, inputs=_pad_streams(streams, cyc),
                                    out_data=d, out_valid=v, out_tag=tg, cycles=cyc,
                                    last_valid_cycle=last_valid))
        fold_cycles.append(cyc)
        last.append(last_valid)

    if dataflow == "os":
        for i0 in range(0, m_rows, R):
            for j0 in range(0, n_cols, C):
                r_used, c_used = min(R, m_rows - i0), min(C, n_cols - j0)
                a_t = np.zeros((R, k_red), np.int64)
                a_t[:r_used] = A[i0:i0 + r_used]
                b_t = np.zeros((k_red, C), np.int64)
                b_t[:, :c_used] = B[:, j0:j0 + c_used]
                streams = _os_streams(a_t, b_t)
                d, v, tg, ev, cyc = _run_os(streams, R, C, lo, hi, sat)
                events += ev
                cyc_idx, col = np.nonzero(v)
                row = tg[cyc_idx, col]
                keep = (row < r_used) & (col < c_used)
                out[i0 + row[keep], j0 + col[keep]] = d[cyc_idx[keep], col[keep]]
                exit_cycle[i0 + row[keep], j0 + col[keep]] = cyc_idx[keep] + 1
                exit_fold[i0 + row[keep], j0 + col[keep]] = len(fold_cycles)
                record(i0, j0, r_used, c_used, None, streams, (d, v, tg), cyc, int(cyc_idx[keep].max()) + 1)
    else:
        # ws: stationary = B (K x N), stream = A rows (M x K); is: stationary = A^T (K x M), stream = B^T rows
        S, X = (B, A) if dataflow == "ws" else (A.T, B.T)
        n_stat = S.shape[1]
        T = X.shape[0]
        res = np.zeros((T, n_stat), np.int64)
        res_cycle = np.zeros((T, n_stat), np.int64)
        res_fold = np.zeros((T, n_stat), np.int64)
        for j0 in range(0, n_stat, C):
            c_used = min(C, n_stat - j0)
            psum = np.zeros((T, C), np.int64)
            for k0 in range(0, k_red, R):
                r_used = min(R, k_red - k0)
                w_t = np.zeros((R, C), np.int64)
                w_t[:r_used, :c_used] = S[k0:k0 + r_used, j0:j0 + c_used]
                s_t = np.zeros((T, R), np.int64)
                s_t[:, :r_used] = X[:, k0:k0 + r_used]
                streams = _ws_streams(w_t, s_t, psum)
                streams["_stationary"] = w_t
                d, v, tg, ev, cyc = _run_ws(streams, R, C, lo, hi, sat, T)
                events += ev
                cyc_idx, col = np.nonzero(v)
                m = tg[cyc_idx, col]
                psum = np.zeros((T, C), np.int64)
                psum[m, col] = d[cyc_idx, col]
                keep = col < c_used
                res_cycle[m[keep], j0 + col[keep]] = cyc_idx[keep] + 1
                res_fold[m[keep], j0 + col[keep]] = len(fold_cycles)
                record(k0, j0, r_used, c_used, w_t, streams, (d, v, tg), cyc, int(cyc_idx[keep].max()) + 1)
            res[:, j0:j0 + c_used] = psum[:, :c_used]
        if dataflow == "ws":
            out, exit_cycle, exit_fold = res, res_cycle, res_fold
        else:
            out, exit_cycle, exit_fold = res.T.copy(), res_cycle.T.copy(), res_fold.T.copy()
    if sat:
        events += _finish(out, b, (1, n_cols), bits, lo, hi, acc_mode)
    else:
        events = _finish(out, b, (1, n_cols), bits, lo, hi, acc_mode)
    return SystolicResult(acc=out, overflow=int(events), cycles=int(sum(fold_cycles)), folds=len(fold_cycles),
                          fold_cycles=tuple(fold_cycles), last_output_cycles=tuple(last),
                          exit_cycle=exit_cycle, exit_fold=exit_fold, trace=tuple(traces) if trace else None)
