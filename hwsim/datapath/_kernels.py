"""Small numba kernels of the integer datapath. Private: call them through :mod:`hwsim.datapath`.

Every kernel takes operands that the Python layer has already **zero-shifted** (``x - z_x``, ``w - z_w``) into
int32, and padded (a padded input is the real value 0, so its shifted code is 0). The kernels therefore see
only plain signed integers and compile once (one dtype signature each).

Accumulation order (it matters only for the saturating kernels): each output receives its products in the
order of the reduction index, i.e. GEMM ``k = 0, 1, ..., K-1``; conv ``(c, r, s)`` row-major over the weight
layout ``(C/groups, R, S)``, which is the row order of the im2col GEMM view (``shared/DESIGN.md``). The loop
nests put the output-pixel / output-column loop innermost so that LLVM can vectorise it; that changes the
order in which *different* outputs are updated, never the order of the products within one output.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def conv2d_exact(xs, ws, out, sh, sw, dh, dw, groups):
    """Exact int64 conv sums ``out[n, k, oh, ow] += sum_{c,r,s} ws[k,c,r,s] * xs[n, g*Cg + c, ih, iw]``.

    ``ih = oh*sh + r*dh``, ``iw = ow*sw + s*dw`` (``xs`` is already padded).

    xs : (N, C, Hp, Wp) int32, zero-shifted and padded. ws : (K, Cg, R, S) int32, zero-shifted.
    out : (N, K, Ho, Wo) int64, zero-initialised (or holding the bias), updated in place.
    """
    n_b = xs.shape[0]
    k_out, cg, kr, ks = ws.shape
    ho, wo = out.shape[2], out.shape[3]
    kg = k_out // groups
    for n in range(n_b):
        for k in range(k_out):
            g = k // kg
            o = out[n, k]
            for c in range(cg):
                xc = xs[n, g * cg + c]
                for r in range(kr):
                    for s in range(ks):
                        wv = np.int64(ws[k, c, r, s])
                        if wv == 0:
                            continue
                        for oh in range(ho):
                            xrow = xc[oh * sh + r * dh]
                            orow = o[oh]
                            base = s * dw
                            if sw == 1:  # contiguous: LLVM vectorises this (about 6x on AVX-512)
                                seg = xrow[base:base + wo]
                                for ow in range(wo):
                                    orow[ow] += wv * seg[ow]
                            else:
                                for ow in range(wo):
                                    orow[ow] += wv * xrow[base + ow * sw]


@njit(cache=True)
def conv2d_saturate(xs, ws, out, sh, sw, dh, dw, groups, lo, hi):
    """As :func:`conv2d_exact`, but each addition saturates to ``[lo, hi]``; returns the saturation count.

    Products of one output arrive in ``(c, r, s)`` order. Zero products (padding, zero weights) are skipped:
    adding 0 to an in-range accumulator never saturates, so skipping them changes nothing.
    """
    n_b = xs.shape[0]
    k_out, cg, kr, ks = ws.shape
    ho, wo = out.shape[2], out.shape[3]
    kg = k_out // groups
    events = 0
    for n in range(n_b):
        for k in range(k_out):
            g = k // kg
            o = out[n, k]
            for c in range(cg):
                xc = xs[n, g * cg + c]
                for r in range(kr):
                    for s in range(ks):
                        wv = np.int64(ws[k, c, r, s])
                        if wv == 0:
                            continue
                        for oh in range(ho):
                            xrow = xc[oh * sh + r * dh]
                            orow = o[oh]
                            base = s * dw
                            for ow in range(wo):
                                v = orow[ow] + wv * xrow[base + ow * sw]
                                sat = min(max(v, lo), hi)  # branch-free so that LLVM can vectorise
                                events += sat != v
                                orow[ow] = sat
    return events


@njit(cache=True)
def gemm_exact(a, b, out):
    """Exact int64 GEMM ``out[i, j] += sum_k a[i, k] * b[k, j]`` in i-k-j order.

    a (M, K) and b (K, N) int32; out (M, N) int64.
    """
    m_rows, k_red = a.shape
    n_cols = b.shape[1]
    for i in range(m_rows):
        orow = out[i]
        for k in range(k_red):
            av = np.int64(a[i, k])
            if av == 0:
                continue
            brow = b[k]
            for j in range(n_cols):
                orow[j] += av * brow[j]


@njit(cache=True)
def gemm_saturate(a, b, out, lo, hi):
    """As :func:`gemm_exact`, saturating each addition to ``[lo, hi]`` (products in ``k`` order).

    Returns the number of saturation events.
    """
    m_rows, k_red = a.shape
    n_cols = b.shape[1]
    events = 0
    for i in range(m_rows):
        orow = out[i]
        for k in range(k_red):
            av = np.int64(a[i, k])
            if av == 0:
                continue
            brow = b[k]
            for j in range(n_cols):
                v = orow[j] + av * brow[j]
                sat = min(max(v, lo), hi)  # branch-free so that LLVM can vectorise
                events += sat != v
                orow[j] = sat
    return events


@njit(cache=True)
def add_saturate(out, addend, lo, hi):
    """``out[i] = clamp(out[i] + addend[i], lo, hi)`` over flat int64 arrays; returns the number of clamps."""
    events = 0
    for i in range(out.shape[0]):
        v = out[i] + addend[i]
        if v > hi:
            v = hi
            events += 1
        elif v < lo:
            v = lo
            events += 1
        out[i] = v
    return events


@njit(cache=True)
def maxpool2d(x, out, kh, kw, sh, sw, dh, dw, pt, pl, lowest):
    """Window maxima of ``x`` (N, C, H, W) into ``out`` (N, C, Ho, Wo): window ``(oh, ow)`` reads
    ``x[ih, iw]`` at ``ih = oh*sh - pt + r*dh``, ``iw = ow*sw - pl + s*dw`` for ``r < kh``, ``s < kw``;
    positions outside ``x`` (padding) never win. The running maximum starts at ``lowest`` and is replaced by a
    larger value or a NaN (so a NaN propagates, as ``numpy.maximum``); the first maximum wins a tie. Returns
    the number of windows that hold no real position (their output is ``lowest``).
    """
    n_b, ch, h, w = x.shape
    ho, wo = out.shape[2], out.shape[3]
    empty = 0
    for n in range(n_b):
        for c in range(ch):
            for oh in range(ho):
                for ow in range(wo):
                    best = lowest
                    seen = False
                    for r in range(kh):
                        ih = oh * sh - pt + r * dh
                        if ih < 0 or ih >= h:
                            continue
                        for s in range(kw):
                            iw = ow * sw - pl + s * dw
                            if iw < 0 or iw >= w:
                                continue
                            seen = True
                            v = x[n, c, ih, iw]
                            if v > best or v != v:
                                best = v
                    if not seen:
                        empty += 1
                    out[n, c, oh, ow] = best
    return empty
