"""SlicedMemory (the ECP5 links' operand memories), its ECP5 netlist's DP16KD output registers co-simulated on
Verilator and Icarus, and a Replay reading through its 3-stage pipeline."""
import random

import pytest
from amaranth import Module, Signal
from amaranth.back import rtlil
from amaranth.sim import Simulator

from fpga.sizing import BLOCK_SHAPES, sliced_ram_blocks
from hw.bram import dp16kd_registered_read, dp16kd_width
from hw.rtl import sliced_memory
from hw.rtl.replay import Replay
from hw.rtl.sliced_memory import SlicedMemory, slice_width
from sim.runner import CosimFailed, cosim
from sim.toolchain import SIMULATORS
from sim.vendor_models import FamilyOnly


def test_slices_are_as_wide_as_one_ram_that_holds_the_depth():
    ecp5 = BLOCK_SHAPES["ecp5"]
    assert [slice_width(ecp5, d) for d in (512, 513, 1152, 4096, 16384, 40000)] == [36, 18, 9, 4, 1, 1]
    assert [slice_width(ecp5, d, 8) for d in (512, 4096, 40000)] == [288, 32, 8]    # 8 RAMs side by side
    # 128 × 4096: 4 slices of 8 RAMs; 768 × 512: slices of 288, 288 and 192 bits, 8 + 8 + 6 RAMs
    assert sliced_ram_blocks("ecp5", 128, 4096) == 32 and sliced_ram_blocks("ecp5", 768, 512) == 22
    assert sliced_ram_blocks("ecp5", 3, 40000) == 9        # deeper than any one RAM: several per slice
    assert SlicedMemory(width=10, depth=64, slice_width=4).slices == [(0, 4), (4, 4), (8, 2)]


@pytest.mark.parametrize("kwargs, message", [
    (dict(width=0, depth=8, slice_width=4), "width must be a positive integer"),
    (dict(width=8, depth=8, slice_width=True), "slice_width must be a positive integer"),
    (dict(width=8, depth=8, slice_width=4, ram_width=0), "ram_width must be a positive integer"),
    (dict(width=8, depth=8, slice_width=4, ram_width=5), r"ram_width \(5\) must not exceed slice_width \(4\)"),
    (dict(width=8, depth=8, slice_width=4, data_registers=0), "data_registers must be a positive integer"),
    (dict(width=8, depth=8, slice_width=4, ram_write_registers=1), "ram_write_registers must be a bool, not 1"),
    (dict(width=8, depth=8, slice_width=4, ram_read_registers=None), "ram_read_registers must be a bool, not None"),
])
def test_bad_sizes_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SlicedMemory(**kwargs)
    with pytest.raises(ValueError, match="read_latency must be a positive integer, not 0"):
        Replay(8, 8, read_latency=0)
    with pytest.raises(ValueError, match="rams must be a positive integer, not 0"):
        slice_width(BLOCK_SHAPES["ecp5"], 512, 0)


async def write_all(ctx, mem: SlicedMemory, words: list[int]) -> None:
    """Write ``words`` from address 0, then wait out the write latency."""
    for addr, word in enumerate(words):
        ctx.set(mem.w_addr, addr)
        ctx.set(mem.w_data, word)
        ctx.set(mem.w_en, 1)
        await ctx.tick()
    ctx.set(mem.w_en, 0)
    await ctx.tick().repeat(max(mem.write_latency, 1))


# ram_width None: one memory per slice; 3: slices of 3 + 1 bits and the last 2-bit slice as 2; 1: a memory a bit;
# data_registers 2: one stage more; ram_write_registers / ram_read_registers: a write / read address register per RAM
@pytest.mark.parametrize("ram_width, data_registers, ram_write_registers, ram_read_registers",
                         [(None, 1, False, False), (3, 1, False, False), (1, 1, False, False), (3, 2, False, False),
                          (3, 1, True, False), (None, 2, True, False), (3, 1, False, True), (3, 2, True, True)])
def test_reads_move_only_with_r_en_and_return_the_address_read_latency_reads_before(ram_width, data_registers,
                                                                                     ram_write_registers,
                                                                                     ram_read_registers):
    rng = random.Random(5)
    mem = SlicedMemory(width=10, depth=64, slice_width=4, ram_width=ram_width,   # slices of 4, 4 and 2 bits
                       data_registers=data_registers, ram_write_registers=ram_write_registers,
                       ram_read_registers=ram_read_registers)
    assert mem.read_latency == 2 + data_registers + ram_read_registers
    words = [rng.randrange(1 << 10) for _ in range(64)]
    words[0], words[1] = 0, (1 << 10) - 1                         # every bit low, every bit high
    checked = 0

    async def bench(ctx):
        nonlocal checked
        await write_all(ctx, mem, words)
        issued = []
        for _ in range(400):
            en = rng.random() < 0.6
            addr = rng.randrange(64)
            ctx.set(mem.r_addr, addr)
            ctx.set(mem.r_en, en)
            await ctx.tick()
            if en:
                issued.append(addr)
            if len(issued) >= mem.read_latency:
                assert ctx.get(mem.r_data) == words[issued[-mem.read_latency]]
                checked += 1

    simulate(mem, bench)
    assert checked > 200


@pytest.mark.parametrize("ram_width, ram_write_registers, ram_read_registers",
                         [(None, False, False), (3, False, False), (None, True, False), (3, True, False),
                          (3, True, True), (None, False, True)])
def test_a_write_is_read_from_exactly_write_latency_cycles_on(ram_width, ram_write_registers, ram_read_registers):
    """A read address given write_latency cycles after a write's gets the new word; one cycle earlier, the old
    one (the simulator's answer to a read that meets the write at the RAM), so neither side of the contract
    is loose."""
    mem = SlicedMemory(width=10, depth=16, slice_width=4, ram_width=ram_width, ram_write_registers=ram_write_registers,
                       ram_read_registers=ram_read_registers)
    assert mem.write_latency == 1 + ram_write_registers - ram_read_registers
    old, new = 0x155, 0x2AA                        # every bit differs

    async def read_after(ctx, distance: int) -> int:
        """Write ``new`` over ``old`` at address 5, give address 5 to the read ``distance`` cycles later
        (the read pipeline always moving) and return the word it reads."""
        await write_all(ctx, mem, [0] * 5 + [old])
        ctx.set(mem.r_en, 1)
        ctx.set(mem.w_addr, 5)
        ctx.set(mem.w_data, new)
        ctx.set(mem.w_en, 1)
        ctx.set(mem.r_addr, 5 if distance == 0 else 0)
        for cycle in range(1, distance + mem.read_latency + 1):
            await ctx.tick()
            ctx.set(mem.w_en, 0)
            ctx.set(mem.r_addr, 5 if cycle == distance else 0)
        return ctx.get(mem.r_data)

    seen = {}

    async def bench(ctx):
        for distance in range(0, mem.write_latency + 2):
            seen[distance] = await read_after(ctx, distance)

    simulate(mem, bench)
    latency = mem.write_latency
    assert seen == {d: new if d >= latency else old for d in range(latency + 2)}


def simulate(dut, bench) -> None:
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def replay_of_sliced_memory(queue_depth: int | None, data_registers: int = 1) -> tuple[Module, SlicedMemory, Replay]:
    """A 12 × 16 sliced memory read by a replay (with a queue of ``queue_depth`` words, or none)."""
    m = Module()
    m.submodules.mem = mem = SlicedMemory(width=12, depth=16, slice_width=5, data_registers=data_registers)
    m.submodules.replay = replay = Replay(12, 16, max_repeat=3, read_latency=mem.read_latency,
                                          queue_depth=queue_depth)
    m.d.comb += [mem.r_addr.eq(replay.addr), mem.r_en.eq(replay.en), replay.data.eq(mem.r_data)]
    return m, mem, replay


@pytest.mark.parametrize("queue_depth, data_registers", [(None, 1), (1, 1), (SlicedMemory.READ_LATENCY + 2, 1),
                                                         (SlicedMemory.READ_LATENCY + 3, 2)])
@pytest.mark.parametrize("ready_rate", [1.0, 0.4])
def test_replay_through_the_sliced_pipeline(ready_rate, queue_depth, data_registers):
    """count words, repeat times, in order, none lost or repeated under back-pressure; the first word is valid
    read_latency + 1 cycles after start (+ 1 through the queue), and with a queue of read_latency + 2 words
    one word follows another every cycle the consumer is ready."""
    rng = random.Random(7)
    words = [rng.randrange(1 << 12) for _ in range(16)]
    m, mem, replay = replay_of_sliced_memory(queue_depth, data_registers)
    got, first_valid, valid_cycles = [], None, []

    async def bench(ctx):
        nonlocal first_valid
        await write_all(ctx, mem, words)
        ctx.set(replay.count, 5)
        ctx.set(replay.repeat, 2)
        ctx.set(replay.start, 1)
        await ctx.tick()
        ctx.set(replay.start, 0)
        for cycle in range(1, 80):
            ready = rng.random() < ready_rate
            ctx.set(replay.ready, ready)
            if ctx.get(replay.valid):
                first_valid = cycle if first_valid is None else first_valid
                valid_cycles.append(cycle)
                if ready:
                    got.append(ctx.get(replay.payload))
            await ctx.tick()

    simulate(m, bench)
    assert got == words[:5] * 2
    assert first_valid == mem.read_latency + 1 + (queue_depth is not None)
    if ready_rate == 1.0 and queue_depth != 1:
        assert valid_cycles == list(range(first_valid, first_valid + 10)), "a bubble in a full-rate replay"


def test_queued_replay_start_drops_the_words_in_flight():
    """A start while words are queued and in flight: none of them comes out after it, and the new replay
    streams its own words from the first."""
    words = list(range(100, 116))
    m, mem, replay = replay_of_sliced_memory(SlicedMemory.READ_LATENCY + 2)
    got = []

    async def bench(ctx):
        await write_all(ctx, mem, words)
        ctx.set(replay.count, 8)
        ctx.set(replay.repeat, 1)
        for start_at, count in ((0, 8), (9, 3)):          # the second start comes with words queued and in flight
            ctx.set(replay.count, count)
            ctx.set(replay.start, 1)
            await ctx.tick()
            ctx.set(replay.start, 0)
            if start_at == 0:
                for _ in range(9):                        # not ready: the queue fills and reads stop
                    await ctx.tick()
                ctx.set(replay.ready, 1)
                got.append(ctx.get(replay.payload) if ctx.get(replay.valid) else None)
                await ctx.tick()
                ctx.set(replay.ready, 0)
        ctx.set(replay.ready, 1)
        for _ in range(20):
            if ctx.get(replay.valid):
                got.append(ctx.get(replay.payload))
            await ctx.tick()

    simulate(m, bench)
    assert got == [words[0]] + words[:3]


# --- the netlist as built for ECP5: DP16KD output registers as the slices' data registers -------------------

ECP5 = FamilyOnly("ecp5")

#: SlicedMemory arguments, with the DP16KD data widths their ECP5 netlist uses (None: a portable memory)
COSIM_CONFIGS = {
    # slices of 8, 8 and 2 bits, each RAM 4 (or 2) × 4096: the host link's operand memories on the ECP5 boards
    "split_4x4096": (dict(width=18, depth=4096, slice_width=8, ram_width=4), [4, 4, 4, 4, 2]),
    # 9 × 2048 RAMs, a 2-bit last slice, and one more data register
    "slices_9x2048": (dict(width=20, depth=2048, slice_width=9, data_registers=2), [9, 9, 2]),
    # 18 × 1024 RAMs (a write enables both 9-bit bytes) with a write and a read register set per RAM
    "slices_18x1024_ram_registers": (dict(width=30, depth=1024, slice_width=18, ram_width=18,
                                          ram_write_registers=True, ram_read_registers=True), [18, 18]),
    # 36 × 512 RAMs, the pseudo dual-port mode (the link's scales memory), and a 4-bit last slice
    "slices_36x512": (dict(width=40, depth=512, slice_width=36), [36, 4]),
    # the host link's result memory on the ULX3S-85F (one RAM per bit) and on the 25F (8 bits in a 9-bit port)
    "results_1x16384": (dict(width=8, depth=16384, slice_width=8, ram_width=1), [1] * 8),
    "results_8x2048": (dict(width=8, depth=2048, slice_width=8), [9]),
    # an 8 × 4096 slice fits no one DP16KD port: a portable memory and a fabric register; its 2-bit neighbour
    # is a DP16KD
    "mixed_8x4096": (dict(width=10, depth=4096, slice_width=8), [None, 2]),
}


def run_sliced(params: dict, simulator: str, platform=None, dut=None, **config):
    dut = SlicedMemory(**params) if dut is None else dut
    return cosim(dut, toplevel="sliced_memory", simulator=simulator, bench="sim.bench_sliced_memory",
                 config={"params": params, "seed": 3, "reads": 1500, **config}, platform=platform)


def test_dp16kd_width_is_the_narrowest_port_that_holds_the_words():
    assert [dp16kd_width(bits, 4096) for bits in (1, 2, 3, 4, 5)] == [1, 2, 4, 4, None]
    assert [dp16kd_width(bits, 1024) for bits in (5, 9, 10, 18, 19)] == [9, 9, 18, 18, None]
    assert dp16kd_width(19, 512) == 36 and dp16kd_width(36, 513) is None
    assert dp16kd_width(1, 16384) == 1 and dp16kd_width(1, 16385) is None


@pytest.mark.parametrize("name", COSIM_CONFIGS)
def test_only_ecp5_slices_that_fit_a_dp16kd_use_its_output_register(name):
    params, widths = COSIM_CONFIGS[name]
    mem = SlicedMemory(**params)
    netlist = rtlil.convert(mem, platform=ECP5)
    assert netlist.count("cell \\DP16KD ") == sum(w is not None for w in widths)
    assert netlist.count('parameter \\REGMODE_B "OUTREG"') == sum(w is not None for w in widths)
    for width in {w for w in widths if w is not None}:
        assert f"parameter \\DATA_WIDTH_B {width}\n" in netlist
    assert netlist.count("cell $memrd_v2 ") == widths.count(None)
    for platform in (None, FamilyOnly("ice40")):
        assert "DP16KD" not in rtlil.convert(SlicedMemory(**params), platform=platform)


def test_a_dp16kd_that_holds_nothing_is_refused():
    with pytest.raises(ValueError, match="no DP16KD port holds 4096 words of 5 bits"):
        dp16kd_registered_read(depth=4096, w_addr=Signal(12), w_data=Signal(5), w_en=1, r_addr=Signal(12),
                               r_en=1, r_data=Signal(5))


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("platform", [ECP5, None], ids=["ecp5", "portable"])
@pytest.mark.parametrize("name", COSIM_CONFIGS)
def test_cosim_reads_and_writes_as_the_contract_says(name, platform, simulator):
    report = run_sliced(COSIM_CONFIGS[name][0], simulator, platform=platform).report
    assert report["mismatches"] == 0 and report["reads_checked"] > 500


@pytest.mark.parametrize("name", ["split_4x4096", "slices_36x512"])
def test_cosim_catches_a_dp16kd_without_its_output_register(monkeypatch, name):
    """The bench fails when the RAM's read is a cycle short (REGMODE NOREG): the model honours the setting."""
    def noreg(**kwargs):
        instance = dp16kd_registered_read(**kwargs)
        instance.parameters.update(REGMODE_A="NOREG", REGMODE_B="NOREG")
        return instance
    monkeypatch.setattr(sliced_memory, "dp16kd_registered_read", noreg)
    with pytest.raises(CosimFailed, match="failed"):
        run_sliced(COSIM_CONFIGS[name][0], "verilator", platform=ECP5)
