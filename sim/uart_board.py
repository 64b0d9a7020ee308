"""A simulated board on a serial line: :class:`fpga.top.UartLink` in Amaranth's simulator, bit by bit.

:class:`SimulatedSerial` has pyserial's ``write``/``read``, so the real host
driver (:class:`fpga.host.Board`) talks to the simulated gateware through
the same UART framing the board uses.  The simulator runs in a background
thread: a testbench shifts the host's bytes onto ``rx`` as 8N1 frames and
samples ``tx`` in the middle of each bit, exactly what the FTDI chip does.
"""
from __future__ import annotations

import queue
import threading
import time

from amaranth.sim import Simulator

from fpga.top import UartLink

#: An idle board (see ``host_to_board``) waits up to this long in real time for the host between idle
#: steps of 4 bit times (a byte from the host ends the wait at once), so an idle board costs almost nothing.
IDLE_WAIT_S = 0.05
#: Byte times of an idle line (and no run) after which the board counts as idle.
QUIET_BYTES = 4

__all__ = ["SimulatedSerial"]


class SimulatedSerial:
    """pyserial-like transport to a simulated :class:`UartLink`; use as a context manager."""

    def __init__(self, top: UartLink, *, timeout: float = 120.0):
        self.top, self.timeout = top, timeout
        self._to_board: queue.Queue[int] = queue.Queue()
        self._from_board: queue.Queue[int] = queue.Queue()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self.cycles = 0
        self.rx_error = False
        self._thread = threading.Thread(target=self._simulate, daemon=True)
        self._thread.start()

    # --- pyserial API -------------------------------------------------------------------------------------
    def write(self, data: bytes) -> int:
        for b in data:
            self._to_board.put(b)
        return len(data)

    def read(self, size: int) -> bytes:
        out = bytearray()
        deadline = time.monotonic() + self.timeout
        while len(out) < size:
            if self._error:
                raise RuntimeError("the simulation failed") from self._error
            try:
                out.append(self._from_board.get(timeout=max(0.0, min(0.5, deadline - time.monotonic()))))
            except queue.Empty:
                if time.monotonic() >= deadline:
                    break
        return bytes(out)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def __enter__(self) -> "SimulatedSerial":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- the simulation -----------------------------------------------------------------------------------
    def _simulate(self) -> None:
        top, d = self.top, self.top.divisor
        sim = Simulator(top)
        sim.add_clock(1e-8)

        async def host_to_board(ctx):
            ctx.set(top.rx, 1)
            quiet = 0                                       # cycles the board has been idle
            while not self._stop.is_set():
                try:
                    byte = self._to_board.get_nowait()
                except queue.Empty:
                    # Nothing to send, the board transmits nothing and runs nothing: wait for the host a
                    # while in real time instead of simulating idle cycles flat out.  An idle simulation
                    # holds the GIL; with several boards open it starved the one in use (3× slower).
                    # "Transmits nothing": its line has stayed idle for a few byte times (stop bits and
                    # gaps between reply bytes are idle too).
                    quiet = quiet + 4 * d if ctx.get(top.tx) and not ctx.get(top.busy) else 0
                    byte = None
                    if quiet >= QUIET_BYTES * 10 * d:
                        try:
                            byte = self._to_board.get(timeout=IDLE_WAIT_S)
                        except queue.Empty:
                            pass
                    if byte is None:
                        await ctx.tick().repeat(4 * d)
                        continue
                quiet = 0
                for bit in [0] + [byte >> i & 1 for i in range(8)] + [1]:
                    ctx.set(top.rx, bit)
                    await ctx.tick().repeat(d)

        async def board_to_host(ctx):
            while not self._stop.is_set():
                if ctx.get(top.tx):
                    await ctx.tick()
                    continue
                await ctx.tick().repeat(d // 2)           # middle of the start bit
                byte = 0
                for i in range(8):
                    await ctx.tick().repeat(d)
                    byte |= ctx.get(top.tx) << i
                await ctx.tick().repeat(d)                # the stop bit
                self._from_board.put(byte)
                self.rx_error = self.rx_error or bool(ctx.get(top.rx_error))

        sim.add_testbench(host_to_board, background=True)
        sim.add_testbench(board_to_host, background=True)

        async def until_closed(ctx):
            while not self._stop.is_set():
                await ctx.tick().repeat(256)
                self.cycles += 256

        sim.add_testbench(until_closed)
        try:
            sim.run()
        except BaseException as e:       # surfaced to the reader, which would otherwise time out
            self._error = e
