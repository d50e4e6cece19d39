"""Affine quantizers (hwsim.quant._affine) and requantization profiles (hwsim.quant._requant)."""

from __future__ import annotations

import numpy as np

from hwsim.quant import QParams, asymmetric_per_tensor, dequantize, quantize, symmetric_per_channel


def test_qparams_ranges():
    assert (QParams(1.0, 0, 8, True).qmin, QParams(1.0, 0, 8, True).qmax) == (-128, 127)
    assert (QParams(1.0, 0, 4, False).qmin, QParams(1.0, 0, 4, False).qmax) == (0, 15)


def test_asymmetric_and_roundtrip():
    qp = asymmetric_per_tensor(-1.0, 3.0, 8)
    # scale = f32(4 / 255); zero point = rne(0 - (-1) / scale) = rne(63.75) = 64
    assert qp.scale == np.float32(4.0) / np.float32(255.0) and int(qp.zero_point) == 64
    q = quantize(np.array([-1.0, 0.0, 3.0], np.float32), qp)
    assert q.dtype == np.uint8 and q.tolist() == [0, 64, 255]
    assert dequantize(q, qp)[1] == 0.0


def test_symmetric_per_channel_4bit():
    w = np.array([[0.7, -0.35], [0.0, 0.0]], np.float32)
    qp = symmetric_per_channel(w, 4)
    assert qp.scale.tolist() == [np.float32(0.7) / np.float32(7), 1.0]
    assert quantize(w, qp).tolist() == [[7, -4], [0, 0]]  # -0.35/0.1 = -3.5 -> rne -> -4
