"""The sweep report: hover texts (read column-wise since a sweep has thousands of points), the Pareto line."""

import pandas as pd

from hwsim.report._sweep import _hover, bits_text


def test_hover_text_per_point_with_bits_and_axes():
    df = pd.DataFrame({"index": [7, 8], "policy": ["W8A8", "mixed"], "array.rows": [16, 32],
                       "w_conv1": [8, 4], "a_conv1": [8, 8], "w_fc": [8, 2], "a_fc": [8, 4]}, index=[3, 1])
    assert _hover(df, ["array.rows"]) == [
        "#7 W8A8<br>array.rows=16<br>W/A bits: conv1 8/8, fc 8/8",
        "#8 mixed<br>array.rows=32<br>W/A bits: conv1 4/8, fc 2/4",
    ]
    assert bits_text(df.iloc[1]) == "conv1 4/8, fc 2/4"
    assert _hover(df.iloc[:0], ["array.rows"]) == []


def test_hover_cuts_long_bits_at_160_characters():
    # 20 layers "layer10 4/8, " ... : far over 160 characters, cut to 157 + "..."
    cols = {"index": [0], "policy": ["p"]}
    for i in range(10, 30):
        cols[f"w_layer{i}"] = [4]
        cols[f"a_layer{i}"] = [8]
    text = _hover(pd.DataFrame(cols), [])[0]
    bits = text.split("W/A bits: ")[1]
    full = ", ".join(f"layer{i} 4/8" for i in range(10, 30))
    assert len(full) > 160 and bits == full[:157] + "..."
    assert text.startswith("#0 p<br><br>W/A bits: layer10 4/8, layer11 4/8")


def test_pareto_line_is_the_2d_front_of_its_pair():
    from hwsim.report._sweep import pareto_figure

    # by hand: sorted by x (ties: larger y first) (1, .5) (2, .7) (2, .4) (3, .7) (4, .9) (5, nan); a point is
    # on the front when its y beats every y before it: (1, .5), (2, .7), (4, .9)
    df = pd.DataFrame({"index": range(6), "policy": ["p"] * 6, "status": ["ok"] * 6,
                       "c": [1, 2, 2, 3, 4, 5], "acc": [0.5, 0.4, 0.7, 0.7, 0.9, float("nan")]})
    fig = pareto_figure(df, "c", "acc", axes=[], baselines=[], x_title="cycles", y_title="accuracy",
                        title="t")
    line = fig.data[1]
    assert list(line.x) == [1, 2, 4] and list(line.y) == [0.5, 0.7, 0.9]
