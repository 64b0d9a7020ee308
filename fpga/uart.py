"""8N1 UART receiver and transmitter as Amaranth byte streams, for the board's host link.

Both take ``divisor`` = clock cycles per bit (clock Hz / baud, at least 4) as a
constructor argument.  Nothing here knows about the accelerator.
"""
from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UartRx", "UartTx", "divisor_for"]


def divisor_for(clk_hz: float, baud: int, *, tolerance: float = 0.02) -> int:
    """Clock cycles per bit for ``baud`` at ``clk_hz``; refuses rates the clock cannot hit within 2%."""
    if baud <= 0:
        raise ValueError(f"baud rate must be positive, not {baud!r}")
    divisor = round(clk_hz / baud)
    if divisor < 4:
        raise ValueError(f"{baud} baud needs at least 4 clock cycles per bit; a {clk_hz / 1e6:g} MHz clock "
                         f"allows at most {int(clk_hz // 4)} baud")
    error = abs(clk_hz / divisor - baud) / baud
    if error > tolerance:
        raise ValueError(f"{baud} baud is {error:.1%} off at {clk_hz / 1e6:g} MHz (divisor {divisor}); "
                         f"pick a rate that divides the clock more evenly")
    return divisor


class UartRx(wiring.Component):
    """Receives 8N1 frames on ``rx`` (idle high) and emits each byte on ``o``.

    Contract: a byte is offered on ``o`` in the middle of its stop bit; ``o``
    holds one byte, so the consumer must take it within one frame time (10 bits)
    or the next byte overwrites it and ``overrun`` rises (sticky until reset).  A
    frame whose stop bit is low is dropped and ``frame_error`` rises (sticky).
    """

    def __init__(self, divisor: int):
        if divisor < 4:
            raise ValueError(f"divisor must be at least 4 cycles per bit, not {divisor}")
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1), "o": Out(stream.Signature(8)), "overrun": Out(1),
                          "frame_error": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, rx, init=1)
        timer = Signal(range(self.divisor * 3 // 2 + 1))
        bits = Signal(range(8))
        shreg = Signal(8)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    # Sample in the middle of data bit 0: one and a half bit-times after the start edge.
                    m.d.sync += [timer.eq(self.divisor * 3 // 2 - 1), bits.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shreg.eq(rx << 7 | shreg >> 1), bits.eq(bits + 1), timer.eq(self.divisor - 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    with m.If(rx):
                        m.d.sync += [self.o.payload.eq(shreg), self.o.valid.eq(1)]
                        with m.If(self.o.valid & ~self.o.ready):
                            m.d.sync += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += self.frame_error.eq(1)
                    m.next = "IDLE"
        return m


class UartTx(wiring.Component):
    """Sends each byte taken from ``i`` as an 8N1 frame on ``tx`` (idle high); one frame per 10 bit-times."""

    def __init__(self, divisor: int):
        if divisor < 4:
            raise ValueError(f"divisor must be at least 4 cycles per bit, not {divisor}")
        self.divisor = divisor
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        timer = Signal(range(self.divisor))
        bits = Signal(range(11))
        frame = Signal(10, init=0x3FF)
        m.d.comb += [self.tx.eq(frame[0]), self.i.ready.eq(bits == 0)]
        with m.If(bits == 0):
            with m.If(self.i.valid):
                m.d.sync += [frame.eq(self.i.payload << 1 | 1 << 9), bits.eq(10), timer.eq(self.divisor - 1)]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Else():
            m.d.sync += [frame.eq(frame >> 1 | 1 << 9), bits.eq(bits - 1), timer.eq(self.divisor - 1)]
        return m
