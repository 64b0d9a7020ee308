"""Block RAMs whose read lands in the RAM's own output register where the FPGA family has one.

yosys maps every ECP5 block RAM with its output register off (``REGMODE NOREG`` in
``share/lattice/brams_map_16kd.v``), so a read into a fabric register pays the RAM's clock-to-out
(5.83 ns in nextpnr-ecp5's timing) and then the route to that register: the host link's operand RAMs into
their slices' data registers were 10.63 ns on the ULX3S-85F (88.98 MHz build, 1,021 endpoints).  A
``DP16KD`` with ``REGMODE_B = "OUTREG"`` registers its read itself (about 0.95 ns clock-to-out) at the same
latency, so this module instantiates one, the way ``hw/dsp.py`` instantiates ``MULT18X18D``.
``sim/vendor_models.py`` models the instance for co-simulation.
"""
from __future__ import annotations

from amaranth import ClockSignal, Const, Instance
from amaranth.hdl import Value, ValueLike

__all__ = ["DP16KD_SHAPES", "dp16kd_width", "dp16kd_registered_read"]

#: (data width, depth) of a DP16KD's ports: true dual-port up to 18 bits; at 36 bits it is a pseudo dual-port
#: RAM (yosys's and nextpnr's ``PDPW16KD``), writing through both ports' data pins and reading through both
#: ports' data outputs (A's the low half)
DP16KD_SHAPES = ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))
_ADDRESS_PINS = 14


def dp16kd_width(bits: int, depth: int) -> int | None:
    """The narrowest DP16KD data width that holds ``depth`` words of ``bits`` bits, or ``None`` if no one
    DP16KD does."""
    for width, words in DP16KD_SHAPES:
        if width >= bits and words >= depth:
            return width
    return None


def _address_pins(prefix: str, addr: Value, width: int, *, byte_enables: ValueLike = 0) -> dict:
    """A word address on a port's 14 address pins: its bits on the top ones (the width says how many), the
    byte enables of an 18- or 36-bit write on the lowest two or four, zero on any pin left."""
    first = _ADDRESS_PINS - (dict(DP16KD_SHAPES)[width].bit_length() - 1)      # 14 - log2(depth)
    enables = {18: 2, 36: 4}.get(width, 0)
    pins = {}
    for pin in range(_ADDRESS_PINS):
        bit = pin - first
        if bit >= 0:
            pins[f"i_{prefix}{pin}"] = addr[bit] if bit < len(addr) else Const(0, 1)
        else:
            pins[f"i_{prefix}{pin}"] = byte_enables if pin < enables else Const(0, 1)
    return pins


def dp16kd_registered_read(*, depth: int, w_addr: Value, w_data: Value, w_en: ValueLike,
                           r_addr: Value, r_en: ValueLike, r_data: Value) -> Instance:
    """One ECP5 ``DP16KD``, written through port A and read through port B into its output register (at 36
    bits, the pseudo dual-port mode: written and read through both ports' data pins).

    Contract (the same as an :class:`amaranth.lib.memory.Memory` read port with ``en=r_en`` followed by a
    register under ``r_en``): port A writes ``w_data`` at ``w_addr`` in each cycle ``w_en`` is high.  Port B
    takes ``r_addr`` in a cycle ``r_en`` is high and puts that word on ``r_data`` after the next such cycle
    (read latency 2, both stages holding while ``r_en`` is low).  A read of the address a write reaches in
    the same cycle gives what the RAM makes of it.  The contents start at zero; the sync domain clocks both
    ports; reset and chip selects are unused.
    """
    bits = len(w_data)
    width = dp16kd_width(bits, depth)
    if width is None or len(r_data) != bits:
        raise ValueError(f"no DP16KD port holds {depth} words of {bits} bits (read data {len(r_data)} bits)")
    data_in = [w_data[n] if n < bits else Const(0, 1) for n in range(36)]
    data_out = [r_data[n] if n < bits else None for n in range(36)]
    if width == 36:
        # Pseudo dual-port: the write enable is the four byte enables (WEA on, as yosys maps it), the read's
        # low half comes out of port A.  Both output registers are on and both enables are r_en, whichever of
        # OCEA / OCEB the silicon takes for the low half in this mode.
        write = {"i_WEA": Const(1, 1), **_address_pins("ADA", w_addr, 36, byte_enables=w_en),
                 **{f"i_DIB{n}": data_in[18 + n] for n in range(18)}}
        read = {"i_OCEA": r_en, **{f"o_DOA{n}": pin for n, pin in enumerate(data_out[:18]) if pin is not None},
                **{f"o_DOB{n}": pin for n, pin in enumerate(data_out[18:]) if pin is not None}}
        regmode_a = "OUTREG"
    else:
        write = {"i_WEA": w_en, **_address_pins("ADA", w_addr, width, byte_enables=Const(1, 1)),
                 **{f"i_DIB{n}": Const(0, 1) for n in range(18)}}
        read = {"i_OCEA": Const(1, 1), **{f"o_DOB{n}": pin for n, pin in enumerate(data_out[:18]) if pin is not None}}
        regmode_a = "NOREG"
    ports = {
        **{f"i_DIA{n}": data_in[n] for n in range(18)}, **write, **read,
        "i_CLKA": ClockSignal("sync"), "i_CEA": Const(1, 1),
        "i_RSTA": Const(0, 1), **{f"i_CSA{n}": Const(0, 1) for n in range(3)},
        **_address_pins("ADB", r_addr, width),
        "i_CLKB": ClockSignal("sync"), "i_CEB": r_en, "i_OCEB": r_en, "i_WEB": Const(0, 1),
        "i_RSTB": Const(0, 1), **{f"i_CSB{n}": Const(0, 1) for n in range(3)},
    }
    params = {"p_DATA_WIDTH_A": width, "p_DATA_WIDTH_B": width, "p_REGMODE_A": regmode_a, "p_REGMODE_B": "OUTREG",
              "p_WRITEMODE_A": "NORMAL", "p_WRITEMODE_B": "NORMAL", "p_CSDECODE_A": "0b000", "p_CSDECODE_B": "0b000",
              "p_RESETMODE": "SYNC", "p_ASYNC_RESET_RELEASE": "SYNC", "p_GSR": "DISABLED"}
    return Instance("DP16KD", **params, **ports)
