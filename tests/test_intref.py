"""The golden integer reference: every claim checked over its whole input space."""
import itertools

import numpy as np
import pytest

import golden

INT8 = np.arange(-128, 128)
INT4 = np.arange(-8, 8)


def test_nibble_split_round_trips_every_int8():
    hi, lo = golden.nibble_split(INT8)
    assert hi.min() == -8 and hi.max() == 7
    assert lo.min() == 0 and lo.max() == 15
    assert np.array_equal(16 * hi.astype(int) + lo, INT8)
    assert np.array_equal(golden.nibble_join(hi, lo), INT8)


def test_a8_as_two_nibble_passes_equals_direct_product_for_every_input():
    # The TRIP claim: w·x == 16·(w·hi) + w·lo for every int8 x and int4 w.
    x, w = np.meshgrid(INT8, INT4)
    hi, lo = golden.nibble_split(x)
    direct = golden.mul_int(w, x, a_bits=4, b_bits=8)
    two_pass = 16 * golden.mul_int(w, hi) + golden.mul_int(w, lo.astype(np.int64), b_bits=5)
    assert np.array_equal(direct, two_pass)


def test_pack_int4_round_trips_every_pair_and_puts_element_0_low():
    pairs = np.array(list(itertools.product(INT4, INT4)))
    packed = golden.pack_int4(pairs)
    assert packed.dtype == np.uint8 and packed.shape == (256, 1)
    assert len(set(packed.ravel().tolist())) == 256
    assert np.array_equal(golden.unpack_int4(packed), pairs)
    assert golden.pack_int4([-1, 0])[0] == 0x0F and golden.pack_int4([0, -8])[0] == 0x80


def test_pack_int4_rejects_odd_length_and_out_of_range():
    with pytest.raises(ValueError, match="even-length"):
        golden.pack_int4([1, 2, 3])
    with pytest.raises(OverflowError, match=r"= 8 is outside int4 range \[-8, 7\]"):
        golden.pack_int4([0, 8])
    with pytest.raises(TypeError, match="uint8"):
        golden.unpack_int4(np.zeros(2, dtype=np.int8))


def test_check_int_refuses_floats_and_bools():
    with pytest.raises(TypeError, match="integers"):
        golden.check_int([1.0], 4)
    with pytest.raises(TypeError, match="integers"):
        golden.check_int([True], 4)
    with pytest.raises(ValueError, match="positive integer"):
        golden.int_range(0)


def test_mul_int_is_exact_for_every_int4_pair():
    a, w = np.meshgrid(INT4, INT4)
    expected = np.array([[int(x) * int(y) for x, y in zip(ra, rw)] for ra, rw in zip(a, w)])
    got = golden.mul_int(a, w)
    assert got.dtype == np.int32 and np.array_equal(got, expected)
    assert got.min() == -56 and got.max() == 64


def test_dot_int_matches_python_and_refuses_int32_overflow():
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, size=(5, 300))
    w = rng.integers(-8, 8, size=(5, 300))
    expected = [sum(int(x) * int(y) for x, y in zip(ra, rw)) for ra, rw in zip(a, w)]
    assert golden.dot_int(a, w, a_bits=8).tolist() == expected
    big = np.full(2 ** 18, -128)
    with pytest.raises(OverflowError, match="int32"):
        golden.dot_int(big, big, a_bits=8, b_bits=8)    # 2^18 · 2^14 = 2^32
    with pytest.raises(ValueError, match="last axes differ"):
        golden.dot_int(np.zeros(3, int), np.zeros(4, int))


def test_simd_mul4_golden_is_a_grouped_outer_product():
    rng = np.random.default_rng(1)
    a = rng.integers(-8, 8, size=(12, 2))
    w = rng.integers(-8, 8, size=(12, 3))
    got = golden.simd_mul4(a, w, acc_depth=3)
    assert got.shape == (4, 2, 3)
    for g in range(4):
        for i in range(2):
            for j in range(3):
                assert got[g, i, j] == sum(int(a[n, i]) * int(w[n, j]) for n in range(3 * g, 3 * g + 3))
    assert golden.simd_mul4_range(4) == (-224, 256)
    with pytest.raises(ValueError, match="whole number"):
        golden.simd_mul4(a[:5], w[:5], acc_depth=3)
