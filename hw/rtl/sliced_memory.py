"""A memory cut by columns into slices of a few block RAMs, with registers of each slice's own around them."""
from __future__ import annotations

from types import SimpleNamespace

from amaranth import Module, Signal, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ..bram import dp16kd_registered_read, dp16kd_width
from ..ram import NO_RW_CHECK

__all__ = ["SlicedMemory", "slice_width"]


def slice_width(ram_shapes: tuple[tuple[int, int], ...], depth: int, rams: int = 1) -> int:
    """``rams`` times the widest of a block RAM's ``(width, depth)`` configurations that holds ``depth``
    words (else the deepest one's width): the slice for which a :class:`SlicedMemory` needs ``rams`` RAMs
    side by side per slice (1: one RAM per slice)."""
    if not isinstance(rams, int) or isinstance(rams, bool) or rams < 1:
        raise ValueError(f"rams must be a positive integer, not {rams!r}")
    holding = [w for w, d in ram_shapes if d >= depth]
    return rams * (max(holding) if holding else max(ram_shapes, key=lambda shape: shape[1])[0])


class SlicedMemory(wiring.Component):
    """A ``width × depth`` memory built from ``slice_width``-bit slices side by side, each with its own
    address, write and read-data registers, and each made of ``ram_width``-bit memories side by side.

    Why: a memory that yosys maps as several block RAMs deep joins them through a multiplexer, and
    one address register drives all of them.  On a large device they are spread wide: on the ULX3S-85F
    a RAM's read (5.8 ns clock-to-out), the route to that multiplexer and on into a queue took 16.7–17.4 ns,
    and the address register's routes to 30 RAMs 13–14 ns.  Choose ``ram_width`` so that one RAM holds
    ``depth`` words of it (ECP5: 4 bits for 4096 words) and ``slice_width`` a few RAMs wide
    (``hw.sizes.RAMS_PER_SLICE``); then the registers of a slice serve only that slice's RAMs, the placer
    can put them beside those RAMs, and no RAM's read goes through a multiplexer.  (As one memory a slice
    of 32 × 4096 bits was mapped by yosys as eight 36 × 512 RAMs one below the other, with a multiplexer
    after them: ULX3S-85F 14.3 ns into the link's queue.)  yosys would otherwise merge the address copies:
    their names start with ``fanout_``, which fpga.build keeps.

    Members
    -------
    w_addr, w_data, w_en : ``In``
        A write, taken in the cycle ``w_en`` is high.
    r_addr, r_en : ``In``; r_data : ``Out(width)``
        The read pipeline, which moves in the cycles ``r_en`` is high.

    data_registers : int
        Registers after each slice's RAMs (1, the default): with more, the first can sit beside the RAMs
        and the others on the way to the reader, for a memory whose slices lie across the device and whose
        reader takes the whole word in one place (the host link's operand memories on the ULX3S-85F: a
        RAM's read into its slice's register, placed between the RAMs and the queue, 14.7 ns).
    ram_write_registers : bool
        A second write stage, one register set per RAM (its address, enable and data bits) after the slice's
        (False, the default).  The slice's write address then reaches its RAMs in two hops, each of which the
        placer can keep short: with one, a weight slice's write address register to the farthest of its 8
        RAMs was the slowest group of 4d9893b's seed-1 ULX3S-85F build (12.4 ns, all routing).  For a writer
        that can wait a cycle more (the host link writes at the UART's rate).  The data registers are
        ``fanout_`` too: memories written from the same word have equal ones, and yosys merged them
        (ULX3S-85F: an activation slice's register wrote a weight RAM, 11.3 ns).
    ram_read_registers : bool
        The same for the read address: a copy per RAM after the slice's, moving with ``r_en`` (read latency one
        more).  For a reader that takes a longer read for a word of queue (the host link's replays).

    Contract
    --------
    Write latency ``write_latency`` (1, + 1 with ``ram_write_registers``, - 1 with ``ram_read_registers``): a
    word written at cycle t is read from a read address given at t + ``write_latency`` or later.  An address
    given one cycle earlier meets the write at the RAM (below).
    Read: ``read_latency`` (``2 + data_registers``, + 1 with ``ram_read_registers``) stages (each slice's
    address register, the RAMs' copies of it, its RAMs, its data registers) that move together in every
    cycle with ``r_en`` high and hold otherwise: ``r_data`` is the word at the ``r_addr`` given
    ``read_latency`` cycles with ``r_en`` high before.  One read per cycle.  Nothing is checked: an address
    at or beyond ``depth`` reads and writes what the RAMs make of it.  ``ram_width`` changes the netlist only.

    On ECP5 (``platform.family``) a slice whose memories each fit one ``DP16KD`` port
    (:func:`hw.bram.dp16kd_width`: 4 × 4096 or 36 × 512 bits, say) is built of ``DP16KD`` instances whose output
    registers are its first data register (:func:`hw.bram.dp16kd_registered_read`), with the same latency and
    contract: yosys maps a memory with that register off, and a RAM's read into a fabric register was the
    slowest group left on the ULX3S-85F (10.6 ns, of which 5.8 the RAM's clock-to-out).  Elsewhere, and for a
    slice of deeper or wider memories, they are the portable memories and a fabric register.

    A read of the address a write reaches the RAMs in the same cycle reads what the RAM makes of it
    (simulation: the old word).  The RAMs carry :data:`~hw.ram.NO_RW_CHECK`, so no logic is built to give
    the old word (ULX3S-85F: a RAM's read through that logic's multiplexer into its slice's data register
    was the slowest group of e4d990c's seed-1 build, 11.6 ns).  Both users never read
    what is being written: the host link writes its memories only between runs, the sequencer reloads its
    buffer only after the last read of the previous tile.
    """

    READ_LATENCY = 3

    def __init__(self, *, width: int, depth: int, slice_width: int, ram_width: int | None = None,
                 data_registers: int = 1, ram_write_registers: bool = False, ram_read_registers: bool = False):
        ram_width = slice_width if ram_width is None else ram_width
        for name, value in (("width", width), ("depth", depth), ("slice_width", slice_width),
                            ("ram_width", ram_width), ("data_registers", data_registers)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        for name, value in (("ram_write_registers", ram_write_registers), ("ram_read_registers", ram_read_registers)):
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be a bool, not {value!r}")
        if ram_width > slice_width:
            raise ValueError(f"ram_width ({ram_width}) must not exceed slice_width ({slice_width})")
        self.width, self.depth, self.slice_width, self.ram_width = width, depth, slice_width, ram_width
        self.data_registers = data_registers
        self.ram_write_registers, self.ram_read_registers = ram_write_registers, ram_read_registers
        #: Cycles from a write to the first read address that sees it.
        self.write_latency = 1 + ram_write_registers - ram_read_registers
        #: Cycles from an address to its word on ``r_data`` (with ``r_en`` high): READ_LATENCY with one data
        #: register and no read register per RAM.
        self.read_latency = self.READ_LATENCY - 1 + data_registers + ram_read_registers
        #: (first bit, width) of every slice, the last one narrower when ``slice_width`` does not divide ``width``
        self.slices = _columns(width, slice_width)
        super().__init__({
            "w_addr": In(range(depth)), "w_data": In(width), "w_en": In(1),
            "r_addr": In(range(depth)), "r_en": In(1), "r_data": Out(width),
        })

    def ports(self) -> tuple[SimpleNamespace, SimpleNamespace]:
        """The write and read port under the names a ``memory.Memory``'s ports use (``addr``, ``data``, ``en``),
        so code written for a Memory's ports drives this memory unchanged."""
        return (SimpleNamespace(addr=self.w_addr, data=self.w_data, en=self.w_en),
                SimpleNamespace(addr=self.r_addr, en=self.r_en, data=self.r_data))

    def elaborate(self, platform) -> Module:
        m = Module()
        ecp5 = getattr(platform, "family", None) == "ecp5"
        for n, (lo, bits) in enumerate(self.slices):
            rams = _columns(bits, self.ram_width)
            # the widest RAM decides: a DP16KD that holds it holds the narrower last one too
            own_register = ecp5 and dp16kd_width(rams[0][1], self.depth) is not None
            ports = []
            for j, (ram_lo, ram_bits) in enumerate(rams):
                name = f"slice_{n}" if len(rams) == 1 else f"slice_{n}_ram_{j}"
                if own_register:
                    ports.append((ram_lo, ram_bits, name, None, None))
                    continue
                mem = memory.Memory(shape=unsigned(ram_bits), depth=self.depth, init=[], attrs=NO_RW_CHECK)
                m.submodules[name] = mem
                wp, rp = mem.write_port(), mem.read_port()            # (named: their wires in the netlist)
                ports.append((ram_lo, ram_bits, name, wp, rp))
            w_addr, w_en = Signal.like(self.w_addr, name=f"fanout_waddr_{n}"), Signal(name=f"fanout_wen_{n}")
            w_data = Signal(bits, name=f"wdata_{n}")
            m.d.sync += [w_addr.eq(self.w_addr), w_en.eq(self.w_en), w_data.eq(self.w_data[lo:lo + bits])]
            r_addr, r_data = Signal.like(self.r_addr, name=f"fanout_raddr_{n}"), Signal(bits, name=f"rdata_{n}")
            # (one memory per slice is written as whole signals: the netlist the builds were placed from)
            whole = len(rams) == 1
            ram_writes = []
            for j, (ram_lo, ram_bits, _, wp, _) in enumerate(ports):
                ram_addr, ram_en = w_addr, w_en
                ram_data = w_data if whole else w_data[ram_lo:ram_lo + ram_bits]
                if self.ram_write_registers:
                    ram_addr = Signal.like(w_addr, name=f"fanout_waddr_{n}_{j}")
                    ram_en = Signal(name=f"fanout_wen_{n}_{j}")
                    slice_data, ram_data = ram_data, Signal(ram_bits, name=f"fanout_wdata_{n}_{j}")
                    m.d.sync += [ram_addr.eq(w_addr), ram_en.eq(w_en), ram_data.eq(slice_data)]
                ram_writes.append((ram_addr, ram_data, ram_en))
                if wp is not None:
                    m.d.comb += [wp.addr.eq(ram_addr), wp.data.eq(ram_data), wp.en.eq(ram_en)]
            with m.If(self.r_en):
                m.d.sync += r_addr.eq(self.r_addr)
                for ram_lo, ram_bits, _, _, rp in ports:
                    if rp is not None:
                        m.d.sync += (r_data if whole else r_data[ram_lo:ram_lo + ram_bits]).eq(rp.data)
            for j, (ram_lo, ram_bits, name, _, rp) in enumerate(ports):
                ram_addr = r_addr
                if self.ram_read_registers:
                    ram_addr = Signal.like(r_addr, name=f"fanout_raddr_{n}_{j}")
                    with m.If(self.r_en):
                        m.d.sync += ram_addr.eq(r_addr)
                if rp is not None:
                    m.d.comb += [rp.addr.eq(ram_addr), rp.en.eq(self.r_en)]
                else:                                  # the slice's data register is the RAM's own
                    write_addr, write_data, write_en = ram_writes[j]
                    m.submodules[name] = dp16kd_registered_read(
                        depth=self.depth, w_addr=write_addr, w_data=write_data, w_en=write_en, r_addr=ram_addr,
                        r_en=self.r_en, r_data=r_data if whole else r_data[ram_lo:ram_lo + ram_bits])
            for k in range(1, self.data_registers):
                later = Signal(bits, name=f"rdata_{n}_{k}")
                with m.If(self.r_en):
                    m.d.sync += later.eq(r_data)
                r_data = later
            m.d.comb += self.r_data[lo:lo + bits].eq(r_data)
        return m


def _columns(width: int, part: int) -> list[tuple[int, int]]:
    """(first bit, width) of each ``part``-bit column of ``width`` bits, the last one narrower if need be."""
    return [(lo, min(part, width - lo)) for lo in range(0, width, part)]
