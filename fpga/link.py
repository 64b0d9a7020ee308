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

Timing: everything the link decides on is registered first (the opcode as one flag per
command, the register bus to the core, the core's status, end-of-count flags, the result
byte select in two stages).  That costs a cycle or two per command and none per byte, and
keeps the link's paths shorter than the core's on the iCE40 build.
"""
from __future__ import annotations

import enum
import math

from amaranth import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.hdl import Shape
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.ram import NO_RW_CHECK
from hw.rtl.replay import Replay
from hw.rtl.sliced_memory import SlicedMemory, slice_width
from hw.rtl.trip_sequencer import REGS
from hw.trip_core import TripCore

__all__ = ["INFO_FIELDS", "NAK", "PROTOCOL_VERSION", "HostLink", "Memories", "Op", "operand_layouts", "result_words",
           "word_bytes"]

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


def result_words(tokens: int, channels: int, requant_lanes: int, groups: int, tiles: int = 1) -> int:
    """Result words ``tiles`` output tiles of a run leave in the result memory: a requantizing core
    writes its ``tokens·channels`` outputs ``requant_lanes`` per word, a raw core one word of group
    sums per group (``requant_lanes`` 0)."""
    return tiles * (tokens * channels // requant_lanes if requant_lanes else groups)


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
    check it talks to the build it expects).  ``operand_queues`` puts a queue
    after the activation and weight replays as well as the scales one, which then read only when their queue
    has room (:class:`~hw.rtl.replay.Replay`'s ``queue_depth``; the ECP5 builds; the same cycles but a
    replay's first word, one later).  ``registered_writes`` gives each
    memory a register stage of its own in front of its write port (the ECP5 builds; a LOAD's words land a
    cycle after their last byte, long before the reply; on the iCEBreaker the stage cost 1.9 MHz at seed 1).
    ``ram_shapes`` (the block RAM's ``(width, depth)`` configurations,
    :data:`fpga.sizing.BLOCK_SHAPES`; ECP5 with ``hw.sizes.SLICED_ECP5_MEMORIES``) builds the
    operand memories as :class:`~hw.rtl.sliced_memory.SlicedMemory`, each slice as wide as
    ``rams_per_slice`` RAMs that hold the memory's depth (with ``split_rams``, each RAM a memory of its own:
    SlicedMemory's ``ram_width``): registered reads and writes beside each slice's RAMs (a replay's first word
    comes two cycles later), and the result memory as one slice of RAMs that each hold its depth (a READ's byte
    two cycles later; on ECP5 the RAMs' own output registers take the read).  Without them, on the ULX3S-85F
    one address register drove a memory's 30 RAMs (13–14 ns), and their reads went through a multiplexer into
    the operand queues (16.7–17.4 ns).  ``registered_reply`` registers each byte a READ sends from the result
    memory before it goes to the UART (the ECP5 builds; a cycle more per byte, against 10 bit-times of the
    UART's), and the value a REG_READ sends (a cycle more per read).  ``registered_store`` shifts a LOAD's data
    byte into the word a cycle after the UART hands it over, from a register of the byte and of its store (the
    ECP5 builds; a word's commit a cycle later, against 10 bit-times of the UART's per byte).
    ``data_registers``, ``ram_write_registers`` and ``ram_read_registers`` are the sliced operand memories'
    (:class:`~hw.rtl.sliced_memory.SlicedMemory`; a write register set per RAM costs a LOAD's last word a cycle,
    long before the reply; a read address per RAM, a replay's first word a cycle and its queue a word).

    Members: ``rx`` (In byte stream), ``tx`` (Out byte stream), ``busy`` (a run is in progress).
    """

    def __init__(self, core: dict, *, act_depth: int, weight_depth: int, result_bytes: int, scale_depth: int = 0,
                 clk_hz: int = 0, baud: int = 0, operand_queues: bool = False, registered_writes: bool = False,
                 ram_shapes: tuple[tuple[int, int], ...] = (), rams_per_slice: int = 1, split_rams: bool = False,
                 registered_reply: bool = False, data_registers: int = 1, ram_write_registers: bool = False,
                 ram_read_registers: bool = False, registered_store: bool = False):
        self.core = TripCore(**core)
        self.operand_queues, self.registered_writes, self.ram_shapes = operand_queues, registered_writes, ram_shapes
        if not isinstance(rams_per_slice, int) or isinstance(rams_per_slice, bool) or rams_per_slice < 1:
            raise ValueError(f"rams_per_slice must be a positive integer, not {rams_per_slice!r}")
        self.rams_per_slice, self.split_rams, self.registered_reply = rams_per_slice, split_rams, registered_reply
        self.data_registers = data_registers
        self.ram_write_registers, self.ram_read_registers = ram_write_registers, ram_read_registers
        self.registered_store = registered_store
        if (self.core.requant is None) != (scale_depth == 0):
            raise ValueError("a scale memory is needed exactly when the core requantizes")
        self.depths = {Memories.ACT: act_depth, Memories.WEIGHTS: weight_depth, Memories.SCALES: scale_depth}
        self.layouts = operand_layouts(self.core)
        self.result_bytes = result_bytes
        self.info = {**{f: core[f] for f in CORE_FIELDS}, "version": PROTOCOL_VERSION,
                     "requant_lanes": core.get("requant_lanes") or 0,
                     "max_groups": self.core.max_groups if self.core.requant else 0,
                     "act_depth": act_depth, "weight_depth": weight_depth, "scale_depth": scale_depth,
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
        # A LOAD's data bytes shift in from the top, so every byte of the word has the same enable: selecting
        # the byte to store by its index decoded into per-byte enables, and their fabric routes from the
        # `loading` flag to a 768-bit word were the ULX3S-85F build's critical path (16.9 ns).  A memory of
        # n-byte words finds its word in the word's top n bytes.
        max_bytes = max(word_bytes(layout) for layout in self.layouts.values())
        word = Signal(8 * max_bytes)
        byte_idx = Signal(range(max_bytes + 1))
        load_addr = Signal(range(max(self.depths.values()) + 1))
        load_words = Signal(16)
        # Registered at the LOAD command, so the per-byte path compares small registers only (the
        # 16-bit address compare in that path set the iCE40 build's critical path).
        bytes_per_word = Signal(8)
        words_left = Signal(16)
        load_finished = Signal()
        # byte_idx == bytes_per_word, kept as a register beside byte_idx: the compare fed the commit,
        # which gates every byte lane's enable, on the iCE40 build's critical path (27.5 ns at 40 MHz).
        word_full = Signal()
        # registered_store: a stored byte is still on its way into the word
        byte_pending = Signal()
        commit = Signal()
        # The FSM is in LOAD, as a flag of its own: decoding it from the state register put two LUTs and
        # their routing at the head of the byte store's enables (the ULX3S-25F build's critical path once
        # the datapath was off it, 11.0 ns).
        loading = Signal()
        read_addr = Signal(32)
        read_left = Signal(32)
        # Registered with the counters they describe, so SEND_BYTES decides on single bits (the 32-bit
        # compares there were on the iCE40 build's critical path).
        read_done, read_in_range = Signal(), Signal()
        # read_left - 1, ready a cycle ahead: SEND_BYTES always comes between a change of read_left and
        # the SEND_BYTE that steps it, so the byte's step holds no 32-bit borrow chain (it was on an iCE40
        # critical path).
        read_left_less = Signal(32)
        m.d.sync += read_left_less.eq(read_left - 1)
        m.d.comb += self.tx.payload.eq(0)

        # --- operand memories and their replays ----------------------------------------------------------
        start = Signal()
        counts = {}
        m_tiles = Signal(range(core.max_tiles + 1), init=1)
        for sel, layout in self.layouts.items():
            width, depth = Shape.cast(layout).width, self.depths[sel]
            top = 8 * (max_bytes - word_bytes(layout))
            if self.ram_shapes:
                mem = SlicedMemory(width=width, depth=depth,
                                   slice_width=slice_width(self.ram_shapes, depth, self.rams_per_slice),
                                   ram_width=slice_width(self.ram_shapes, depth) if self.split_rams else None,
                                   data_registers=self.data_registers,
                                   ram_write_registers=self.ram_write_registers,
                                   ram_read_registers=self.ram_read_registers)
                m.submodules[f"mem_{sel.name.lower()}"] = mem
                m.d.comb += [mem.w_addr.eq(load_addr), mem.w_data.eq(word[top:top + width]),
                             mem.w_en.eq(commit & (mem_sel == sel))]
                rd_addr, rd_en, rd_data, read_latency = mem.r_addr, mem.r_en, mem.r_data, mem.read_latency
            else:
                mem = memory.Memory(shape=unsigned(width), depth=depth, init=[])
                m.submodules[f"mem_{sel.name.lower()}"] = mem
                wp = mem.write_port()
                writes = ((wp.addr, load_addr), (wp.data, word[top:top + width]), (wp.en, commit & (mem_sel == sel)))
                if self.registered_writes:
                    # Each memory's own copy of the write, so its block RAMs have an address register of their
                    # own (one register driving the three memories' write addresses was the ULX3S-85F build's
                    # third-slowest path, 15.8 ns).  fpga.build keeps yosys from merging the copies (``fanout_``).
                    for port, value in writes:
                        copy = Signal.like(port, name=f"fanout_write_{sel.name.lower()}_{port.name.rsplit('__', 1)[-1]}")
                        m.d.sync += copy.eq(value)
                        m.d.comb += port.eq(copy)
                else:
                    m.d.comb += [port.eq(value) for port, value in writes]
                rp = mem.read_port()
                rd_addr, rd_en, rd_data, read_latency = rp.addr, rp.en, rp.data, 1
            counts[sel] = count = Signal(range(depth + 1), name=f"count_{sel.name.lower()}")
            # The scales replay, and with operand_queues the activation and weight ones, feed the core through a
            # queue inside the replay (Replay's queue_depth), emptied by a run's start: a run the core refuses
            # starts the replays all the same, and the words they queued for it must not be the next run's first
            # ones (the core takes none while it stands refused, and drops a scales beat it took before the
            # refusal: TileRequant's flush).  The replay reads a word only when the queue has room for it, so the
            # memory's read pipeline never stalls and the core's ready stops at the queue: the requantizer takes
            # a scales word with a tile's last chunk, a ready from the results' through two pipelines, which
            # fed straight into the replay's counters was the ULX3S-25F build's critical path (14.2 ns), and
            # as the read enable of block RAMs across the ULX3S-85F took 12.3 ns.  The queue is also the
            # register after the RAMs' unregistered read (5.8 ns clock-to-out), which went on through the core's
            # input logic into the sequencer's buffer (25F, 90.9 MHz).  It delays a replay's first word by one.
            # (On the iCEBreaker the queue's level fed the sequencer's handshake, a 27 ns path at seed 1: it
            # keeps the direct path its placement was found for.)
            queued = sel == Memories.SCALES or self.operand_queues
            replay = Replay(width, depth, max_repeat=core.max_tiles, read_latency=read_latency,
                            queue_depth=read_latency + 2 if queued else None)
            m.submodules[f"replay_{sel.name.lower()}"] = replay
            target = streams[sel]
            m.d.comb += [rd_addr.eq(replay.addr), rd_en.eq(replay.en), replay.data.eq(rd_data),
                         replay.count.eq(count), replay.start.eq(start),
                         replay.repeat.eq(m_tiles if sel == Memories.WEIGHTS else 1),
                         target.valid.eq(replay.valid), target.payload.eq(replay.payload),
                         replay.ready.eq(target.ready)]

        # --- result writer: each word becomes bytes in the result memory ---------------------------------
        res_width = Shape.cast(core.result_layout).width
        res_bytes = word_bytes(core.result_layout)
        # NO_RW_CHECK: a READ never meets a write here (the writer moves only during a run, and the link takes no
        # command until the run's reply), so no old-word logic sits between the RAMs and the reply's byte
        # (ULX3S-85F, fd87adc seed 1: through that logic into read_byte_q, 11.4 ns).
        # With ram_shapes (the ECP5 builds) it is a SlicedMemory of one slice, so on ECP5 each RAM reads into its
        # own output register: as one memory yosys maps its RAMs with that register off, and a RAM's read
        # (5.8 ns clock-to-out) into read_byte_q was 10.48 ns on the ULX3S-85F (e32494d seed 1).  Its read takes
        # three cycles, not one; SEND_FETCH waits them out.
        if self.ram_shapes:
            ram_width = min(8, slice_width(self.ram_shapes, self.result_bytes))
            m.submodules.mem_results = res_mem = SlicedMemory(width=8, depth=self.result_bytes, slice_width=8,
                                                              ram_width=ram_width)
            res_wp, res_rp = res_mem.ports()
            res_latency = res_mem.read_latency
        else:
            m.submodules.mem_results = res_mem = memory.Memory(shape=8, depth=self.result_bytes, init=[],
                                                                attrs=NO_RW_CHECK)
            res_wp = res_mem.write_port()
            res_rp = res_mem.read_port()
            res_latency = 1
        # A stream holds its payload until taken, so the writer stores one byte of the offered word per
        # cycle and takes the word with its last byte: no copy of the (wide) word is needed.
        res_byte = Signal(range(res_bytes))
        res_count = Signal(32)
        overflow = Signal()
        res_word = Signal(res_bytes * 8)
        # Registered with res_byte: it is the core's results.ready, at the head of the ready chain
        # back through the array to the sequencer.
        last_byte = Signal(init=res_bytes == 1)
        room = Signal(init=1)                # res_count < result_bytes, registered with res_count
        # The byte select is a wide mux (46 bytes on the iCE40 build), so it is two pipeline stages: an
        # 8-byte chunk, then the byte in it; the write address and enable follow two cycles behind.
        chunk, byte_q, addr_q, en_q = Signal(64), Signal(3), Signal.like(res_wp.addr), Signal()
        wr_addr, wr_data, wr_en = Signal.like(res_wp.addr), Signal(8), Signal()
        m.d.comb += [res_word.eq(core.results.payload.as_value()[:res_width]), core.results.ready.eq(last_byte),
                     res_wp.addr.eq(wr_addr), res_wp.data.eq(wr_data), res_wp.en.eq(wr_en)]
        padded = Cat(res_word, Const(0, -res_bytes % 8 * 8))
        m.d.sync += [chunk.eq(padded.word_select(res_byte >> 3, 64)), byte_q.eq(res_byte[:3]),
                     addr_q.eq(res_count[:len(res_wp.addr)]), en_q.eq(core.results.valid & room),
                     wr_data.eq(chunk.word_select(byte_q, 8)), wr_addr.eq(addr_q), wr_en.eq(en_q)]
        with m.If(start):
            m.d.sync += [res_count.eq(0), res_byte.eq(0), last_byte.eq(res_bytes == 1), overflow.eq(0), room.eq(1)]
        with m.Elif(core.results.valid):
            m.d.sync += [res_count.eq(res_count + 1), res_byte.eq(Mux(last_byte, 0, res_byte + 1)),
                         last_byte.eq(Mux(last_byte, res_bytes == 1, res_byte == res_bytes - 2)),
                         # the same test as res_count + 1 < result_bytes (Amaranth widens the sum), with
                         # no adder in front of the compare: the two chains were an iCE40 critical path
                         room.eq(res_count < self.result_bytes - 1)]
            with m.If(~room):
                m.d.sync += overflow.eq(1)

        # --- register bus ---------------------------------------------------------------------------------
        # Registered, so the command decoder and the core's register logic are separate timing paths
        # (together they were the iCE40 build's critical path).  A write lands the cycle after it is
        # issued; a read shows rdata the cycle after the address is set.
        reg_addr, reg_wdata, reg_we = Signal(4), Signal(32), Signal()
        m.d.comb += [core.regs.addr.eq(reg_addr), core.regs.wdata.eq(reg_wdata), core.regs.we.eq(reg_we)]
        m.d.sync += reg_we.eq(0)
        # The core's status as of the previous cycle (RUN_WAIT decides on these registered copies: the
        # register read mux straight into the link's decision was a critical path too).
        status, results_waiting = Signal(3), Signal()
        m.d.sync += [status.eq(core.regs.rdata[:3]), results_waiting.eq(core.results.valid)]
        # A REG_READ's value, with registered_reply from a register too: the read multiplexer, from the address
        # across the core to its registers, went on into the reply register's multiplexer (ULX3S-85F: 12.1 ns).
        reg_value = core.regs.rdata
        if self.registered_reply:
            reg_value = Signal.like(core.regs.rdata, name="reg_value")
            m.d.sync += reg_value.eq(core.regs.rdata)

        info_bytes = b"".join(int(self.info[f]).to_bytes(4, "little") for f in INFO_FIELDS)
        m.submodules.info_rom = info_rom = memory.Memory(shape=8, depth=len(info_bytes), init=list(info_bytes))
        info_rp = info_rom.read_port()
        m.d.comb += info_rp.addr.eq(read_addr[:len(info_rp.addr)])
        byte_counts = Array(Const(word_bytes(self.layouts.get(sel, unsigned(8))), 8) for sel in Memories)
        depth_rom = Array(Const(self.depths[sel] if sel in self.layouts else 0, 17) for sel in Memories)
        reading_info = Signal()
        # The read port follows read_addr every cycle, so once its read latency has passed it shows that
        # address's byte: a one-cycle read shows it in SEND_BYTE.  With registered_reply SEND_BYTE sends it from a
        # register that takes it in the last SEND_FETCH: from the result memory's read (5.8 ns clock-to-out)
        # through the multiplexers joining its RAMs and the byte's sources into the UART's frame was the
        # ULX3S-85F build's slowest path (14.6 ns).
        m.d.comb += [res_rp.addr.eq(read_addr[:len(res_rp.addr)]), res_rp.en.eq(1)]
        read_byte = Mux(reading_info, info_rp.data, Mux(read_in_range, res_rp.data, 0))
        # the cycles SEND_BYTES waits for a byte to reach read_byte (and read_byte_q)
        fetches = [f"SEND_FETCH_{n}" if n else "SEND_FETCH" for n in range(res_latency - 1 + self.registered_reply)]
        if self.registered_reply:
            read_byte_q = Signal(8)
            m.d.sync += read_byte_q.eq(read_byte)
            read_byte = read_byte_q

        # Whether the arguments (if they are a LOAD's) ask for a memory that is not there or more words
        # than it holds: registered from args every cycle (args settle a cycle before EXECUTE), so the
        # 16-bit compare is not in EXECUTE's decision path.
        load_refused = Signal()
        # Likewise every other decision EXECUTE takes on argument values (an 8-bit register-address
        # compare and READ's 32-bit compares were the next iCE40 critical paths, into reg_addr's enable).
        arg_is_ctrl, arg_is_m_tiles = Signal(), Signal()
        read_len_zero, read_start_in_range = Signal(), Signal()
        # The opcode decoded once into one flag per command, as it arrives: the state machine then
        # branches on single bits, not on 8-bit compares (which were on the iCE40 critical path).
        # At most one flag is set, so the branches below are independent `If`s, not a priority chain.
        is_op = {o: Signal(name=f"is_{o.name.lower()}") for o in Op}
        unknown_op = Signal()
        known = [self.rx.payload == o for o in Op]
        m.d.sync += [load_refused.eq((args[:8] >= len(Memories)) | (args[8:24] > depth_rom[args[:2]])),
                     arg_is_ctrl.eq(args[:8] == REGS["CTRL"]), arg_is_m_tiles.eq(args[:8] == REGS["M_TILES"]),
                     read_len_zero.eq(args[32:64] == 0), read_start_in_range.eq(args[:32] < self.result_bytes)]

        def expect(count: int):
            # args is not cleared: every command reads only the bytes it was sent.
            m.d.sync += [n_args.eq(count), got.eq(0)]
            m.next = "ARGS"

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(self.rx.valid):
                    m.d.sync += [op.eq(self.rx.payload), unknown_op.eq(~Cat(*known).any())]
                    m.d.sync += [is_op[o].eq(hit) for o, hit in zip(Op, known)]
                    m.next = "DECODE"
            with m.State("DECODE"):            # from the registered opcode: the UART's output is a path apart
                with m.If(is_op[Op.REG_WRITE]):
                    expect(5)
                with m.If(is_op[Op.REG_READ]):
                    expect(1)
                with m.If(is_op[Op.LOAD]):
                    expect(3)
                with m.If(is_op[Op.RUN]):
                    m.next = "RUN"
                with m.If(is_op[Op.READ]):
                    expect(8)
                with m.If(is_op[Op.INFO]):
                    m.d.sync += [read_addr.eq(0), read_left.eq(len(info_bytes)), reading_info.eq(1),
                                 read_done.eq(0)]
                    m.next = "SEND_BYTES"
                with m.If(unknown_op):
                    m.next = "NAK"
            with m.State("ARGS"):
                with m.If(got == n_args):
                    m.next = "EXECUTE"
                with m.Else():
                    m.d.comb += self.rx.ready.eq(1)
                    with m.If(self.rx.valid):
                        m.d.sync += [args.word_select(got, 8).eq(self.rx.payload), got.eq(got + 1)]
            with m.State("EXECUTE"):
                with m.If(is_op[Op.REG_WRITE]):
                    with m.If(arg_is_ctrl):
                        m.next = "NAK"
                    with m.Else():
                        m.d.sync += [reg_addr.eq(args[:8]), reg_wdata.eq(args[8:40]), reg_we.eq(1)]
                        with m.If(arg_is_m_tiles):
                            m.d.sync += m_tiles.eq(args[8:40])
                        m.d.sync += reply_left.eq(0)
                        m.next = "REPLY"
                with m.If(is_op[Op.REG_READ]):
                    m.d.sync += reg_addr.eq(args[:8])
                    m.next = "REG_FETCH" if self.registered_reply else "REG_READ"
                with m.If(is_op[Op.LOAD]):
                    sel, words = args[:8], args[8:24]
                    with m.If(load_refused):
                        m.next = "NAK"
                    with m.Else():
                        m.d.sync += [mem_sel.eq(sel), load_words.eq(words), load_addr.eq(0), byte_idx.eq(0),
                                     word_full.eq(0), bytes_per_word.eq(byte_counts[sel[:2]]), words_left.eq(words),
                                     load_finished.eq(words == 0)]
                        m.next = "LOAD_GO"
                with m.If(is_op[Op.READ]):
                    m.d.sync += [read_addr.eq(args[:32]), read_left.eq(args[32:64]), reading_info.eq(0),
                                 read_done.eq(read_len_zero), read_in_range.eq(read_start_in_range)]
                    m.next = "SEND_BYTES"
            with m.State("LOAD_GO"):
                # The go-ahead: the host sends data only after this, so a refused LOAD never leaves
                # data bytes behind to be misread as commands.
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(op)]
                with m.If(self.tx.ready):
                    m.d.sync += loading.eq(1)
                    m.next = "LOAD"
            with m.State("LOAD"):
                # Every byte of a word is written before the commit, so the word needs no clearing.
                with m.If(commit):
                    m.d.sync += [load_addr.eq(load_addr + 1), byte_idx.eq(0), word_full.eq(0),
                                 words_left.eq(words_left - 1), load_finished.eq(words_left == 1)]
                with m.Elif(load_finished):
                    for sel, count in counts.items():
                        with m.If(mem_sel == sel):
                            m.d.sync += count.eq(load_words)
                    m.d.sync += [reply_left.eq(0), loading.eq(0)]
                    m.next = "REPLY"
                whole_word = word_full & ~load_finished
                m.d.comb += commit.eq(whole_word & ~byte_pending if self.registered_store else whole_word)
            if self.registered_reply:
                with m.State("REG_FETCH"):     # the address is set: reg_value takes the register now
                    m.next = "REG_READ"
            with m.State("REG_READ"):
                m.d.sync += [reply.eq(reg_value), reply_left.eq(4)]
                m.next = "REPLY"
            with m.State("RUN"):
                m.d.comb += start.eq(1)        # rewinds the replays; the core starts a cycle later
                m.d.sync += [reg_addr.eq(REGS["CTRL"]), reg_wdata.eq(1), reg_we.eq(1), self.busy.eq(1)]
                m.next = "RUN_START"
            with m.State("RUN_START"):         # the core takes the start now; its status is new next cycle
                m.d.sync += status.eq(0)       # so the previous run's "done" is never taken for this one
                m.next = "RUN_WAIT"
            with m.State("RUN_WAIT"):
                with m.If(status[1] & ~status[0] & ~results_waiting):
                    m.d.sync += [reply.eq(status | overflow << OVERFLOW_BIT | res_count << 8), reply_left.eq(5),
                                 self.busy.eq(0)]
                    m.next = "REPLY"
            with m.State("SEND_BYTES"):
                # Present the address, wait out the result memory's read (SEND_FETCH), then send the byte.
                with m.If(read_done):
                    m.d.sync += reply_left.eq(0)
                    m.next = "REPLY"
                with m.Else():
                    m.next = fetches[0] if fetches else "SEND_BYTE"
            for n, state in enumerate(fetches):
                with m.State(state):
                    m.next = fetches[n + 1] if n + 1 < len(fetches) else "SEND_BYTE"
            with m.State("SEND_BYTE"):
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(read_byte)]
                with m.If(self.tx.ready):
                    m.d.sync += [read_addr.eq(read_addr + 1), read_left.eq(read_left_less),
                                 read_done.eq(read_left == 1), read_in_range.eq(read_addr < self.result_bytes - 1)]
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
        # LOAD's third branch (neither a commit nor the end): store a data byte.  From single-bit registers
        # and the UART's valid only; it comes after the FSM, so its rx.ready drive joins the states' own.
        # (`store` is kept apart: folded into the branch below, the iCEBreaker fell to 38.8 MHz at seed 1.)
        taking = loading & ~word_full & ~load_finished
        store = taking & self.rx.valid
        with m.If(taking):
            m.d.comb += self.rx.ready.eq(1)
            with m.If(self.rx.valid):
                m.d.sync += [byte_idx.eq(byte_idx + 1), word_full.eq(byte_idx + 1 == bytes_per_word)]
        if self.registered_store:
            # The byte and its store, registered: the word's 768 enables then come from one register.  From
            # the LOAD flags through `store`, they were 11.0 ns on the ULX3S-85F (4d9893b seed 2), and the
            # LUT's place among them put byte_idx's path at 11.5.  The commit waits for the last byte's shift.
            byte_q = Signal(8)
            m.d.sync += [byte_pending.eq(store), byte_q.eq(self.rx.payload)]
            with m.If(byte_pending):
                m.d.sync += word.eq(Cat(word[8:], byte_q))
        else:
            with m.If(store):
                m.d.sync += word.eq(Cat(word[8:], self.rx.payload))
        return m
