"""The preloaded-memory harness: same bit-exact check as the stream benches, at Verilator speed."""
from hw.sizes import core_params
from sim.runner import cosim
from sim.trip_harness import TripHarness

PARAMS = dict(rows=1, cols=2, a_lanes=2, w_lanes=2, mul_width=18, mul_latency=2, max_k=64, max_k_total=128)
DEPTHS = dict(act_depth=512, weight_depth=512, result_depth=256)


def test_harness_runs_bit_exact_and_matches_the_cycle_model():
    cases = [{"m": 7, "k": 96, "n": 9, "group": 32, "a_bits": a, "kind": "random", "seed": a} for a in (4, 8)]
    cases.append({"m": 8, "k": 128, "n": 8, "group": 64, "a_bits": 8, "kind": "max", "seed": 0})
    cases.append({"m": 9, "k": 64, "n": 5, "group": 16, "a_bits": 4, "kind": "corners", "seed": 2, "keep": 0.6})
    report = cosim(TripHarness(PARAMS, **DEPTHS), toplevel="trip_harness", simulator="verilator",
                   bench="sim.bench_trip_fast", config={"params": PARAMS, "depths": DEPTHS, "cases": cases}).report
    assert report["mismatches"] == 0 and len(report["cases"]) == len(cases)
    for c in report["cases"]:
        assert c["cycles"] == c["predicted"], c
