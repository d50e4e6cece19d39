"""torch modules of the shipped networks, built from their weight packages, for ONNX export.

:func:`minilm_module` is all-MiniLM-L6-v2 (``hwsim/models/minilm.py``'s weights and architecture) written as
HuggingFace's ``BertModel`` computes it (input ids and attention mask of any length, position ids from the
length, the extended additive mask, erf GELU, LayerNorm eps 1e-12) followed by masked mean pooling and L2
normalisation (sentence-transformers' Pooling and Normalize). :func:`mobilenet_v2_module` is torchvision's
MobileNetV2 (``hwsim/models/mobilenet_v2.py``'s checkpoint, unfolded BatchNorm, ReLU6). :func:`export_onnx`
writes either with ``torch.onnx.export``, TorchScript (``dynamo=False``, the legacy exporter) or torch's
default ``dynamo=True`` exporter (needs ``onnxscript``).

Used to measure ``hwsim verify`` on real networks quantized by onnxruntime (``bench/bench_verify_models.py``,
``docs/verification.md``).
"""

from __future__ import annotations

import math

import numpy as np

from ._base import MissingDependency

__all__ = ["minilm_module", "mobilenet_v2_module", "export_onnx"]

_TORCH = "pip install torch==2.13.0"


def _torch():
    try:
        import torch
    except ImportError as e:
        raise MissingDependency(f"exporting a network to ONNX needs torch ({_TORCH})") from e
    return torch


def minilm_module():
    """all-MiniLM-L6-v2 as a ``torch.nn.Module``: ``forward(input_ids, attention_mask)``, both int64
    ``(batch, seq)``, returns the L2-normalised sentence embeddings ``(batch, 384)`` float32.

    Raises
    ------
    MissingDependency
        torch or the weight package is not installed.
    """
    torch = _torch()
    from .minilm import FFN, HEAD_DIM, HEADS, HIDDEN, N_LAYERS, load_weights

    w = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in load_weights().items()}
    nn = torch.nn

    def lin(name, n_in, n_out):
        m = nn.Linear(n_in, n_out)
        m.weight.data.copy_(w[f"{name}.weight"])
        m.bias.data.copy_(w[f"{name}.bias"])
        return m

    def ln(name):
        m = nn.LayerNorm(HIDDEN, eps=1e-12)
        m.weight.data.copy_(w[f"{name}.weight"])
        m.bias.data.copy_(w[f"{name}.bias"])
        return m

    class Layer(nn.Module):
        def __init__(self, p):
            super().__init__()
            self.q = lin(f"{p}.attention.self.query", HIDDEN, HIDDEN)
            self.k = lin(f"{p}.attention.self.key", HIDDEN, HIDDEN)
            self.v = lin(f"{p}.attention.self.value", HIDDEN, HIDDEN)
            self.o = lin(f"{p}.attention.output.dense", HIDDEN, HIDDEN)
            self.ln1 = ln(f"{p}.attention.output.LayerNorm")
            self.f1 = lin(f"{p}.intermediate.dense", HIDDEN, FFN)
            self.f2 = lin(f"{p}.output.dense", FFN, HIDDEN)
            self.ln2 = ln(f"{p}.output.LayerNorm")

        def forward(self, h, mask):
            b, n, _ = h.shape

            def heads(x):
                return x.view(b, n, HEADS, HEAD_DIM).transpose(1, 2)
            s = heads(self.q(h)) @ heads(self.k(h)).transpose(-1, -2) / math.sqrt(HEAD_DIM) + mask
            ctx = (torch.softmax(s, dim=-1) @ heads(self.v(h))).transpose(1, 2).reshape(b, n, HIDDEN)
            h = self.ln1(self.o(ctx) + h)
            return self.ln2(self.f2(nn.functional.gelu(self.f1(h))) + h)

    class MiniLMTorch(nn.Module):
        def __init__(self):
            super().__init__()
            self.word = nn.Embedding.from_pretrained(w["embeddings.word_embeddings.weight"])
            self.pos = nn.Embedding.from_pretrained(w["embeddings.position_embeddings.weight"])
            self.typ = nn.Embedding.from_pretrained(w["embeddings.token_type_embeddings.weight"])
            self.ln = ln("embeddings.LayerNorm")
            self.layers = nn.ModuleList(Layer(f"encoder.layer.{i}") for i in range(N_LAYERS))

        def forward(self, input_ids, attention_mask):
            n = input_ids.shape[1]
            pos = torch.arange(n, dtype=torch.long).unsqueeze(0).expand_as(input_ids)
            h = self.ln(self.word(input_ids) + self.pos(pos) + self.typ(torch.zeros_like(input_ids)))
            m = attention_mask[:, None, None, :].to(torch.float32)
            ext = (1.0 - m) * torch.finfo(torch.float32).min
            for layer in self.layers:
                h = layer(h, ext)
            mf = attention_mask.unsqueeze(-1).to(torch.float32)
            e = (h * mf).sum(1) / torch.clamp(mf.sum(1), min=1e-9)
            return e / torch.clamp(torch.linalg.vector_norm(e, dim=1, keepdim=True), min=1e-12)

    return MiniLMTorch().eval()


def mobilenet_v2_module():
    """torchvision's MobileNetV2 (width 1.0, 1000 classes) with the checkpoint of
    :func:`hwsim.models.mobilenet_v2.load_state_dict`: ``forward(x)``, ``x`` float32 ``(N, 3, 224, 224)``,
    returns logits ``(N, 1000)``.

    Raises
    ------
    MissingDependency
        torch or the weight package is not installed.
    """
    torch = _torch()
    from .mobilenet_v2 import SETTINGS, load_state_dict

    nn = torch.nn

    def cbr(c_in, c_out, k=3, s=1, g=1, act=True):
        mods = [nn.Conv2d(c_in, c_out, k, s, (k - 1) // 2, groups=g, bias=False), nn.BatchNorm2d(c_out)]
        return nn.Sequential(*mods, nn.ReLU6()) if act else nn.Sequential(*mods)

    class Block(nn.Module):
        def __init__(self, c_in, c_out, s, t):
            super().__init__()
            hid = c_in * t
            layers = ([cbr(c_in, hid, 1)] if t != 1 else []) + [cbr(hid, hid, 3, s, hid)]
            layers += [nn.Conv2d(hid, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
            self.conv = nn.Sequential(*layers)
            self.res = s == 1 and c_in == c_out

        def forward(self, x):
            return x + self.conv(x) if self.res else self.conv(x)

    feats, c_in = [cbr(3, 32, 3, 2)], 32
    for t, c, n, s in SETTINGS:
        for i in range(n):
            feats.append(Block(c_in, c, s if i == 0 else 1, t))
            c_in = c
    feats.append(cbr(c_in, 1280, 1))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(*feats)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))

        def forward(self, x):
            return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))

    net = Net()
    sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in load_state_dict().items()}
    net.load_state_dict(sd)
    return net.eval()


def export_onnx(module, args: tuple, path, *, input_names, output_names, dynamic_axes=None, dynamo=False,
                opset: int = 17) -> None:
    """``torch.onnx.export`` of ``module`` on example ``args`` to ``path``.

    ``dynamo=False``: the TorchScript exporter (``dynamic_axes`` as its argument); ``dynamo=True``: torch's
    default exporter (``dynamic_axes`` converted to its ``dynamic_shapes``), which needs ``onnxscript``.

    Raises
    ------
    MissingDependency
        torch (or, for ``dynamo=True``, onnxscript) is not installed.
    """
    torch = _torch()
    if dynamo:
        try:
            import onnxscript  # noqa: F401
        except ImportError as e:
            raise MissingDependency("torch's dynamo ONNX exporter needs onnxscript (pip install "
                                    "onnxscript==0.7.2)") from e
    with torch.no_grad():
        if dynamo:
            torch.onnx.export(module, args, str(path), input_names=input_names, output_names=output_names,
                              dynamic_axes=dynamic_axes, dynamo=True, opset_version=max(opset, 18),
                              verbose=False)
        else:
            torch.onnx.export(module, args, str(path), input_names=input_names, output_names=output_names,
                              dynamic_axes=dynamic_axes, dynamo=False, opset_version=opset)
