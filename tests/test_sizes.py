"""Device-sized TRIP cores come from the device's DSP count, by code."""
import pytest

from fpga.sizing import design_for, silence_unused, sliced_ram_blocks
from hw.rtl.trip_array import TripArray, fanout_copies
from hw.sizes import DEVICES, MULS_PER_COPY, RAMS_PER_SLICE, SLICED_ECP5_MEMORIES, core_params


@pytest.mark.parametrize("device, tokens, channels, muls", [("ice40up5k", 2, 8, 8), ("ecp5-85f", 16, 32, 128)])
def test_core_fills_the_dsps_with_power_of_two_tiles(device, tokens, channels, muls):
    p = core_params(device)
    assert (p["rows"] * p["a_lanes"], p["cols"] * p["w_lanes"], p["rows"] * p["cols"]) == (tokens, channels, muls)
    assert p["rows"] * p["cols"] / DEVICES[device].dsps >= 0.75


def test_unknown_device_and_bad_share_say_what_is_known():
    with pytest.raises(ValueError, match="known: ice40up5k, ecp5-25f, ecp5-45f, ecp5-85f"):
        core_params("virtex")
    with pytest.raises(ValueError, match="dsp_share"):
        core_params("ecp5-85f", dsp_share=0)


@pytest.mark.parametrize("device", [d for d in DEVICES if DEVICES[d].family == "ecp5"])
def test_ecp5_fanout_copies_feed_a_few_multipliers_each(device):
    p = core_params(device)
    array = TripArray(**{k: p[k] for k in ("rows", "cols", "a_lanes", "w_lanes", "mul_width", "mul_latency",
                                            "fanout_stages", "fanout_cols", "packed_copies")})
    assert fanout_copies(p["rows"], p["fanout_stages"] - (p["fanout_cols"] > 1))[-1] == p["rows"]   # one per row
    assert -(-p["cols"] // p["fanout_cols"]) <= MULS_PER_COPY
    silence_unused(array)


def test_ice40_keeps_its_placed_netlist_without_fanout():
    p = core_params("ice40up5k")
    assert (p["fanout_stages"], p["fanout_cols"], p["local_stall"], p["act_slice_width"], p["packed_copies"]) == \
        (0, 1, False, 0, False)


@pytest.mark.parametrize("device", ["ecp5-25f", "ecp5-85f"])
def test_ecp5_memories_are_sliced_exactly_when_switched_on(device):
    size = design_for(device)
    slices = size.core["act_slice_width"]
    assert bool(slices) == bool(size.link_args()["ram_shapes"]) == SLICED_ECP5_MEMORIES
    if slices:                                   # RAMS_PER_SLICE RAMs per slice: K = 4096 is the 4 × 4096 configuration
        assert sliced_ram_blocks("ecp5", slices, size.core["max_k_total"]) == RAMS_PER_SLICE
        assert size.link_args()["rams_per_slice"] == RAMS_PER_SLICE
