"""TRIP core sizes for the FPGA families, derived from each device's DSP count by code.

The array takes ``rows × cols`` simd_mul4 units, as many as fit in
``dsp_share`` of the device's multipliers, with ``rows`` and ``cols`` powers
of two (so tiles divide the usual layer widths).  Among the largest arrays it
prefers about twice as many channel lanes as token lanes: each token tile
reloads the activation buffer (K cycles) once per pass over all channel
tiles, so more channel tiles amortise it, while enough token lanes keep the
weight stream (one weight word per k per token tile) narrow.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from hw.rtl.simd_mul4 import best_shape
from hw.rtl.sliced_memory import slice_width

__all__ = ["Device", "DEVICES", "OPERAND_DATA_REGISTERS", "OPERAND_RAM_READ_REGISTERS", "OPERAND_RAM_WRITE_REGISTERS",
           "RAM_SHAPES", "RAMS_PER_SLICE", "SLICED_ECP5_MEMORIES", "SPLIT_OPERAND_RAMS", "SPLIT_SLICE_RAMS",
           "SPLIT_EXTRACTION_FROM", "core_params"]

#: Whether the ECP5 builds read their operand memories and activation buffer through
#: :class:`~hw.rtl.sliced_memory.SlicedMemory`, slices of :data:`RAMS_PER_SLICE` block RAMs with registers of
#: their own.  On the ULX3S-85F one address register drove a memory's 32 RAMs (16.5 ns), and the RAMs' reads
#: crossed the device into the operand and beat queues (16.4-17.3 ns).
SLICED_ECP5_MEMORIES = True

#: Whether each slice of the activation buffer is one memory per block RAM (SlicedMemory's ``ram_width``), so
#: that no read goes through a multiplexer (yosys maps a 32 × 4096 slice as eight 36 × 512 RAMs one below
#: another, then a multiplexer).  On ECP5 each RAM then reads into its own DP16KD output register
#: (hw/bram.py): as yosys maps a slice, a RAM's read (5.8 ns clock-to-out) into the slice's data register was
#: 9.96 ns on the ULX3S-85F (e32494d seed 1, 127 endpoints).  It was off after two 85F builds with it (00b5826,
#: seed 1: 61.6 and 60.5 MHz, against 68.6 without) had placed the buffer's RAMs far from the sequencer, whose
#: read enable then took 10 ns of routing to reach their clock enables; since b3a0b6d the buffer is read by
#: credit, its read enable always high, so no such net is left.
SPLIT_SLICE_RAMS = True

#: The same for the host link's operand memories alone (``HostLink(split_rams)``).  Their replays read only when
#: their queue has room (``Replay(queue_depth)``), so no read enable reaches their RAMs, and without a multiplexer
#: a RAM's read goes straight into its slice's data register: through the multiplexer of a weight slice's 8 RAMs
#: it was 14.3 ns on the ULX3S-85F (5191edf).
SPLIT_OPERAND_RAMS = True

#: Registers after each slice's RAMs in the host link's operand memories (``SlicedMemory(data_registers)``; their
#: replays read by credit, so a longer read costs only a word of queue).  With one, the register sat between its
#: RAM and the queue that takes the whole word, and the RAM's read into it took 14.7 ns on the ULX3S-85F (d40d6a3;
#: 13.5 at a6d8eb8).  One: with two (and TileRequant's upcoming scales register, 85f8445) the 85F's router fell
#: behind (542 overused wires at pass 48, 1,251 at pass 61; a6d8eb8 routed by pass 50).  Since 797171e that one
#: register is each RAM's own DP16KD output register (hw/bram.py), not a fabric register.
OPERAND_DATA_REGISTERS = 1

#: Whether each RAM of the host link's operand memories has a write register set of its own after its slice's
#: (``SlicedMemory(ram_write_registers)``; the link writes at the UART's rate, so the cycle more costs nothing).
#: A weight slice's write address register to the farthest of its 8 RAMs was the slowest group of 4d9893b's
#: seed-1 ULX3S-85F build (12.4 ns, all routing), an activation slice's the slowest at seed 2 (12.0 ns).
OPERAND_RAM_WRITE_REGISTERS = True

#: The same for their read address (``SlicedMemory(ram_read_registers)``; a replay's read takes a cycle more, its
#: queue a word more).  A slice's read address register to its 8 RAMs was the second-slowest group of 4d9893b's
#: seed-2 ULX3S-85F build (11.9 ns, all routing) and 11.7 ns at fd87adc's seed 1.  Off: with it (eda6ece) the
#: 85F's router fell behind, 6,206 and 7,410 overused wires at pass 9 of seeds 1 and 2 (2,533 without it,
#: 950 at 4d9893b), and the builds were stopped.  The copies move with the replays' read enable, so that net
#: gains an address's worth of clock enables beside every RAM.
OPERAND_RAM_READ_REGISTERS = False

#: Block RAMs side by side in one slice of a sliced memory.  One per slice (a register set beside every
#: RAM) left the ULX3S-85F's router with 8,128 overused wires after 13 passes, 2,018 at that pass without
#: the slices; eight per slice cuts an 85F operand memory into 4 slices.
RAMS_PER_SLICE = 8

#: (width, depth) configurations of one block RAM of each family
RAM_SHAPES = {"ice40": ((16, 256), (8, 512), (4, 1024), (2, 2048)),
              "ecp5": ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384))}

#: The most multipliers one fan-out register of an ECP5 array feeds.
MULS_PER_COPY = 4

#: ECP5 arrays of at least this many multipliers extract each multiplier's lanes in two cycles (SimdMul4
#: latency 5, one cycle more per run): on the ULX3S-85F (128) the extraction's compares and select, behind
#: 5.4 ns of routing from the sum's register, were the slowest group once the others had been cut (3,200
#: endpoints at 11.9 ns).  (Latency 5 once registered the lanes twice instead: 60.5–64.5 MHz then.)
SPLIT_EXTRACTION_FROM: int | None = 128


@dataclass(frozen=True)
class Device:
    name: str
    family: str
    dsps: int
    mul_width: int
    bram_bits: int


DEVICES = {
    "ice40up5k": Device("iCE40UP5K", "ice40", 8, 16, 30 * 4096),
    "ecp5-25f": Device("ECP5-25F", "ecp5", 28, 18, 56 * 18432),
    "ecp5-45f": Device("ECP5-45F", "ecp5", 72, 18, 108 * 18432),
    "ecp5-85f": Device("ECP5-85F", "ecp5", 156, 18, 208 * 18432),
}


def core_params(device: str, *, dsp_share: float = 1.0, max_k: int = 4096, max_k_total: int = 4096) -> dict:
    """TripCore constructor arguments for ``device`` using at most ``dsp_share`` of its DSPs."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; known: {', '.join(DEVICES)}")
    if not 0 < dsp_share <= 1:
        raise ValueError(f"dsp_share must be in (0, 1], not {dsp_share!r}")
    dev = DEVICES[device]
    lay = best_shape(dev.mul_width)
    budget = max(1, int(dev.dsps * dsp_share))
    best = None
    powers = [1 << i for i in range(budget.bit_length())]
    for rows in powers:
        for cols in powers:
            if rows * cols > budget:
                continue
            tokens, channels = rows * lay.a_lanes, cols * lay.w_lanes
            key = (rows * cols, -abs(math.log2(channels / (2 * tokens))), channels)
            if best is None or key > best[0]:
                best = (key, rows, cols)
    _, rows, cols = best
    return dict(rows=rows, cols=cols, a_lanes=lay.a_lanes, w_lanes=lay.w_lanes, mul_width=dev.mul_width,
                mul_latency=5 if dev.family == "ecp5" and SPLIT_EXTRACTION_FROM is not None
                and rows * cols >= SPLIT_EXTRACTION_FROM else 4,
                max_k=max_k, max_k_total=max_k_total,
                # ECP5: registers that fan the beat out to the rows, each level at most 4 times the copies of
                # the one above (ULX3S-85F: the combinational spread from the beat queue to 128 DSPs was its
                # critical path).  iCE40: none, the netlist its 40 MHz placement was found for.
                fanout_stages=math.ceil(math.log2(rows) / 2) + (cols > MULS_PER_COPY) if dev.family == "ecp5" else 0,
                # ECP5: the last level splits each row's copy by columns, so no copy feeds more than MULS_PER_COPY
                # multipliers (ULX3S-85F: a row's copy to its 16 DSPs' A ports was the critical path, 17.8 ns).
                fanout_cols=-(-cols // MULS_PER_COPY) if dev.family == "ecp5" else 1,
                # ECP5: the array's stall from its own registers, not the tile adapter's ready (ULX3S-85F: that
                # chain into the accumulators' global enable was 15.2 ns).  iCE40: the netlist of its placement.
                local_stall=dev.family == "ecp5",
                # Off: the fan-out tree's last level could hold the multipliers' packed operands (ULX3S-85F: a
                # column copy through a weight-packing adder to the DSPs, 16.2 ns), but with the sliced memories
                # that group needs 13.2 ns, and the 85F's router was far behind with it (15,660 overused wires
                # after 7 passes, 6,319 without).
                packed_copies=False,
                # ECP5: the queue keeps the array's ready off the beat registers' enables (ULX3S-25F
                # 74.8 -> 78.6 MHz).  iCE40: the skid slice, whose netlist the 40 MHz placement was found for.
                beat_queue=dev.family == "ecp5",
                # ECP5 with SLICED_ECP5_MEMORIES: the activation buffer's reads through registers beside each slice
                # of its RAMs (ULX3S-85F: its unregistered read into the beat queue, 16.4-17.1 ns).
                act_slice_width=slice_width(RAM_SHAPES["ecp5"], max_k_total, RAMS_PER_SLICE)
                if dev.family == "ecp5" and SLICED_ECP5_MEMORIES else 0,
                # ... each slice as RAMS_PER_SLICE memories of one RAM's width (see SlicedMemory's ram_width)
                act_ram_width=slice_width(RAM_SHAPES["ecp5"], max_k_total)
                if dev.family == "ecp5" and SLICED_ECP5_MEMORIES and SPLIT_SLICE_RAMS else 0)
