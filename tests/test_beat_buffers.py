"""The beat buffers (skid slice, short queues): every word in order under random valid/ready, one cycle of
latency at full rate, no combinational path from o.ready back to i.ready, and a queue holds its depth."""
import random

import pytest
from amaranth import unsigned
from amaranth.sim import Simulator

from hw.rtl.skid_buffer import SkidBuffer
from hw.rtl.stream_queue import StreamQueue


def wide_queue(shape):
    """A queue whose 12-bit words are steered by three pairs of pointers (pieces of 5, 5 and 2 bits)."""
    return StreamQueue(shape, piece_bits=5)


def deep_queue(shape):
    """Five words (the host link's queued replays over a sliced memory) in LUT-RAM pieces of 5, 5 and 2 bits."""
    return StreamQueue(shape, depth=5, piece_bits=5)


def three_word_queue(shape):
    """A depth that is not a power of two, so its pointers wrap by compare."""
    return StreamQueue(shape, depth=3)


def one_word_queue(shape):
    return StreamQueue(shape, depth=1, piece_bits=5)


@pytest.mark.parametrize("component", [SkidBuffer, StreamQueue, wide_queue, deep_queue, three_word_queue,
                                       one_word_queue])
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
            # full rate, one cycle of latency; one word held means a word every other cycle
            assert cycles == (len(words) + 1 if component is not one_word_queue else 2 * len(words))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == words and not any(ready_changed_with_o_ready)


def test_queue_refuses_a_bad_piece_width():
    with pytest.raises(ValueError, match="piece_bits must be a positive integer, not 0"):
        StreamQueue(unsigned(8), piece_bits=0)


def test_queue_refuses_a_bad_depth():
    with pytest.raises(ValueError, match="depth must be a positive integer, not 0"):
        StreamQueue(unsigned(8), depth=0)


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_queue_holds_exactly_its_depth(depth):
    """With o.ready low, i.ready falls after ``depth`` words and the words come out in order after."""
    dut = StreamQueue(unsigned(12), depth=depth, piece_bits=5)
    words = [0xA5A, 0x5A5, 0xFFF, 0x001, 0x800, 0x7FE][:depth + 1]

    async def bench(ctx):
        ctx.set(dut.o.ready, 0)
        taken = 0
        for word in words:
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, word)
            taken += ctx.get(dut.i.ready)
            await ctx.tick()
        assert taken == depth and not ctx.get(dut.i.ready)
        ctx.set(dut.i.valid, 0)
        ctx.set(dut.o.ready, 1)
        got = []
        while ctx.get(dut.o.valid):
            got.append(ctx.get(dut.o.payload))
            await ctx.tick()
        assert got == words[:depth]

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
