"""TRIP core (sequencer + array): whole runs through registers and streams, bit-exact, on both simulators."""
import numpy as np
import pytest

import golden

from hw.rtl.trip_sequencer import Error
from hw.trip_core import TripCore
from sim.cycle_model import requant_paced
from sim.runner import cosim
from sim.toolchain import SIMULATORS
from sim.vendor_models import FamilyOnly
from sim.trip_driver import CoreLimits, prepare_run

CONFIGS = {
    "ecp5_1x2": dict(rows=1, cols=2, a_lanes=2, w_lanes=2, mul_width=18, mul_latency=2, max_k=64,
                     max_k_total=128, beat_queue=True),        # the beat queue the ECP5 builds use
    "ice40_2x3": dict(rows=2, cols=3, a_lanes=1, w_lanes=2, mul_width=16, mul_latency=1, max_k=64,
                      max_k_total=128),
    # the multiplier pipeline the FPGA builds use; its run lengths must still equal the cycle model's
    "ice40_2x2_lat4": dict(rows=2, cols=2, a_lanes=1, w_lanes=2, mul_width=16, mul_latency=4, max_k=64,
                           max_k_total=128),
    # a sliced activation buffer (hw.sizes.SLICED_ECP5_MEMORIES): reads through registers, slices of 8 bits, each
    # two memories of 4 bits (the builds' slices are RAMS_PER_SLICE RAMs wide)
    "ecp5_1x2_sliced": dict(rows=1, cols=2, a_lanes=2, w_lanes=2, mul_width=18, mul_latency=2, max_k=64,
                            max_k_total=128, beat_queue=True, act_slice_width=8, act_ram_width=4),
}

BAD = [  # raw register sets the driver refuses; the hardware must flag them too, not hang
    ({"K": 0, "GROUP": 8, "M_TILES": 1, "N_TILES": 1, "A_BITS": 4}, Error.K_RANGE),
    ({"K": 129, "GROUP": 1, "M_TILES": 1, "N_TILES": 1, "A_BITS": 4}, Error.K_RANGE),
    ({"K": 128, "GROUP": 128, "M_TILES": 1, "N_TILES": 1, "A_BITS": 8}, Error.GROUP_RANGE),
    ({"K": 48, "GROUP": 0, "M_TILES": 1, "N_TILES": 1, "A_BITS": 8}, Error.GROUP_RANGE),
    ({"K": 48, "GROUP": 32, "M_TILES": 1, "N_TILES": 1, "A_BITS": 8}, Error.GROUP_DIVIDES_K),
    ({"K": 48, "GROUP": 16, "M_TILES": 1, "N_TILES": 1, "A_BITS": 6}, Error.A_BITS),
    ({"K": 48, "GROUP": 16, "M_TILES": 0, "N_TILES": 1, "A_BITS": 4}, Error.TILES_RANGE),
    # Legality is judged on the whole written word, not on the bits a register keeps: these truncate to
    # legal values (K 48, N_TILES 4) and must still be refused.
    ({"K": (1 << 20) + 48, "GROUP": 16, "M_TILES": 1, "N_TILES": 1, "A_BITS": 4}, Error.K_RANGE),
    ({"K": 48, "GROUP": 16, "M_TILES": 1, "N_TILES": (1 << 16) + 4, "A_BITS": 4}, Error.TILES_RANGE),
    ({"K": 48, "GROUP": 16, "M_TILES": 1, "N_TILES": 1, "A_BITS": (1 << 31) | 8}, Error.A_BITS),
    # Several illegal at once: the first in the documented order names the error.
    ({"K": 0, "GROUP": 0, "M_TILES": 0, "N_TILES": 1, "A_BITS": 6}, Error.K_RANGE),
    ({"K": 48, "GROUP": 16, "M_TILES": 0, "N_TILES": 1, "A_BITS": 6}, Error.A_BITS),
]


def cases(a_bits: int) -> list[dict]:
    base = dict(a_bits=a_bits, seed=a_bits + 3)
    return [
        {**base, "m": 1, "k": 32, "n": 4, "group": 16, "kind": "random"},                       # M = 1
        {**base, "m": 5, "k": 48, "n": 9, "group": 16, "kind": "random"},                       # edge tiles
        {**base, "m": 3, "k": 64, "n": 5, "group": 64, "kind": "max"},                          # acc bound
        {**base, "m": 2, "k": 64, "n": 4, "group": 64, "kind": "min"},
        {**base, "m": 4, "k": 128, "n": 7, "group": 32, "kind": "corners", "idle": 0.3, "stall": 0.5},
        {**base, "m": 6, "k": 16, "n": 12, "group": 2, "kind": "random", "stall": 0.7},         # freezes
        {**base, "m": 9, "k": 32, "n": 6, "group": 8, "kind": "random", "keep": 0.5},           # skipping
        {**base, "m": 4, "k": 32, "n": 4, "group": 8, "kind": "random", "keep": 0.0},           # all pruned
        # K = 1: each token tile's reload writes the one word its last beat reads, here while the array stalls
        {**base, "m": 15, "k": 1, "n": 12, "group": 1, "kind": "random", "idle": 0.5, "stall": 0.8},
        {**base, "m": 1, "k": 1, "n": 4, "group": 1, "kind": "random"},      # the shortest run: one beat (A4)
    ]


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("name", CONFIGS)
def test_cosim_runs_bit_exact(name, simulator):
    params = CONFIGS[name]
    all_cases = cases(4) + cases(8)
    report = cosim(TripCore(**params), toplevel="trip_core", simulator=simulator, bench="sim.bench_trip_core",
                   config={"params": params, "cases": all_cases,
                           "bad": [{"registers": r, "error": int(e)} for r, e in BAD]}).report
    assert report["mismatches"] == 0 and len(report["cases"]) == len(all_cases)
    assert report["flagged"] == [int(e) for _, e in BAD]
    for c in report["cases"]:
        if c["full_rate"]:
            assert c["cycles"] == c["predicted"], c          # exact at full rate (the target is 2%)
    by_kind = {(c["kind"], c["a_bits"]): c for c in report["cases"]}
    assert by_kind["max", 8]["max_abs"] == 1024 * 64 and by_kind["min", 8]["max_abs"] == 1016 * 64


#: Cores that requantize on chip: 2, 4 and 6 chunks per tile (6: the chunk counters wrap by their reset, not by
#: overflowing), and enough groups for K / 1.
RQ_CONFIGS = {
    "ecp5_1x2_rq": {**CONFIGS["ecp5_1x2"], "requant_lanes": 4, "max_groups": 64},
    "ice40_2x3_rq": {**CONFIGS["ice40_2x3"], "requant_lanes": 3, "max_groups": 64},
    "ice40_2x3_rq_6_chunks": {**CONFIGS["ice40_2x3"], "requant_lanes": 2, "max_groups": 64},
    # as the ECP5 builds elaborate it: registered MULT18X18D instances in the array and the requantizer,
    # DCCA global enables (sim/vendor_models.py), the multiplier pipeline, beat fan-out (a copy per row, then
    # split by columns) and local stall of hw.sizes, the lo offsets added as the tile drains (fpga.sizing), and
    # the activation buffer in slices read by credit
    "ecp5_2x2_rq_on_ecp5": {**CONFIGS["ecp5_1x2"], "rows": 2, "cols": 2, "mul_latency": 4, "requant_lanes": 4,
                            "max_groups": 64, "fanout_stages": 2, "fanout_cols": 2, "local_stall": True,
                            "head_offsets": True, "act_slice_width": 8},
}
#: Configurations elaborated for an FPGA family rather than as the portable netlist.
PLATFORMS = {"ecp5_2x2_rq_on_ecp5": FamilyOnly("ecp5")}
RQ_BAD = [  # requantizer settings; each set restores the others so one bad value is flagged at a time
    ({"K": 32, "GROUP": 16, "M_TILES": 1, "N_TILES": 1, "A_BITS": 4, "SHIFT": 1, "OUT_BITS": 6}, Error.OUT_BITS),
    ({"K": 32, "GROUP": 16, "M_TILES": 1, "N_TILES": 1, "A_BITS": 4, "SHIFT": 0, "OUT_BITS": 8},
     Error.SHIFT_RANGE),
    ({"K": 32, "GROUP": 16, "M_TILES": 1, "N_TILES": 1, "A_BITS": 4, "SHIFT": 63, "OUT_BITS": 4},
     Error.SHIFT_RANGE),
    ({"K": 128, "GROUP": 1, "M_TILES": 1, "N_TILES": 1, "A_BITS": 4, "SHIFT": 8, "OUT_BITS": 4},
     Error.TOO_MANY_GROUPS),
]


def rq_cases(a_bits: int) -> list[dict]:
    base = dict(a_bits=a_bits, seed=a_bits + 5, mult="random")
    return [
        {**base, "m": 1, "k": 32, "n": 4, "group": 16, "kind": "random", "out_bits": 8},        # M = 1
        {**base, "m": 5, "k": 48, "n": 9, "group": 16, "kind": "random", "out_bits": 4},        # edge tiles
        {**base, "m": 3, "k": 128, "n": 5, "group": 2, "kind": "max", "out_bits": 8, "mult": "max"},  # widest sums
        {**base, "m": 2, "k": 64, "n": 7, "group": 64, "kind": "min", "out_bits": 4, "mult": "max"},
        {**base, "m": 4, "k": 64, "n": 7, "group": 1, "kind": "corners", "out_bits": 8},        # drain-paced
        {**base, "m": 4, "k": 128, "n": 7, "group": 32, "kind": "corners", "out_bits": 4, "idle": 0.3,
         "stall": 0.5},
        {**base, "m": 6, "k": 16, "n": 12, "group": 2, "kind": "random", "out_bits": 8, "stall": 0.7},
        {**base, "m": 9, "k": 32, "n": 6, "group": 8, "kind": "random", "out_bits": 8, "keep": 0.5},
        {**base, "m": 4, "k": 32, "n": 4, "group": 8, "kind": "random", "out_bits": 4, "keep": 0.0},
    ]


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("name", RQ_CONFIGS)
def test_cosim_requantized_runs_bit_exact(name, simulator):
    """The core with its output stage: int8/int4 results equal golden.requantize of the golden sums."""
    params = RQ_CONFIGS[name]
    all_cases = rq_cases(4) + rq_cases(8)
    bad = BAD + RQ_BAD
    core = TripCore(**params)
    report = cosim(core, toplevel="trip_core", simulator=simulator, bench="sim.bench_trip_core",
                   config={"params": params, "cases": all_cases,
                           "bad": [{"registers": {"SHIFT": 1, "OUT_BITS": 8, **r}, "error": int(e)}
                                   for r, e in bad]}, platform=PLATFORMS.get(name)).report
    assert report["mismatches"] == 0 and len(report["cases"]) == len(all_cases)
    assert report["flagged"] == [int(e) for _, e in bad]
    for c in report["cases"]:
        if not c["full_rate"]:
            continue
        # the requantizer sets the pace: the model's first-order term, within the 2% target
        if requant_paced(c["group"], c["a_bits"], core.requant.chunks, core.array.handover):
            assert abs(c["cycles"] - c["predicted"]) <= 0.02 * c["cycles"], c
        else:
            assert c["cycles"] == c["predicted"], c
    for c in report["cases"]:
        if c["kind"] in ("max", "min"):         # extreme sums × largest multipliers: every output on a rail
            assert c["clamped"] == c["m"] * c["n"], c


LIMITS = CoreLimits(tokens=2, channels=4, max_k=64, max_k_total=128)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(a_bits=6), ValueError, "4 or 8, not 6"),
    (dict(x=np.zeros((2, 256), int), w=np.zeros((3, 256), int)), ValueError, "activation buffer of 128"),
    (dict(group_size=128, x=np.zeros((2, 128), int), w=np.zeros((3, 128), int)), ValueError, "max_k = 64"),
    (dict(group_size=5), ValueError, "does not divide K = 32"),
    (dict(w=np.zeros((3, 16), int)), ValueError, "shape mismatch"),
    (dict(keep=np.ones(3, bool)), ValueError, r"one entry per token \(2\)"),
    (dict(x=np.full((2, 32), 8)), OverflowError, "int4 range"),
    (dict(limits=CoreLimits(tokens=2, channels=1, max_k=64, max_k_total=128, max_tiles=2)), ValueError,
     r"3 channel tiles: one run takes at most 2"),
])
def test_driver_refuses_bad_runs_before_sending(kwargs, error, message):
    args = dict(x=np.zeros((2, 32), int), w=np.zeros((3, 32), int), group_size=16, a_bits=4, limits=LIMITS)
    args.update(kwargs)
    with pytest.raises(error, match=message):
        prepare_run(args.pop("x"), args.pop("w"), **args)


RQ_LIMITS = CoreLimits(tokens=2, channels=4, max_k=64, max_k_total=128, requant_lanes=4, max_groups=4, acc_bits=20)


def _rq(n: int = 3, groups: int = 2, m: int = 2) -> golden.RequantParams:
    return golden.RequantParams(np.ones((n, groups), int), np.ones(m, int), 4, 8)


@pytest.mark.parametrize("limits, kwargs, message", [
    (LIMITS, dict(requant=_rq()), "needed exactly when the core requantizes"),
    (RQ_LIMITS, dict(), "needed exactly when the core requantizes"),
    (RQ_LIMITS, dict(group_size=4, requant=_rq(groups=8)), "8 groups exceeds the requantizer's max_groups = 4"),
    (RQ_LIMITS, dict(requant=_rq(groups=3)), r"wmul \(3, 2\)"),
    (RQ_LIMITS, dict(requant=_rq(m=2), keep=np.array([True, False])), r"tmul \(1,\)"),
])
def test_driver_refuses_bad_requantization(limits, kwargs, message):
    args = dict(x=np.zeros((2, 32), int), w=np.zeros((3, 32), int), group_size=16, a_bits=4, limits=limits)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        prepare_run(args.pop("x"), args.pop("w"), **args)
