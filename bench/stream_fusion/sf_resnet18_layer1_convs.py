"""Stream 0.0.8 input: ResNet-18's conv2_1 .. conv2_4 (the four 3x3 64 -> 64 convs of layer1 at 56x56, as in
stream/inputs/examples/workload/resnet18_few_layers.py layers 2, 3, 5, 6) as a chain: the max-pool before them
and the residual adds are left out (on Stream's single-core example they would need a pooling and a SIMD
core; hwsim's counterpart is the same chain). 8-bit inputs and weights, 16-bit partial sums, 8-bit outputs."""


def _conv(i, src):
    return {
        "operator_type": "Conv",
        "equation": "O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]",
        "dimension_relations": ["ix=1*ox+1*fx", "iy=1*oy+1*fy"],
        "loop_dim_size": {"B": 1, "K": 64, "C": 64, "OY": 56, "OX": 56, "FY": 3, "FX": 3},
        "operand_precision": {"O": 16, "O_final": 8, "W": 8, "I": 8},
        "operand_source": {"W": [], "I": src},
        "constant_operands": ["I", "W"] if not src else ["W"],
        **({"operand_source_dimension_mapping": {"I": {"IX": "OX", "IY": "OY", "C": "K"}}} if src else {}),
        "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"},
        "padding": {"IY": (1, 1), "IX": (1, 1)},
    }


workload = {i: _conv(i, [i - 1] if i else []) for i in range(4)}
