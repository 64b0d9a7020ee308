"""Multiplies whose registers live inside the FPGA's DSP block where the family allows it.

yosys packs no register into an ECP5 ``MULT18X18D``: a multiply written ``a * b`` between two fabric
registers becomes a combinational DSP with fabric routing on both sides, all in one cycle (3.9 ns inside
the DSP plus 5–9 ns of routing on the ULX3S builds).  nextpnr-ecp5 times a ``MULT18X18D`` whose registers
are on as clocked, so instantiating it with those registers splits that path at the same latency.
Elsewhere (simulation, iCE40, where yosys packs ``SB_MAC16`` registers itself) the same cycle is the
portable ``a * b`` and a register.  ``sim/vendor_models.py`` models the instance for co-simulation.
"""
from __future__ import annotations

from amaranth import ClockSignal, Const, Instance, Module, Signal, signed
from amaranth.hdl import Value, ValueLike

__all__ = ["mult18x18d", "registered_product"]


def _fits_port(value: Value) -> bool:
    """Whether ``value`` fits an 18-bit signed DSP port."""
    shape = value.shape()
    return len(value) <= (18 if shape.signed else 17)


def mult18x18d(a: ValueLike, b: ValueLike, product: Signal, *, input_registers: bool,
               enable: ValueLike) -> Module:
    """An ECP5 ``MULT18X18D`` computing ``product = a · b`` (``a`` and ``b`` extended to its 18-bit signed
    ports as their shapes say, the product truncated to ``len(product)``) into its output register, with
    ``a`` and ``b`` registered on the way in if ``input_registers``; every register clocked by the sync
    domain and enabled by ``enable`` (CE0).  The pipeline register stays off: latency 2 with input
    registers, 1 without."""
    a18, b18 = Signal(signed(18)), Signal(signed(18))
    p36 = Signal(signed(36))
    ports = {
        **{f"i_A{n}": a18[n] for n in range(18)},
        **{f"i_B{n}": b18[n] for n in range(18)},
        **{f"i_C{n}": Const(0, 1) for n in range(18)},
        **{f"o_P{n}": p36[n] for n in range(36)},
        "i_SIGNEDA": Const(1, 1), "i_SIGNEDB": Const(1, 1), "i_SOURCEA": Const(0, 1), "i_SOURCEB": Const(0, 1),
        "i_CLK0": ClockSignal("sync"), "i_CE0": enable, "i_RST0": Const(0, 1),
    }
    registered = "CLK0" if input_registers else "NONE"
    params = {"p_REG_INPUTA_CLK": registered, "p_REG_INPUTB_CLK": registered, "p_REG_OUTPUT_CLK": "CLK0",
              "p_REG_PIPELINE_CLK": "NONE", "p_GSR": "DISABLED", "p_RESETMODE": "SYNC"}
    m = Module()
    m.submodules.mult = Instance("MULT18X18D", **params, **ports)
    m.d.comb += [a18.eq(a), b18.eq(b), product.eq(p36[:len(product)])]
    return m


def registered_product(m: Module, platform, a: Value, b: Value, *, enable: ValueLike, name: str) -> Signal:
    """``a · b`` registered: valid one cycle with ``enable`` high after ``a`` and ``b`` are, and held while
    ``enable`` is low.  On ECP5, when both fit a ``MULT18X18D`` port, the register is the DSP's own output
    register (``m.submodules[name]`` is the instance); otherwise a fabric register under ``enable``."""
    product = Signal((a * b).shape(), name=name)
    if getattr(platform, "family", None) == "ecp5" and _fits_port(a) and _fits_port(b):
        m.submodules[name] = mult18x18d(a, b, product, input_registers=False, enable=enable)
    else:
        with m.If(enable):
            m.d.sync += product.eq(a * b)
    return product
