"""Stream 0.0.8 input: every layer on core 0."""
mapping = {"default": {"core_allocation": [0]}, "Conv": {"core_allocation": [0]}}
