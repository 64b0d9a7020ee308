"""The TRIP accelerator core: :class:`TripSequencer` feeding a :class:`TripArray`.

Ports: a register bus (``regs``, map in :mod:`hw.rtl.trip_sequencer`), and
three streams: ``act`` (kept tokens' int8 activations, K words per token
tile), ``weights`` (int4, K words per token tile × channel tile) and
``results`` (one ``tokens × channels`` tile of int32-range group sums per
group, equal to :func:`golden.group_accumulators`).  The host side that
turns a layer into these streams is :mod:`sim.trip_driver`.
"""
from __future__ import annotations

from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .rtl.trip_array import TripArray
from .rtl.trip_sequencer import RegisterPort, TripSequencer

__all__ = ["TripCore"]


class TripCore(wiring.Component):
    """A whole TRIP matmul engine: array parameters as :class:`TripArray`, plus ``max_k_total``
    (activation buffer depth, the largest K of one run)."""

    def __init__(self, *, rows: int = 1, cols: int = 1, a_lanes: int = 2, w_lanes: int = 2, mul_width: int = 18,
                 mul_latency: int = 2, max_k: int = 4096, max_k_total: int = 4096):
        self.array = TripArray(rows=rows, cols=cols, a_lanes=a_lanes, w_lanes=w_lanes, mul_width=mul_width,
                               mul_latency=mul_latency, max_k=max_k)
        self.sequencer = TripSequencer(tokens=self.array.tokens, channels=self.array.channels,
                                       max_k_total=max_k_total, max_group=max_k)
        self.tokens, self.channels = self.array.tokens, self.array.channels
        self.max_k, self.max_k_total = max_k, max_k_total
        super().__init__({
            "regs": In(RegisterPort()),
            "act": In(stream.Signature(self.sequencer.act_layout)),
            "weights": In(stream.Signature(self.sequencer.weight_layout)),
            "results": Out(stream.Signature(self.array.out_layout)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.sequencer = seq = self.sequencer
        m.submodules.array = arr = self.array
        wiring.connect(m, wiring.flipped(self.regs), seq.regs)
        wiring.connect(m, wiring.flipped(self.act), seq.act)
        wiring.connect(m, wiring.flipped(self.weights), seq.weights)
        wiring.connect(m, seq.beats, arr.i)
        wiring.connect(m, arr.o, wiring.flipped(self.results))
        m.d.comb += seq.done_outputs.eq(arr.o.valid & self.results.ready)
        return m
