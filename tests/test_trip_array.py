"""TRIP MAC array: every accumulator of every tile bit-exact with golden, on Verilator and Icarus."""
import pytest

import golden
from hw.rtl.trip_array import TripArray, array_latency, fanout_copies
from sim.cycle_model import array_beats
from sim.runner import cosim
from sim.toolchain import SIMULATORS
from sim.vendor_models import FamilyOnly

#: max_k 64 keeps the accumulators at 18 bits, so the "max"/"min" cases sit exactly on the bound.
CONFIGS = {
    "ecp5_1x2": dict(rows=1, cols=2, a_lanes=2, w_lanes=2, mul_width=18, mul_latency=2, max_k=64),
    "ice40_2x3": dict(rows=2, cols=3, a_lanes=1, w_lanes=2, mul_width=16, mul_latency=1, max_k=64),
    # the multiplier pipeline the FPGA builds use (hw.sizes: registers yosys packs into the DSPs)
    "ice40_2x2_lat4": dict(rows=2, cols=2, a_lanes=1, w_lanes=2, mul_width=16, mul_latency=4, max_k=64),
    # ... and the netlist the ECP5 builds get: registered MULT18X18D instances stalled through their CE0,
    # enables on DCCA global buffers (sim/vendor_models.py)
    "ecp5_2x2_lat4_on_ecp5": dict(rows=2, cols=2, a_lanes=2, w_lanes=2, mul_width=18, mul_latency=4, max_k=64),
    # ... and the large ECP5 arrays' form: operand registers in the fabric (fpga.sizing)
    "ecp5_2x2_fabric_ops_on_ecp5": dict(rows=2, cols=2, a_lanes=2, w_lanes=2, mul_width=18, mul_latency=4, max_k=64,
                                        dsp_operands=False),
    # a fan-out tree of 2 copies, then one per row, and the local stall of the ECP5 builds; the last level holds
    # the multipliers' packed operands, which go straight into the DSPs' input registers (packed_copies)
    "ecp5_4x2_fanout2_on_ecp5": dict(rows=4, cols=2, a_lanes=2, w_lanes=2, mul_width=18, mul_latency=4, max_k=64,
                                     fanout_stages=2, local_stall=True, packed_copies=True),
    # the ECP5 builds' tree (hw.sizes): its last level split by columns, so no copy feeds more than 4 multipliers,
    # and multipliers that extract their lanes in two cycles (latency 5, the 85F's)
    "ecp5_2x4_fanout_cols2_on_ecp5": dict(rows=2, cols=4, a_lanes=2, w_lanes=2, mul_width=18, mul_latency=5,
                                          max_k=64, fanout_stages=2, fanout_cols=2, local_stall=True),
    # the ECP5 builds' output stage (fpga.sizing): read drain_lanes sums at a time, the lo offsets added per
    # channel as sums enter the first places (head_offsets); 8 chunks per tile, so the offsets rotate by 4 of 8
    "ecp5_2x4_drain4_offsets_on_ecp5": dict(rows=2, cols=4, a_lanes=2, w_lanes=2, mul_width=18, mul_latency=4,
                                            max_k=64, fanout_stages=2, fanout_cols=2, local_stall=True,
                                            drain_lanes=4, head_offsets=True),
    # ... portable, with 4 lanes over 6 channels (the held offsets wrap mid-chunk), and the plain drain (no
    # offsets) of a 2×2 tile 2 sums at a time
    "ice40_2x3_drain4_offsets": dict(rows=2, cols=3, a_lanes=1, w_lanes=2, mul_width=16, mul_latency=1, max_k=64,
                                     drain_lanes=4, head_offsets=True),
    "ice40_2x1_drain2": dict(rows=2, cols=1, a_lanes=1, w_lanes=2, mul_width=16, mul_latency=2, max_k=64,
                             drain_lanes=2),
    # packed operands from a last level of rows {0}, {1, 2}, into the portable multiplier whose bias correction
    # (bias_a = 8) then starts from them
    "ecp5_3x2_fanout2_packed": dict(rows=3, cols=2, a_lanes=2, w_lanes=2, mul_width=18, mul_latency=2, max_k=64,
                                    fanout_stages=2, packed_copies=True),
    # a column split straight from the input, into uneven groups: columns {0} and {1, 2}
    "ice40_2x3_fanout_cols2": dict(rows=2, cols=3, a_lanes=1, w_lanes=2, mul_width=16, mul_latency=1, max_k=64,
                                   fanout_stages=1, fanout_cols=2),
    # rows that do not halve evenly: the second level's copies take rows {0} and {1, 2} from the first's
    "ice40_3x2_fanout2": dict(rows=3, cols=2, a_lanes=1, w_lanes=2, mul_width=16, mul_latency=1, max_k=64,
                              fanout_stages=2),
}
#: Configurations elaborated for an FPGA family rather than as the portable netlist.
PLATFORMS = {name: FamilyOnly("ecp5") for name in CONFIGS if name.endswith("_on_ecp5")}


def cases(a_bits: int) -> list[dict]:
    base = dict(a_bits=a_bits, seed=a_bits)
    return [
        {**base, "m": 1, "k": 16, "n": 4, "group": 16, "kind": "random"},                # M = 1, full rate
        {**base, "m": 5, "k": 32, "n": 7, "group": 16, "kind": "random", "idle": 0.2, "stall": 0.3},
        {**base, "m": 2, "k": 64, "n": 4, "group": 64, "kind": "max"},                   # the upper bound
        {**base, "m": 3, "k": 64, "n": 5, "group": 64, "kind": "min"},                   # the lower bound
        {**base, "m": 3, "k": 48, "n": 9, "group": 16, "kind": "corners", "stall": 0.5},
        {**base, "m": 4, "k": 8, "n": 6, "group": 2, "kind": "random", "stall": 0.7},    # array must freeze
        {**base, "m": 9, "k": 16, "n": 5, "group": 8, "kind": "random", "keep": 0.5},    # token skipping
        {**base, "m": 4, "k": 16, "n": 4, "group": 16, "kind": "random", "keep": 0.0},   # all pruned
        {**base, "m": 4, "k": 16, "n": 4, "group": 16, "kind": "random", "keep": 1.0},  # none pruned
        {**base, "m": 3, "k": 32, "n": 4, "group": 32, "kind": "random", "reset_mid_group": True},
        {**base, "m": 3, "k": 32, "n": 5, "group": 16, "kind": "random", "shuffle": True, "stall": 0.3},  # any order
    ]


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("name", CONFIGS)
def test_cosim_bit_exact(name, simulator):
    params = CONFIGS[name]
    dut = TripArray(**params)
    all_cases = cases(4) + cases(8)
    report = cosim(dut, toplevel="trip_array", simulator=simulator, bench="sim.bench_trip_array",
                   config={"params": params, "cases": all_cases}, platform=PLATFORMS.get(name)).report
    assert report["mismatches"] == 0 and len(report["cases"]) == len(all_cases)
    lo, hi = golden.trip_acc_range(params["max_k"])
    reached = {c["kind"]: c["max_abs"] for c in report["cases"] if c["a_bits"] == 8}
    assert reached["max"] == hi and reached["min"] == -lo        # the accumulators' bound was hit
    for c in report["cases"]:
        kept = c["m"] if c.get("keep") is None else None
        if kept is not None:
            assert c["beats"] == array_beats(kept, c["k"], c["n"], c["a_bits"], dut.tokens, dut.channels)
    pruned = [c for c in report["cases"] if c.get("keep") == 0.0]
    assert all(c["beats"] == 0 and c["outputs"] == 0 for c in pruned)


def test_a8_costs_two_beats_per_k_and_pruned_rows_cost_none():
    assert array_beats(128, 768, 768, 8, 2, 4) == 2 * array_beats(128, 768, 768, 4, 2, 4)
    assert array_beats(64, 768, 768, 4, 2, 4) * 2 == array_beats(128, 768, 768, 4, 2, 4)
    with pytest.raises(ValueError, match="4 or 8"):
        array_beats(1, 1, 1, 6, 1, 1)


@pytest.mark.parametrize("kwargs, message", [
    (dict(rows=0), "rows must be a positive integer"),
    (dict(mul_latency=6), "mul_latency must be one of"),
    (dict(max_k=0), "max_k must be a positive integer"),
    (dict(a_lanes=2, w_lanes=2, mul_width=16), "16-bit signed port"),
    (dict(rows=1, cols=3, drain_lanes=5), r"drain_lanes must be a positive divisor of the 2×6 tile's 12 sums"),
    (dict(drain_lanes=0), "drain_lanes must be a positive divisor"),
    (dict(fanout_stages=-1), "fanout_stages must be a non-negative integer"),
    (dict(fanout_stages=True), "fanout_stages must be a non-negative integer"),
    (dict(cols=4, fanout_stages=1, fanout_cols=5), r"fanout_cols must be an integer from 1 to cols \(4\)"),
    (dict(cols=4, fanout_stages=1, fanout_cols=0), "fanout_cols must be an integer from 1 to cols"),
    (dict(cols=4, fanout_cols=2), r"above 1 only with fanout_stages ≥ 1, not 2 \(fanout_stages=0\)"),
    (dict(packed_copies=True), "packed_copies needs fanout_stages ≥ 1"),
    (dict(head_offsets=True), "head_offsets needs drain_lanes"),
])
def test_bad_parameters_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TripArray(**kwargs)


def test_accumulator_width_follows_max_k():
    assert TripArray(max_k=64).acc_bits == golden.trip_acc_bits(64) == 18
    assert TripArray(max_k=4096).acc_bits == 24



def test_fanout_levels_grow_to_one_copy_per_row():
    assert fanout_copies(8, 0) == []
    assert fanout_copies(8, 1) == [8]
    assert fanout_copies(8, 2) == [4, 8]                 # the ULX3S-85F's tree
    assert fanout_copies(16, 2) == [4, 16]
    assert fanout_copies(3, 2) == [2, 3]
    assert fanout_copies(1, 1) == [1]
    assert array_latency(4, 2) == array_latency(4) + 2 == TripArray(mul_latency=4, fanout_stages=2).latency == 8
