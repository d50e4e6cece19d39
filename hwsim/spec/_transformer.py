"""Transformer and LLM workloads generated from a few parameters (a workload YAML's ``transformer:`` block).

Shapes of the named models, from their published configurations:

* ``gpt2_small``: 12 layers, d_model 768, 12 heads, d_ff 3072, vocabulary 50257, 1024 positions, GELU MLP,
  pre-LayerNorm (Radford et al. 2019, "Language Models are Unsupervised Multitask Learners"; Hugging Face
  ``gpt2/config.json``: n_layer 12, n_embd 768, n_head 12, n_positions 1024, vocab_size 50257).
* ``bert_base``: 12 layers, hidden 768, 12 heads, d_ff 3072, 512 positions, post-LayerNorm encoder (Devlin et
  al. 2019, BERT-base L=12, H=768, A=12).
* ``llama2_7b``: 32 layers, d_model 4096, 32 heads (32 KV heads), d_ff 11008, vocabulary 32000, 4096
  positions, SwiGLU MLP, RMSNorm (Touvron et al. 2023, "Llama 2", Table 1 and the HF ``Llama-2-7b-hf``
  config).
* ``llama3_8b``: 32 layers, d_model 4096, 32 heads, 8 KV heads (grouped-query attention), d_ff 14336,
  vocabulary 128256, 8192 positions (Meta Llama 3 model card / HF ``Meta-Llama-3-8B`` config). Llama-2-70B
  also uses 8 KV heads (Touvron et al. 2023, Sec. 2.2); ``n_kv_heads: 8`` on ``llama2_7b`` gives a
  Llama-2-7B-shaped block with GQA.

Every key of a model can be overridden (``n_layer: 1`` gives one block).

**Phases.** ``prefill``: ``seq_len`` tokens at once; attention is the full ``seq_len x seq_len`` score matrix
per head (masked, not skipped: the causal half is computed, as a systolic array does). ``decode``: one token
per sequence (M = ``batch``) attending to a KV cache of ``context`` tokens (the new token included). In
decode the cached K and V are the *second operand* of the two attention GEMMs with no producer in the graph,
so they are read from DRAM like weights, at ``kv_bits``. Every sequence has its own cache: QK^T is
(q_per_kv, d_head) x (d_head, context) for each KV head of each sequence (``count`` = n_kv_heads * batch:
with GQA the q heads of a group share one read of their KV head within a sequence, and no two sequences
share a cache), PV is (q_per_kv, context) x (context, d_head), ``count`` likewise; the KV read per step is
2 * n_layer * context * n_kv_heads * d_head * kv_bits/8 * batch bytes. The new token's K and V are written
to the cache: a ``requant`` node per projection at ``kv_bits`` with no consumer, so its output is a network
output and goes to DRAM (in prefill too: the whole prompt's K and V are written). Decoders end with the
final norm and the LM head (``d_model x vocab``; GPT-2 ties it to the token embedding, whose bytes are read
once per step like any weight); the embedding lookup itself is a gather and is left out.

**Weight-only quantization.** ``weight_bits: 4, act_bits: 16, weight_group_size: 128`` is W4A16 with one
``scale_bits`` scale per group of ``weight_group_size`` weights along K (GPTQ/AWQ layout): the projection
and MLP GEMMs carry ``weight_group_size`` and the pipeline adds the scale bits to their DRAM weight traffic.

Not modelled: rotary embeddings and the attention scaling (element-wise, small), dropout, biases; RMSNorm is
costed as a LayerNorm (an upper bound: LayerNorm also subtracts the mean).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ._base import SpecModel

__all__ = ["TransformerConfig", "MODELS", "transformer_layers"]

#: Published shapes (module docstring).
MODELS: dict[str, dict[str, Any]] = {
    "gpt2_small": dict(kind="decoder", n_layer=12, d_model=768, n_heads=12, n_kv_heads=12, d_ff=3072,
                       vocab=50257, max_positions=1024, mlp="gelu", norm="layernorm"),
    "bert_base": dict(kind="encoder", n_layer=12, d_model=768, n_heads=12, n_kv_heads=12, d_ff=3072,
                      vocab=30522, max_positions=512, mlp="gelu", norm="layernorm"),
    "llama2_7b": dict(kind="decoder", n_layer=32, d_model=4096, n_heads=32, n_kv_heads=32, d_ff=11008,
                      vocab=32000, max_positions=4096, mlp="swiglu", norm="rmsnorm"),
    "llama3_8b": dict(kind="decoder", n_layer=32, d_model=4096, n_heads=32, n_kv_heads=8, d_ff=14336,
                      vocab=128256, max_positions=8192, mlp="swiglu", norm="rmsnorm"),
}


class TransformerConfig(SpecModel):
    """The ``transformer:`` block of a workload YAML (module docstring). Sizes are elements/tokens; bits are
    bits per element."""

    model: Literal["gpt2_small", "bert_base", "llama2_7b", "llama3_8b"] | None = None
    phase: Literal["prefill", "decode"] = "prefill"
    seq_len: int = Field(default=128, gt=0, description="prefill: tokens processed at once")
    context: int = Field(default=1024, gt=0,
                         description="decode: tokens in the KV cache, the new one included")
    batch: int = Field(default=1, gt=0, description="sequences processed together")
    kind: Literal["decoder", "encoder"] | None = None
    n_layer: int | None = Field(default=None, gt=0)
    d_model: int | None = Field(default=None, gt=0)
    n_heads: int | None = Field(default=None, gt=0)
    n_kv_heads: int | None = Field(default=None, gt=0)
    d_ff: int | None = Field(default=None, gt=0)
    vocab: int | None = Field(default=None, gt=0)
    max_positions: int | None = Field(default=None, gt=0)
    mlp: Literal["gelu", "swiglu"] | None = None
    norm: Literal["layernorm", "rmsnorm"] | None = None
    lm_head: bool | None = Field(default=None, description="decoders: the LM head GEMM (default true)")
    kv_bits: int | None = Field(default=None, ge=1, le=16,
                                description="bits of the KV cache (default: act_bits)")
    weight_group_size: int | None = Field(default=None, gt=0, description="weights per quantization scale "
                                          "along K (weight-only quantization); none: per-tensor")
    scale_bits: int = Field(default=16, ge=1, le=32, description="bits of each group scale")

    def resolved(self) -> dict[str, Any]:
        """The model's shapes with the block's overrides applied."""
        base = dict(MODELS[self.model]) if self.model else {}
        for k in ("kind", "n_layer", "d_model", "n_heads", "n_kv_heads", "d_ff", "vocab", "max_positions",
                  "mlp", "norm"):
            v = getattr(self, k)
            if v is not None:
                base[k] = v
        base.setdefault("kind", "decoder")
        base.setdefault("mlp", "gelu")
        base.setdefault("norm", "layernorm")
        base.setdefault("n_kv_heads", base.get("n_heads"))
        base.setdefault("vocab", 0)
        base.setdefault("max_positions", 1 << 20)
        return base

    def problem(self) -> tuple[str, str, str] | None:
        """The first inconsistency as (key, expected, found), or None (checked by the loader, which names the
        key: ``transformer.context: expected context <= the model's 1024 positions, found 2048``)."""
        r = self.resolved()
        missing = [k for k in ("n_layer", "d_model", "n_heads", "d_ff") if k not in r]
        if missing:
            return "model", f"a model name or the shapes {', '.join(missing)}", "neither"
        if r["d_model"] % r["n_heads"]:
            return "n_heads", f"n_heads dividing d_model ({r['d_model']})", str(r["n_heads"])
        if r["n_heads"] % r["n_kv_heads"]:
            return "n_kv_heads", f"n_kv_heads dividing n_heads ({r['n_heads']})", str(r["n_kv_heads"])
        if self.phase == "decode" and r["kind"] == "encoder":
            return "phase", "prefill for an encoder (it has no KV cache)", "decode"
        if self.phase == "decode" and self.context > r["max_positions"]:
            return "context", f"at most the model's {r['max_positions']} positions", str(self.context)
        if self.phase == "prefill" and self.seq_len > r["max_positions"]:
            return "seq_len", f"at most the model's {r['max_positions']} positions", str(self.seq_len)
        if self.weight_group_size is not None and self.weight_group_size > r["d_model"]:
            return "weight_group_size", f"at most d_model ({r['d_model']})", str(self.weight_group_size)
        if (self.lm_head if self.lm_head is not None else r["kind"] == "decoder") and not r["vocab"]:
            return "vocab", "a vocabulary size for the LM head (or lm_head: false)", "none"
        return None


def transformer_layers(cfg: TransformerConfig, *, act_bits: int, weight_bits: int) -> list[dict[str, Any]]:
    """The node list (``layers:`` entries as dicts) of the configured transformer.

    Parameters
    ----------
    cfg : TransformerConfig
    act_bits, weight_bits : int
        The workload's defaults (the KV cache takes ``cfg.kv_bits`` or ``act_bits``).

    Returns
    -------
    list of dict
        GEMM layers (``fc``/``gemm``) and vector nodes with their ``inputs``, in execution order.
    """
    r = cfg.resolved()
    d, h, hkv, dff = r["d_model"], r["n_heads"], r["n_kv_heads"], r["d_ff"]
    dh = d // h
    qpk = h // hkv
    decode = cfg.phase == "decode"
    b = cfg.batch
    t = b if decode else b * cfg.seq_len          # tokens through the projections (M of every fc)
    kv_bits = cfg.kv_bits or act_bits
    g = {"weight_group_size": cfg.weight_group_size, "scale_bits": cfg.scale_bits} if cfg.weight_group_size \
        else {}
    out: list[dict[str, Any]] = []

    def fc(name: str, k: int, n: int, src: str) -> str:
        out.append({"name": name, "op": "fc", "m": t, "k": k, "n": n, "inputs": [src], **g})
        return name

    def vec(name: str, op: str, *inputs: str, **kw: Any) -> str:
        out.append({"name": name, "op": op, "inputs": list(inputs), **kw})
        return name

    norm = "layernorm"  # RMSNorm costed as a LayerNorm (module docstring)
    pre = r["kind"] == "decoder"
    x = "input"
    for i in range(r["n_layer"]):
        p = f"h.{i}"
        a_in = (vec(f"{p}.ln_1", norm, x, **({"elements": t * d, "row": d} if x == "input" else {})) if pre
                else x)
        q = fc(f"{p}.attn.q", d, d, a_in)
        k = fc(f"{p}.attn.k", d, hkv * dh, a_in)
        v = fc(f"{p}.attn.v", d, hkv * dh, a_in)
        if r["kind"] == "decoder":  # the new K, V written to the cache at kv_bits
            vec(f"{p}.attn.k_cache_write", "requant", k, bits=kv_bits)
            vec(f"{p}.attn.v_cache_write", "requant", v, bits=kv_bits)
        if decode:
            ctx = cfg.context
            s = f"{p}.attn.scores"
            out.append({"name": s, "op": "gemm", "m": qpk, "k": dh, "n": ctx, "count": hkv * b,
                        "inputs": [q], "weight_bits": kv_bits})          # K cache: the (K, N) operand, DRAM
            sm = vec(f"{p}.attn.softmax", "softmax", s)
            c = f"{p}.attn.context"
            out.append({"name": c, "op": "gemm", "m": qpk, "k": ctx, "n": dh, "count": hkv * b,
                        "inputs": [sm], "weight_bits": kv_bits})         # V cache of each sequence
        else:
            n_tok = cfg.seq_len
            s = f"{p}.attn.scores"
            out.append({"name": s, "op": "gemm", "m": qpk * n_tok, "k": dh, "n": n_tok, "count": hkv * b,
                        "inputs": [q, k], "weight_bits": act_bits})
            sm = vec(f"{p}.attn.softmax", "softmax", s)
            c = f"{p}.attn.context"
            out.append({"name": c, "op": "gemm", "m": qpk * n_tok, "k": n_tok, "n": dh, "count": hkv * b,
                        "inputs": [sm, v], "weight_bits": act_bits})
        o = fc(f"{p}.attn.o", d, d, c)
        x1 = vec(f"{p}.attn.add", "add", o, x)
        if not pre:
            x1 = vec(f"{p}.attn.ln", norm, x1)
        m_in = vec(f"{p}.ln_2", norm, x1) if pre else x1
        if r["mlp"] == "swiglu":
            gate = fc(f"{p}.mlp.gate", d, dff, m_in)
            up = fc(f"{p}.mlp.up", d, dff, m_in)
            act = vec(f"{p}.mlp.silu", "silu", gate)
            hmid = vec(f"{p}.mlp.mul", "mul", act, up)
        else:
            up = fc(f"{p}.mlp.fc1", d, dff, m_in)
            hmid = vec(f"{p}.mlp.gelu", "gelu", up)
        dn = fc(f"{p}.mlp.fc2" if r["mlp"] == "gelu" else f"{p}.mlp.down", dff, d, hmid)
        x = vec(f"{p}.mlp.add", "add", dn, x1)
        if not pre:
            x = vec(f"{p}.mlp.ln", norm, x)
    lm = cfg.lm_head if cfg.lm_head is not None else r["kind"] == "decoder"
    if pre:
        x = vec("ln_f", norm, x)
    if lm and r["vocab"]:
        # decode: the new token's logits; prefill: the last position's only is what generation needs, but
        # frameworks compute all positions; we follow them (M = tokens)
        fc("lm_head", d, r["vocab"], x)
    return out
