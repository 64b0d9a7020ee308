"""A simulation harness around :class:`hw.trip_core.TripCore` that streams from preloaded memories.

Driving a stream from Python costs a few simulator callbacks per beat, which
caps a Verilator co-simulation at thousands of beats per second.  Here the
testbench instead writes the activation words and one channel-tile sweep of
weight words into on-chip memories (one callback per word, no handshake),
starts the core, sleeps in a single simulator wait while the harness replays
the memories into the core's streams at full rate, and finally reads the
result memory back.  Only what the layer needs crosses the Python boundary.

The weight memory holds ``N_TILES·K`` words; the harness replays it once per
token tile, exactly the order :func:`sim.trip_driver.prepare_run` produces.
"""
from __future__ import annotations

from amaranth import Module, unsigned
from amaranth.hdl import Shape
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from hw.rtl.replay import Replay
from hw.rtl.trip_sequencer import RegisterPort
from hw.trip_core import TripCore

__all__ = ["TripHarness"]


class TripHarness(wiring.Component):
    """TripCore + activation, weight and result memories with plain load/read ports for the testbench.

    Ports: ``regs`` (the core's register bus), ``act_load_*`` / ``w_load_*``
    (write one word per cycle), ``act_words``, ``w_words``, ``m_tiles`` and
    ``go`` (replay and start sweeping), ``res_addr`` / ``res_data`` (read the
    results back, one cycle latency) and ``res_count``.
    """

    def __init__(self, core_params: dict, *, act_depth: int, weight_depth: int, result_depth: int):
        self.core = TripCore(**core_params)
        self.act_width = Shape.cast(self.core.sequencer.act_layout).width
        self.w_width = Shape.cast(self.core.sequencer.weight_layout).width
        self.res_width = Shape.cast(self.core.array.out_layout).width
        self.act_depth, self.weight_depth, self.result_depth = act_depth, weight_depth, result_depth
        super().__init__({
            "regs": In(RegisterPort()),
            "act_load_addr": In(range(act_depth)), "act_load_data": In(self.act_width), "act_load_en": In(1),
            "w_load_addr": In(range(weight_depth)), "w_load_data": In(self.w_width), "w_load_en": In(1),
            "act_words": In(range(act_depth + 1)), "w_words": In(range(weight_depth + 1)), "m_tiles": In(range(self.core.max_tiles + 1)),
            "go": In(1),
            "res_addr": In(range(result_depth)), "res_data": Out(self.res_width),
            "res_count": Out(range(result_depth + 1)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.core = core = self.core
        wiring.connect(m, wiring.flipped(self.regs), core.regs)
        m.submodules.act_mem = act_mem = memory.Memory(shape=unsigned(self.act_width), depth=self.act_depth, init=[])
        m.submodules.w_mem = w_mem = memory.Memory(shape=unsigned(self.w_width), depth=self.weight_depth, init=[])
        m.submodules.res_mem = res_mem = memory.Memory(shape=unsigned(self.res_width), depth=self.result_depth,
                                                       init=[])
        for mem, addr, data, en in ((act_mem, self.act_load_addr, self.act_load_data, self.act_load_en),
                                    (w_mem, self.w_load_addr, self.w_load_data, self.w_load_en)):
            wp = mem.write_port()
            m.d.comb += [wp.addr.eq(addr), wp.data.eq(data), wp.en.eq(en)]

        for name, mem, depth, width, stream, count, repeat in (
                ("act_replay", act_mem, self.act_depth, self.act_width, core.act, self.act_words, 1),
                ("w_replay", w_mem, self.weight_depth, self.w_width, core.weights, self.w_words, self.m_tiles)):
            replay = Replay(width, depth, max_repeat=self.core.max_tiles)
            m.submodules[name] = replay
            rp = mem.read_port()
            m.d.comb += [rp.addr.eq(replay.addr), rp.en.eq(replay.en), replay.data.eq(rp.data),
                         replay.count.eq(count), replay.repeat.eq(repeat), replay.start.eq(self.go),
                         stream.valid.eq(replay.valid), stream.payload.eq(replay.payload),
                         replay.ready.eq(stream.ready)]

        wp = res_mem.write_port()
        m.d.comb += [core.results.ready.eq(1), wp.addr.eq(self.res_count), wp.data.eq(core.results.payload),
                     wp.en.eq(core.results.valid)]
        with m.If(self.go):
            m.d.sync += self.res_count.eq(0)
        with m.Elif(core.results.valid):
            m.d.sync += self.res_count.eq(self.res_count + 1)
        rp = res_mem.read_port()
        m.d.comb += [rp.addr.eq(self.res_addr), self.res_data.eq(rp.data)]
        return m
