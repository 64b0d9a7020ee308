"""The beat buffers (skid slice, two-word queue): every word in order under random valid/ready, one cycle of
latency at full rate, and no combinational path from o.ready back to i.ready."""
import random

import pytest
from amaranth import unsigned
from amaranth.sim import Simulator

from hw.rtl.skid_buffer import SkidBuffer
from hw.rtl.stream_queue import StreamQueue


def wide_queue(shape):
    """A queue whose 12-bit words are steered by three pairs of pointers (pieces of 5, 5 and 2 bits)."""
    return StreamQueue(shape, piece_bits=5)


@pytest.mark.parametrize("component", [SkidBuffer, StreamQueue, wide_queue])
@pytest.mark.parametrize("p_valid, p_ready", [(1.0, 1.0), (0.7, 0.3), (0.3, 0.9), (1.0, 0.5)])
def test_words_leave_in_order_with_one_cycle_latency(p_valid, p_ready, component):
    dut = component(unsigned(12))
    words = [(w * 2654435761) % 4096 for w in range(1, 400)]     # every bit of every piece moves
    got, ready_changed_with_o_ready = [], []
    rng = random.Random(int(p_valid * 10 + p_ready * 100))

    async def bench(ctx):
        sent = 0
        cycles = 0
        while len(got) < len(words):
            offer = sent < len(words) and rng.random() < p_valid
            ctx.set(dut.i.valid, offer)
            ctx.set(dut.i.payload, words[sent] if offer else 0)
            i_ready_before = ctx.get(dut.i.ready)
            ctx.set(dut.o.ready, rng.random() < p_ready)
            # i.ready is a register: setting o.ready within the cycle must not move it
            ready_changed_with_o_ready.append(ctx.get(dut.i.ready) != i_ready_before)
            took = offer and ctx.get(dut.i.ready)
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                got.append(ctx.get(dut.o.payload))
            await ctx.tick()
            sent += took
            cycles += 1
            assert cycles < 10_000
        if p_valid == p_ready == 1.0:
            assert cycles == len(words) + 1          # full rate, one cycle of latency

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == words and not any(ready_changed_with_o_ready)


def test_queue_refuses_a_bad_piece_width():
    with pytest.raises(ValueError, match="piece_bits must be a positive integer, not 0"):
        StreamQueue(unsigned(8), piece_bits=0)
