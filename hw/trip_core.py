"""The TRIP accelerator core: :class:`TripSequencer` feeding a :class:`TripArray`, optionally
followed by a :class:`TileRequant` output stage.

Ports: a register bus (``regs``, map in :mod:`hw.rtl.trip_sequencer`), and
the streams ``act`` (kept tokens' int8 activations, K words per token
tile), ``weights`` (int4, K words per token tile × channel tile) and
``results``.  Without requantization ``results`` carries one ``tokens ×
channels`` tile of group sums per group, equal to
:func:`golden.group_accumulators`.  With ``requant_lanes`` set, a
``scales`` stream (one beat of multipliers per group tile) joins in and
``results`` carries the int8/int4 outputs of :func:`golden.requantize`,
``requant_lanes`` per word, ``tokens · channels / requant_lanes`` words per
output tile.  The host side that turns a layer into these streams is
:mod:`sim.trip_driver`.
"""
from __future__ import annotations

from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .rtl.tile_requant import TileRequant
from .rtl.skid_buffer import SkidBuffer
from .rtl.stream_queue import StreamQueue
from .rtl.trip_array import TripArray
from .rtl.trip_sequencer import MAX_TILES, RegisterPort, TripSequencer

__all__ = ["TripCore"]


class TripCore(wiring.Component):
    """A whole TRIP matmul engine: array parameters as :class:`TripArray`, plus ``max_k_total``
    (activation buffer depth, the largest K of one run) and, to requantize on chip,
    ``requant_lanes`` (outputs per result word) and ``max_groups`` (most groups per output);
    ``max_tiles`` bounds M_TILES and N_TILES of one run.  ``beat_queue`` picks what sits between the
    sequencer and the array: a two-word :class:`StreamQueue` (True) or a :class:`SkidBuffer` (False);
    they behave the same cycle for cycle and differ only in the netlist (see their docstrings).
    ``fanout_stages``, ``fanout_cols``, ``local_stall``, ``packed_copies`` and ``head_offsets`` (with
    ``requant_lanes`` only) are :class:`TripArray`'s, ``act_slice_width`` and ``act_ram_width`` :class:`TripSequencer`'s.  ``latency``: cycles from a beat's issue in the sequencer to its group's
    sums, beyond one beat per cycle (the array's latency and the sequencer's read pipeline)."""

    def __init__(self, *, rows: int = 1, cols: int = 1, a_lanes: int = 2, w_lanes: int = 2, mul_width: int = 18,
                 mul_latency: int = 2, max_k: int = 4096, max_k_total: int = 4096,
                 requant_lanes: int | None = None, max_groups: int = 64, max_tiles: int = MAX_TILES,
                 beat_queue: bool = False, fanout_stages: int = 0, fanout_cols: int = 1,
                 local_stall: bool = False, packed_copies: bool = False, head_offsets: bool = False,
                 act_slice_width: int = 0, act_ram_width: int = 0):
        self.array = TripArray(rows=rows, cols=cols, a_lanes=a_lanes, w_lanes=w_lanes, mul_width=mul_width,
                               mul_latency=mul_latency, max_k=max_k, drain_lanes=requant_lanes,
                               fanout_stages=fanout_stages, fanout_cols=fanout_cols,
                               local_stall=local_stall, packed_copies=packed_copies,
                               head_offsets=head_offsets)
        self.tokens, self.channels = self.array.tokens, self.array.channels
        self.max_k, self.max_k_total = max_k, max_k_total
        self.requant = None
        if requant_lanes is not None:
            self.requant = TileRequant(tokens=self.tokens, channels=self.channels, lanes=requant_lanes,
                                       acc_bits=self.array.acc_bits, max_groups=max_groups)
        self.max_groups = max_groups if self.requant else max_k_total
        self.sequencer = TripSequencer(tokens=self.tokens, channels=self.channels, max_k_total=max_k_total,
                                       max_group=max_k, max_groups=self.max_groups, max_tiles=max_tiles,
                                       act_slice_width=act_slice_width, act_ram_width=act_ram_width)
        self.latency = self.array.latency + self.sequencer.read_latency - 1
        self.max_tiles = max_tiles
        self.beat_queue = beat_queue
        ports = {
            "regs": In(RegisterPort()),
            "act": In(stream.Signature(self.sequencer.act_layout)),
            "weights": In(stream.Signature(self.sequencer.weight_layout)),
        }
        if self.requant:
            ports["scales"] = In(stream.Signature(self.requant.scales_layout))
            ports["results"] = Out(stream.Signature(self.requant.requant.out_layout))
        else:
            ports["results"] = Out(stream.Signature(self.array.out_layout))
        self.result_layout = ports["results"].signature.members["payload"].shape
        super().__init__(ports)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.sequencer = seq = self.sequencer
        m.submodules.array = arr = self.array
        wiring.connect(m, wiring.flipped(self.regs), seq.regs)
        wiring.connect(m, wiring.flipped(self.act), seq.act)
        wiring.connect(m, wiring.flipped(self.weights), seq.weights)
        # A slice or queue between them: the array's stall fans out to all of its pipeline registers,
        # and without one it reached the sequencer's counters in the same cycle (the iCE40 build's
        # critical path).  It costs one cycle per run (sim.cycle_model counts it).
        buffer = StreamQueue if self.beat_queue else SkidBuffer
        m.submodules.beat_slice = beat_slice = buffer(seq.beat_layout)
        wiring.connect(m, seq.beats, beat_slice.i)
        wiring.connect(m, beat_slice.o, arr.i)
        if self.requant:
            m.submodules.requant = rq = self.requant
            wiring.connect(m, arr.o, rq.i)
            m.d.comb += arr.drain.eq(rq.drain)
            wiring.connect(m, wiring.flipped(self.scales), rq.scales)
            wiring.connect(m, rq.o, wiring.flipped(self.results))
            m.d.comb += [rq.groups.eq(seq.groups), rq.shift.eq(seq.shift), rq.out_bits8.eq(seq.out_bits8),
                         seq.done_outputs.eq(rq.i.valid & rq.i.ready), seq.downstream_busy.eq(rq.busy),
                         rq.flush.eq(seq.error != 0)]
        else:
            wiring.connect(m, arr.o, wiring.flipped(self.results))
            m.d.comb += seq.done_outputs.eq(arr.o.valid & self.results.ready)
        return m
