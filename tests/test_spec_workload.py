"""Workload layers: padding rules, output sizes, GEMM views, shape warnings and errors."""

from __future__ import annotations

import pytest

from hwsim.errors import SpecError
from hwsim.spec import Conv2d, Workload, validate


def conv(**kw):
    base = dict(name="c", op="conv2d", in_channels=4, out_channels=8, in_h=15, in_w=15, kernel=3)
    return Conv2d(**{**base, **kw})


def test_same_padding_follows_tensorflow():
    # TF 'same', stride 2 on 15: out = ceil(15/2) = 8; total pad = (8-1)*2 + 3 - 15 = 2 -> 1 before, 1 after
    c = conv(stride=2, padding="same")
    assert (c.pads, c.out_hw) == ((1, 1, 1, 1), (8, 8))
    # on 16: out 8; total = 14 + 3 - 16 = 1 -> 0 before, 1 after (the odd pixel at the end)
    c = conv(in_h=16, in_w=16, stride=2, padding="same")
    assert (c.pads, c.out_hw) == ((0, 1, 0, 1), (8, 8))


def test_explicit_padding_dilation_and_groups():
    # pads [top, bottom, left, right] = [1, 2, 0, 3]; dilation 2 -> 5x5 effective filter; stride (2, 1)
    c = conv(padding=(1, 2, 0, 3), dilation=2, stride=(2, 1), groups=4)
    # out h = (15 + 3 - 5)//2 + 1 = 7; out w = (15 + 3 - 5)//1 + 1 = 14
    assert c.out_hw == (7, 14)
    # 4 groups of (M = 7*14, K = 1*3*3, N = 2)
    assert (c.gemm.m, c.gemm.k, c.gemm.n, c.gemm.groups) == (98, 9, 2, 4)


def test_depthwise_defaults_groups_to_channels():
    c = Conv2d(name="dw", op="depthwise", in_channels=32, out_channels=32, in_h=8, in_w=8, kernel=3,
               padding=1)
    assert (c.n_groups, c.gemm.k, c.gemm.n, c.gemm.macs) == (32, 9, 1, 32 * 64 * 9)


def test_shape_notes_name_unused_rows():
    # SCALE-Sim's alexnet conv1: 224 input, 11x11 stride 4, no padding: 54 outputs, the last window ends at
    # 53*4 + 11 = 223 -> input row 223 is never used
    alex = conv(in_h=224, in_w=224, kernel=11, stride=4)
    assert alex.shape_notes() == [
        "the output does not divide: 224 input rows, filter 11, stride 4, padding 0 before -> the last 1 "
        "input rows are never used",
        "the output does not divide: 224 input columns, filter 11, stride 4, padding 0 before -> the last 1 "
        "input columns are never used"]
    # ResNet's 7x7/2 with padding 3 on 224: the padding absorbs the remainder; a 1x1/2 skips rows by design
    assert conv(in_h=224, in_w=224, kernel=7, stride=2, padding=3).shape_notes() == []
    assert conv(in_h=56, in_w=56, kernel=1, stride=2).shape_notes() == []
    w = validate(Workload, {"name": "w", "layers": [alex.model_dump()]}, "w.yaml")
    assert w.shape_warnings("w.yaml")[0].startswith("w.yaml: layers[0] (c): the output does not divide")


@pytest.mark.parametrize("layer, message", [
    (dict(kernel=17), r"layers\[0\]: expected a filter no larger than the padded input, found a 17x17 "
                      r"\(dilated\) filter on a 15x15 padded input$"),
    (dict(groups=3),
     r"layers\[0\]: expected groups that divide in_channels and out_channels, found groups=3, "
                     r"in_channels=4, out_channels=8$"),
    (dict(stride=0), r"layers\[0\]: expected stride > 0, found 0$"),
    (dict(padding=-1), r"layers\[0\]: expected padding >= 0, found -1$"),
    (dict(padding="half"), r"layers\[0\]\.padding"),
])
def test_layer_errors(layer, message):
    base = dict(name="c", op="conv2d", in_channels=4, out_channels=8, in_h=15, in_w=15, kernel=3)
    with pytest.raises(SpecError, match=message):
        validate(Workload, {"name": "w", "layers": [{**base, **layer}]}, "w.yaml")


def test_duplicate_names_and_empty_workloads():
    g = dict(name="a", op="gemm", k=4, n=4)
    with pytest.raises(SpecError, match=r"w\.yaml: expected unique layer names, found 'a' twice$"):
        validate(Workload, {"name": "w", "layers": [g, g]}, "w.yaml")
    with pytest.raises(SpecError, match=r"w\.yaml: layers: expected at least one item, found \[\]$"):
        validate(Workload, {"name": "w", "layers": []}, "w.yaml")
