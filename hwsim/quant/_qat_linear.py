"""Trainable quantized GEMMs of a transformer for quantization-aware training: the Linear layers and the
activation x activation matmuls (attention scores and context) of an encoder whose GEMMs run on the integer
datapath and whose nonlinearities stay in float (as :mod:`hwsim.models.minilm`).

Each :class:`QATGemm` carries torch parameters (for a projection: the float weight ``(out, in)``, the bias,
one
LSQ step per output channel; for a matmul: nothing but the quantizers) and its activation quantizers, each an
LSQ+ step and offset (Esser et al., ICLR 2020; Bhalgat et al., CVPR-W 2020, as :func:`lsq_quantize`)
initialized from an MSE (LSQ+) or min/max (LSQ) calibration (:func:`hwsim.quant.calibrate`). It computes a
GEMM twice:

* :meth:`QATGemm.exact` (numpy, no torch): the integer GEMM of the datapath with this package's ONNX-exact
  functions: input codes :func:`hwsim.quant.quantize` of an asymmetric unsigned per-tensor quantizer; weight
  codes symmetric, signed, restricted range, per output channel; int32 bias :func:`hwsim.quant.quantize_bias`;
  the accumulator :func:`hwsim.quant.exact_gemm_acc`; output ``f32(acc) * f32(s_x * s_w)``. For a matmul both
  operands are activations (the first at ``act_bits``, the second at ``weight_bits``, the workload
  convention), per head;
* :meth:`QATGemm.surrogate` (torch): the textbook LSQ fake quantization of the same operands, for the
  gradients only; :meth:`QATGemm.pair` returns it with the exact value substituted
  (``y = y_s + (y_exact - y_s).detach()``), so that the loss is that of the integer network.

:meth:`QATGemm.export` gives the quantizers and integer weights in the form the datapath inference takes
(:meth:`hwsim.models.minilm.quantized_gemms_from_parts`), and the trained network's datapath output equals its
:meth:`exact` forward bit for bit (tests/test_models_minilm_qat.py).
"""

from __future__ import annotations

import math

import numpy as np

from ..numerics import QParams, quantize
from ._fakequant import exact_gemm_acc, quantize_bias

__all__ = ["QATGemm"]


def _act_init(x: np.ndarray, bits: int, method: str) -> tuple[float, float]:
    from ._calibrate import calibrate

    qp = calibrate(np.asarray(x, np.float32), bits, method)
    return float(qp.scale), float(qp.zero_point)


class QATGemm:
    """One trainable quantized GEMM.

    Parameters
    ----------
    torch : module
        The imported torch.
    bits : (int, int)
        ``(weight_bits, act_bits)``, each 2..8 (checked by the caller, :func:`hwsim.quant.check_qat_bits`).
    calib_a : numpy.ndarray
        Float inputs (first operand) of calibration data; initializes the input quantizer.
    weight, bias : numpy.ndarray of float32, optional
        A projection's ``(out, in)`` weight and ``(out,)`` bias; None for an activation x activation matmul.
    calib_b : numpy.ndarray, optional
        A matmul's calibration second operand (quantized at ``weight_bits``).
    learn_offset : bool
        LSQ+ (learned zero points; steps and offsets initialized from the MSE-optimal range of
        :func:`hwsim.quant.calibrate`, LSQ+'s §3.2 initialization by minimum quantization error, as
        :func:`hwsim.quant.train_qat`'s "lsq+") or LSQ (min/max-calibrated, zero points fixed).
    weight_init : "max" or "lsq"
        Initial weight steps: ``max|w| / Qp`` per output channel (PTQ's per-channel min/max, so that training
        starts from the PTQ network) or LSQ's ``2 <|w|> / sqrt(Qp)`` (Esser et al. §2.1).

    Attributes
    ----------
    params : list of torch.nn.Parameter
        What the optimizer trains.
    """

    def __init__(self, torch, bits, calib_a, *, weight=None, bias=None, calib_b=None, learn_offset=True,
                 weight_init: str = "max"):
        self.torch = torch
        self.wb, self.ab = int(bits[0]), int(bits[1])
        self.linear = weight is not None
        self.params = []
        self.q = {}   # operand -> [step, offset, bits]
        ops = [("a", calib_a, self.ab)] + ([] if self.linear else [("b", calib_b, self.wb)])
        for key, cal, b in ops:
            s, z = _act_init(cal, b, "mse" if learn_offset else "minmax")
            st = torch.nn.Parameter(torch.tensor(s, dtype=torch.float32))
            zt = torch.nn.Parameter(torch.tensor(z, dtype=torch.float32)) if learn_offset \
                else torch.tensor(z, dtype=torch.float32)
            self.q[key] = (st, zt, b)
            self.params += [st, zt] if learn_offset else [st]
        if self.linear:
            w = torch.tensor(np.asarray(weight, np.float32))
            self.W = torch.nn.Parameter(w.clone())
            self.B = torch.nn.Parameter(torch.tensor(np.asarray(bias, np.float32)))
            qp_hi = (1 << (self.wb - 1)) - 1
            if weight_init not in ("max", "lsq"):
                raise ValueError(f"weight_init: expected 'max' or 'lsq', found {weight_init!r}")
            s0 = (w.abs().amax(dim=1) / qp_hi if weight_init == "max"
                  else 2 * w.abs().mean(dim=1) / math.sqrt(qp_hi))
            self.SW = torch.nn.Parameter(s0.clamp_min(1e-8))
            self.params += [self.W, self.B, self.SW]

    # ------------------------------------------------------------------------------------ quantizers
    def act_qparams(self, key: str = "a") -> QParams:
        """The current per-tensor quantizer of operand ``key`` ("a"; "b" for a matmul's second operand):
        asymmetric unsigned, zero point the offset rounded half to even and clipped to the code range."""
        st, zt, b = self.q[key]
        s = np.float32(st.detach().clamp_min(1e-8).item())
        z = int(np.clip(np.rint(float(zt.detach())), 0, (1 << b) - 1))
        return QParams(scale=s, zero_point=z, bits=b, signed=False)

    def weight_qparams(self) -> QParams:
        """Per output channel, symmetric, restricted range, for the ``(in, out)`` B operand (axis 1)."""
        s = self.SW.detach().clamp_min(1e-8).numpy().astype(np.float32)
        return QParams(scale=s, zero_point=np.zeros(s.shape, np.int32), bits=self.wb, signed=True, axis=1,
                       narrow_range=True)

    def export(self) -> dict:
        """A projection: ``{"a": QParams, "codes": (in, out) int codes, "qp": QParams (axis 1), "bias":
        float32 (out,), "bias_q": int32 (out,)}``; a matmul: ``{"a": QParams, "b": QParams}``."""
        out = {"a": self.act_qparams("a")}
        if not self.linear:
            out["b"] = self.act_qparams("b")
            return out
        wqp = self.weight_qparams()
        out["codes"] = np.ascontiguousarray(quantize(self.W.detach().numpy().T, wqp))
        out["qp"] = wqp
        out["bias"] = self.B.detach().numpy().astype(np.float32).copy()
        out["bias_q"] = quantize_bias(out["bias"], out["a"], wqp)
        return out

    # ------------------------------------------------------------------------------------ forwards
    @staticmethod
    def exact_with(e: dict, a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        """The integer GEMM of exported quantizers ``e`` (:meth:`export`) on float inputs, float32 output:
        ``a (n, in)`` for a projection, or ``a (h, n, k)``, ``b (h, k, m)`` for a matmul (per head)."""
        a_qp = e["a"]
        a_q = quantize(a, a_qp)
        if b is None:
            acc = exact_gemm_acc(a_q, e["codes"], a_zp=int(a_qp.zero_point), b_zp=e["qp"].zero_point,
                                 bias=e["bias_q"])
            s = np.multiply(a_qp.scale, e["qp"].scale, dtype=np.float32)
            return np.multiply(acc.astype(np.float32), s, dtype=np.float32)
        b_qp = e["b"]
        b_q = quantize(b, b_qp)
        s = np.multiply(a_qp.scale, b_qp.scale, dtype=np.float32)
        out = np.empty((a.shape[0], a.shape[1], b.shape[2]), np.float32)
        for h in range(a.shape[0]):
            acc = exact_gemm_acc(a_q[h], b_q[h], a_zp=int(a_qp.zero_point), b_zp=int(b_qp.zero_point))
            out[h] = np.multiply(acc.astype(np.float32), s, dtype=np.float32)
        return out

    def _fq_act(self, key: str, v):
        from ._qat import lsq_quantize

        st, zt, b = self.q[key]
        qmax = (1 << b) - 1
        z = zt if isinstance(zt, self.torch.nn.Parameter) else zt.detach()
        return lsq_quantize(v, st.clamp_min(1e-8), 0, qmax, g=1.0 / math.sqrt(v.numel() * qmax), z=z)

    def fake_weight(self):
        """The LSQ fake-quantized weight ``(out, in)`` (torch; compute once per step, share over a batch)."""
        from ._qat import lsq_quantize

        qp_hi = (1 << (self.wb - 1)) - 1
        return lsq_quantize(self.W, self.SW.clamp_min(1e-8).reshape(-1, 1), -qp_hi, qp_hi,
                            g=1.0 / math.sqrt(self.W.shape[1] * qp_hi))

    def surrogate(self, a, b=None, *, wq=None):
        """The LSQ fake-quantized GEMM of torch inputs (float32; for the gradients); ``wq``: a projection's
        :meth:`fake_weight` computed before (default: now)."""
        F = self.torch.nn.functional
        aq = self._fq_act("a", a)
        if b is None:
            return F.linear(aq, self.fake_weight() if wq is None else wq, self.B)
        return aq @ self._fq_act("b", b)

    def pair(self, a_t, a_np, y_np, b_t=None, b_np=None, *, wq=None):
        """The torch output whose value is the exact output ``y_np`` (:meth:`exact_with` of ``a_np``,
        ``b_np``, computed by the exact network's own forward): the inputs' torch values are first replaced by
        the exact ones so that every quantizer sees the exact network's tensors; gradients flow through
        ``a_t`` and ``b_t`` and the surrogate."""
        torch = self.torch
        a_t = a_t + (torch.from_numpy(np.ascontiguousarray(a_np)) - a_t).detach()
        if b_t is not None:
            b_t = b_t + (torch.from_numpy(np.ascontiguousarray(b_np)) - b_t).detach()
        y_t = self.surrogate(a_t, b_t, wq=wq)
        return y_t + (torch.from_numpy(np.ascontiguousarray(y_np)) - y_t).detach()
