"""cocotb bench for :class:`hw.rtl.sliced_memory.SlicedMemory`: its read and write contract, the netlist
as built for an FPGA family (ECP5: ``DP16KD`` output registers, :mod:`sim.vendor_models`) or portable.

Configuration (from :func:`sim.runner.cosim`): the constructor arguments under ``"params"``, ``"seed"``,
``"reads"`` (how many cycles of random reads) and ``"write_gap"`` / ``"read_enable"`` (the share of cycles
without a write / with ``r_en`` high).  Three phases, each checked every cycle:

1. every address written once, in a shuffled order with idle cycles between writes; every bit low in one
   word and high in another;
2. reads of random addresses while ``r_en`` goes up and down: ``r_data`` is always the word of the address
   given ``read_latency`` cycles with ``r_en`` high before (so it holds while ``r_en`` is low);
3. a write and a read of the same address ``d`` cycles apart (``r_en`` high): the new word from
   ``d = write_latency`` on, and at ``d = write_latency - 1``, where the write and the read meet at the RAMs,
   the old word (the simulation models' answer; the hardware's is not defined), so neither side of the
   contract is loose.
"""
from __future__ import annotations

import json
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from hw.rtl.sliced_memory import SlicedMemory
from sim.runner import bench_config


@cocotb.test()
async def sliced_memory(dut):
    cfg = bench_config()
    mem = SlicedMemory(**cfg["params"])             # the latencies of the Verilog under test
    rng = random.Random(cfg.get("seed", 0))
    top = (1 << mem.width) - 1
    words = [rng.randrange(top + 1) for _ in range(mem.depth)]
    words[0], words[-1] = 0, top

    # The bench drives and samples at falling edges: what it reads there is what the rising edge before made.
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value, dut.w_en.value, dut.r_en.value, dut.r_addr.value, dut.w_addr.value = 1, 0, 0, 0, 0
    await FallingEdge(dut.clk)
    dut.rst.value = 0

    # 1. writes, shuffled, with gaps
    order = list(range(mem.depth))
    rng.shuffle(order)
    for addr in order:
        while rng.random() < cfg.get("write_gap", 0.3):
            dut.w_en.value = 0
            await FallingEdge(dut.clk)
        dut.w_addr.value, dut.w_data.value, dut.w_en.value = addr, words[addr], 1
        await FallingEdge(dut.clk)
    dut.w_en.value = 0
    for _ in range(mem.write_latency):
        await FallingEdge(dut.clk)

    # 2. random reads under a random r_en
    issued, checked = [], 0
    for _ in range(cfg.get("reads", 2000)):
        en = rng.random() < cfg.get("read_enable", 0.6)
        addr = rng.randrange(mem.depth)
        dut.r_addr.value, dut.r_en.value = addr, en
        await FallingEdge(dut.clk)
        if en:
            issued.append(addr)
        if len(issued) >= mem.read_latency:
            want = words[issued[-mem.read_latency]]
            got = int(dut.r_data.value)
            assert got == want, (f"read of address {issued[-mem.read_latency]} gave {got:#x}, "
                                 f"not {want:#x} (after {len(issued)} reads)")
            checked += 1
    assert checked > cfg.get("reads", 2000) // 3, f"only {checked} reads checked"

    # 3. a write and a read of one address d cycles apart
    seen = {}
    for distance in [d for d in (mem.write_latency - 1, mem.write_latency, mem.write_latency + 1) if d >= 0]:
        addr = rng.randrange(mem.depth)
        old = words[addr]
        new = old ^ top                               # every bit differs
        dut.r_en.value = 1
        dut.w_addr.value, dut.w_data.value, dut.w_en.value = addr, new, 1
        dut.r_addr.value = addr if distance == 0 else (addr + 1) % mem.depth
        for cycle in range(1, distance + mem.read_latency + 1):
            await FallingEdge(dut.clk)
            dut.w_en.value = 0
            dut.r_addr.value = addr if cycle == distance else (addr + 1) % mem.depth
        seen[distance] = int(dut.r_data.value)
        assert seen[distance] == (new if distance >= mem.write_latency else old), \
            f"address {addr} read {distance} cycle(s) after its write gave {seen[distance]:#x} (old {old:#x}, " \
            f"new {new:#x}; write latency {mem.write_latency})"
        words[addr] = new
        await FallingEdge(dut.clk)

    with open(cfg["report"], "w") as f:
        json.dump({"reads_checked": checked, "write_distances": sorted(seen), "mismatches": 0}, f)
    dut._log.info("sliced_memory %s: %d reads checked, writes read back at distances %s", cfg["params"],
                  checked, sorted(seen))
