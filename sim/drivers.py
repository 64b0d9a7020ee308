"""Reusable cocotb drivers: a stream source and sink, and payload encoding.

Timing convention (robust on both Verilator and Icarus): the testbench writes
on the falling edge and samples in the ``ReadOnly`` phase of that same time
step, so every value it reads is the settled value the DUT will see at the next
rising edge.  A transfer happens at a rising edge where ``valid`` and ``ready``
were both high.
"""
from __future__ import annotations

import random
from typing import Sequence

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data
from cocotb.triggers import FallingEdge, ReadOnly

__all__ = ["layout_leaves", "encode", "decode", "StreamSource", "StreamSink", "reset_stream_dut",
           "expect_no_more_outputs", "assert_latency"]


def layout_leaves(layout, offset: int = 0) -> list[tuple[int, int, bool]]:
    """``(offset, width, signed)`` of every scalar field of an Amaranth layout, in field order.

    Struct fields come in declaration order, array elements by index: the same
    order as the nested Python lists/dicts the component documents.
    """
    if isinstance(layout, data.ArrayLayout):
        width = Shape.cast(layout.elem_shape).width
        return [leaf for k in range(layout.length)
                for leaf in layout_leaves(layout.elem_shape, offset + k * width)]
    if isinstance(layout, data.StructLayout):
        return [leaf for _, field in layout for leaf in layout_leaves(field.shape, offset + field.offset)]
    shape = Shape.cast(layout)
    return [(offset, shape.width, shape.signed)]


def encode(layout, columns: np.ndarray) -> list[int]:
    """Pack rows of leaf values (shape ``(N, n_leaves)``) into payload integers."""
    leaves = layout_leaves(layout)
    cols = np.asarray(columns, dtype=np.int64)
    if cols.ndim != 2 or cols.shape[1] != len(leaves):
        raise ValueError(f"expected shape (N, {len(leaves)}), got {cols.shape}")
    words = [0] * cols.shape[0]
    for k, (off, width, _) in enumerate(leaves):
        field = (cols[:, k] & ((1 << width) - 1)).tolist()
        words = [w | (f << off) for w, f in zip(words, field)]
    return words


def decode(layout, words: Sequence[int]) -> np.ndarray:
    """Inverse of :func:`encode`: payload integers to an ``(N, n_leaves)`` int64 array."""
    leaves = layout_leaves(layout)
    out = np.empty((len(words), len(leaves)), dtype=np.int64)
    for k, (off, width, signed) in enumerate(leaves):
        mask, sign = (1 << width) - 1, 1 << (width - 1)
        vals = [(w >> off) & mask for w in words]
        out[:, k] = [v - (sign << 1) if signed and v & sign else v for v in vals]
    return out


class StreamSource:
    """Drives ``payload``/``valid`` of a stream, honouring ``ready``.

    ``idle`` is the probability of inserting a bubble (valid low) before each
    item, to exercise the DUT with gaps.  ``accept_cycles`` records, for each
    transfer, how many falling edges had passed since ``cycle0`` when it was
    sampled; :class:`StreamSink` counts the same way, so for a fixed-latency
    DUT started on the same edge ``sink.cycles[k] - source.accept_cycles[k]``
    is the latency in cycles.
    """

    def __init__(self, clk, payload, valid, ready, *, idle: float = 0.0, seed: int = 0):
        self.clk, self.payload, self.valid, self.ready = clk, payload, valid, ready
        self.idle = idle
        self.rng = random.Random(seed)
        self.accept_cycles: list[int] = []

    async def send(self, words: Sequence[int], cycle0: int = 0) -> int:
        """Send every word; return the cycle count when the last one was accepted."""
        cycle = cycle0
        for word in words:
            while self.idle and self.rng.random() < self.idle:
                self.valid.value = 0
                await FallingEdge(self.clk)
                cycle += 1
            self.payload.value = word
            self.valid.value = 1
            while True:
                await ReadOnly()
                accepted = bool(self.ready.value)
                if accepted:
                    self.accept_cycles.append(cycle)
                await FallingEdge(self.clk)
                cycle += 1
                if accepted:
                    break
        self.valid.value = 0
        return cycle


class StreamSink:
    """Collects ``payload`` words of a stream, applying random back-pressure.

    ``stall`` is the probability of holding ``ready`` low on a cycle (for DUTs
    that honour it).  Falling edges passed at each transfer land in ``cycles``.
    """

    def __init__(self, clk, payload, valid, ready, *, stall: float = 0.0, seed: int = 1):
        self.clk, self.payload, self.valid, self.ready = clk, payload, valid, ready
        self.stall = stall
        self.rng = random.Random(seed)
        self.words: list[int] = []
        self.cycles: list[int] = []

    async def run(self, count: int, timeout_cycles: int) -> None:
        """Collect ``count`` words; raise ``TimeoutError`` after ``timeout_cycles`` without them."""
        for cycle in range(timeout_cycles):
            ready = not (self.stall and self.rng.random() < self.stall)
            self.ready.value = int(ready)
            await ReadOnly()
            if ready and self.valid.value:
                self.words.append(int(self.payload.value))
                self.cycles.append(cycle)
                if len(self.words) == count:
                    return
            await FallingEdge(self.clk)
        raise TimeoutError(f"stream sink got {len(self.words)} of {count} words in {timeout_cycles} cycles")


async def reset_stream_dut(dut, *, out_ready: int = 0, cycles: int = 2) -> None:
    """Idle the ``i``/``o`` streams of a one-input, one-output component and hold reset for ``cycles``."""
    dut.i__valid.value = 0
    dut.o__ready.value = out_ready
    dut.rst.value = 1
    for _ in range(cycles):
        await FallingEdge(dut.clk)
    dut.rst.value = 0


async def expect_no_more_outputs(dut, cycles: int, what: str) -> None:
    """Take ``o`` for ``cycles`` more cycles and fail if a word comes (``what`` names the case);
    leaves ``o.ready`` low."""
    for _ in range(cycles):
        await FallingEdge(dut.clk)
        dut.o__ready.value = 1
        await ReadOnly()
        assert not dut.o__valid.value, f"{what}: an output beyond the expected ones"
    await FallingEdge(dut.clk)
    dut.o__ready.value = 0


def assert_latency(source: StreamSource, sink: StreamSink, finishing: np.ndarray, latency: int) -> None:
    """Every output left exactly ``latency`` cycles after the input that finished it
    (``finishing``: a bool per sent word, True where a word completes an output)."""
    ends = np.array(source.accept_cycles)[np.asarray(finishing, dtype=bool)]
    measured = set((np.array(sink.cycles) - ends).tolist())
    assert measured == {latency}, f"latency {sorted(measured)} cycles, the contract says {latency}"
