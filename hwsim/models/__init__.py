"""Real networks with committed trained weights, for the co-design job.

- :mod:`hwsim.models.digits`: a small CNN on scikit-learn's bundled handwritten digits (8x8), float and
  quantized integer inference; trained by :mod:`hwsim.models.train_digits`.
"""
