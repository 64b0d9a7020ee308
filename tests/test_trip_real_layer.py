"""A real SmolLM2 layer on the TRIP core: exported integers, the shipped bit plan and a real keep mask."""
import numpy as np
import pytest

import golden
from hw.rtl.requant import Requant
from hw.trip_core import TripCore
from sim.runner import cosim
from sim.toolchain import SIMULATORS
from sim.trip_driver import CoreLimits, prepare_run
from sim.trip_schedule import sums_to_tiles

PARAMS = dict(rows=2, cols=8, a_lanes=2, w_lanes=2, mul_width=18, mul_latency=2, max_k=64, max_k_total=1536,
              beat_queue=True)


def test_export_oracle_and_golden_agree_on_the_captured_layers(real_layers):
    limits = CoreLimits.of(TripCore(**PARAMS))
    bits = set()
    for name, real, _ in real_layers:
        assert 0 < real.keep.sum() < len(real.keep)          # the pruning plan really dropped tokens
        run = prepare_run(real.x, real.layer.weight, group_size=real.layer.group_size, a_bits=real.a_bits,
                          limits=limits, keep=real.keep)
        oracle = real.oracle()                                # (kept, out, groups) from the export
        assert np.array_equal(run.expected, sums_to_tiles(oracle, limits.tokens, limits.channels))
        bits.add(real.a_bits)
    assert bits == {4, 8}                                     # one layer of each width, from the plan


#: Icarus takes 6-9 minutes per real layer (Verilator: 13-20 s), so it runs in the slow suite;
#: CI's Icarus coverage of the core is tests/test_trip_core.py.
@pytest.mark.parametrize("simulator", [pytest.param(s, marks=pytest.mark.slow) if s == "icarus" else s
                                       for s in SIMULATORS])
def test_real_layers_bit_exact_on_the_core(real_layers, simulator):
    cases = [{"layer": path, "name": name, "group": real.layer.group_size, "a_bits": real.a_bits}
             for name, real, path in real_layers]
    report = cosim(TripCore(**PARAMS), toplevel="trip_core", simulator=simulator, bench="sim.bench_trip_core",
                   config={"params": PARAMS, "cases": cases}).report
    assert report["mismatches"] == 0 and len(report["cases"]) == len(cases)
    for c in report["cases"]:
        print(f"{simulator} {c['name']} A{c['a_bits']}: {c['m_kept']} kept tokens, {c['outputs']} output tiles, "
              f"{c['cycles']} cycles (model {c['predicted']}), {c['seconds']:.1f} s")
        assert c["cycles"] == c["predicted"]


def test_requantized_real_layers_follow_the_float_output(real_layers):
    """Fixed-point requantization of real group sums stays within one output step of ``y / step``."""
    for name, real, _ in real_layers:
        for out_bits in (4, 8):
            y, p = real.requant(out_bits)
            q = golden.requantize(real.oracle(), p.wmul, p.tmul, p.shift, out_bits)
            ideal = np.clip(np.round(y / golden.output_scale(y, out_bits)), *golden.int_range(out_bits))
            exact = float(np.mean(q == ideal))
            print(f"{name} -> int{out_bits}: shift {p.shift}, {exact:.4%} equal to round(y / step), "
                  f"max |diff| {int(np.abs(q - ideal).max())}")
            assert np.abs(q - ideal).max() <= 1 and exact > 0.99


REQUANT = dict(lanes=16, chunks=4, max_groups=9)      # PARAMS' 4 × 16 tile, 576 / 64 groups


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_real_layers_requantized_bit_exact(real_layers, simulator, tmp_path):
    limits = CoreLimits.of(TripCore(**PARAMS))
    params = {**REQUANT, "acc_bits": golden.trip_acc_bits(PARAMS["max_k"])}   # the core's result width
    cases = []
    for name, real, _ in real_layers:
        for out_bits in (4, 8):
            _, p = real.requant(out_bits)
            path = tmp_path / f"{name}-{out_bits}.npz"
            np.savez(path, acc=real.oracle(), wmul=p.wmul, tmul=p.tmul, shift=p.shift)
            cases.append({"layer": str(path), "name": name, "out_bits": out_bits, "stall": 0.2})
    report = cosim(Requant(**params), toplevel="requant", simulator=simulator, bench="sim.bench_requant",
                   config={"params": params, "tokens": limits.tokens, "channels": limits.channels,
                           "cases": cases}).report
    assert report["mismatches"] == 0 and len(report["cases"]) == len(cases)
    for c in report["cases"]:
        print(f"{simulator} {c['name']} -> int{c['out_bits']}: {c['outputs']} outputs bit-exact "
              f"({c['clamped']} at the rails), {c['seconds']:.1f} s")


RQ_PARAMS = {**PARAMS, "requant_lanes": REQUANT["lanes"], "max_groups": REQUANT["max_groups"]}


@pytest.mark.parametrize("simulator", [pytest.param(s, marks=pytest.mark.slow) if s == "icarus" else s
                                       for s in SIMULATORS])
def test_real_layers_requantized_on_the_core(real_layers, simulator, tmp_path):
    """The whole datapath on real layers: int8 activations in, the next layer's int8/int4 out, with the
    result stream stalled at random; the layer file's A4/A8 choice comes from the shipped plan."""
    cases = []
    for name, real, path in real_layers:
        out_bits = 4 if real.a_bits == 8 else 8          # one of each output width across the two layers
        _, p = real.requant(out_bits)
        z = dict(np.load(path))
        rq_path = tmp_path / f"{name}-rq.npz"
        np.savez(rq_path, **z, wmul=p.wmul, tmul=p.tmul, shift=p.shift)
        cases.append({"layer": str(rq_path), "name": name, "group": real.layer.group_size, "a_bits": real.a_bits,
                      "out_bits": out_bits, "stall": 0.3, "idle": 0.1})
    report = cosim(TripCore(**RQ_PARAMS), toplevel="trip_core", simulator=simulator, bench="sim.bench_trip_core",
                   config={"params": RQ_PARAMS, "cases": cases}).report
    assert report["mismatches"] == 0 and len(report["cases"]) == len(cases)
    for c in report["cases"]:
        print(f"{simulator} {c['name']} A{c['a_bits']} -> int{c['out_bits']}: {c['m_kept']} kept tokens, "
              f"{c['outputs']} result words bit-exact ({c['clamped']} on the rails) under back-pressure, "
              f"{c['cycles']} cycles, {c['seconds']:.1f} s")
