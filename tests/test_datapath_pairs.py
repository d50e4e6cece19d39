"""The int16 pair-saturating accumulation (x86 ``vpmaddubsw``): the fast kernel equals the reference loop."""

import numpy as np


def test_fast_pair_sums_equal_the_reference_loop():
    """pair_sums16 (the fast kernel) against the plain loop, odd and even K, with the pair-overflow extremes
    (255 x 127 twice = 64,770 -> 32,767; 255 x -128 twice = -65,280 -> -32,768)."""
    from hwsim.datapath import _pairs

    rng = np.random.default_rng(7)
    for k in (1, 2, 3, 33, 256, 515):
        u = rng.integers(0, 256, (11, k)).astype(np.uint8)
        s = rng.integers(-128, 128, (k, 6)).astype(np.int8)
        u[0], s[:, 0], s[:, 1] = 255, 127, -128
        fast, ref = _pairs.pair_sums16(u, s), _pairs.pair_sums16_reference(u, s)
        assert np.array_equal(fast, ref)
        if k >= 2:
            assert fast[0, 0] == 32767 * (k // 2) + (255 * 127 if k % 2 else 0)
            assert fast[0, 1] == -32768 * (k // 2) + (255 * -128 if k % 2 else 0)
