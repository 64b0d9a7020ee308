"""Nets that reach a whole block of registers, put on the FPGA's global network where that helps."""
from __future__ import annotations

from amaranth import Const, Instance, Module, Signal
from amaranth.hdl import ValueLike

__all__ = ["design_wide"]


def design_wide(m: Module, platform, value: ValueLike, name: str) -> ValueLike:
    """``value`` as the net that drives the enables (or resets) of many registers.

    On ECP5 it goes through a ``DCCA`` onto a global network: nextpnr-ecp5 promotes only clocks by
    itself, and a stall routed in fabric from one LUT to thousands of clock enables took 11 of the
    19 ns of the ULX3S-25F build's critical path.  Elsewhere (simulation, iCE40, whose nextpnr promotes
    such nets itself) it is ``value`` unchanged, so those netlists stay exactly what they were.
    """
    if getattr(platform, "family", None) != "ecp5":
        return value
    net = Signal(name=name)
    m.submodules[f"{name}_global"] = Instance("DCCA", i_CLKI=value, i_CE=Const(1), o_CLKO=net)
    return net
