"""Host driver for a board built by :mod:`fpga.build`: run quantized layers on the FPGA over its UART.

:class:`Board` has the layer API of the CPU fallback (:mod:`cpu.kernels`):
``group_sums`` and ``requantized_matmul`` take the same int8 activations and
packed int4 weights and return the same tensors, so one switch picks the
backend::

    backend = Board("/dev/ttyUSB1") if use_fpga else cpu.kernels
    sums = backend.group_sums(x, w_packed, 128, a_bits=8)

A layer larger than the board's memories is cut into runs: the weights of as
many channel tiles as fit are loaded once, then each block of token tiles is
loaded, run and read back.  The streams come from
:func:`sim.trip_driver.prepare_run`, the same code the co-simulations check,
which also refuses what the core cannot hold before anything is sent.

The wire protocol is :mod:`fpga.link`'s.  Any object with pyserial's
``write(bytes)`` and ``read(n) -> bytes`` works as the transport (the tests pass
a simulated UART).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

import golden
from hw.rtl.trip_sequencer import REGS, Error
from hw.trip_core import TripCore
from sim.drivers import decode, encode
from sim.trip_driver import CoreLimits, prepare_run
from sim.trip_schedule import kept_rows, tiles_to_sums, words_to_outputs

from .link import (CORE_FIELDS, INFO_FIELDS, NAK, OVERFLOW_BIT, PROTOCOL_VERSION, Memories, Op, operand_layouts,
                   result_words, word_bytes)
from .sizing import silence_unused

__all__ = ["Board", "BoardError", "LinkInfo", "Transport"]


class Transport(Protocol):
    def write(self, data: bytes) -> int | None: ...
    def read(self, size: int) -> bytes: ...


class BoardError(RuntimeError):
    """The board refused a command, answered something unexpected, or stopped answering."""


@dataclass(frozen=True)
class LinkInfo:
    """What the board reports about its build (the INFO command)."""
    fields: dict[str, int]

    def __getattr__(self, name: str) -> int:
        try:
            return self.fields[name]
        except KeyError:
            raise AttributeError(name) from None

    def core(self) -> TripCore:
        params = {f: self.fields[f] for f in CORE_FIELDS}
        if self.fields["requant_lanes"]:
            params |= {"requant_lanes": self.fields["requant_lanes"], "max_groups": self.fields["max_groups"]}
        core = TripCore(**params)
        silence_unused(core)        # built for its layouts only
        return core


@dataclass
class RunStats:
    runs: int = 0
    cycles: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0


class Board:
    """A TRIP accelerator behind a serial port (a device path, or any :class:`Transport`)."""

    def __init__(self, port: str | Transport, *, baud: int | None = None, timeout: float = 10.0):
        if isinstance(port, str):
            import serial   # pyserial; only needed for real hardware
            try:
                port = serial.Serial(port, baudrate=baud or 1_000_000, timeout=timeout)
            except serial.SerialException as e:
                raise BoardError(f"cannot open {port!r}: {e}. Is the board plugged in, and is the port "
                                 f"right (ls /dev/ttyUSB* /dev/ttyACM*)?") from e
        self.port = port
        self.stats = RunStats()
        self.info = self._info()
        if self.info.version != PROTOCOL_VERSION:
            raise BoardError(f"the board speaks link protocol {self.info.version}; this host speaks "
                             f"{PROTOCOL_VERSION}: rebuild the bitstream or update the host")
        self._core = self.info.core()
        self.limits = CoreLimits.of(self._core)
        self._layouts = operand_layouts(self._core)

    # --- wire level -------------------------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        self.port.write(data)
        self.stats.bytes_sent += len(data)

    def _recv(self, n: int, what: str) -> bytes:
        data = self.port.read(n)
        self.stats.bytes_received += len(data)
        if len(data) != n:
            raise BoardError(f"the board sent {len(data)} of {n} bytes for {what} before the timeout")
        return data

    def _ack(self, op: Op) -> None:
        got = self._recv(1, f"the {op.name} acknowledgement")[0]
        if got == NAK:
            raise BoardError(f"the board refused {op.name}")
        if got != op:
            raise BoardError(f"expected the {op.name} acknowledgement {op:#04x}, got {got:#04x}: "
                             f"the link is out of step")

    def _info(self) -> LinkInfo:
        self._send(bytes([Op.INFO]))
        raw = self._recv(4 * len(INFO_FIELDS), "INFO")
        self._ack(Op.INFO)
        return LinkInfo({f: int.from_bytes(raw[4 * i:4 * i + 4], "little") for i, f in enumerate(INFO_FIELDS)})

    def write_reg(self, name: str, value: int) -> None:
        self._send(bytes([Op.REG_WRITE, REGS[name]]) + int(value).to_bytes(4, "little"))
        self._ack(Op.REG_WRITE)

    def read_reg(self, name: str) -> int:
        self._send(bytes([Op.REG_READ, REGS[name]]))
        value = int.from_bytes(self._recv(4, f"register {name}"), "little")
        self._ack(Op.REG_READ)
        return value

    def load(self, mem: Memories, words: np.ndarray) -> None:
        mem = Memories(mem)
        layout = self._layouts[mem]
        n = len(words)
        if n > self.info.fields[("act_depth", "weight_depth", "scale_depth")[mem]] or n >= 1 << 16:
            raise ValueError(f"{n} words do not fit the board's {mem.name.lower()} memory")
        nbytes = word_bytes(layout)
        payload = b"".join(v.to_bytes(nbytes, "little") for v in encode(layout, words.reshape(n, -1)))
        self._send(bytes([Op.LOAD, mem]) + n.to_bytes(2, "little"))
        self._ack(Op.LOAD)      # the go-ahead
        self._send(payload)
        self._ack(Op.LOAD)

    def run(self) -> tuple[int, int]:
        """Start the core on what is loaded; returns (CTRL status, result bytes stored)."""
        self._send(bytes([Op.RUN]))
        reply = self._recv(5, "RUN")
        self._ack(Op.RUN)
        status, stored = reply[0], int.from_bytes(reply[1:], "little")
        if status & 4:
            raise BoardError(f"the core refused the run: {Error(self.read_reg('ERROR')).name}")
        if status >> OVERFLOW_BIT & 1:
            raise BoardError(f"the run produced {stored} result bytes; the result memory holds "
                             f"{self.info.result_bytes}")
        return status, stored

    def read_results(self, offset: int, count: int) -> bytes:
        self._send(bytes([Op.READ]) + offset.to_bytes(4, "little") + count.to_bytes(4, "little"))
        data = self._recv(count, "results")
        self._ack(Op.READ)
        return data

    # --- layer level ------------------------------------------------------------------------------------
    def _tiles_per_run(self, k: int, groups: int, requant: bool) -> tuple[int, int]:
        """(token tiles, channel tiles) per run that fit the board's memories."""
        info, lim = self.info, self.limits
        n_tiles = info.weight_depth // k
        m_tiles = info.act_depth // k
        res_word = word_bytes(self._core.result_layout)
        per_tile = result_words(lim.tokens, lim.channels, lim.requant_lanes if requant else 0, groups) * res_word
        if requant:
            n_tiles = min(n_tiles, info.scale_depth // groups)
        n_tiles = min(n_tiles, info.result_bytes // per_tile)
        if n_tiles == 0 or m_tiles == 0:
            raise ValueError(f"K = {k} does not fit this board: one channel tile needs {k} weight words "
                             f"(memory holds {info.weight_depth}) and {per_tile} result bytes (holds "
                             f"{info.result_bytes}), one token tile {k} activation words (holds {info.act_depth})")
        m_tiles = min(m_tiles, info.result_bytes // (per_tile * n_tiles))
        if requant:
            m_tiles = min(m_tiles, info.scale_depth // (groups * n_tiles))
        return m_tiles, n_tiles

    def _layer(self, x: np.ndarray, w: np.ndarray, group: int, a_bits: int,
               params: golden.RequantParams | None) -> np.ndarray:
        lim = self.limits
        if params is not None and not self.info.requant_lanes:
            raise ValueError("this board was built without the on-chip requantizer; use group_sums")
        m, k = x.shape
        n = w.shape[0]
        groups = k // group if group and k % group == 0 else 0
        m_run, n_run = self._tiles_per_run(k, max(groups, 1), params is not None)
        rows_per_run, cols_per_run = m_run * lim.tokens, n_run * lim.channels
        out = (np.zeros((m, n, groups), np.int64) if params is None else np.zeros((m, n), np.int8))
        for c0 in range(0, n, cols_per_run):
            w_blk = w[c0:c0 + cols_per_run]
            weights_loaded = False
            for r0 in range(0, max(m, 1), rows_per_run):
                x_blk = x[r0:r0 + rows_per_run]
                rq = None
                if params is not None:
                    rq = golden.RequantParams(np.asarray(params.wmul)[c0:c0 + cols_per_run],
                                              np.asarray(params.tmul).reshape(-1)[r0:r0 + rows_per_run],
                                              params.shift, params.out_bits, params.mult_bits)
                plan = prepare_run(x_blk, w_blk, group_size=group, a_bits=a_bits, limits=lim, requant=rq,
                                   with_expected=False)
                if plan.m_kept == 0:
                    continue
                mt, nt = plan.registers["M_TILES"], plan.registers["N_TILES"]
                for name, value in plan.registers.items():
                    self.write_reg(name, value)
                self.load(Memories.ACT, plan.act_words)
                if not weights_loaded:
                    self.load(Memories.WEIGHTS, plan.weight_words[:nt * k])
                    weights_loaded = True
                if params is not None:
                    self.load(Memories.SCALES, plan.scale_words)
                _, stored = self.run()
                self.stats.runs += 1
                self.stats.cycles += self.read_reg("CYCLES")
                raw = self.read_results(0, stored)
                out_blk = self._decode(raw, mt, nt, groups, params is not None)
                rows, cols = x_blk.shape[0], w_blk.shape[0]
                out[r0:r0 + rows, c0:c0 + cols] = out_blk[:rows, :cols]
        return out

    def _decode(self, raw: bytes, mt: int, nt: int, groups: int, requant: bool) -> np.ndarray:
        lim, layout = self.limits, self._core.result_layout
        nbytes = word_bytes(layout)
        words = [int.from_bytes(raw[i:i + nbytes], "little") for i in range(0, len(raw), nbytes)]
        vals = decode(layout, words)
        t, c = lim.tokens, lim.channels
        expected = result_words(t, c, lim.requant_lanes if requant else 0, groups, mt * nt)
        if len(words) != expected:
            raise BoardError(f"the board returned {len(words)} result words, expected {expected}")
        if requant:
            return words_to_outputs(vals, mt, nt, t, c)
        return tiles_to_sums(vals.reshape(-1, t, c), mt, nt, groups)

    def group_sums(self, x: torch.Tensor, w_packed: torch.Tensor, group: int, *, a_bits: int = 8,
                   keep: np.ndarray | None = None, **_ignored) -> torch.Tensor:
        """int32 ``(M, N, K // group)``: :func:`cpu.kernels.group_sums` computed on the board.  With a
        ``keep`` mask only the kept tokens are sent and their rows returned (the pruned ones cost nothing)."""
        xs, ws = _operands(x, w_packed)
        xs = kept_rows(xs, keep)
        return torch.from_numpy(self._layer(xs, ws, group, a_bits, None).astype(np.int32))

    def requantized_matmul(self, x: torch.Tensor, w_packed: torch.Tensor, group: int,
                           params: golden.RequantParams, *, a_bits: int = 8, **_ignored) -> torch.Tensor:
        """int8 ``(M, N)``: :func:`cpu.kernels.requantized_matmul`, requantized on the board when it has
        the output stage, else group sums from the board and :func:`golden.requantize` on the host."""
        xs, ws = _operands(x, w_packed)
        if self.info.requant_lanes:
            return torch.from_numpy(self._layer(xs, ws, group, a_bits, params))
        acc = self._layer(xs, ws, group, a_bits, None)
        return torch.from_numpy(golden.requantize(acc, params.wmul, params.tmul, params.shift, params.out_bits,
                                                  acc_bits=self.limits.acc_bits, mult_bits=params.mult_bits))

    def describe(self) -> str:
        i, lim = self.info, self.limits
        stage = f"requantizes on chip ({i.requant_lanes} lanes)" if i.requant_lanes else "returns group sums"
        return (f"TRIP core {lim.tokens} tokens × {lim.channels} channels at {i.clk_hz / 1e6:g} MHz, "
                f"K ≤ {i.max_k_total}, {stage}; link {i.baud} baud")


def _operands(x: torch.Tensor, w_packed: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(x, torch.Tensor) or x.dtype != torch.int8 or x.dim() != 2:
        raise ValueError(f"x must be a 2-D int8 tensor, got {getattr(x, 'dtype', type(x))} "
                         f"{tuple(getattr(x, 'shape', ()))}")
    if not isinstance(w_packed, torch.Tensor) or w_packed.dtype != torch.uint8 or w_packed.dim() != 2:
        raise ValueError("w_packed must be a 2-D uint8 tensor of packed int4 pairs (cpu.kernels.pack_weights)")
    if x.shape[1] != 2 * w_packed.shape[1]:
        raise ValueError(f"shape mismatch: x has K = {x.shape[1]}, w_packed holds K = {2 * w_packed.shape[1]}")
    return x.numpy().astype(np.int64), golden.unpack_int4(w_packed.numpy()).astype(np.int64)

