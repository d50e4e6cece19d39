"""Stream 0.0.8 input: the four convs of sf_resnet18_layer1_convs.py at 112x112 (ResNet-18 layer1 at a
448x448 input): a 784 KiB tensor, its producer's input beside it, does not fit the TPU-like core's 1 MiB
activation buffer, a few rows of it do, and the four layers' weights (144 KiB) fit its 1 MiB weight buffer:
the case where depth-first fusion should pay."""
from sf_resnet18_layer1_convs import _conv

workload = {}
for i in range(4):
    workload[i] = _conv(i, [i - 1] if i else [])
    workload[i]["loop_dim_size"] = dict(workload[i]["loop_dim_size"], OY=112, OX=112)
