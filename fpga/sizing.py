"""Size the whole board design from the device's budget: array, requantizer lanes, K, and every memory.

* The array is :func:`hw.sizes.core_params` (as many SIMD multipliers as the DSPs allow).
* The on-chip requantizer gets the DSPs the array leaves, at :data:`DSPS_PER_REQUANT_LANE`
  (measured with ``fpga.synth``: 5 MULT18X18D per lane on ECP5).  iCE40 has none: its 8
  DSPs all feed the array, and the board returns group sums for the host to requantize.
* K (the activation buffer depth) is the largest power of two up to 4096 whose smallest
  useful design (one token tile and one channel tile at that K) fits the RAM budget.
* The rest of the RAM budget goes to the operand memories by fixed shares, each depth a
  power of two, counted in the family's real block geometry.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from amaranth.hdl import Shape

from hw.rtl.sliced_memory import slice_width
from hw.sizes import DEVICES, OPERAND_DATA_REGISTERS, OPERAND_RAM_READ_REGISTERS, \
    OPERAND_RAM_WRITE_REGISTERS, RAM_SHAPES, RAMS_PER_SLICE, SLICED_ECP5_MEMORIES, SPLIT_OPERAND_RAMS, core_params
from hw.trip_core import TripCore

__all__ = ["BLOCK_SHAPES", "DSPS_PER_REQUANT_LANE", "DesignSize", "design_for", "ram_blocks", "silence_unused",
           "sliced_ram_blocks"]

BLOCK_SHAPES = RAM_SHAPES                  # (width, depth) configurations of one block RAM
DSPS_PER_REQUANT_LANE = {"ecp5": 5}        # iCE40: not mapped (16-bit DSPs, and yosys 0.69 asserts on it)
RAM_SHARE = 0.85                           # of the device's blocks; the rest is slack for the placer
MIN_GROUP = 32                             # the smallest group one run's result memory must hold
SHARES = {"weights": 0.5, "act": 0.2, "results": 0.15, "scales": 0.15}
MAX_DEPTH = 1 << 15                        # LOAD counts words in 16 bits; stay a power of two below that


def ram_blocks(family: str, width: int, depth: int) -> int:
    """Block RAMs a ``width × depth`` memory needs in its best configuration."""
    if width <= 0 or depth <= 0:
        return 0
    return min(math.ceil(width / w) * math.ceil(depth / d) for w, d in BLOCK_SHAPES[family])


def sliced_ram_blocks(family: str, width: int, depth: int) -> int:
    """Block RAMs a :class:`~hw.rtl.sliced_memory.SlicedMemory` of ``width × depth`` takes (ECP5's operand
    memories): columns as wide as the widest configuration that holds ``depth`` (in slices of
    ``RAMS_PER_SLICE``; a slice mapped whole takes as many), each mapped on its own, the last one narrower."""
    if width <= 0 or depth <= 0:
        return 0
    bits = slice_width(BLOCK_SHAPES[family], depth)
    return sum(ram_blocks(family, min(bits, width - lo), depth) for lo in range(0, width, bits))


def _deepest(family: str, width: int, blocks: int, minimum: int, count=ram_blocks) -> int:
    depth = minimum
    while count(family, width, depth * 2) <= blocks and depth < MAX_DEPTH:
        depth *= 2
    return depth


@dataclass(frozen=True)
class DesignSize:
    device: str
    core: dict                  # TripCore arguments
    act_depth: int
    weight_depth: int
    scale_depth: int
    result_bytes: int
    ram_blocks: int             # the estimate; the build report has the real count
    ram_available: int

    def link_args(self) -> dict:
        ecp5 = DEVICES[self.device].family == "ecp5"
        sliced = ecp5 and SLICED_ECP5_MEMORIES
        return dict(core=self.core, act_depth=self.act_depth, weight_depth=self.weight_depth,
                    scale_depth=self.scale_depth, result_bytes=self.result_bytes,
                    operand_queues=ecp5, registered_writes=ecp5 and not SLICED_ECP5_MEMORIES,
                    ram_shapes=BLOCK_SHAPES["ecp5"] if sliced else (),
                    rams_per_slice=RAMS_PER_SLICE if sliced else 1,
                    split_rams=sliced and SPLIT_OPERAND_RAMS, registered_reply=ecp5, registered_store=ecp5,
                    data_registers=OPERAND_DATA_REGISTERS if sliced else 1,
                    ram_write_registers=sliced and OPERAND_RAM_WRITE_REGISTERS,
                    ram_read_registers=sliced and OPERAND_RAM_READ_REGISTERS)


def design_for(device: str) -> DesignSize:
    """The board design for ``device``; raises ``ValueError`` with the numbers if nothing fits."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; known: {', '.join(DEVICES)}")
    dev = DEVICES[device]
    fam = dev.family
    available = dev.bram_bits // {"ice40": 4096, "ecp5": 18432}[fam]
    budget = int(available * RAM_SHARE)
    base = core_params(device)
    lanes = None
    if fam in DSPS_PER_REQUANT_LANE:
        spare = (dev.dsps - base["rows"] * base["cols"]) // DSPS_PER_REQUANT_LANE[fam]
        if spare >= 1:
            lanes = 1 << (spare.bit_length() - 1)
    for k in (4096, 2048, 1024, 512, 256):
        core = dict(base, max_k=k, max_k_total=k)
        if base.get("act_slice_width"):                             # slices of RAMS_PER_SLICE RAMs of K words
            core["act_slice_width"] = slice_width(BLOCK_SHAPES[fam], k, RAMS_PER_SLICE)
            if base.get("act_ram_width"):
                core["act_ram_width"] = slice_width(BLOCK_SHAPES[fam], k)
        if lanes:
            core |= {"requant_lanes": lanes, "max_groups": k // MIN_GROUP,
                     # ECP5: the lo offsets per channel, added as the requantizer drains the tile, not in every
                     # cell (TripArray's head_offsets: a side band that reached every row, 15.3 ns on the 85F).
                     # iCE40: no requantizer.
                     "head_offsets": fam == "ecp5"}
        probe = TripCore(**core)
        silence_unused(probe)
        act_w = Shape.cast(probe.sequencer.act_layout).width
        w_w = Shape.cast(probe.sequencer.weight_layout).width
        res_word = math.ceil(Shape.cast(probe.result_layout).width / 8)
        tile_words = probe.tokens * probe.channels // lanes if lanes else k // MIN_GROUP
        min_results = 1 << math.ceil(math.log2(tile_words * res_word))
        scale_w = Shape.cast(probe.requant.scales_layout).width if lanes else 0
        min_scales = k // MIN_GROUP if lanes else 0
        # the core's activation buffer
        fixed = (sliced_ram_blocks if core.get("act_slice_width") else ram_blocks)(fam, act_w, k)
        if lanes:
            fixed += ram_blocks(fam, probe.requant.requant.psum_bits * lanes, probe.requant.chunks)
        need = {"act": (act_w, k), "weights": (w_w, k), "results": (8, min_results), "scales": (scale_w, min_scales)}
        # sliced operand memories (HostLink ram_shapes) can take a RAM or two more
        sliced = fam == "ecp5" and SLICED_ECP5_MEMORIES
        count = {name: sliced_ram_blocks if sliced and name != "results" else ram_blocks for name in need}
        minimum = fixed + sum(count[n](fam, w, d) for n, (w, d) in need.items())
        if minimum > budget:
            continue
        spare = budget - minimum
        depths = {}
        for name, (width, depth) in need.items():
            if not depth:
                depths[name] = 0
                continue
            grant = count[name](fam, width, depth) + int(spare * SHARES[name])
            depths[name] = _deepest(fam, width, grant, depth, count[name])
        used = fixed + sum(count[n](fam, need[n][0], d) for n, d in depths.items())
        return DesignSize(device, core, depths["act"], depths["weights"], depths["scales"], depths["results"],
                          used, available)
    raise ValueError(f"{dev.name}: even K = 256 does not fit {budget} of {available} block RAMs")


def silence_unused(component) -> None:
    """A component built only to read its layouts is never elaborated; tell Amaranth that is intended
    (for it and every sub-component it holds)."""
    stack, seen = [component], set()
    while stack:
        c = stack.pop()
        if id(c) in seen:
            continue
        seen.add(id(c))
        c._MustUse__silence = True
        stack += [v for v in vars(c).values() if hasattr(type(v), "_MustUse__silence")]
