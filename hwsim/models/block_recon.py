"""Block reconstruction PTQ (BRECQ, Li et al., ICLR 2021; QDrop, Wei et al., ICLR 2022) of an engine network.

Layer-wise AdaRound (:func:`hwsim.quant.adaround`) fits each layer's rounding to a *linear* objective, the
layer's pre-activation output error ``E||W x - W~ x^||^2``: it cannot see that a ReLU6 after the layer
discards the negative pre-activations, nor let the layers of one block compensate each other. Block
reconstruction learns the rounding of all layers of a block together, on the block's *output* error after its
activations and activation quantizers::

    loss = mean((block~(x^) - block(x))^2)  +  reg * sum_layers sum(1 - |2 h(V) - 1|^beta)

(the squared error averaged over images, channels and positions, as :func:`hwsim.quant.adaround`'s
``tr(.)/K``; BRECQ's ``lp_loss`` sums over channels, which changes the weight of ``reg`` by the channel count;
the block output taken before its own activation quantizer, whose rounding the weights cannot reduce; the
AdaRound regulariser of eq. 21-24 with ``beta`` annealed from ``beta[0]`` to ``beta[1]`` after a warm-up
fraction without it; Nagel et al., ICML 2020). ``x`` is the float network's block input, ``x^`` the quantized
network's (the blocks before it already rounded: the reconstruction is sequential, so later blocks compensate
earlier errors), ``block`` the float block and ``block~`` the fake-quantized one: soft weights ``s *
clip(floor(w / s) + h(V), -qmax, qmax)`` (``h`` the rectified sigmoid; per-channel steps ``s`` fixed from the
PTQ), the integer network's activation quantizers and code clamps (ReLU/ReLU6 as clamps, as
:class:`~hwsim.models._engine.QuantizedNetwork` runs them; straight-through gradients). With ``drop > 0``
(QDrop) each element of the block's input and of every activation inside it is, with that probability per
step, its unquantized value instead (Wei et al. 2022, eq. 8). Optionally the biases are learned on the same
loss (``lr_bias > 0``, in units of the output tensor's step, AdaQuant's bias term, Hubara et al. 2021).

After each block the rounded block and the start's own codes and biases are both run on the whole pool
from the same (already reconstructed) input, and the one with the smaller block output error is kept. That
is a per-block guarantee only (a block's smaller error can still cost more downstream), so at the end the
reconstructed network and the start are both run on the pool (the datapath) and the start is returned
unless the reconstructed network's logit error is lower. With the default 300 steps some rounding
variables of a small layer may not have reached 0 or 1, and then the start often wins (measured on small
random CNNs; more ``iters`` or ``init="codes"`` helps there). A lower error on the pool is not a lower error
on unseen inputs: on MobileNetV2 with 64 crops of 10 photos the evaluation SQNR fell (docs/qat.md).

Blocks (:func:`reconstruction_blocks`): consecutive ops closed after every layer without activation (the
linear bottlenecks of MobileNetV2, whose outputs are the residual stream) and at the network output. For
MobileNetV2: the stem with the first bottleneck, the 16 inverted-residual blocks, and the last 1x1 conv with
the pooling and the classifier (18 blocks).

The images are a fixed pool (the calibration images; typically augmented crops of the calibration photos),
each step a seeded random batch of it. The result is a new :class:`~hwsim.models._engine.QuantizedNetwork`
with the learned codes (and biases) and the start's activation quantizers and weight steps; it runs on the
datapath like any other (for MobileNetV2-like networks, without max pooling, it can be checked bit for bit
against :func:`hwsim.models.mobilenet_qat.integer_forward`, as :func:`hwsim.models.mobilenet_qat.qat_evaluate`
does).

Assumptions: the block's fake-quantized forward is float32 torch and differs from the integer network by the
requantization multiplier's rounding, the int32 bias and the residual rescale (a code here and there); the
reconstruction is fitted on the pool only, never on evaluation images. Deterministic on one machine for one
``threads`` value (seeded generators, ``torch.use_deterministic_algorithms``); another thread count or CPU
sums torch's float32 reductions in another order and can round a weight otherwise. torch is optional
(``pip install torch==2.13.0``): :class:`hwsim.errors.MissingDependency` without it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np

from ..quant import (
    ADAROUND_GAMMA,
    ADAROUND_ZETA,
    config_error,
    dequantize,
    is_config_int,
    is_config_number,
    quantize_bias,
)
from ._engine import Conv, Pool, QuantizedNetwork, replace_axis

__all__ = ["BlockReconConfig", "reconstruction_blocks", "block_reconstruct"]


@dataclass(frozen=True, kw_only=True)
class BlockReconConfig:
    """Hyper-parameters of :func:`block_reconstruct`. The regulariser's numbers are BRECQ's and AIMET's
    (``reg`` 0.01, ``beta`` 20 -> 2, warm-up 0.2), but the reconstruction error here is a mean over channels
    where BRECQ sums them, so the same ``reg`` weighs C times more against it; steps, batch and learning rate
    are cut to what one CPU core affords: BRECQ runs 20,000 steps of 32 images at lr 1e-3 per block on a GPU;
    with 300 steps a learning rate of 5e-2 lets the rounding variables saturate (``|V| >= 2.4``, ``h(V)`` at 0
    or 1), so that the rounded block is the optimised soft one (at 1e-2 they had moved too little and rounding
    lost what the soft block had gained: docs/qat.md).

    Attributes
    ----------
    iters : int
        Adam steps per block (1..100000).
    batch_size : int
        Pool images per step (1..1024).
    lr : float
        Adam learning rate of the rounding variables ``V`` (0, 1].
    lr_bias : float
        Adam learning rate of the biases in units of the output tensor's step (of 0.01 for the network's
        unquantized output, the logits), [0, 1]; 0 keeps the biases
        the reconstruction starts from (``init="frac"``: the float biases; ``"codes"``: the start's
        bias-corrected ones).
    reg : float
        Weight of the rounding regulariser (>= 0).
    beta : (float, float)
        Annealing of the regulariser's exponent, start and end (> 0).
    warmup : float
        Fraction of ``iters`` without the regulariser, [0, 1).
    drop : float
        QDrop probability of keeping an activation element unquantized, [0, 1); 0 is BRECQ.
    init : {"frac", "codes"}
        ``V`` starts at the fractional part of ``w / s`` (AdaRound, BRECQ) or at the start network's codes
        (``h(V)`` 0.25 below / 0.75 above: a start already AdaRound-ed keeps its rounding until the loss
        moves it).
    freeze : tuple of str
        Layers that keep the start's codes and biases (their rounding is not learned; e.g. a classifier
        with more weights than the pool has outputs to fit).
    threads : int
        torch threads (1..64).
    seed : int
    """

    iters: int = 300
    batch_size: int = 8
    lr: float = 5e-2
    lr_bias: float = 1e-2
    reg: float = 0.01
    beta: tuple = (20.0, 2.0)
    warmup: float = 0.2
    drop: float = 0.0
    init: str = "frac"
    freeze: tuple = ()
    threads: int = 1
    seed: int = 0

    def __post_init__(self):
        def integer(lo, hi):
            return lambda v: is_config_int(v) and lo <= v <= hi

        def number(ok):
            return lambda v: is_config_number(v) and ok(float(v))

        checks = (("iters", integer(1, 100000), "an integer in 1..100000"),
                  ("batch_size", integer(1, 1024), "an integer in 1..1024"),
                  ("lr", number(lambda v: 0 < v <= 1), "a learning rate in (0, 1]"),
                  ("lr_bias", number(lambda v: 0 <= v <= 1), "a learning rate in [0, 1]"),
                  ("reg", number(lambda v: v >= 0), "a number >= 0"),
                  ("beta", lambda v: isinstance(v, tuple) and len(v) == 2
                   and all(is_config_number(b) and b > 0 for b in v), "a tuple of two numbers > 0"),
                  ("warmup", number(lambda v: 0 <= v < 1), "a fraction in [0, 1)"),
                  ("drop", number(lambda v: 0 <= v < 1), "a probability in [0, 1)"),
                  ("init", lambda v: v in ("frac", "codes"), "'frac' or 'codes'"),
                  ("freeze", lambda v: isinstance(v, tuple) and all(isinstance(n, str) for n in v),
                   "a tuple of layer names"),
                  ("threads", integer(1, 64), "an integer in 1..64"),
                  ("seed", integer(0, 2 ** 63 - 1), "an integer in 0..2**63-1"))
        for key, ok, what in checks:
            if not ok(getattr(self, key)):
                raise config_error(f"recon.{key}", what, getattr(self, key))


def reconstruction_blocks(net) -> list[list]:
    """The network's ops cut into reconstruction blocks: a block closes after every
    :class:`~hwsim.models._engine.Conv` without activation and at the network's output.

    Returns
    -------
    list of list of ops (``Conv`` / ``Pool``), in network order; their concatenation is ``net.ops``.

    Raises
    ------
    ValueError
        A residual that reaches back past its block's input (the block could not be run from one input).
    """
    blocks, cur = [], []
    for op in net.ops:
        cur.append(op)
        if isinstance(op, Conv) and (op.act is None or op.dst == net.output):
            blocks.append(cur)
            cur = []
    if cur:
        blocks.append(cur)
    for b in blocks:
        inside = {b[0].src}
        for op in b:
            name = op.name if isinstance(op, Conv) else op.dst
            if op.src not in inside:
                raise ValueError(f"{name}: input {op.src!r} is not the input of its block ({b[0].src!r}) or "
                                 f"computed inside it")
            if isinstance(op, Conv) and op.residual is not None and op.residual not in inside:
                raise ValueError(f"layer {op.name}: residual {op.residual!r} is not the input of its block "
                                 f"({b[0].src!r}) or computed inside it")
            inside.add(op.dst)
    return blocks


def _import_torch():
    try:
        import torch
    except ImportError as e:
        from ..errors import MissingDependency

        raise MissingDependency(f"block reconstruction needs torch ({e}): "
                                "pip install torch==2.13.0") from None
    return torch


class _Block:
    """One block's fake-quantized forward in torch: soft (learned) or hard weights, the start network's
    activation quantizers, optional QDrop."""

    def __init__(self, torch, q: QuantizedNetwork, ops: list, cfg: BlockReconConfig):
        from .mobilenet_qat import _cl, lsq_act_function

        self.torch, self.q, self.ops, self.cfg = torch, q, ops, cfg
        self.src = ops[0].src
        self.lsq_act = lsq_act_function(torch)
        self.V, self.base, self.step, self.qmax, self.B, self.b_unit, self.clip = {}, {}, {}, {}, {}, {}, {}
        for op in ops:
            if not isinstance(op, Conv):
                continue
            codes, wdeq, wqp = q.wq[op.name]
            codes = codes.T if op.linear else codes          # (out, in) like op.weight
            s = np.asarray(wqp.scale, np.float64).reshape((-1,) + (1,) * (op.weight.ndim - 1))
            w = np.asarray(op.weight, np.float64) / s
            base = np.floor(w)
            if cfg.init == "frac" and op.name not in cfg.freeze:
                frac = np.clip(w - base, 0.0, 1.0)
            else:
                frac = np.where(codes.astype(np.float64) > base, 0.75, 0.25)
            p = np.clip((frac - ADAROUND_GAMMA) / (ADAROUND_ZETA - ADAROUND_GAMMA), 1e-6, 1 - 1e-6)
            self.V[op.name] = torch.nn.Parameter(_cl(torch, np.log(p / (1 - p))))
            self.base[op.name] = _cl(torch, base)
            self.step[op.name] = _cl(torch, np.broadcast_to(s, op.weight.shape))
            self.qmax[op.name] = float((1 << (q.bits[op.name][0] - 1)) - 1)
            # from the fractional part: the float bias (the start's bias correction compensates the start's
            # rounding, which the reconstruction replaces); from the codes: the start's corrected bias
            bu = float(q.qparams[op.dst].scale) if op.dst in q.qparams else 0.01
            self.b_unit[op.name] = bu
            if cfg.init == "frac" and op.name not in cfg.freeze:
                b0 = np.asarray(op.bias, np.float64)
            else:
                s_acc = np.asarray(q.qparams[op.src].scale, np.float64) * np.asarray(wqp.scale, np.float64)
                b0 = q.bias_q[op.name] * s_acc
            self.B[op.name] = torch.nn.Parameter(torch.tensor((b0 / bu).astype(np.float32)))
            if op.act == "relu6":
                hi = np.full(op.weight.shape[0], 6.0, np.float32) if op.clip_hi is None else op.clip_hi
                shape = (1, -1) if op.linear else (1, -1, 1, 1)
                self.clip[op.name] = torch.tensor(np.asarray(hi, np.float32).reshape(shape))

    def h(self, name):
        t = self.torch
        return t.clamp(t.sigmoid(self.V[name]) * (ADAROUND_ZETA - ADAROUND_GAMMA) + ADAROUND_GAMMA, 0, 1)

    def weight(self, name, hard: bool):
        t = self.torch
        qm = self.qmax[name]
        up = (self.V[name] >= 0).float() if hard or name in self.cfg.freeze else self.h(name)
        return t.clamp(self.base[name] + up, -qm, qm) * self.step[name]

    def codes(self, name) -> np.ndarray:
        t = self.torch
        with t.no_grad():
            qm = self.qmax[name]
            return t.clamp(self.base[name] + (self.V[name] >= 0).float(), -qm, qm).numpy()

    def bias(self, name):
        return self.B[name] * self.b_unit[name]

    def _fq(self, tname, v, op=None):
        """Fake-quantize tensor ``tname`` (value ``v``) with the start's quantizer; ``op`` the layer that
        computes it, whose ReLU/ReLU6 is the code clamp of :meth:`QuantizedNetwork._clamp` (signed or
        unsigned codes; per-channel ReLU6 bounds in float64 like the engine's)."""
        qp = self.q.qparams[tname]
        s = self.torch.tensor(float(qp.scale))
        z = int(qp.zero_point)
        lo, hi = int(qp.qmin), int(qp.qmax)
        hi_t = None
        if op is not None and op.act in ("relu", "relu6"):
            lo = max(lo, z)
        if op is not None and op.act == "relu6":
            sc = np.float64(qp.scale)
            if op.clip_hi is None:
                hi = min(hi, z + int(np.rint(6.0 / sc)))
            else:
                top = np.minimum(hi, z + np.rint(op.clip_hi.astype(np.float64) / sc)).astype(np.float32)
                shape = (1, -1) if op.linear else (1, -1, 1, 1)
                hi_t = self.torch.tensor(top.reshape(shape))
        return self.lsq_act(v, s, float(z), float(lo), float(hi) if hi_t is None else hi_t, 0.0)

    def _float_act(self, op, y):
        t = self.torch
        if op.act == "relu":
            return t.relu(y)
        if op.act == "relu6":
            return t.minimum(t.relu(y), self.clip[op.name])
        return y

    def forward(self, x, *, hard: bool, gen=None, quantize_out: bool = True):
        """The block's output (the fake-quantized output tensor, or the logits at the network's output) for
        the block input ``x`` (already quantized or, with QDrop, mixed); ``gen`` a torch generator for
        QDrop's masks (None: no dropping). ``quantize_out=False``: the output tensor before its own
        quantizer (the reconstruction target: the output's rounding is not the weights' to reduce)."""
        from .mobilenet_qat import _conv

        t, F = self.torch, self.torch.nn.functional
        drop = self.cfg.drop if gen is not None else 0.0
        vals = {self.src: x}
        out = None
        for op in self.ops:
            src = vals[op.src]
            if isinstance(op, Pool):
                if op.kind == "gap":
                    m = src.mean(dim=(2, 3), keepdim=True)
                    vals[op.dst] = self._fq(op.dst, m) if op.dst in self.q.qparams else m
                elif op.kind == "flatten":
                    vals[op.dst] = src.reshape(src.shape[0], -1)
                else:
                    vals[op.dst] = F.max_pool2d(src, op.kernel, op.stride)
                out = vals[op.dst]
                continue
            w = self.weight(op.name, hard)
            b = self.bias(op.name)
            y = F.linear(src, w, b) if op.linear else _conv(F, src, w, b, op)
            if op.residual is not None:
                y = y + vals[op.residual]
            if op.dst == self.q.net.output:
                vals[op.dst] = out = y
                continue
            if op is self.ops[-1] and not quantize_out:
                vals[op.dst] = out = self._float_act(op, y)
                continue
            vq = self._fq(op.dst, y, op)
            if drop and op is not self.ops[-1]:
                keep = t.rand(vq.shape, generator=gen) < drop
                vq = t.where(keep, self._float_act(op, y), vq)
            vals[op.dst] = out = vq
        return out


def _teacher_boundaries(torch, teacher, pool: np.ndarray, names: set, chunk: int = 8) -> dict:
    """The float network's tensors ``names`` on every pool image (torch, channels-last)."""
    out: dict = {n: [] for n in names}
    for i in range(0, len(pool), chunk):
        x = torch.from_numpy(pool[i:i + chunk]).contiguous(memory_format=torch.channels_last)
        _, t = teacher(x, keep=True)
        for n in names:
            out[n].append(t[n])
    return {n: torch.cat(v) for n, v in out.items()}


def block_reconstruct(q: QuantizedNetwork, pool: np.ndarray, config: BlockReconConfig = BlockReconConfig(),
                      *, log=None) -> QuantizedNetwork:
    """Block reconstruction of the rounding (and optionally the biases) of a PTQ network, block by block in
    network order (see the module docstring).

    Parameters
    ----------
    q : QuantizedNetwork
        The start: its (possibly equalized) float network, weight steps, activation quantizers and biases
        are kept; its codes are the start of ``init="codes"``. Uniform per-channel symmetric weights.
    pool : numpy.ndarray of float32, shape (N, 3, H, W)
        The reconstruction images (normalised network input), e.g. the calibration images ``q`` was built
        on and augmented crops of the same photos; never evaluation images.
    config : BlockReconConfig
    log : callable, optional
        Called with one line per block (its loss before and after, seconds).

    Returns
    -------
    QuantizedNetwork
        The same network with the reconstructed codes and biases (``config.name``: ``q``'s with
        " + block reconstruction (K of N blocks learned)"), or ``q`` itself when no block beat the start's
        rounding or the reconstructed network's logit error on the pool is not lower than ``q``'s.

    Raises
    ------
    MissingDependency
        torch is missing.
    ValueError
        A pool that is empty, not ``(N, C, H, W)`` with the first layer's ``C`` input channels, or not
        finite; a start whose weights are not uniform, per output channel and symmetric
        (``PTQConfig(weight_scheme="uniform", weight_granularity="channel")``); ``config.freeze`` naming a
        layer the network lacks (``recon.freeze: ...``); a network :func:`reconstruction_blocks` refuses.
    """
    pool = np.asarray(pool)
    op0 = q.net.ops[0]
    if not isinstance(op0, Conv) or op0.linear:
        raise ValueError(f"block_reconstruct: network {q.net.name!r}: expected a first layer that is a "
                         f"convolution (images in), found {type(op0).__name__} {op0.dst!r}")
    c_in = op0.weight.shape[1] * op0.groups
    if pool.ndim != 4 or pool.shape[1] != c_in or not len(pool):
        raise ValueError(f"block_reconstruct: pool: expected at least one image, an array (N, {c_in}, H, W), "
                         f"found shape {pool.shape}")
    if not np.all(np.isfinite(pool)):
        raise ValueError("block_reconstruct: pool: expected finite values, found NaN or infinity")
    if (q.config.weight_scheme, q.config.weight_granularity) != ("uniform", "channel"):
        raise ValueError(f"block_reconstruct: start {q.config.name!r}: expected uniform per-channel weights, "
                         f"found weight_scheme {q.config.weight_scheme!r}, granularity "
                         f"{q.config.weight_granularity!r}")
    for name, (_, _, wqp) in q.wq.items():
        if np.any(np.asarray(wqp.zero_point) != 0) or not wqp.signed or not wqp.per_channel:
            raise ValueError(f"block_reconstruct: layer {name}: expected symmetric signed per-channel "
                             "weights")
    unknown = [n for n in config.freeze if n not in q.net.layers]
    if unknown:
        raise config_error("recon.freeze", "layers of the network", unknown)
    torch = _import_torch()
    from .mobilenet_qat import _Teacher

    cfg = config
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)
    try:
        # every random draw has its own seeded generator (the global torch RNG is left alone)
        gen = torch.Generator().manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        net = q.net
        blocks = reconstruction_blocks(net)
        teacher = _Teacher(torch, net)
        names = {b[0].src for b in blocks} | {b[-1].dst for b in blocks}
        with torch.no_grad():
            fp = _teacher_boundaries(torch, teacher, np.ascontiguousarray(pool, np.float32), names)
        # the quantized network's input of the first block: the input quantizer's fake quantization
        from ..quant import fake_quantize

        xq = torch.from_numpy(fake_quantize(np.ascontiguousarray(pool, np.float32), q.qparams["input"])) \
            .contiguous(memory_format=torch.channels_last)
        codes, biases, start_bias = {}, {}, set()
        n_kept = 0
        n = len(pool)
        bs = min(cfg.batch_size, n)
        for bi, ops in enumerate(blocks):
            blk = _Block(torch, q, ops, cfg)
            x_fp, y_fp = fp[ops[0].src], fp[ops[-1].dst]
            learn = [k for k in blk.V if k not in cfg.freeze]
            for k in blk.V:
                blk.V[k].requires_grad_(k in learn)
                blk.B[k].requires_grad_(k in learn and cfg.lr_bias > 0)
            params = [{"params": [blk.V[k] for k in learn], "lr": cfg.lr}]
            if cfg.lr_bias > 0:
                params.append({"params": [blk.B[k] for k in learn], "lr": cfg.lr_bias})
            opt = torch.optim.Adam(params) if learn else None
            n_warm = int(math.floor(cfg.warmup * cfg.iters))
            tb = time.perf_counter()
            first = last = 0.0
            for it in range(cfg.iters if learn else 0):
                idx = torch.from_numpy(np.sort(rng.choice(n, bs, replace=False)))
                xin = xq[idx]
                if cfg.drop:
                    xin = torch.where(torch.rand(xin.shape, generator=gen) < cfg.drop, x_fp[idx], xin)
                ys = blk.forward(xin, hard=False, gen=gen if cfg.drop else None, quantize_out=False)
                d = ys - y_fp[idx]
                rec = (d * d).mean()
                loss = rec
                if it >= n_warm and cfg.reg > 0:
                    frac_t = (it - n_warm) / max(1, cfg.iters - n_warm)
                    beta = cfg.beta[0] + (cfg.beta[1] - cfg.beta[0]) * frac_t
                    loss = loss + cfg.reg * sum((1 - (2 * blk.h(k) - 1).abs().pow(beta)).sum() for k in learn)
                assert opt is not None
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if it == 0:
                    first = float(rec.detach())
                last = float(rec.detach())
            with torch.no_grad():
                y_hard = torch.cat([blk.forward(xq[i:i + 16], hard=True) for i in range(0, n, 16)])
                hard_rec = float(((y_hard - y_fp) ** 2).mean())
                # the guard: the start's codes and biases on the same block input; keep the better
                ref = _Block(torch, q, ops, replace(cfg, init="codes"))
                y_ref = torch.cat([ref.forward(xq[i:i + 16], hard=True) for i in range(0, n, 16)])
                ref_rec = float(((y_ref - y_fp) ** 2).mean())
            kept = ref_rec < hard_rec
            n_kept += int(kept or not learn)
            if kept:
                blk, y_hard = ref, y_ref
            for op in ops:
                if isinstance(op, Conv):
                    codes[op.name] = blk.codes(op.name)
                    biases[op.name] = blk.bias(op.name).detach().numpy().astype(np.float32)
                    if kept or op.name in cfg.freeze:
                        start_bias.add(op.name)   # the start's int32 bias itself, not a float32 round trip
            xq = y_hard.contiguous(memory_format=torch.channels_last) if y_hard.ndim == 4 else y_hard
            if log is not None:
                log(f"block {bi + 1}/{len(blocks)} ({ops[0].name if isinstance(ops[0], Conv) else ops[0].dst}"
                    f"..{ops[-1].dst}): batch loss {first:.4g} -> {last:.4g}, pool loss {hard_rec:.4g} "
                    f"(start {ref_rec:.4g}{', start kept' if kept else ''}), "
                    f"{time.perf_counter() - tb:.0f} s")
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(det, warn_only=warn_only)
    n_blocks = len(blocks)
    learned = n_blocks - n_kept
    if not learned:
        if log is not None:
            log(f"no block beat the start's rounding: the start is returned ({q.config.name!r})")
        return q
    out = _with_weights(q, codes, biases, start_bias, f"{learned} of {n_blocks} blocks learned")
    # the per-block guard cannot see how the blocks' errors add up downstream: compare whole networks too
    ref_out = fp[net.output].numpy().astype(np.float64)
    err_new = float(np.mean((out.run(pool) - ref_out) ** 2))
    err_start = float(np.mean((q.run(pool) - ref_out) ** 2))
    if err_new >= err_start:
        if log is not None:
            log(f"the reconstructed network's output error on the pool ({err_new:.4g}) is not below the "
                f"start's ({err_start:.4g}): the start is returned ({q.config.name!r})")
        return q
    if log is not None:
        log(f"output error on the pool: start {err_start:.4g} -> {err_new:.4g}")
    return out


def _with_weights(q: QuantizedNetwork, codes: dict, biases: dict, start_bias=frozenset(),
                  note: str = "") -> QuantizedNetwork:
    """``q`` with new weight codes (``(out, in)`` / ``(K, C, R, S)`` float arrays of integers) and float
    biases: activation quantizers and weight steps kept, int32 biases requantized at ``s_x * s_w`` (the
    layers in ``start_bias`` keep ``q``'s int32 biases)."""
    out = QuantizedNetwork.__new__(QuantizedNetwork)
    out.config = replace(q.config, name=q.config.name + " + block reconstruction" + (f" ({note})" if note
                                                                                     else ""))
    out.bits, out.net, out.qparams = dict(q.bits), q.net, dict(q.qparams)
    out.acc_bits, out.acc_mode, out.profile = q.acc_bits, q.acc_mode, q.profile
    out.wq, out.bias_q = {}, {}
    for op in q.net.ops:
        if not isinstance(op, Conv):
            continue
        c0, _, wqp = q.wq[op.name]
        wqp_out = wqp if not op.linear else replace_axis(wqp, 0)
        c = codes[op.name].astype(c0.dtype)
        wdeq = dequantize(c, wqp_out)
        if op.linear:
            c = np.ascontiguousarray(c.T)
        out.wq[op.name] = (c, wdeq, wqp)
        out.bias_q[op.name] = q.bias_q[op.name].copy() if op.name in start_bias else \
            quantize_bias(biases[op.name], q.qparams[op.src], wqp)
    out.overflow = {}
    return out

