"""hwsim: co-design of quantized neural networks and the systolic-array accelerators that run them."""

__version__ = "0.1.0"
