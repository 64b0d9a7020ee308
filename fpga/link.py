"""The host link: a byte-stream command protocol around :class:`hw.trip_core.TripCore` and its operand memories.

The board top (:mod:`fpga.top`) puts a UART on ``rx``/``tx``; the simulation
tests drive the same bytes through a UART model.  The host side is
:mod:`fpga.host`.  Every command is one opcode byte, its arguments (little
endian), and, for LOAD, its data; the link answers every command, ending its
reply with the opcode byte (an acknowledgement the host checks), or answers
``NAK`` alone for an unknown opcode or a refused argument.

=======  ===========================  ==============================================================
opcode   arguments                    reply
=======  ===========================  ==============================================================
0x01     REG_WRITE addr:u8 value:u32  ack.  Writes a core register (map: :data:`REGS`); CTRL is refused
                                      (NAK): only RUN starts the core, together with the operand replay
0x02     REG_READ addr:u8             value:u32, ack
0x03     LOAD mem:u8 words:u16 data   go (the opcode) or NAK (unknown memory, more words than it holds);
                                      after go the host sends ``words`` words of ``ceil(width/8)`` bytes
                                      each, written from address 0 (mem 0 activations, 1 weights,
                                      2 scales), and the link acks.  ``words`` also becomes that
                                      memory's replay length
0x04     RUN                          status:u8 (CTRL bits, bit 3 result memory overflowed),
                                      result_bytes:u32, ack.  Starts the core and the replays (weights
                                      repeat M_TILES times), replies when the core is done and every
                                      result byte is stored
0x05     READ offset:u32 count:u32    ``count`` result bytes from ``offset``, ack
0x06     INFO                         :data:`INFO_FIELDS` as u32 each, ack
=======  ===========================  ==============================================================

Results are stored as bytes: each result word (group-sum tile, or requantized
lanes) as ``ceil(width/8)`` little-endian bytes, in the order the core emits
them.  Serialising a word takes one cycle per byte; the core waits meanwhile,
and CYCLES counts it.
"""
from __future__ import annotations

import enum
import math

from amaranth import Array, Const, Module, Mux, Signal, unsigned
from amaranth.hdl import Shape
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.rtl.replay import Replay
from hw.rtl.trip_sequencer import REGS
from hw.trip_core import TripCore

__all__ = ["INFO_FIELDS", "NAK", "PROTOCOL_VERSION", "HostLink", "Memories", "Op", "operand_layouts", "word_bytes"]

PROTOCOL_VERSION = 1
NAK = 0xFF
INFO_FIELDS = ("version", "rows", "cols", "a_lanes", "w_lanes", "mul_width", "mul_latency", "max_k", "max_k_total",
               "requant_lanes", "max_groups", "act_depth", "weight_depth", "scale_depth", "result_bytes",
               "clk_hz", "baud")
CORE_FIELDS = ("rows", "cols", "a_lanes", "w_lanes", "mul_width", "mul_latency", "max_k", "max_k_total")
OVERFLOW_BIT = 3


class Op(enum.IntEnum):
    REG_WRITE = 0x01
    REG_READ = 0x02
    LOAD = 0x03
    RUN = 0x04
    READ = 0x05
    INFO = 0x06


class Memories(enum.IntEnum):
    ACT = 0
    WEIGHTS = 1
    SCALES = 2


def word_bytes(layout) -> int:
    return math.ceil(Shape.cast(layout).width / 8)


def operand_layouts(core: TripCore) -> dict[Memories, object]:
    """The word layout of each operand memory a core needs (scales only when it requantizes)."""
    layouts = {Memories.ACT: core.sequencer.act_layout, Memories.WEIGHTS: core.sequencer.weight_layout}
    if core.requant:
        layouts[Memories.SCALES] = core.requant.scales_layout
    return layouts


class HostLink(wiring.Component):
    """TripCore + activation/weight/scale memories + a byte-addressed result memory, driven by commands on ``rx``.

    Parameters: ``core`` (TripCore constructor arguments, including
    ``requant_lanes``), the memory depths in words (``act_depth``,
    ``weight_depth``, ``scale_depth``; scales only with a requantizer) and in bytes
    (``result_bytes``), and ``clk_hz``/``baud`` (reported by INFO, so the host can
    check it talks to the build it expects).

    Members: ``rx`` (In byte stream), ``tx`` (Out byte stream), ``busy`` (a run is in progress).
    """

    def __init__(self, core: dict, *, act_depth: int, weight_depth: int, result_bytes: int, scale_depth: int = 0,
                 clk_hz: int = 0, baud: int = 0):
        self.core = TripCore(**core)
        if (self.core.requant is None) != (scale_depth == 0):
            raise ValueError("a scale memory is needed exactly when the core requantizes")
        self.depths = {Memories.ACT: act_depth, Memories.WEIGHTS: weight_depth, Memories.SCALES: scale_depth}
        self.layouts = operand_layouts(self.core)
        self.result_bytes = result_bytes
        self.info = {**{f: core[f] for f in CORE_FIELDS}, "version": PROTOCOL_VERSION,
                     "requant_lanes": core.get("requant_lanes") or 0,
                     "max_groups": self.core.max_groups if self.core.requant else 0, "act_depth": act_depth, "weight_depth": weight_depth, "scale_depth": scale_depth,
                     "result_bytes": result_bytes, "clk_hz": int(clk_hz), "baud": int(baud)}
        super().__init__({"rx": In(stream.Signature(8)), "tx": Out(stream.Signature(8)), "busy": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.core = core = self.core
        streams = {Memories.ACT: core.act, Memories.WEIGHTS: core.weights}
        if core.requant:
            streams[Memories.SCALES] = core.scales

        # --- command state -------------------------------------------------------------------------------
        op = Signal(8)
        args = Signal(72)                    # up to nine argument bytes, little endian
        n_args = Signal(range(10))
        got = Signal(range(10))
        reply = Signal(40)                   # bytes still to send before the ack, LSB first
        reply_left = Signal(range(6))
        mem_sel = Signal(2)
        word = Signal(max(Shape.cast(layout).width for layout in self.layouts.values()))
        byte_idx = Signal(range(max(word_bytes(layout) for layout in self.layouts.values()) + 1))
        load_addr = Signal(range(max(self.depths.values()) + 1))
        load_words = Signal(16)
        commit = Signal()
        read_addr = Signal(32)
        read_left = Signal(32)
        m.d.comb += self.tx.payload.eq(0)

        # --- operand memories and their replays ----------------------------------------------------------
        start = Signal()
        counts = {}
        m_tiles = Signal(32, init=1)
        for sel, layout in self.layouts.items():
            width, depth = Shape.cast(layout).width, self.depths[sel]
            mem = memory.Memory(shape=unsigned(width), depth=depth, init=[])
            m.submodules[f"mem_{sel.name.lower()}"] = mem
            wp = mem.write_port()
            m.d.comb += [wp.addr.eq(load_addr), wp.data.eq(word[:width]), wp.en.eq(commit & (mem_sel == sel))]
            counts[sel] = count = Signal(range(depth + 1), name=f"count_{sel.name.lower()}")
            replay = Replay(width, depth)
            m.submodules[f"replay_{sel.name.lower()}"] = replay
            rp = mem.read_port()
            target = streams[sel]
            m.d.comb += [rp.addr.eq(replay.addr), rp.en.eq(replay.en), replay.data.eq(rp.data),
                         replay.count.eq(count), replay.start.eq(start),
                         replay.repeat.eq(m_tiles if sel == Memories.WEIGHTS else 1),
                         target.valid.eq(replay.valid), target.payload.eq(replay.payload),
                         replay.ready.eq(target.ready)]

        # --- result writer: each word becomes bytes in the result memory ---------------------------------
        res_width = Shape.cast(core.result_layout).width
        res_bytes = word_bytes(core.result_layout)
        m.submodules.mem_results = res_mem = memory.Memory(shape=8, depth=self.result_bytes, init=[])
        res_wp = res_mem.write_port()
        res_rp = res_mem.read_port()
        # A stream holds its payload until taken, so the writer stores one byte of the offered word per
        # cycle and takes the word with its last byte: no copy of the (wide) word is needed.
        res_byte = Signal(range(res_bytes))
        res_count = Signal(32)
        overflow = Signal()
        res_word = Signal(res_bytes * 8)
        last_byte = res_byte == res_bytes - 1
        m.d.comb += [res_word.eq(core.results.payload.as_value()[:res_width]),
                     core.results.ready.eq(last_byte), res_wp.addr.eq(res_count[:len(res_wp.addr)]),
                     res_wp.data.eq(res_word.word_select(res_byte, 8)),
                     res_wp.en.eq(core.results.valid & (res_count < self.result_bytes))]
        with m.If(start):
            m.d.sync += [res_count.eq(0), res_byte.eq(0), overflow.eq(0)]
        with m.Elif(core.results.valid):
            m.d.sync += [res_count.eq(res_count + 1), res_byte.eq(Mux(last_byte, 0, res_byte + 1))]
            with m.If(res_count >= self.result_bytes):
                m.d.sync += overflow.eq(1)

        # --- register bus ---------------------------------------------------------------------------------
        reg_addr = Signal(4)
        m.d.comb += [core.regs.addr.eq(reg_addr), core.regs.wdata.eq(args[8:40]), core.regs.we.eq(0)]

        info_bytes = b"".join(int(self.info[f]).to_bytes(4, "little") for f in INFO_FIELDS)
        m.submodules.info_rom = info_rom = memory.Memory(shape=8, depth=len(info_bytes), init=list(info_bytes))
        info_rp = info_rom.read_port()
        m.d.comb += info_rp.addr.eq(read_addr[:len(info_rp.addr)])
        byte_counts = Array(Const(word_bytes(self.layouts.get(sel, unsigned(8))), 8) for sel in Memories)
        depth_rom = Array(Const(self.depths[sel] if sel in self.layouts else 0, 17) for sel in Memories)
        reading_info = Signal()
        # The read port follows read_addr every cycle, so in SEND_BYTE it shows that address's byte.
        m.d.comb += [res_rp.addr.eq(read_addr[:len(res_rp.addr)]), res_rp.en.eq(1)]

        def expect(count: int):
            m.d.sync += [n_args.eq(count), got.eq(0), args.eq(0)]
            m.next = "ARGS"

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(self.rx.valid):
                    m.d.sync += op.eq(self.rx.payload)
                    with m.Switch(self.rx.payload):
                        with m.Case(Op.REG_WRITE):
                            expect(5)
                        with m.Case(Op.REG_READ):
                            expect(1)
                        with m.Case(Op.LOAD):
                            expect(3)
                        with m.Case(Op.RUN):
                            m.next = "RUN"
                        with m.Case(Op.READ):
                            expect(8)
                        with m.Case(Op.INFO):
                            m.d.sync += [read_addr.eq(0), read_left.eq(len(info_bytes)), reading_info.eq(1)]
                            m.next = "SEND_BYTES"
                        with m.Default():
                            m.next = "NAK"
            with m.State("ARGS"):
                with m.If(got == n_args):
                    m.next = "EXECUTE"
                with m.Else():
                    m.d.comb += self.rx.ready.eq(1)
                    with m.If(self.rx.valid):
                        m.d.sync += [args.word_select(got, 8).eq(self.rx.payload), got.eq(got + 1)]
            with m.State("EXECUTE"):
                with m.Switch(op):
                    with m.Case(Op.REG_WRITE):
                        with m.If(args[:8] == REGS["CTRL"]):
                            m.next = "NAK"
                        with m.Else():
                            m.d.comb += [reg_addr.eq(args[:8]), core.regs.we.eq(1)]
                            with m.If(args[:8] == REGS["M_TILES"]):
                                m.d.sync += m_tiles.eq(args[8:40])
                            m.d.sync += reply_left.eq(0)
                            m.next = "REPLY"
                    with m.Case(Op.REG_READ):
                        m.d.comb += reg_addr.eq(args[:8])
                        m.d.sync += [reply.eq(core.regs.rdata), reply_left.eq(4)]
                        m.next = "REPLY"
                    with m.Case(Op.LOAD):
                        sel, words = args[:8], args[8:24]
                        with m.If((sel >= len(Memories)) | (words > depth_rom[sel[:2]])):
                            m.next = "NAK"
                        with m.Else():
                            m.d.sync += [mem_sel.eq(sel), load_words.eq(words), load_addr.eq(0), byte_idx.eq(0),
                                         word.eq(0)]
                            m.next = "LOAD_GO"
                    with m.Case(Op.READ):
                        m.d.sync += [read_addr.eq(args[:32]), read_left.eq(args[32:64]), reading_info.eq(0)]
                        m.next = "SEND_BYTES"
            with m.State("LOAD_GO"):
                # The go-ahead: the host sends data only after this, so a refused LOAD never leaves
                # data bytes behind to be misread as commands.
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(op)]
                with m.If(self.tx.ready):
                    m.next = "LOAD"
            with m.State("LOAD"):
                with m.If(commit):
                    m.d.sync += [load_addr.eq(load_addr + 1), byte_idx.eq(0), word.eq(0)]
                with m.Elif(load_addr == load_words):
                    for sel, count in counts.items():
                        with m.If(mem_sel == sel):
                            m.d.sync += count.eq(load_words)
                    m.d.sync += reply_left.eq(0)
                    m.next = "REPLY"
                with m.Else():
                    m.d.comb += self.rx.ready.eq(1)
                    with m.If(self.rx.valid):
                        m.d.sync += [word.word_select(byte_idx, 8).eq(self.rx.payload), byte_idx.eq(byte_idx + 1)]
                m.d.comb += commit.eq((byte_idx == byte_counts[mem_sel]) & (load_addr != load_words))
            with m.State("RUN"):
                m.d.comb += [reg_addr.eq(REGS["CTRL"]), core.regs.wdata.eq(1), core.regs.we.eq(1), start.eq(1)]
                m.d.sync += self.busy.eq(1)
                m.next = "RUN_WAIT"
            with m.State("RUN_WAIT"):
                m.d.comb += reg_addr.eq(REGS["CTRL"])
                ctrl = core.regs.rdata
                with m.If(ctrl[1] & ~ctrl[0] & ~core.results.valid):
                    m.d.sync += [reply.eq(ctrl[:3] | overflow << OVERFLOW_BIT | res_count << 8), reply_left.eq(5),
                                 self.busy.eq(0)]
                    m.next = "REPLY"
            with m.State("SEND_BYTES"):
                # Result memory reads take a cycle: present the address, then send the byte.
                with m.If(read_left == 0):
                    m.d.sync += reply_left.eq(0)
                    m.next = "REPLY"
                with m.Else():
                    m.next = "SEND_BYTE"
            with m.State("SEND_BYTE"):
                in_range = read_addr < self.result_bytes
                m.d.comb += [self.tx.valid.eq(1),
                             self.tx.payload.eq(Mux(reading_info, info_rp.data,
                                                    Mux(in_range, res_rp.data, 0)))]
                with m.If(self.tx.ready):
                    m.d.sync += [read_addr.eq(read_addr + 1), read_left.eq(read_left - 1)]
                    m.next = "SEND_BYTES"
            with m.State("REPLY"):
                with m.If(reply_left == 0):
                    m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(op)]
                    with m.If(self.tx.ready):
                        m.next = "IDLE"
                with m.Else():
                    m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(reply[:8])]
                    with m.If(self.tx.ready):
                        m.d.sync += [reply.eq(reply >> 8), reply_left.eq(reply_left - 1)]
            with m.State("NAK"):
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(NAK)]
                with m.If(self.tx.ready):
                    m.next = "IDLE"
        return m
