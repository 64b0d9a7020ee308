"""The TRIP integer reference: two offset nibble beats equal the direct int8 × int4 product, always."""
import numpy as np
import pytest

import golden
from golden.trip import LO_OFFSET

INT8 = np.arange(-128, 128)
INT4 = np.arange(-8, 8)


def test_every_beat_is_a_signed_int4():
    for a_bits, x in ((4, INT4), (8, INT8)):
        for beat in golden.trip_beats(x, a_bits):
            assert beat.nibbles.min() == -8 and beat.nibbles.max() == 7


def test_a8_beats_reproduce_every_int8_times_int4_product():
    # one k, every (x, w) pair: 16·(hi·w) + (lo'·w + 8·w) == x·w
    x, w = np.meshgrid(INT8, INT4, indexing="ij")
    x, w = x.reshape(-1, 1), w.reshape(-1, 1)
    hi, lo = golden.trip_beats(x, 8)
    assert hi.hi and not hi.lo and lo.lo and not lo.hi
    got = 16 * golden.mul_int(hi.nibbles, w) + golden.mul_int(lo.nibbles, w) + LO_OFFSET * w
    assert np.array_equal(got, golden.mul_int(x, w, a_bits=8))


@pytest.mark.parametrize("a_bits", [4, 8])
@pytest.mark.parametrize("shape, group", [((1, 8, 1), 8), ((5, 96, 7), 32), ((16, 64, 3), 64), ((3, 10, 2), 5)])
def test_group_accumulators_match_the_oracle(a_bits, shape, group):
    m, k, n = shape
    rng = np.random.default_rng(m * k + n + a_bits)
    lo, hi = golden.int_range(a_bits)
    x = rng.integers(lo, hi + 1, size=(m, k))
    w = rng.integers(-8, 8, size=(n, k))
    keep = rng.random(m) < 0.6
    assert np.array_equal(golden.trip_group_accumulators(x, w, group, a_bits),
                          golden.group_accumulators(x, w, group, x_bits=a_bits))
    assert np.array_equal(golden.trip_group_accumulators(x, w, group, a_bits, keep=keep),
                          golden.group_accumulators(x[keep], w, group, x_bits=a_bits))


def test_accumulator_bound_is_reached_and_its_width_is_tight():
    k = 64
    lo, hi = golden.trip_acc_range(k)
    assert (lo, hi) == (-1016 * k, 1024 * k)
    most = golden.trip_group_accumulators(np.full((1, k), -128), np.full((1, k), -8), k, 8)
    least = golden.trip_group_accumulators(np.full((1, k), 127), np.full((1, k), -8), k, 8)
    assert most.item() == hi and least.item() == lo
    bits = golden.trip_acc_bits(k)
    assert bits == 18 and hi > (1 << (bits - 2)) - 1      # one bit fewer would overflow


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="4 or 8 bits, not 6"):
        golden.trip_beats([1], 6)
    with pytest.raises(OverflowError, match="int4 range"):
        golden.trip_beats([9], 4)
    with pytest.raises(ValueError, match="does not divide"):
        golden.trip_group_accumulators(np.zeros((1, 6), int), np.zeros((2, 6), int), 4, 4)
    with pytest.raises(ValueError, match="keep mask must be bool of length M = 2"):
        golden.trip_group_accumulators(np.zeros((2, 4), int), np.zeros((2, 4), int), 4, 4, keep=[True])
    with pytest.raises(ValueError, match="max_k"):
        golden.trip_acc_range(0)
