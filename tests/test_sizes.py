"""Device-sized TRIP cores come from the device's DSP count, by code."""
import pytest

from hw.sizes import DEVICES, core_params


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
