"""MiniLM QAT (hwsim.models.minilm_qat): the trained integer-GEMM network gives on the datapath the same
embeddings bit for bit as its fake-quantized forward; the policy's bits reach every quantizer; distillation
lowers the loss; the training sentences are offline and disjoint from the evaluation ones; bad input is named
by key; the docs section renders. Training here is two steps on two sentences (the table's runs are in
docs/quality.md)."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.models import minilm_qat
from hwsim.quant import QATConfig


def test_training_sentences_are_offline_deterministic_and_disjoint():
    from hwsim.models.minilm import CALIB_SENTENCES, SENTENCES

    s = minilm_qat.training_sentences()
    assert len(s) > 300 and len(set(s)) == len(s)
    assert not set(s) & (set(SENTENCES) | set(CALIB_SENTENCES))
    assert all(8 <= len(x.split()) <= 30 and x.endswith(".") for x in s)
    minilm_qat.training_sentences.cache_clear()
    assert minilm_qat.training_sentences() == s                        # the seeded order


@pytest.fixture(scope="module")
def trained():
    pytest.importorskip("torch", reason="QAT needs torch (pip install torch==2.13.0)")
    from hwsim.models import minilm
    from hwsim.models._base import MissingDependency

    try:
        minilm.model_dir()
    except MissingDependency as e:
        pytest.skip(str(e))
    bits = {n: (4, 4) for n in minilm.LAYERS}
    bits["encoder.layer.1.intermediate.dense"] = (3, 6)
    bits["encoder.layer.2.attention.self.scores"] = (5, 3)
    cfg = QATConfig(method="lsq+", epochs=2, lr=1e-4, batch_size=2, max_train=2)
    return minilm_qat.train(bits, cfg)


def test_trained_network_is_bit_exact_on_the_datapath(trained):
    r = minilm_qat.evaluate_qat(trained, n=3)
    assert r["bit_exact"] and r["n"] == 3 and 0 < r["cosine"] <= 1
    # the same check by hand: datapath (numba gemm_acc) against the numpy exact forward
    from hwsim.models.minilm import _context

    model, _, tokens, _ = _context()
    e_dp = model.embed(tokens[:2], gemm=trained.datapath())
    assert np.array_equal(e_dp, trained.forward(tokens[:2]))


def test_policy_bits_reach_every_quantizer(trained):
    p = trained.parts
    ffn = p["encoder.layer.1.intermediate.dense"]
    assert ffn["a"].bits == 6 and ffn["qp"].bits == 3 and np.abs(ffn["codes"]).max() <= 3   # 3 bits: +-3
    sc = p["encoder.layer.2.attention.self.scores"]
    assert sc["a"].bits == 3 and sc["b"].bits == 5          # first operand at act bits, second at weight bits
    q = p["encoder.layer.0.attention.self.query"]
    assert q["a"].bits == 4 and np.abs(q["codes"]).max() <= 7 and q["codes"].shape == (384, 384)
    assert 0 <= int(q["a"].zero_point) <= 15


def test_distillation_lowers_the_loss(trained):
    # epoch 1's loss is that of the initial (PTQ-like) network, epoch 2's after one Adam step on the same
    # two sentences
    h = trained.history
    assert len(h) == 2 and h[1]["loss"] < h[0]["loss"]


def test_bad_input_names_the_key():
    from hwsim.models.minilm import LAYERS

    with pytest.raises(ValueError, match=r"^qat\.method: expected one of \['lsq', 'lsq\+'\] for minilm_l6"):
        minilm_qat.train((4, 8), QATConfig(method="pact"))
    with pytest.raises(ValueError, match=r"^bits\.encoder\.layer\.9\.output\.dense: expected a layer"):
        minilm_qat.train({**{n: (4, 8) for n in LAYERS}, "encoder.layer.9.output.dense": (4, 8)})
    with pytest.raises(ValueError, match=r"^bits\.encoder\.layer\.0\.attention\.self\.query: expected "
                                         r"integer bits the datapath runs \(2\.\.8\), found \[1, 8\]"):
        minilm_qat.train({**{n: (4, 8) for n in LAYERS}, "encoder.layer.0.attention.self.query": (1, 8)})


def test_sections_render_and_splice():
    from hwsim.models import _qat_sections as qs
    from hwsim.models._qat_table import splice

    res = {"ptq": [("PTQ per-channel, min/max", {"W4A8": 0.9029, "W4A4": 0.4244, "mixed": 0.9662})],
           "qat": [("QAT LSQ+", {"W4A8": (0.95, 0.9, 60.0), "W4A4": (0.6, 0.5, 61.0), "mixed": (0.97, 0.95,
                                                                                               62.0)})],
           "n_w8": 12, "n_layers": 48, "n_train": 398}
    text = qs.render("minilm_l6", res, 120.0)
    assert "| PTQ per-channel, min/max | 0.9029 | 0.4244 | 0.9662 |" in text
    assert ("| QAT LSQ+ | **0.9500** (0.9000; 60 s) | **0.6000** (0.5000; 61 s) | **0.9700** (0.9500; 62 s) "
            "|") in text
    begin, end = qs.markers("minilm_l6")
    doc = "head\n\n" + splice("", qs.render("opencv_digits_cnn", "no opencv-doc", 0.0),
                              *qs.markers("opencv_digits_cnn"))
    doc = splice(doc, text, begin, end)
    doc2 = splice(doc, qs.render("minilm_l6", "skipped here", 0.0), begin, end)
    assert doc2.startswith("head") and "Skipped: no opencv-doc" in doc2 and "Skipped: skipped here" in doc2
    assert "0.9029" not in doc2 and doc2.count(begin) == 1
