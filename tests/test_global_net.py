"""Design-wide enables go onto ECP5's global network, and nowhere else change the netlist."""
import pytest
from amaranth import Module, Signal
from amaranth.back import rtlil

from hw.global_net import design_wide
from hw.rtl.requant import Requant
from hw.rtl.trip_array import TripArray
from sim.vendor_models import FamilyOnly

ECP5 = FamilyOnly("ecp5")


def test_off_ecp5_the_value_itself_comes_back():
    m, value = Module(), Signal()
    assert design_wide(m, None, value, "x") is value
    assert design_wide(m, ECP5, value, "x") is not value


@pytest.mark.parametrize("make, count", [
    # the stall, the accumulators' add and clear, the output word's dump, the hi beat's zero low term bits
    (lambda: TripArray(rows=1, cols=2, mul_latency=2, max_k=64), 5),
    # the requantizer's stage enable
    (lambda: Requant(lanes=2, chunks=4, acc_bits=18, max_groups=4), 1),
])
def test_components_put_their_enables_on_ecp5_globals_only(make, count):
    assert rtlil.convert(make()).count("cell \\DCCA ") == 0
    assert rtlil.convert(make(), platform=ECP5).count("cell \\DCCA ") == count
