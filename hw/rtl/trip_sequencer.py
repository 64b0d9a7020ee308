"""The TRIP controller: registers, the activation buffer, and the beat stream that feeds the MAC array.

One run computes every group accumulator of ``X @ Wᵀ`` for ``M_TILES`` token
tiles × ``N_TILES`` channel tiles.  For each token tile the sequencer first
loads ``K`` activation words (one k each: ``tokens`` int8 lanes) from the
``act`` stream into an on-chip buffer, then, for each channel tile, replays
them against ``K`` weight words from the ``weights`` stream, one beat per k
at A4 and two (hi nibble, then low nibble − 8) at A8.  The weight word is
held (``weights.ready`` low) across both beats of a k, so weights are sent
once per (token tile, channel tile) whatever the width.

Pruned tokens are never loaded: the host packs the kept rows into token
tiles, so each pruned row saves all of its beats.

Register map (word addresses; :data:`REGS`), all 32-bit:

====  ========  ===========================================================
 0    CTRL      write 1 to bit 0: start.  Read: bit 0 busy, bit 1 done, bit 2 error
 1    K         reduction length, 1 … ``max_k_total``
 2    GROUP     k per accumulator group; divides K; at most ``max_group``
 3    M_TILES   token tiles, 1 … ``max_tiles``
 4    N_TILES   channel tiles, 1 … ``max_tiles``
 5    A_BITS    4 or 8
 6    CYCLES    read: clock cycles of the last run, start to done
 7    ERROR     read: why the last start was refused (:class:`Error`), 0 if it was not
 8    SHIFT     requantization: rounding shift, 1 … 62 (init 1)
 9    OUT_BITS  requantization: output width, 4 or 8 (init 8)
====  ========  ===========================================================

SHIFT and OUT_BITS only matter to a core that requantizes (they reach the
``shift``/``out_bits8`` ports), but they are checked on every start, as is
K/GROUP against ``max_groups`` (the groups one requantized output may sum).

A malformed command never hangs and never touches a stream: one cycle after
the start (the cycle that judges the registers), ``done`` and ``error`` are set
instead of the run beginning.

Each register holds only the bits its legal values need (K and GROUP one bit
more than their limit, M_TILES/N_TILES ``max_tiles``' bits, A_BITS/OUT_BITS 4,
SHIFT 6), so a read returns the written value's low bits.  Whether a written
value is legal is decided when it is written, from the whole 32-bit word, and
kept as a flag: the start only looks at the flags.  That keeps the wide
comparisons off the start path (it was the critical path of the iCE40 build).
"""
from __future__ import annotations

import enum

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from golden.requant import MAX_SHIFT
from .sliced_memory import SlicedMemory

#: Beats the credit queue of a sliced activation buffer holds: its read pipeline's stages and the queue's
#: own cycle, plus one, so that a beat can be issued every cycle while the array takes one every cycle.
CREDITS = SlicedMemory.READ_LATENCY + 2

__all__ = ["MAX_TILES", "REGS", "Error", "RegisterPort", "TripSequencer"]

#: Default limit of M_TILES and N_TILES: 16-bit tile counters (a 4096-token prefill on 2 token lanes is
#: 2,048 tiles).
MAX_TILES = (1 << 16) - 1

REGS = {"CTRL": 0, "K": 1, "GROUP": 2, "M_TILES": 3, "N_TILES": 4, "A_BITS": 5, "CYCLES": 6, "ERROR": 7,
        "SHIFT": 8, "OUT_BITS": 9}


class Error(enum.IntEnum):
    NONE = 0
    K_RANGE = 1          # K is 0 or larger than the activation buffer
    GROUP_RANGE = 2      # GROUP is 0 or longer than the accumulators allow
    GROUP_DIVIDES_K = 3  # GROUP does not divide K
    A_BITS = 4           # activation bits other than 4 or 8
    TILES_RANGE = 5      # M_TILES or N_TILES is 0 or above max_tiles
    OUT_BITS = 6         # output bits other than 4 or 8
    SHIFT_RANGE = 7      # SHIFT is 0 or above MAX_SHIFT
    TOO_MANY_GROUPS = 8  # K/GROUP exceeds max_groups


class RegisterPort(wiring.Signature):
    """A minimal synchronous register bus: write on ``we``; ``rdata`` shows ``addr`` combinationally."""

    def __init__(self):
        super().__init__({"addr": Out(4), "wdata": Out(32), "we": Out(1), "rdata": In(32)})


class TripSequencer(wiring.Component):
    """Registers + activation buffer + beat issue for a ``tokens × channels`` :class:`TripArray`.

    Parameters
    ----------
    tokens, channels : int
        Lanes of the array this sequencer feeds.
    max_k_total : int
        Depth of the activation buffer: the largest K of one run.
    max_group : int
        Largest GROUP accepted (the array's ``max_k``).
    max_groups : int
        Most groups per output (K/GROUP) accepted: the requantizer's ``max_groups``.
    max_tiles : int
        Most token tiles and most channel tiles of one run (sets the tile counters' width).
    act_slice_width : int
        0 (the default): the activation buffer is one memory, read straight into the beat.  Otherwise
        a :class:`~hw.rtl.sliced_memory.SlicedMemory` of slices this wide (``hw.sizes.RAMS_PER_SLICE``
        block RAMs each on ECP5; see ``hw.sizes.SLICED_ECP5_MEMORIES``), whose reads go through registers
        beside each slice's RAMs: on
        the ULX3S-85F the buffer's unregistered read crossed the device into the beat queue (17.1 ns).
        Such a buffer is read by credit: its read pipeline never stalls, the beat's flags follow its
        address through it, and each word lands in a queue of :data:`CREDITS` beats from which the
        beats are offered; a beat is issued only while the queue has room for it and for every beat in
        flight.  So no handshake reaches the buffer's RAMs or its registers (as their enable, the
        ULX3S-85F's critical path: 16.2 ns from the beat queue's level).  A run takes
        ``read_latency - 1`` = 3 cycles more; none per token tile, as the buffer's reload starts once
        the last beat's address has been read.
    act_ram_width : int
        With ``act_slice_width``: the width of each memory inside a slice (SlicedMemory's ``ram_width``;
        0, the default: the slice's), one block RAM's width at ``max_k_total`` words.  Netlist only.

    Members
    -------
    regs : ``In(RegisterPort())``
    act : ``In(stream.Signature(tokens × signed(8)))``: K words per token tile.
    weights : ``In(stream.Signature(channels × signed(4)))``: K words per (token tile, channel tile).
    beats : ``Out(stream.Signature(TripArray.beat_layout))``: to the array.
    done_outputs : ``In(1)``: pulses when the array hands one finished group downstream
        (the run is done only after its last group left).
    downstream_busy : ``In(1)``: a stage after the array still holds results (done waits for it).
    groups, shift, out_bits8 : ``Out``: K/GROUP of the current run, SHIFT, OUT_BITS == 8.
    error : ``Out(4)``: ERROR, why the last start was refused (:class:`Error`; 0 if it was not), until
        the next start.  The stages behind the array drop what was sent for a refused run meanwhile.

    Contract
    --------
    At most one beat per cycle; while a channel tile runs, one per cycle unless
    ``weights`` or the array stall.  Between token tiles the buffer reload costs
    K cycles (no overlap).  Activation values must fit ``A_BITS``; at A4 only
    the low nibble of each int8 lane is used.
    """

    def __init__(self, *, tokens: int, channels: int, max_k_total: int = 4096, max_group: int = 4096,
                 max_groups: int = 4096, max_tiles: int = MAX_TILES, act_slice_width: int = 0,
                 act_ram_width: int = 0):
        for name, value in (("tokens", tokens), ("channels", channels), ("max_k_total", max_k_total),
                            ("max_group", max_group), ("max_groups", max_groups), ("max_tiles", max_tiles)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        for name, value in (("act_slice_width", act_slice_width), ("act_ram_width", act_ram_width)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
        self.act_slice_width, self.act_ram_width = act_slice_width, act_ram_width
        #: Cycles from a beat's issue (its buffer address) to the beat on offer to the array: with a sliced
        #: buffer its read pipeline and the credit queue's write.
        self.read_latency = SlicedMemory.READ_LATENCY + 1 if act_slice_width else 1
        self.tokens, self.channels = tokens, channels
        self.max_k_total, self.max_group, self.max_groups = max_k_total, max_group, max_groups
        self.max_tiles = max_tiles
        self.act_layout = data.ArrayLayout(signed(8), tokens)
        self.weight_layout = data.ArrayLayout(signed(4), channels)
        self.beat_layout = data.StructLayout({
            "a": data.ArrayLayout(signed(4), tokens),
            "w": data.ArrayLayout(signed(4), channels),
            "hi": 1, "lo": 1, "last": 1,
        })
        super().__init__({
            "regs": In(RegisterPort()),
            "act": In(stream.Signature(self.act_layout)),
            "weights": In(stream.Signature(self.weight_layout)),
            "beats": Out(stream.Signature(self.beat_layout)),
            "done_outputs": In(1),
            "downstream_busy": In(1),
            "error": Out(4),
            "groups": Out(range(1, max_groups + 1), init=1),
            "shift": Out(range(1, MAX_SHIFT + 1), init=1),
            "out_bits8": Out(1, init=1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        kbits = max(self.max_k_total, self.max_group).bit_length() + 1
        k_reg, group = Signal(kbits, name="k_reg"), Signal(kbits, name="group")
        m_tiles, n_tiles = Signal(range(self.max_tiles + 1)), Signal(range(self.max_tiles + 1))
        a_bits, out_bits, shift = Signal(4), Signal(4, init=8), Signal(6, init=1)
        cycles = Signal(32)
        busy, done = Signal(), Signal()
        error = self.error
        n_groups = Signal(kbits)               # K/GROUP, counted by the divisibility check
        start = Signal()

        # --- register port --------------------------------------------------------------
        regs = self.regs
        wdata = regs.wdata

        def within(low: int, high: int):
            # Compare only the bits that can hold `high`, and check the rest are zero: the same
            # answer, but a 32-bit compare is a carry chain through 32 cells, and these flags sat on the
            # iCE40 build's critical path (26.8 ns at 40 MHz).
            width = high.bit_length()
            narrow = wdata[:width]
            fits = ~wdata[width:].any() if width < len(wdata) else Const(1, 1)
            return fits & (narrow >= low) & (narrow <= high)

        # Legality of each register, decided from the full word as it is written (a flag per register).
        legal = {  # register: (stored bits, legal-when expression, reset legality)
            "K": (k_reg, within(1, self.max_k_total), False),
            "GROUP": (group, within(1, self.max_group), False),
            "A_BITS": (a_bits, (wdata == 4) | (wdata == 8), False),
            "M_TILES": (m_tiles, within(1, self.max_tiles), False),
            "N_TILES": (n_tiles, within(1, self.max_tiles), False),
            "OUT_BITS": (out_bits, (wdata == 4) | (wdata == 8), True),
            "SHIFT": (shift, within(1, MAX_SHIFT), True),
        }
        ok = {name: Signal(init=reset, name=f"{name.lower()}_ok") for name, (_, _, reset) in legal.items()}
        # All of them legal, registered from the flags, so the START state decides on one bit whether
        # the run begins (only the error code of a refusal needs the flags one by one).  It trails the
        # flags by a cycle, which START's own cycle covers: a write, then a start on the next cycle,
        # is judged on the written value.
        all_ok = Signal()
        m.d.sync += all_ok.eq(Cat(*ok.values()).all())
        # ... and the error code of a refusal, in the documented order of precedence (the first illegal register
        # names it), registered likewise: decoded in START, this priority chain into the error register was a
        # 14.7 ns path on the ULX3S-85F.
        refusal = Signal.like(error, name="refusal")
        refusals = [(~ok["K"], Error.K_RANGE), (~ok["GROUP"], Error.GROUP_RANGE), (~ok["A_BITS"], Error.A_BITS),
                    (~ok["M_TILES"] | ~ok["N_TILES"], Error.TILES_RANGE), (~ok["OUT_BITS"], Error.OUT_BITS),
                    (~ok["SHIFT"], Error.SHIFT_RANGE)]
        code = Const(0, len(error))
        for refused, why in reversed(refusals):
            code = Mux(refused, why, code)
        m.d.sync += refusal.eq(code)
        with m.If(regs.we & ~busy):           # shape registers are frozen while a run is busy
            with m.Switch(regs.addr):
                for name, (reg, is_legal, _) in legal.items():
                    with m.Case(REGS[name]):
                        m.d.sync += [reg.eq(wdata), ok[name].eq(is_legal)]
        m.d.comb += start.eq(regs.we & (regs.addr == REGS["CTRL"]) & wdata[0] & ~busy)
        with m.Switch(regs.addr):
            with m.Case(REGS["CTRL"]):
                m.d.comb += regs.rdata.eq(Cat(busy, done, error != 0))
            for name, (reg, _, _) in legal.items():
                with m.Case(REGS[name]):
                    m.d.comb += regs.rdata.eq(reg)
            with m.Case(REGS["CYCLES"]):
                m.d.comb += regs.rdata.eq(cycles)
            with m.Case(REGS["ERROR"]):
                m.d.comb += regs.rdata.eq(error)

        # --- activation buffer ----------------------------------------------------------
        if self.act_slice_width:
            m.submodules.act_buf = buf = SlicedMemory(width=8 * self.tokens, depth=self.max_k_total,
                                                      slice_width=self.act_slice_width,
                                                      ram_width=self.act_ram_width or None)
            wport, rport = buf.ports()
        else:
            m.submodules.act_buf = buf = memory.Memory(shape=unsigned(8 * self.tokens), depth=self.max_k_total,
                                                        init=[])
            wport = buf.write_port()
            rport = buf.read_port()

        # --- counters -------------------------------------------------------------------
        k = Signal(range(self.max_k_total + 1))
        g = Signal(kbits)                      # position inside the current group
        hi_pass = Signal()                     # A8: the next beat is the hi nibble
        m_left, n_left = Signal.like(m_tiles), Signal.like(n_tiles)
        pending = Signal(16)                   # groups issued minus groups delivered (the array holds few)
        check = Signal(kbits)                  # K - j·GROUP while checking divisibility
        # K - 1 and GROUP - 1, registered at the start so the per-beat end tests are plain equalities
        # (the subtract-then-compare was on the iCE40 build's critical path).
        k_last, g_last = Signal(kbits), Signal(kbits)
        check_zero, check_neg = Signal(), Signal()
        too_many_groups = Signal()             # n_groups > max_groups, registered as n_groups counts
        # Whether k, g and n_left are at their last value, registered with them: the end tests then sit
        # off the beat handshake (array ready → fire → counters), which is the core's busiest path.
        k_is_last, g_is_last, n_is_last = Signal(), Signal(), Signal()

        # ... and the value before the last (K - 2, GROUP - 2; all ones when there is none, which the
        # counters never reach), so that test is an equality with no adder in front of it either.
        k_before_last, g_before_last = Signal(kbits), Signal(kbits)

        def advance(counter: Signal, is_last: Signal, last: Signal, before_last: Signal) -> None:
            """Step ``counter`` to its next value (0 after ``last``) and register whether that is ``last``."""
            with m.If(is_last):
                m.d.sync += [counter.eq(0), is_last.eq(last == 0)]
            with m.Else():
                m.d.sync += [counter.eq(counter + 1), is_last.eq(counter == before_last)]
        a8 = Signal()

        # Stage B: the beat on offer to the array (its activation word comes from rport.data).
        b_valid, b_hi, b_lo, b_last, b_final = Signal(), Signal(), Signal(), Signal(), Signal()
        fire = Signal()
        m.d.comb += fire.eq(b_valid & self.weights.valid & self.beats.ready)

        def nibbles(word, hi, lo) -> list:
            """The beat's int4 activations from the buffer's int8 word: hi beat bits 7..4 (signed); lo beat
            bits 3..0 minus 8, i.e. bit 3 inverted; A4 bits 3..0."""
            return [Mux(hi, lane[4:8], Mux(lo, Cat(lane[0:3], ~lane[3]), lane[0:4])).as_signed()
                    for lane in (word[8 * t:8 * (t + 1)] for t in range(self.tokens))]

        # With a sliced buffer the beat's flags follow its address through the read pipeline's stages (the
        # last one beside the word read), which always move; the word lands in the credit queue.
        sliced = self.read_latency > 1
        if not sliced:
            load_b = can_issue = Signal()         # RUN may issue a beat this cycle
            m.d.comb += [load_b.eq(~b_valid | fire), rport.en.eq(load_b), rport.addr.eq(k)]
            m.d.comb += [self.beats.payload.a[t].eq(a) for t, a in enumerate(nibbles(rport.data, b_hi, b_lo))]
        m.d.comb += [self.beats.payload.w.eq(self.weights.payload),
                     self.beats.payload.hi.eq(b_hi), self.beats.payload.lo.eq(b_lo),
                     self.beats.payload.last.eq(b_last),
                     self.beats.valid.eq(b_valid & self.weights.valid),
                     self.weights.ready.eq(fire & b_final)]
        if not sliced:
            with m.If(fire):
                m.d.sync += b_valid.eq(0)
        pre = [{f: Signal(name=f"pre_{f}_{n}") for f in ("valid", "hi", "lo", "last", "final")}
               for n in range(self.read_latency - 1)]
        if sliced:
            landed = pre[-1]
            beat_queue = data.StructLayout({"a": data.ArrayLayout(signed(4), self.tokens),
                                            "hi": 1, "lo": 1, "last": 1, "final": 1})
            m.submodules.credit_queue = queue = SyncFIFO(width=beat_queue.size, depth=CREDITS)
            word, head = Signal(beat_queue), Signal(beat_queue)
            m.d.comb += [word.a[t].eq(a) for t, a in enumerate(nibbles(rport.data, landed["hi"], landed["lo"]))]
            m.d.comb += [word.hi.eq(landed["hi"]), word.lo.eq(landed["lo"]), word.last.eq(landed["last"]),
                         word.final.eq(landed["final"]), queue.w_en.eq(landed["valid"]), queue.w_data.eq(word),
                         rport.en.eq(1), rport.addr.eq(k),
                         head.eq(queue.r_data), queue.r_en.eq(fire),
                         b_valid.eq(queue.r_rdy), b_hi.eq(head.hi), b_lo.eq(head.lo), b_last.eq(head.last),
                         b_final.eq(head.final), self.beats.payload.a.eq(head.a)]
            # Room for the beats not yet issued: CREDITS less those in the read pipeline and in the queue.
            credits = Signal(range(CREDITS + 1), init=CREDITS)
            can_issue = Signal()
            m.d.comb += can_issue.eq(credits != 0)

        issued_last = Signal()
        m.d.comb += issued_last.eq(fire & b_last)
        pending_next = Signal.like(pending)
        pending_zero = Signal(init=1)          # registered with pending: DRAIN's exit test holds no adder
        m.d.comb += pending_next.eq(pending + issued_last - self.done_outputs)
        # pending moves by at most one a cycle, so it reaches zero only from one, by a group leaving
        # with none issued: decided without waiting for the adder and a zero test behind it (that
        # chain, after the beat handshake, was on the iCE40 build's critical path).
        steps = issued_last ^ self.done_outputs
        m.d.sync += [pending.eq(pending_next),
                     pending_zero.eq(Mux(steps, self.done_outputs & (pending == 1), pending_zero))]

        with m.If(busy):
            m.d.sync += cycles.eq(cycles + 1)

        running = Signal()                     # the FSM is in RUN
        issue = Signal()                       # RUN puts a beat into stage B (or the read pipeline) this cycle
        final_pass = Signal()                  # that beat is the k's last pass (A4, or A8's lo nibble)
        run_ends = Signal()                    # the beat RUN issues next is its last (all of registers)
        m.d.comb += [issue.eq(running & can_issue), final_pass.eq(~a8 | ~hi_pass),
                     run_ends.eq(final_pass & k_is_last & n_is_last)]
        if sliced:
            m.d.sync += credits.eq(credits - issue + fire)

        drained = pending_zero & ~b_valid & ~self.downstream_busy      # DRAIN's exit: every beat is out
        if pre:
            drained &= ~Cat(stage["valid"] for stage in pre).any()

        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(start):
                    m.d.sync += [done.eq(0), error.eq(0), cycles.eq(1), busy.eq(1)]
                    m.next = "START"
            with m.State("START"):            # judge the registers (a cycle of its own: a short path)
                with m.If(~all_ok):
                    m.d.sync += [done.eq(1), busy.eq(0), error.eq(refusal)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [check.eq(k_reg), n_groups.eq(0), a8.eq(a_bits[3]),
                                 m_left.eq(m_tiles), k_last.eq(k_reg - 1), g_last.eq(group - 1),
                                 k_before_last.eq(k_reg - 2), g_before_last.eq(group - 2),
                                 check_zero.eq(0), check_neg.eq(0), too_many_groups.eq(0)]
                    if sliced:
                        m.d.sync += k_is_last.eq(k_reg == 1)      # (see CHECK)
                    m.next = "CHECK"
            with m.State("CHECK"):            # GROUP divides K: subtract until 0 (K/GROUP cycles)
                # The sign and zero tests of each remainder are registered with it: comparing and
                # deciding in one cycle was the iCE40 build's critical path.
                with m.If(check_neg):
                    m.d.sync += [error.eq(Error.GROUP_DIVIDES_K), done.eq(1), busy.eq(0)]
                    m.next = "IDLE"
                with m.Elif(check_zero):
                    with m.If(too_many_groups):
                        m.d.sync += [error.eq(Error.TOO_MANY_GROUPS), done.eq(1), busy.eq(0)]
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "LOAD"
                        # With a sliced buffer k is not set here: it is 0 already (LOAD and RUN each end on its
                        # wrap to 0, and only they move it), and k_is_last was set at START.  Set here, k's next
                        # value waited on CHECK's tests: the ULX3S-85F's slowest path at 7bd5e03 seed 2, from
                        # the FSM's state through the divisibility test's flags into k (12.8 ns).
                        if not sliced:
                            m.d.sync += [k.eq(0), k_is_last.eq(k_last == 0)]
                with m.Else():
                    # The tests compare with GROUP directly, beside the subtract, not after it: a zero test
                    # behind the subtractor's carry chain was the iCE40 build's critical path (seed 3).
                    m.d.sync += [check.eq(check - group), check_zero.eq(check == group), check_neg.eq(check < group),
                                 n_groups.eq(n_groups + 1), too_many_groups.eq(n_groups >= self.max_groups)]
            with m.State("LOAD"):             # K activation words into the buffer
                with m.If(self.act.valid):
                    with m.If(k_is_last):
                        m.d.sync += [g.eq(0), g_is_last.eq(g_last == 0), hi_pass.eq(1), n_left.eq(n_tiles),
                                     n_is_last.eq(n_tiles == 1)]
                        m.next = "RUN"
                    advance(k, k_is_last, k_last, k_before_last)
            with m.State("RUN"):              # issue the beats of every channel tile (below)
                with m.If(issue & run_ends):
                    m.next = "NEXT"
            with m.State("NEXT"):             # last beat of the token tile must leave before a reload
                # (With a sliced buffer, whose reads never stall, the last address is read at the end of this
                # cycle, before the reload's first write can reach the RAMs.)
                with m.If(1 if sliced else ~b_valid | fire):
                    with m.If(m_left == 0):
                        m.next = "DRAIN"
                    with m.Else():
                        m.next = "LOAD"
            with m.State("DRAIN"):            # every issued group must have left the array
                with m.If(drained):
                    m.d.sync += [busy.eq(0), done.eq(1)]
                    m.next = "IDLE"
        loading = fsm.ongoing("LOAD")
        # `running` follows LOAD → RUN → NEXT, written as one expression of registered flags: set inside the
        # FSM's states, its enable merged both transitions' conditions behind the beat handshake, five LUTs
        # deep (the iCE40 build's critical path on seed 3).
        m.d.sync += running.eq(Mux(running, ~(can_issue & run_ends), loading & self.act.valid & k_is_last))
        # RUN's beats, outside the FSM and gated by `running` (set and cleared with RUN's transitions): the
        # enables then decode one flag, not the state register (with it, the handshake-to-enable logic
        # was six LUTs deep, the iCE40 build's critical path on some placements).
        issued = {"valid": issue, "hi": a8 & hi_pass, "lo": a8 & ~hi_pass, "final": final_pass,
                  "last": final_pass & g_is_last}
        for stage, before in zip(pre, [issued, *pre]):      # (sliced: the read pipeline, never stalled)
            m.d.sync += [stage[f].eq(before[f]) for f in stage]
        with m.If(issue):
            if not pre:
                m.d.sync += [b_valid.eq(1), b_hi.eq(issued["hi"]), b_lo.eq(issued["lo"]),
                             b_final.eq(issued["final"]), b_last.eq(issued["last"])]
            with m.If(a8):
                m.d.sync += hi_pass.eq(~hi_pass)
            with m.If(final_pass):
                advance(g, g_is_last, g_last, g_before_last)
                advance(k, k_is_last, k_last, k_before_last)
                with m.If(k_is_last):
                    m.d.sync += [n_left.eq(n_left - 1), n_is_last.eq(n_left == 2)]
                    with m.If(n_is_last):
                        m.d.sync += m_left.eq(m_left - 1)
        # Outside the FSM so that they are plain continuous assignments (Icarus evaluates an
        # `always @*` output only once an input changes, so it would read X until the first start).
        m.d.comb += [self.groups.eq(n_groups), self.shift.eq(shift), self.out_bits8.eq(out_bits == 8)]
        m.d.comb += [self.act.ready.eq(loading), wport.addr.eq(k), wport.data.eq(self.act.payload),
                     wport.en.eq(loading & self.act.valid)]
        return m
