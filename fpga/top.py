"""Board tops: the host link on a UART, wired to an amaranth-boards platform's pins.

:class:`UartLink` is platform-free (pins ``rx``/``tx`` as ports) so the
simulations exercise exactly what the board runs; :class:`BoardTop` adds
the platform's clock, UART pins and LEDs.
"""
from __future__ import annotations

from amaranth import ClockDomain, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.build import ResourceError
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .link import HostLink
from .uart import UartRx, UartTx

__all__ = ["BoardTop", "UartLink"]


class UartLink(wiring.Component):
    """:class:`~fpga.link.HostLink` behind an 8N1 UART of ``divisor`` clock cycles per bit.

    The link's replies go straight to the transmitter; on ECP5 the link registers each reply byte itself
    (:class:`~fpga.link.HostLink`'s ``registered_reply``).

    Members: ``rx`` (In, the serial line from the host, idle high), ``tx`` (Out),
    ``busy`` (a run is in progress), ``rx_error`` (a receive overrun or framing
    error happened since reset: the host sent faster than the link reads).
    """

    def __init__(self, link: HostLink, divisor: int):
        self.link, self.divisor = link, divisor
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "busy": Out(1), "rx_error": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.link = link = self.link
        m.submodules.uart_rx = rx = UartRx(self.divisor)
        m.submodules.uart_tx = tx = UartTx(self.divisor)
        wiring.connect(m, rx.o, link.rx)
        wiring.connect(m, link.tx, tx.i)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx), self.busy.eq(link.busy),
                     self.rx_error.eq(rx.overrun | rx.frame_error)]
        return m


class BoardTop(Elaboratable):
    """The whole design on a board: :class:`UartLink` on ``uart`` 0, LED 0 lit while a run is busy,
    LED 1 lit after a receive error (when the board has them).

    With ``pll_verilog`` (a module ``pll`` from yowasp-icepll/ecppll) the design clock is the PLL's
    ``clk_hz`` output, held in reset until the PLL locks; otherwise it is the board's oscillator.
    """

    def __init__(self, link: HostLink, divisor: int, *, pll_verilog: str | None = None, clk_hz: float = 0):
        self.uart_link = UartLink(link, divisor)
        self.pll_verilog, self.clk_hz = pll_verilog, clk_hz

    def elaborate(self, platform) -> Module:
        m = Module()
        if self.pll_verilog:
            platform.add_file("pll.v", self.pll_verilog)
            # ECP5: reset through the device's global set/reset (as amaranth's own ECP5 clock domain does),
            # so the domain is reset-less; see below.
            gsr = platform.family == "ecp5"
            m.domains.sync = sync = ClockDomain("sync", reset_less=gsr)
            osc_pin = platform.request(platform.default_clk, dir="-")
            pll_out, locked = Signal(), Signal()
            if "SB_PLL40_PAD" in self.pll_verilog:      # the iCE40 PLL takes the pad itself, no I/O buffer
                clk_in, ports = osc_pin.io, ("clock_in", "clock_out")
            else:
                m.submodules.osc = osc = io.Buffer("i", osc_pin)
                clk_in, ports = osc.i, ("clkin", "clkout0")
            m.submodules.pll = Instance("pll", **{f"i_{ports[0]}": clk_in, f"o_{ports[1]}": pll_out,
                                                  "o_locked": locked})
            m.d.comb += sync.clk.eq(pll_out)
            if gsr:
                # ~locked, synchronized by two flip-flops, holds SGSR, which returns every register to its
                # initial value (the value a reset gives it).  A fabric reset reached nearly every register
                # from one flip-flop: 13.2 ns of routing, the ULX3S-25F build's critical path.
                gsr0, gsr1 = Signal(), Signal()
                m.submodules.gsr_sync0 = Instance("FD1S3AX", p_GSR="DISABLED", i_CK=pll_out, i_D=locked, o_Q=gsr0)
                m.submodules.gsr_sync1 = Instance("FD1S3AX", p_GSR="DISABLED", i_CK=pll_out, i_D=gsr0, o_Q=gsr1)
                m.submodules.gsr = Instance("SGSR", i_CLK=pll_out, i_GSR=gsr1)
            else:
                m.submodules.reset_sync = ResetSynchronizer(~locked, domain="sync")
            platform.add_clock_constraint(sync.clk, self.clk_hz)
        m.submodules.uart_link = ul = self.uart_link
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx_pin = rx_pin = io.Buffer("i", uart.rx)
        m.submodules.uart_tx_pin = tx_pin = io.Buffer("o", uart.tx)
        m.d.comb += [ul.rx.eq(rx_pin.i), tx_pin.o.eq(ul.tx)]
        for index, signal in enumerate((ul.busy, ul.rx_error)):
            try:
                led = platform.request("led", index, dir="-")
            except ResourceError:       # boards with fewer LEDs simply show less
                break
            m.submodules[f"led_{index}"] = led_pin = io.Buffer("o", led)
            m.d.comb += led_pin.o.eq(signal)
        return m
