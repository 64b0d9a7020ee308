"""Replay a memory's words onto a stream: the glue between on-chip operand memories and the TRIP core.

Used by the board's host link (:mod:`fpga.link`) and the fast simulation
harness (:mod:`sim.trip_harness`); it holds no arithmetic.
"""
from __future__ import annotations

from amaranth import Module, Signal
from amaranth.hdl import ResetInserter
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .stream_queue import StreamQueue

__all__ = ["Replay"]


class Replay(wiring.Component):
    """Stream words ``0 … count-1`` of a memory read port, ``repeat`` times, honouring ``ready``.

    Contract: ``start`` (one cycle) rewinds to word 0 and takes ``count`` and
    ``repeat`` (they are sampled then, so they may change during a replay); the
    first word is valid ``read_latency + 1`` cycles later and then one word per cycle while
    ``ready`` is high (the read pipeline is enabled only when the output
    moves, so a stall holds the word).  ``count = 0`` or ``repeat = 0``
    streams nothing.  ``addr``/``en``/``data`` connect to a synchronous read port
    (``read_latency`` 1), or to a read pipeline whose stages all move with ``en``
    (such as :class:`~hw.rtl.sliced_memory.SlicedMemory`'s, 3).

    The wrap-around address and "last round" are registered at ``start``, so the
    per-word path compares ``depth``-wide registers only: it sits between the
    core's ``ready`` and the memory's read enable, on the iCE40 build's critical path.

    With ``queue_depth`` the read pipeline never stalls: ``en`` is always high,
    every word read goes into a first-word-fall-through queue of that depth
    inside this component (emptied by ``start``), and ``valid``/``payload``/``ready``
    are the queue's.  A word is read only while the queue has room for it and
    every word already in flight (credits, counted in a register), so no path
    runs from ``ready`` to the memory's enables or address: on the ULX3S-85F the
    enable reached block RAMs spread across the device (12.3 ns).  The first
    word is valid ``read_latency + 2`` cycles after ``start``; one word per cycle
    while ``ready`` is high needs ``queue_depth >= read_latency + 2``.
    """

    def __init__(self, width: int, depth: int, max_repeat: int = (1 << 16) - 1, read_latency: int = 1,
                 queue_depth: int | None = None):
        if not isinstance(read_latency, int) or isinstance(read_latency, bool) or read_latency < 1:
            raise ValueError(f"read_latency must be a positive integer, not {read_latency!r}")
        if queue_depth is not None and (not isinstance(queue_depth, int) or isinstance(queue_depth, bool)
                                        or queue_depth < 1):
            raise ValueError(f"queue_depth must be a positive integer or None, not {queue_depth!r}")
        self.width, self.depth, self.max_repeat, self.read_latency = width, depth, max_repeat, read_latency
        self.queue_depth = queue_depth
        super().__init__({
            "count": In(range(depth + 1)), "repeat": In(range(max_repeat + 1)), "start": In(1),
            "valid": Out(1), "payload": Out(width), "ready": In(1),
            "addr": Out(range(depth)), "en": Out(1), "data": In(width),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        ptr, last_ptr = Signal(range(self.depth)), Signal(range(self.depth))
        rounds_left = Signal(range(self.max_repeat + 1))
        running = Signal()
        if self.queue_depth is None:
            load = Signal()
            m.d.comb += [load.eq(~self.valid | self.ready), self.en.eq(load), self.addr.eq(ptr),
                         self.payload.eq(self.data)]
            # Whether each stage of the read pipeline holds a word, the last one the word on offer.
            stages = [Signal(name=f"reading_{n}") for n in range(self.read_latency - 1)] + [self.valid]
            moving, reading, rewind = load, running, []      # the pipeline moves with the output
        else:
            # A StreamQueue, not a SyncFIFO: its pointers come in a copy per 32 bits, so each can sit beside its bits
            # (the 85F's 767-bit scales queue: one read pointer took 12.9 ns to reach its LUT RAM).
            queue = StreamQueue(self.width, depth=self.queue_depth)
            m.submodules.queue = queue = ResetInserter(self.start)(queue)
            # Room in the queue for words not yet read: queue_depth less the words in the queue and in flight.
            credits = Signal(range(self.queue_depth + 1), init=self.queue_depth)
            issue = Signal()            # a word is read this cycle
            popped = Signal()           # a word leaves the queue this cycle
            m.d.comb += [issue.eq(running & (credits != 0)), popped.eq(queue.o.valid & self.ready),
                         self.en.eq(1), self.addr.eq(ptr),
                         self.valid.eq(queue.o.valid), self.payload.eq(queue.o.payload), queue.o.ready.eq(self.ready)]
            # Whether each stage of the read pipeline holds a word; the last one's is on `data`.
            stages = [Signal(name=f"reading_{n}") for n in range(self.read_latency)]
            # (the credits keep a word from arriving while the queue is full, so i.ready is not needed)
            m.d.comb += [queue.i.valid.eq(stages[-1]), queue.i.payload.eq(self.data)]
            moving, reading, rewind = 1, issue, [credits.eq(self.queue_depth)]   # the pipeline always moves
        with m.If(self.start):
            m.d.sync += [ptr.eq(0), last_ptr.eq(self.count - 1), rounds_left.eq(self.repeat),
                         running.eq((self.count != 0) & (self.repeat != 0)), *rewind, *(v.eq(0) for v in stages)]
        with m.Elif(moving):
            m.d.sync += [v.eq(before) for v, before in zip(stages, [reading, *stages])]
            if self.queue_depth is not None:
                m.d.sync += credits.eq(credits - issue + popped)
            with m.If(reading):
                with m.If(ptr == last_ptr):
                    m.d.sync += [ptr.eq(0), rounds_left.eq(rounds_left - 1)]
                    with m.If(rounds_left == 1):
                        m.d.sync += running.eq(0)
                with m.Else():
                    m.d.sync += ptr.eq(ptr + 1)
        return m
