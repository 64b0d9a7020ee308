"""SIMD 4-bit multiplier: packing limits, co-simulation on Verilator and Icarus, formal proof, DSP cost."""
import dataclasses

import pytest
from amaranth.back import rtlil

from fpga.synth import FAMILIES, synthesize
from hw.rtl import simd_mul4
from hw.rtl.simd_mul4 import SimdMul4, best_shape, packed_layout
from sim.formal import prove_simd_mul4
from sim.runner import CosimFailed, cosim
from sim.toolchain import SIMULATORS
from sim.vendor_models import FamilyOnly

ECP5 = FamilyOnly("ecp5")

#: Configurations every CI run co-simulates on both simulators.
FAST_CONFIGS = {
    "ice40_1x2": dict(a_lanes=1, w_lanes=2, mul_width=16, latency=1),           # best for SB_MAC16
    "ecp5_2x2": dict(a_lanes=2, w_lanes=2, mul_width=18, latency=4),            # best for MULT18X18D, A bias, as built
    "ecp5_1x3_wbias": dict(a_lanes=1, w_lanes=3, mul_width=18, latency=4),      # W bias of 1032
    "ecp5_1x2_acc2": dict(a_lanes=1, w_lanes=2, mul_width=18, latency=2, acc_depth=2),  # random + corners
    "ecp5_2x2_lat5": dict(a_lanes=2, w_lanes=2, mul_width=18, latency=5),       # the extraction split (85F)
}
#: Every latency on both widths, and deeper accumulation.
SLOW_CONFIGS = {
    **{f"ice40_1x2_lat{n}": dict(a_lanes=1, w_lanes=2, mul_width=16, latency=n) for n in (2, 3)},
    **{f"ecp5_2x2_lat{n}": dict(a_lanes=2, w_lanes=2, mul_width=18, latency=n) for n in (1, 2, 3)},
    "ice40_2x1": dict(a_lanes=2, w_lanes=1, mul_width=16, latency=2),
    "ecp5_1x2_acc4": dict(a_lanes=1, w_lanes=2, mul_width=18, latency=1, acc_depth=4),
    "ice40_1x2_acc3": dict(a_lanes=1, w_lanes=2, mul_width=16, latency=3, acc_depth=3),
}


def run(params, simulator, dut=None, platform=None, **config):
    dut = SimdMul4(**params) if dut is None else dut
    return cosim(dut, toplevel="simd_mul4", simulator=simulator, bench="sim.bench_simd_mul4",
                 config={"params": params, "idle": 0.1, **config}, platform=platform)


# --- packing limits -------------------------------------------------------------------

def test_best_packing_is_two_products_on_16_bits_and_four_on_18_bits():
    assert best_shape(16).lanes == 2
    ecp5 = best_shape(18)
    assert (ecp5.a_lanes, ecp5.w_lanes, ecp5.stride, ecp5.bias_a) == (2, 2, 7, 8)


def test_accumulating_widens_the_stride_and_costs_lanes():
    assert [best_shape(18, depth).stride for depth in (1, 2, 4)] == [7, 8, 9]
    assert best_shape(18, 2).lanes == 2 < best_shape(18, 1).lanes


def test_packing_that_does_not_fit_names_the_limit():
    with pytest.raises(ValueError, match=r"need a 19-bit A operand .* 16×16 multiplier's 16-bit signed port"):
        packed_layout(a_lanes=2, w_lanes=2, mul_width=16)
    with pytest.raises(ValueError, match="W operand"):
        packed_layout(a_lanes=1, w_lanes=4, mul_width=18)


@pytest.mark.parametrize("kwargs, message", [
    (dict(latency=0), "latency must be one of"),
    (dict(a_lanes=0), "a_lanes must be a positive integer, not 0"),
    (dict(mul_width=3), "mul_width must be at least 4"),
    (dict(acc_depth=1.5), "acc_depth must be a positive integer, not 1.5"),
])
def test_bad_parameters_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SimdMul4(**kwargs)


# --- co-simulation against golden.simd_mul4 -------------------------------------------

@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("name", FAST_CONFIGS)
def test_cosim_bit_exact(name, simulator):
    params = FAST_CONFIGS[name]
    result = run(params, simulator)
    report = result.report
    assert report["mismatches"] == 0 and report["outputs"] > 0
    lanes = params["a_lanes"] + params["w_lanes"]
    if 16 ** (lanes * params.get("acc_depth", 1)) <= 1 << 16:
        assert report["kind"] == "exhaustive" and report["vectors"] >= 16 ** lanes
    else:
        assert report["kind"] == "random" and report["vectors"] >= 100_000


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("name, platform", [
    ("ecp5_2x2", None),                 # the portable netlist, stalled
    ("ecp5_2x2", ECP5),                 # as the ECP5 builds get it: operand and product registers in the DSP
    ("ecp5_1x2_acc2", ECP5),            # latency 2: only the product register in the DSP
    ("ecp5_2x2_lat5", ECP5),            # as the ULX3S-85F gets it: the DSP's registers, the extraction split
])
def test_cosim_bit_exact_with_stalls(name, platform, simulator):
    # en low freezes every register, the vendor DSP's too (its CE0); exhaustive or 100k random vectors
    report = run(FAST_CONFIGS[name], simulator, platform=platform, stall=0.3).report
    assert report["mismatches"] == 0 and report["outputs"] > 0


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_fabric_operand_registers_on_ecp5_with_stalls(simulator):
    # dsp_operands=False (the large ECP5 arrays): operand registers in the fabric, the DSP's inputs open
    report = run(dict(FAST_CONFIGS["ecp5_2x2"], dsp_operands=False), simulator, platform=ECP5, stall=0.3).report
    assert report["mismatches"] == 0 and report["outputs"] > 0


def test_only_ecp5_builds_get_the_registered_dsp_instance():
    for params in FAST_CONFIGS.values():
        assert "MULT18X18D" not in rtlil.convert(SimdMul4(**params))
    netlist = rtlil.convert(SimdMul4(**FAST_CONFIGS["ecp5_2x2"]), platform=ECP5)
    assert netlist.count("cell \\MULT18X18D ") == 1
    assert 'parameter \\REG_INPUTA_CLK "CLK0"' in netlist and 'parameter \\REG_OUTPUT_CLK "CLK0"' in netlist
    latency5 = rtlil.convert(SimdMul4(**FAST_CONFIGS["ecp5_2x2_lat5"]), platform=ECP5)
    assert 'parameter \\REG_INPUTA_CLK "CLK0"' in latency5 and "decoded_borrow_3_q" in latency5
    latency2 = rtlil.convert(SimdMul4(**FAST_CONFIGS["ecp5_1x2_acc2"]), platform=ECP5)
    assert 'parameter \\REG_INPUTA_CLK "NONE"' in latency2 and 'parameter \\REG_OUTPUT_CLK "CLK0"' in latency2
    fabric = rtlil.convert(SimdMul4(**FAST_CONFIGS["ecp5_2x2"], dsp_operands=False), platform=ECP5)
    assert 'parameter \\REG_INPUTA_CLK "NONE"' in fabric and 'parameter \\REG_OUTPUT_CLK "CLK0"' in fabric
    assert "op_a_q" in fabric and "op_w_q" in fabric
    assert rtlil.convert(SimdMul4(**FAST_CONFIGS["ecp5_2x2"], dsp_operands=False)) == \
        rtlil.convert(SimdMul4(**FAST_CONFIGS["ecp5_2x2"]))          # only the ECP5 netlist differs
    assert "MULT18X18D" not in rtlil.convert(SimdMul4(**SLOW_CONFIGS["ecp5_2x2_lat1"]), platform=ECP5)
    assert "MULT18X18D" not in rtlil.convert(SimdMul4(**FAST_CONFIGS["ice40_1x2"]), platform=ECP5)


def test_cosim_catches_a_dsp_register_too_many(monkeypatch):
    # The DSP's input registers on at latency 2 put the product a cycle behind its bias correction.
    real = simd_mul4.mult18x18d
    monkeypatch.setattr(simd_mul4, "mult18x18d",
                        lambda *args, input_registers, **kwargs: real(*args, input_registers=True, **kwargs))
    with pytest.raises(CosimFailed, match="failed"):
        run(FAST_CONFIGS["ecp5_1x2_acc2"], "verilator", platform=ECP5)


@pytest.mark.slow
@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("name", SLOW_CONFIGS)
def test_cosim_bit_exact_all_latencies(name, simulator):
    assert run(SLOW_CONFIGS[name], simulator).report["mismatches"] == 0


def test_cosim_catches_a_missing_bias():
    # Without its bias, the 2×2 A operand overflows 18 bits whenever a[1] = -8 and a[0] < 0.
    params = FAST_CONFIGS["ecp5_2x2"]
    broken = SimdMul4(**params)
    broken.layout = dataclasses.replace(broken.layout, bias_a=0)
    with pytest.raises(CosimFailed, match="failed"):
        run(params, "icarus", dut=broken)


# --- formal proof ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["ice40_1x2", "ecp5_2x2"])
def test_formal_proof_per_target_width(name):
    result = prove_simd_mul4(FAST_CONFIGS[name])
    assert result.passed, result.log[-3000:]


def test_formal_proof_fails_on_a_too_narrow_stride():
    params = FAST_CONFIGS["ice40_1x2"]
    broken = SimdMul4(**params)
    broken.layout = dataclasses.replace(broken.layout, stride=6)   # 121 product values in 64 residues
    result = prove_simd_mul4(params, dut=broken)
    assert not result.passed and "FAIL" in result.log


# --- synthesis: products per DSP ------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_best_packing_maps_to_one_dsp_with_at_least_two_products(family):
    layout = best_shape(FAMILIES[family].dsp_width)
    stats = synthesize(SimdMul4(a_lanes=layout.a_lanes, w_lanes=layout.w_lanes,
                                mul_width=layout.mul_width, latency=2), family, name="simd_mul4")
    assert stats.dsps == 1, stats.cells
    assert layout.lanes / stats.dsps >= 2
