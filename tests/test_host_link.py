"""The board's host link end to end in simulation: the real host driver, 8N1 frames, the board's gateware.

:class:`sim.uart_board.SimulatedSerial` runs :class:`fpga.top.UartLink` (UART + command
decoder + memories + TRIP core, what the bitstream holds) in Amaranth's simulator and
gives :class:`fpga.host.Board` a pyserial-like port.  Layers bigger than the link's
memories are cut into several runs, so the tiling of the host is checked too.
"""
import dataclasses

import numpy as np
import pytest
import torch

import cpu.kernels as ck
import golden
from fpga.host import Board, BoardError
from fpga.link import NAK, HostLink, Op
from fpga.sizing import BLOCK_SHAPES
from fpga.top import UartLink
from sim.uart_board import SimulatedSerial

# The iCE40 shape (16-bit DSPs, raw group sums out) and an ECP5 shape with the on-chip requantizer (and the
# ECP5 builds' queues, sliced memories (hw.sizes.SLICED_ECP5_MEMORIES) with write registers per RAM, registered
# LOAD bytes, and lo offsets added as the tile drains), with memories small enough that every layer below needs
# several runs.  Its memories also copy the read address per RAM, which no board uses (OPERAND_RAM_READ_REGISTERS).
RAW = dict(core=dict(rows=2, cols=4, a_lanes=1, w_lanes=2, mul_width=16, mul_latency=2, max_k=64, max_k_total=64),
           act_depth=64, weight_depth=128, result_bytes=1024)
REQUANT = dict(core=dict(rows=1, cols=2, a_lanes=2, w_lanes=2, mul_width=18, mul_latency=2, max_k=64, max_k_total=64,
                         requant_lanes=2, max_groups=8, local_stall=True, act_slice_width=36,
                         head_offsets=True),
               act_depth=128, weight_depth=128, scale_depth=32, result_bytes=256, operand_queues=True,
               ram_shapes=BLOCK_SHAPES["ecp5"], rams_per_slice=2, split_rams=True, registered_reply=True,
               registered_store=True, data_registers=2, ram_write_registers=True, ram_read_registers=True)


# SmolLM2's K = 576 needs deeper memories: an ECP5-shaped link with the requantizer, 9 groups of 64.
REAL = dict(core=dict(rows=1, cols=2, a_lanes=2, w_lanes=2, mul_width=18, mul_latency=2, max_k=64, max_k_total=576,
                      requant_lanes=2, max_groups=9, local_stall=True, head_offsets=True),
            act_depth=1152, weight_depth=1152, scale_depth=64, result_bytes=256, operand_queues=True,
            registered_writes=True)


def simulated(design: dict) -> SimulatedSerial:
    return SimulatedSerial(UartLink(HostLink(**design, clk_hz=100_000_000, baud=25_000_000), divisor=4))


@pytest.fixture(scope="module")
def raw_board():
    with simulated(RAW) as port:
        yield Board(port), port


@pytest.fixture(scope="module")
def requant_board():
    with simulated(REQUANT) as port:
        yield Board(port), port


def operands(m: int, k: int, n: int, a_bits: int, seed: int, corners: bool = False):
    rng = np.random.default_rng(seed)
    lo, hi = golden.int_range(a_bits)
    x = rng.integers(lo, hi + 1, (m, k))
    w = rng.integers(-8, 8, (n, k))
    if corners:     # every lane at both rails, in all four sign combinations
        x[0], x[1 % m] = lo, hi
        w[0], w[1 % n] = -8, 7
    return x, w


def test_info_describes_the_build(raw_board):
    board, _ = raw_board
    assert board.limits.tokens == 2 and board.limits.channels == 8 and board.info.requant_lanes == 0
    assert board.info.weight_depth == 128 and board.info.baud == 25_000_000
    assert "2 tokens × 8 channels" in board.describe()


@pytest.mark.parametrize("a_bits, m, k, n, group, corners", [
    (8, 3, 32, 12, 16, True),       # edge tiles in both directions, rails
    (4, 5, 64, 20, 32, True),       # K at the buffer limit: one channel tile per weight load
    (8, 1, 48, 9, 48, False),       # decode (M = 1), one group
    (4, 7, 16, 30, 8, False),       # many channel tiles: several weight loads and runs
])
def test_group_sums_bit_exact_through_the_uart(raw_board, a_bits, m, k, n, group, corners):
    board, port = raw_board
    x, w = operands(m, k, n, a_bits, seed=m * k + n, corners=corners)
    runs_before = board.stats.runs
    got = board.group_sums(torch.tensor(x, dtype=torch.int8), ck.pack_weights(w), group, a_bits=a_bits)
    assert got.dtype == torch.int32
    assert np.array_equal(got.numpy(), golden.group_accumulators(x, w, group, x_bits=a_bits))
    assert board.stats.runs > runs_before and not port.rx_error


def test_keep_mask_sends_only_kept_tokens(raw_board):
    board, _ = raw_board
    x, w = operands(6, 32, 8, 8, seed=5)
    keep = np.array([1, 0, 1, 1, 0, 1], bool)
    sent = board.stats.bytes_sent
    got = board.group_sums(torch.tensor(x, dtype=torch.int8), ck.pack_weights(w), 16, keep=keep)
    assert np.array_equal(got.numpy(), golden.group_accumulators(x[keep], w, 16))
    # two token tiles of activations, not three: 2 × 32 words × 2 bytes, plus weights and commands
    assert board.stats.bytes_sent - sent < 3 * 32 * 2 + 8 * 32 // 2 + 200


@pytest.mark.parametrize("a_bits, out_bits", [(8, 8), (4, 4), (8, 4)])
def test_requantized_on_chip_equals_the_cpu_fallback(requant_board, a_bits, out_bits):
    """One switch: the same call on the board and on the CPU kernels gives the same int8 tensor."""
    board, port = requant_board
    m, k, n, group = 5, 64, 10, 16
    x, w = operands(m, k, n, a_bits, seed=a_bits + out_bits, corners=True)
    rng = np.random.default_rng(1)
    w_scales, x_scales = rng.uniform(0.01, 0.05, (n, k // group)), rng.uniform(0.02, 0.2, m)
    acc = golden.group_accumulators(x, w, group, x_bits=a_bits)
    # half the scale that would cover every output, so some outputs saturate
    out_scale = golden.output_scale(golden.group_scaled(acc, w_scales, x_scales), out_bits) / 2
    params = golden.requant_params(w_scales, x_scales, out_scale=out_scale, out_bits=out_bits)
    xt, wp = torch.tensor(x, dtype=torch.int8), ck.pack_weights(w)
    on_board, on_cpu = (backend.requantized_matmul(xt, wp, group, params, a_bits=a_bits) for backend in (board, ck))
    want = golden.requantize(acc, params.wmul, params.tmul, params.shift, out_bits)
    assert np.array_equal(on_board.numpy(), want) and np.array_equal(on_cpu.numpy(), want)
    lo, hi = golden.int_range(out_bits)
    assert ((want == lo) | (want == hi)).any() and not port.rx_error     # some outputs on a rail



def test_a_refused_run_leaves_nothing_for_the_next(requant_board):
    """A run the core refuses still starts the operand replays; the words they queued for it must not
    reach the next run (the ECP5 links queue operands between their memories and the core)."""
    board, port = requant_board
    m, k, n, group = 2, 32, 4, 16
    x, w = operands(m, k, n, 8, seed=11, corners=True)
    rng = np.random.default_rng(2)
    params = golden.requant_params(rng.uniform(0.01, 0.05, (n, k // group)), rng.uniform(0.02, 0.2, m),
                                   out_scale=0.5, out_bits=8)
    xt, wp = torch.tensor(x, dtype=torch.int8), ck.pack_weights(w)
    want = board.requantized_matmul(xt, wp, group, params, a_bits=8).numpy()
    board.write_reg("GROUP", 24)                                 # does not divide K = 32: refused
    with pytest.raises(BoardError, match="GROUP_DIVIDES_K"):
        board.run()
    again = board.requantized_matmul(xt, wp, group, params, a_bits=8).numpy()
    assert np.array_equal(again, want) and not port.rx_error
    assert np.array_equal(want, ck.requantized_matmul(xt, wp, group, params, a_bits=8).numpy())

def test_real_smollm2_layers_through_the_uart(real_layers):
    """Exported SmolLM2 layers (block 16, the shipped bit plan: k_proj A8, o_proj A4; tokens the shipped
    pruning plan kept) through the board's whole path: host driver, 8N1 frames, memories, core, on-chip
    requantizer.  Full K = 576 and the real group size; a slice of 4 kept tokens × 8 output channels (one
    run per layer, ~5 KB on the wire) keeps the bit-level UART simulation to about 40 s a layer.  The
    reference is the export's own oracle."""
    tokens, channels = 4, 8
    with simulated(REAL) as port:
        board = Board(port)
        for name, real, _ in real_layers:
            out_bits = 4 if real.a_bits == 8 else 8          # one of each output width across the two layers
            _, p = real.requant(out_bits)
            x, w = real.x[real.keep][:tokens], real.layer.weight[:channels]
            params = dataclasses.replace(p, wmul=p.wmul[:channels], tmul=p.tmul[:tokens])
            want = golden.requantize(real.layer.accumulators(x)[:, :channels], params.wmul, params.tmul,
                                     params.shift, out_bits)
            xt, wp = torch.tensor(x, dtype=torch.int8), ck.pack_weights(w)
            got = board.requantized_matmul(xt, wp, real.layer.group_size, params, a_bits=real.a_bits)
            assert np.array_equal(got.numpy(), want), name
            assert np.array_equal(ck.requantized_matmul(xt, wp, real.layer.group_size, params,
                                                        a_bits=real.a_bits).numpy(), want), name
        assert board.stats.runs == 2 and not port.rx_error


def test_raw_board_requantizes_on_the_host(raw_board):
    board, _ = raw_board
    x, w = operands(3, 32, 8, 8, seed=9)
    params = golden.requant_params(np.full((8, 2), 0.02), np.full(3, 0.1), out_scale=2.0, out_bits=8)
    got = board.requantized_matmul(torch.tensor(x, dtype=torch.int8), ck.pack_weights(w), 16, params)
    acc = golden.group_accumulators(x, w, 16)
    assert np.array_equal(got.numpy(), golden.requantize(acc, params.wmul, params.tmul, params.shift, 8))


def test_link_refuses_bad_commands_and_stays_in_step(raw_board):
    board, port = raw_board
    port.write(bytes([0x7E]))                                    # unknown opcode
    assert port.read(1) == bytes([NAK])
    with pytest.raises(BoardError, match="refused REG_WRITE"):
        board.write_reg("CTRL", 1)                               # only RUN may start the core
    port.write(bytes([Op.LOAD, 1]) + (129).to_bytes(2, "little"))  # more words than the weight memory holds
    assert port.read(1) == bytes([NAK])
    board.write_reg("K", 48)
    board.write_reg("GROUP", 32)                                 # does not divide K: the core flags it
    board.write_reg("M_TILES", 1)
    board.write_reg("N_TILES", 1)
    board.write_reg("A_BITS", 8)
    with pytest.raises(BoardError, match="GROUP_DIVIDES_K"):
        board.run()
    assert board.read_reg("K") == 48                             # and the link still answers


def test_host_refuses_what_the_board_cannot_hold(raw_board):
    board, _ = raw_board
    x, w = operands(2, 128, 8, 8, seed=3)
    with pytest.raises(ValueError, match="K = 128 does not fit this board"):
        board.group_sums(torch.tensor(x, dtype=torch.int8), ck.pack_weights(w), 32)
    with pytest.raises(ValueError, match="shape mismatch"):
        board.group_sums(torch.zeros(2, 32, dtype=torch.int8), ck.pack_weights(w), 16)
    with pytest.raises(ValueError, match="int8"):
        board.group_sums(torch.zeros(2, 128, dtype=torch.int16), ck.pack_weights(w), 16)
    with pytest.raises(ValueError, match="129 words do not fit the board's weights memory"):
        board.load(1, np.zeros((129, 8), np.int64))


def test_silent_board_times_out_with_a_clear_error():
    class Dead:
        def write(self, data):
            return len(data)

        def read(self, n):
            return b""
    with pytest.raises(BoardError, match="0 of 68 bytes for INFO"):
        Board(Dead())
