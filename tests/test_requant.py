"""Requantization: the golden definition, and the RTL stage bit-exact with it on Verilator and Icarus."""
import numpy as np
import pytest

import golden
from hw.rtl.requant import Requant
from sim.runner import cosim
from sim.stimulus import requant_operands
from sim.toolchain import SIMULATORS
from sim.vendor_models import FamilyOnly


# --- the golden definition ---------------------------------------------------------------------------

def test_rounding_is_half_up_for_both_signs():
    acc = np.array([3, -3, 1, -1, 5, -5]).reshape(6, 1, 1)
    got = golden.requantize(acc, [[1]], np.ones(6, dtype=int), shift=1, out_bits=8)[:, 0]
    assert got.tolist() == [2, -1, 1, 0, 3, -2]          # 1.5→2, -1.5→-1, 0.5→1, -0.5→0, 2.5→3, -2.5→-2


@pytest.mark.parametrize("out_bits, lo, hi", [(8, -128, 127), (4, -8, 7)])
def test_outputs_saturate_to_the_signed_range(out_bits, lo, hi):
    acc = np.array([10_000, -10_000, 3]).reshape(3, 1, 1)
    assert golden.requantize(acc, [[1]], [1, 1, 1], 1, out_bits)[:, 0].tolist() == [hi, lo, 2]


def test_per_group_multipliers_weight_each_group():
    acc = np.array([[[4, 8]]])                     # two groups of one output
    assert golden.requantize(acc, [[2, 1]], [1], shift=4, out_bits=8)[0, 0] == 1    # (8 + 8) / 16
    assert golden.requantize(acc, [[1, 3]], [1], shift=2, out_bits=8)[0, 0] == 7    # (4 + 24) / 4


def test_int64_and_python_int_paths_agree_at_the_widest_sums():
    acc, wmul, tmul, _ = requant_operands("max", 2, 3, 8, acc_bits=24, mult_bits=16, out_bits=8)
    for shift in (1, 30, 47, 62):
        narrow = golden.requantize(acc, wmul, tmul, shift, 8, acc_bits=24)      # int64 inside
        wide = golden.requantize(acc, wmul, tmul, shift, 8, acc_bits=48)        # Python ints inside
        assert np.array_equal(narrow, wide)
    exact = int(acc[0, 0, 0]) * int(wmul[0, 0]) * 8 * int(tmul[0])
    assert exact.bit_length() + 1 <= golden.requant_bits(24, 16, 8)[1]          # the bound holds it
    assert golden.requantize(acc, wmul, tmul, 62, 8, acc_bits=24)[0, 0] == (exact + (1 << 61)) >> 62


def test_fixed_point_follows_the_float_output_within_one_step():
    rng = np.random.default_rng(3)
    acc = rng.integers(-3000, 3000, size=(16, 24, 4))
    ws = rng.uniform(0.002, 0.05, size=(24, 4))
    xs = rng.uniform(0.01, 0.4, size=16)
    y = golden.group_scaled(acc, ws, xs)
    for out_bits in (4, 8):
        step = golden.output_scale(y, out_bits)
        p = golden.requant_params(ws, xs, step, out_bits)
        q = golden.requantize(acc, p.wmul, p.tmul, p.shift, out_bits)
        ideal = np.clip(np.round(y / step), *golden.int_range(out_bits))
        assert np.abs(q - ideal).max() <= 1 and np.mean(q == ideal) > 0.98
        assert p.wmul.max() >= 1 << 15 and p.tmul.max() >= 1 << 15               # full precision used


@pytest.mark.parametrize("call, message", [
    (lambda: golden.requantize(np.zeros((1, 1, 1), int), [[1]], [1], 1, 6), "4 or 8 bits"),
    (lambda: golden.requantize(np.zeros((1, 1, 1), int), [[1]], [1], 0, 8), "shift must be"),
    (lambda: golden.requantize(np.zeros((2, 1, 1), int), [[1]], [1], 1, 8), "acc \\(M, N, G\\)"),
    (lambda: golden.requantize(np.zeros((1, 1, 1), int), [[-1]], [1], 1, 8), "wmul"),
    (lambda: golden.requantize(np.full((1, 1, 1), 1 << 40), [[1]], [1], 1, 8), "acc"),
    (lambda: golden.requant_params([[1.0, 1e-9]], [1.0], 1.0, 8), "span more than 16 bits"),
    (lambda: golden.requant_params([[1.0]], [0.0], 1.0, 8), "finite and positive"),
    (lambda: golden.requant_params([[1.0]], [1.0], float("nan"), 8), "out_scale"),
    (lambda: golden.output_scale(np.zeros(3), 8), "cannot derive"),
])
def test_bad_input_is_a_clear_error(call, message):
    with pytest.raises((ValueError, OverflowError), match=message):
        call()


# --- the RTL stage --------------------------------------------------------------------------------------

#: ``chunks_4``: an iCE40-sized 2×8 tile in four 4-lane chunks.  ``chunks_1``: one chunk, so every
#: beat needs the partial sum of the beat right ahead, written after its own read (forwarded).
#: ``chunks_2``: a beat's chunk was last written in the cycle of its read (the memory's transparent read).
#: ``chunks_3``: the fewest chunks whose sums are written a stage late (``Requant.WRITE_DELAY``), in the
#: cycle of the read of the beat 3 behind.
CONFIGS = {
    "chunks_4": (dict(lanes=4, chunks=4, acc_bits=18, max_groups=4), 2, 8),
    "chunks_1": (dict(lanes=4, chunks=1, acc_bits=20, max_groups=3), 2, 2),
    "chunks_2": (dict(lanes=2, chunks=2, acc_bits=19, max_groups=5), 2, 2),
    "chunks_3": (dict(lanes=2, chunks=3, acc_bits=19, max_groups=5), 2, 3),
    # as the ECP5 builds elaborate it: the products' registers in MULT18X18D instances (three pieces of a
    # 39-bit partial sum), the stage enable on a DCCA
    "chunks_4_on_ecp5": (dict(lanes=2, chunks=4, acc_bits=20, max_groups=8), 2, 4),
}
#: Configurations elaborated for an FPGA family rather than as the portable netlist.
PLATFORMS = {"chunks_4_on_ecp5": FamilyOnly("ecp5")}


def cases(out_bits: int, groups: int) -> list[dict]:
    base = dict(out_bits=out_bits, seed=out_bits, groups=groups)
    return [
        {**base, "m": 5, "n": 11, "kind": "random"},                           # edge tiles, full rate
        {**base, "m": 1, "n": 3, "kind": "random", "groups": 1},               # M = 1, one group
        {**base, "m": 6, "n": 9, "kind": "random", "idle": 0.3, "stall": 0.4},
        {**base, "m": 3, "n": 8, "kind": "random", "stall": 0.8},              # the stage must freeze
        {**base, "m": 2, "n": 8, "kind": "max"},                               # widest sums, all clamp
        {**base, "m": 2, "n": 8, "kind": "min"},
        {**base, "m": 4, "n": 8, "kind": "ties"},                              # every output a tie
        {**base, "m": 6, "n": 40, "kind": "edges"},                            # ±2^k ± 3: every boundary
        {**base, "m": 6, "n": 40, "kind": "edges_far"},                        # ... behind a shift of 31
        {**base, "m": 2, "n": 8, "kind": "max_far"},                           # shift 62: past the top bit
        {**base, "m": 2, "n": 8, "kind": "min_far"},
        {**base, "m": 2, "n": 8, "kind": "max_top"},                           # the product's top 5 bits
        {**base, "m": 2, "n": 8, "kind": "min_top"},
    ]


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("name", CONFIGS)
def test_cosim_bit_exact(name, simulator):
    params, tokens, channels = CONFIGS[name]
    all_cases = cases(8, params["max_groups"]) + cases(4, params["max_groups"])
    report = cosim(Requant(**params), toplevel="requant", simulator=simulator, bench="sim.bench_requant",
                   config={"params": params, "tokens": tokens, "channels": channels, "cases": all_cases},
                   platform=PLATFORMS.get(name)).report
    assert report["mismatches"] == 0 and len(report["cases"]) == len(all_cases)
    for c in report["cases"]:
        if c["kind"] in ("max", "min"):
            assert c["clamped"] == c["m"] * c["n"]       # the widest partial sums saturate, not wrap (the
            #                                              tile's padding, in a shape that does not divide, is 0)
        if c["kind"] == "random" and c["groups"] > 1:
            assert 0 < c["clamped"] < c["outputs"]        # the shift puts outputs in range, some clamp


@pytest.mark.parametrize("kwargs, message", [
    (dict(lanes=0), "lanes must be a positive integer"),
    (dict(lanes=2, chunks=0), "chunks must be a positive integer"),
    (dict(lanes=2, max_groups=True), "max_groups must be a positive integer"),
])
def test_bad_parameters_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Requant(**kwargs)


def test_register_widths_follow_the_golden_bound():
    stage = Requant(lanes=2, acc_bits=24, max_groups=64)
    assert (stage.psum_bits, stage.product_bits) == golden.requant_bits(24, 16, 64) == (46, 62)
