"""Requantization of whole array tiles: cuts each ``tokens × channels`` tile of group sums into
``lanes``-wide chunks, pairs every sum with its multipliers, and feeds :class:`~hw.rtl.requant.Requant`.

The array hands over one tile per weight group; this stage needs, for every
such tile, one ``scales`` beat: the group's weight multiplier of each channel
lane and the multiplier of each token lane (:func:`golden.requant.requant_params`).
It counts groups itself (``groups`` per output tile), so the first and last
group of every output tile are marked without help from the array.
"""
from __future__ import annotations

from amaranth import Cat, Module, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.requant import MAX_SHIFT, MULT_BITS
from .requant import Requant

__all__ = ["TileRequant", "HELD_PART_BITS"]

#: Most bits of the held scales beat that one enable loads (see ``TileRequant.elaborate``).
HELD_PART_BITS = 96


class TileRequant(wiring.Component):
    """Tile-to-chunk adapter in front of a ``lanes``-wide :class:`Requant`.

    Parameters
    ----------
    tokens, channels, acc_bits : int
        The array's tile (:class:`~hw.rtl.trip_array.TripArray`'s ``out_layout``).
    lanes : int
        Outputs per beat; must divide ``tokens · channels``.  A tile takes
        ``chunks = tokens · channels / lanes`` cycles to pass, so the array is
        never slowed while a group lasts ``chunks + handover`` beats or more
        (:class:`~hw.rtl.trip_array.TripArray`'s ``handover``).
    max_groups, mult_bits : int
        As :class:`Requant` (the register widths follow from them).

    Members
    -------
    i : ``In(stream.Signature(tokens × channels × signed(acc_bits)))``: one tile per group, from a
        producer that drains it (:class:`~hw.rtl.trip_array.TripArray` with ``drain_lanes = lanes``):
        this stage reads only the tile's first ``lanes`` sums.
    drain : ``Out(1)``: a chunk was taken and the tile stays; the producer moves the tile's sums
        ``lanes`` places down, so the next chunk is first.
    scales : ``In(stream.Signature({wmul: channels × unsigned(mult_bits), tmul: tokens × unsigned(mult_bits)}))``
        One beat per tile of ``i``, in the same order.
    o : ``Out(stream.Signature(lanes × signed(8)))``: ``chunks`` words per output tile,
        token-major (word ``c`` lane ``l`` is tile element ``c·lanes + l``).
    groups : ``In(range(1, max_groups + 1))``, shift, out_bits8
        Per-run settings; hold them while a run is in flight (``groups`` is read a cycle late).
    busy : ``Out(1)``: something accepted has not yet left on ``o``.
    flush : ``In(1)``: while high, the held scales beats are dropped and none is taken: the sequencer refused
        the run, whose scales may have come all the same, and they must not pair with the next run's tiles.

    Contract
    --------
    Scales beats are taken into two registers of this stage, the tile's and
    the next one (at most two beats ahead of their tiles; the next one moves
    on in the cycle its predecessor's tile is done, and the register takes
    another beat a cycle later), and a tile in the cycle its last chunk enters
    the requantizer; each chunk enters one per
    cycle while ``o`` is taken.  The group counter resets to 0 on ``rst`` only:
    runs must send whole output tiles (``groups`` tiles each).
    """

    def __init__(self, *, tokens: int, channels: int, lanes: int, acc_bits: int, max_groups: int,
                 mult_bits: int = MULT_BITS):
        for name, value in (("tokens", tokens), ("channels", channels), ("lanes", lanes)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if (tokens * channels) % lanes:
            raise ValueError(f"{lanes} lanes do not divide a {tokens}×{channels} tile")
        self.tokens, self.channels, self.lanes = tokens, channels, lanes
        self.chunks = tokens * channels // lanes
        self.acc_bits, self.mult_bits, self.max_groups = acc_bits, mult_bits, max_groups
        self.requant = Requant(lanes=lanes, chunks=self.chunks, acc_bits=acc_bits, max_groups=max_groups,
                               mult_bits=mult_bits)
        self.tile_layout = data.ArrayLayout(data.ArrayLayout(signed(acc_bits), channels), tokens)
        self.scales_layout = data.StructLayout({
            "wmul": data.ArrayLayout(unsigned(mult_bits), channels),
            "tmul": data.ArrayLayout(unsigned(mult_bits), tokens),
        })
        super().__init__({
            "i": In(stream.Signature(self.tile_layout)),
            "drain": Out(1),
            "scales": In(stream.Signature(self.scales_layout)),
            "o": Out(stream.Signature(self.requant.out_layout)),
            "groups": In(range(1, max_groups + 1), init=1),
            "shift": In(range(1, MAX_SHIFT + 1), init=1),
            "out_bits8": In(1, init=1),
            "busy": Out(1),
            "flush": In(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.requant = rq = self.requant
        wiring.connect(m, rq.o, wiring.flipped(self.o))
        m.d.comb += [rq.shift.eq(self.shift), rq.out_bits8.eq(self.out_bits8), self.busy.eq(rq.busy)]

        chunk = Signal(range(self.chunks))
        # chunk == chunks - 1 as a flag of its own, set as the counter reaches it: the compare's carry chain
        # sat at the head of the ECP5 build's critical path (tile done -> the array's handshake -> drain).
        last_chunk = Signal(init=self.chunks == 1)
        group = Signal(range(self.max_groups))
        # groups - 1, registered (a per-run setting): computed from `groups` in the cycle it was compared, the
        # subtraction and the compare ran from the sequencer's register into the group counter's reset pin
        # (ULX3S-85F: 14.9 ns).
        last_group = Signal.like(group)
        m.d.sync += last_group.eq(self.groups - 1)
        # The tile's scales beat, held in a register of its own: the lanes' multipliers are selected from it,
        # not from the scales queue's output (on the ULX3S-85F the queue's read pointer reached its 768-bit
        # LUT RAM, then the selection, then the requantizer's input register: 15.0 ns).  The beat after it waits
        # in a second register (`upcoming`), taken whenever that is empty, and moves on in the cycle the tile
        # before it is done: taken straight from the queue then, the handshake ran from the array's output
        # through the requantizer's and the queue's into the held register's enable (ULX3S-85F: 13.9-15.2 ns).
        # (The enable stays in fabric: one more DCCA and the ULX3S-25F's router failed to reach a global's
        # input at seed 1.)
        held, upcoming = Signal(self.scales_layout, name="held"), Signal(self.scales_layout, name="upcoming")
        held_valid, upcoming_valid = Signal(), Signal()
        both = self.i.valid & held_valid
        enter = both & rq.i.ready
        tile_done = enter & last_chunk

        def take_with(held_valid: Value, upcoming_valid: Value, last_chunk: Value) -> Value:
            """Whether the upcoming beat becomes the held one, from these copies of the three flags."""
            return (~held_valid | (self.i.valid & held_valid & rq.i.ready & last_chunk)) & upcoming_valid
        take = take_with(held_valid, upcoming_valid, last_chunk)
        # `held` is loaded in parts of at most HELD_PART_BITS, each by an enable of its own, made from copies of
        # the flags (fpga.build keeps yosys from merging them, ``fanout_``): one enable for all 767 bits went
        # through four LUTs from the array's output valid, then 4.5 ns of fabric to its clock enables (ULX3S-85F,
        # 4520909 seed 1: 10.03 ns).
        bits = len(held.as_value())
        starts = range(0, bits, HELD_PART_BITS)
        parts = [Signal(min(HELD_PART_BITS, bits - start), name=f"held_{n}") for n, start in enumerate(starts)]
        m.d.comb += held.as_value().eq(Cat(*parts))
        copies = [] if len(parts) == 1 else [
            (Signal(name=f"fanout_held_valid_{n}"), Signal(name=f"fanout_upcoming_valid_{n}"),
             Signal(init=self.chunks == 1, name=f"fanout_last_chunk_{n}")) for n in range(len(parts))]
        flag_sets = copies or [(held_valid, upcoming_valid, last_chunk)]       # each part's enable reads one set
        # each flag and its copies, assigned together
        held_valids, upcoming_valids, last_chunks = ([flag, *(flags[k] for flags in copies)]
                                                     for k, flag in enumerate((held_valid, upcoming_valid, last_chunk)))
        m.d.comb += self.scales.ready.eq(~upcoming_valid & ~self.flush)
        # `upcoming` loads whatever the queue shows while it is empty, a beat or not (`upcoming_valid` says which),
        # so its enables come from that one register, not from the queue's valid and the flush (ULX3S-85F with
        # half the array: 13.6 ns, the error register through the flush and the queue's pop to 639 enables).
        with m.If(~upcoming_valid):
            m.d.sync += upcoming.eq(self.scales.payload)
        for part, start, flags in zip(parts, starts, flag_sets):
            with m.If(take_with(*flags)):
                m.d.sync += part.eq(upcoming.as_value()[start:start + len(part)])
        with m.If(self.flush):
            m.d.sync += [flag.eq(0) for flag in held_valids + upcoming_valids]
        with m.Else():
            m.d.sync += [flag.eq(take | (held_valid & ~tile_done)) for flag in held_valids]
            m.d.sync += [flag.eq((upcoming_valid & ~take) | (self.scales.valid & self.scales.ready))
                         for flag in upcoming_valids]
        m.d.comb += [rq.i.valid.eq(both), self.i.ready.eq(tile_done),
                     self.drain.eq(enter & ~tile_done),
                     rq.i.payload.first.eq(group == 0), rq.i.payload.last.eq(group == last_group)]
        with m.If(enter):
            m.d.sync += [chunk.eq(chunk + 1), *(flag.eq(chunk == self.chunks - 2) for flag in last_chunks)]
            with m.If(tile_done):
                m.d.sync += [chunk.eq(0), group.eq(0), *(flag.eq(self.chunks == 1) for flag in last_chunks)]
                with m.If(group != last_group):
                    m.d.sync += group.eq(group + 1)

        # Chunk c's lane l is tile element f = c·lanes + l: token f // channels, channel f % channels.  The
        # producer drains the tile past the first lanes sums (selecting chunk c from the whole tile here was a
        # tile-wide multiplexer whose select reached across the device); the multipliers need a mux per lane.
        m.d.comb += rq.i.payload.acc.as_value().eq(self.i.payload.as_value()[:self.lanes * self.acc_bits])
        for lane in range(self.lanes):
            elems = [c * self.lanes + lane for c in range(self.chunks)]
            wmul = Cat(*(held.wmul[f % self.channels] for f in elems))
            tmul = Cat(*(held.tmul[f // self.channels] for f in elems))
            m.d.comb += [rq.i.payload.wmul[lane].eq(wmul.word_select(chunk, self.mult_bits)),
                         rq.i.payload.tmul[lane].eq(tmul.word_select(chunk, self.mult_bits))]
        return m
