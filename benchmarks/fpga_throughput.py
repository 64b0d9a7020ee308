"""FPGA throughput: compute-bound against UART-bound int4 MAC/s for one layer, per board, side by side.

For each board it takes, from ``python -m fpga.build``'s ``report.json`` (built with
``--build``, or found under ``build/fpga/<board>``), the achieved Fmax and the array's
MACs per cycle, and runs the real host driver (:class:`fpga.host.Board`) over the whole
layer (default 768×768, 128 tokens, A8, group 128) against :class:`TrafficCounter`: a
stand-in for the board that speaks the link protocol, stores nothing and returns zeros,
and counts every byte the driver sends and receives.  So the traffic, the number of runs
and the chunking are the driver's own; the compute cycles are :func:`sim.cycle_model.core_cycles`
per run (the model equals the RTL's CYCLES register on full-rate runs, tests/test_trip_core.py).

Printed per board: peak int4 MAC/s at Fmax, runs, bytes on the wire, UART seconds at the
link's baud rate (10 bits a byte), compute seconds at Fmax, and the end-to-end MAC/s with
its ratio to the compute-bound rate.

    python -m benchmarks.fpga_throughput [--boards icebreaker ulx3s-85f] [--build] [--m 128 --k 768 --n 768]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

import cpu.kernels as ck
import golden
from fpga.boards import BOARDS
from fpga.host import Board
from fpga.link import INFO_FIELDS, HostLink, Memories, Op, operand_layouts, result_words, word_bytes
from fpga.sizing import design_for
from hw.rtl.trip_sequencer import REGS
from sim.cycle_model import core_cycles

BUILD_ROOT = Path("build/fpga")
#: The Fmax targets (issue 5) each --build asks nextpnr for; a PLL makes them from the oscillator.
TARGET_MHZ = {"icebreaker": 40, "ulx3s-25f": 100, "ulx3s-45f": 100, "ulx3s-85f": 100}
#: The placement seed each --build uses (iCEBreaker at 40 MHz: seeds 1-3 gave 42.7, 42.6, 39.6 MHz).
SEED = {"icebreaker": 1}
REG_NAMES = {v: k for k, v in REGS.items()}


class TrafficCounter:
    """A pyserial-like port that answers the link protocol like a board of ``link``'s design, without
    computing: RUN reports the result bytes the real core would store, READ returns zeros, CYCLES is the
    cycle model's.  What it counts is what the host driver really puts on the wire."""

    def __init__(self, link: HostLink):
        self.link, self.core = link, link.core
        self.regs: dict[str, int] = {}
        self.inbox, self.outbox = bytearray(), bytearray()
        self.pending_load: int | None = None          # data bytes still expected after a LOAD go-ahead
        self.model_cycles = 0

    def write(self, data: bytes) -> int:
        self.inbox += data
        while self._step():
            pass
        return len(data)

    def read(self, n: int) -> bytes:
        out, self.outbox = bytes(self.outbox[:n]), self.outbox[n:]
        return out

    def _take(self, n: int) -> bytes | None:
        if len(self.inbox) < n:
            return None
        out, self.inbox = bytes(self.inbox[:n]), self.inbox[n:]
        return out

    def _step(self) -> bool:
        if self.pending_load is not None:
            if self._take(self.pending_load) is None:
                return False
            self.pending_load = None
            self.outbox.append(Op.LOAD)
            return True
        if not self.inbox:
            return False
        op = self.inbox[0]
        size = {Op.REG_WRITE: 6, Op.REG_READ: 2, Op.LOAD: 4, Op.RUN: 1, Op.READ: 9, Op.INFO: 1}[Op(op)]
        cmd = self._take(size)
        if cmd is None:
            return False
        if op == Op.INFO:
            self.outbox += b"".join(int(self.link.info[f]).to_bytes(4, "little") for f in INFO_FIELDS)
        elif op == Op.REG_WRITE:
            self.regs[REG_NAMES[cmd[1]]] = int.from_bytes(cmd[2:6], "little")
        elif op == Op.REG_READ:
            value = self.model_cycles if REG_NAMES[cmd[1]] == "CYCLES" else self.regs.get(REG_NAMES[cmd[1]], 0)
            self.outbox += value.to_bytes(4, "little")
        elif op == Op.LOAD:
            words = int.from_bytes(cmd[2:4], "little")
            self.pending_load = words * word_bytes(operand_layouts(self.core)[Memories(cmd[1])])
            self.outbox.append(Op.LOAD)                   # the go-ahead; the ack follows the data
            return True
        elif op == Op.RUN:
            self.outbox += bytes([2]) + self._run().to_bytes(4, "little")
        elif op == Op.READ:
            self.outbox += bytes(int.from_bytes(cmd[5:9], "little"))
        self.outbox.append(op)
        return True

    def _run(self) -> int:
        r, core = self.regs, self.core
        mt, nt, k, group = r["M_TILES"], r["N_TILES"], r["K"], r["GROUP"]
        self.model_cycles = core_cycles(
            m_kept=mt * core.tokens, k=k, n=nt * core.channels, group=group, a_bits=r["A_BITS"],
            tokens=core.tokens, channels=core.channels, latency=core.latency,
            requant_chunks=core.requant and core.requant.chunks, handover=core.array.handover)
        lanes = core.requant.lanes if core.requant else 0
        return result_words(core.tokens, core.channels, lanes, k // group, mt * nt) * word_bytes(core.result_layout)


def report_for(name: str, build: bool, root: Path = BUILD_ROOT) -> dict:
    path = root / name / "report.json"
    if build:
        subprocess.run([sys.executable, "-m", "fpga.build", "--board", name, "--out", str(root / name),
                        "--freq", str(TARGET_MHZ[name]), "--seed", str(SEED.get(name, 1)), "--allow-timing-fail"],
                       check=True)
    if not path.exists():
        raise SystemExit(f"no build report at {path}: run `python -m fpga.build --board {name}` first, "
                         f"or pass --build")
    return json.loads(path.read_text())


def measure(name: str, report: dict, m: int, k: int, n: int, a_bits: int, group: int) -> dict:
    spec = BOARDS[name]
    size = design_for(spec.device)
    fmax_hz = report["timing"]["fmax_mhz"] * 1e6
    baud = report["uart_baud"]
    port = TrafficCounter(HostLink(**size.link_args(), clk_hz=int(fmax_hz), baud=baud))
    board = Board(port)
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.integers(*golden.int_range(a_bits), (m, k), endpoint=True), dtype=torch.int8)
    w = ck.pack_weights(rng.integers(-8, 8, (n, k)))
    started = time.perf_counter()
    if board.info.requant_lanes:
        params = golden.requant_params(np.full((n, k // group), 0.01), np.full(m, 0.05), out_scale=1.0, out_bits=8)
        board.requantized_matmul(x, w, group, params, a_bits=a_bits)
    else:
        board.group_sums(x, w, group, a_bits=a_bits)
    host_s = time.perf_counter() - started
    st = board.stats
    wire_bytes = st.bytes_sent + st.bytes_received
    uart_s = wire_bytes * 10 / baud
    compute_s = st.cycles / fmax_hz
    macs = m * k * n
    peak = report["int4_macs_per_second_at_fmax"]
    return {"board": name, "fmax_mhz": fmax_hz / 1e6, "peak": peak, "runs": st.runs, "sent": st.bytes_sent,
            "received": st.bytes_received, "uart_s": uart_s, "compute_s": compute_s,
            "end_to_end": macs / (uart_s + compute_s), "host_s": host_s, "baud": baud}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--boards", nargs="+", default=["icebreaker", "ulx3s-85f"], choices=sorted(BOARDS))
    ap.add_argument("--build", action="store_true",
                    help="build each board's bitstream first, at its Fmax target (icebreaker ~2 min, ULX3S ~30)")
    ap.add_argument("--builds", type=Path, default=BUILD_ROOT,
                    help=f"folder with one build folder per board (default {BUILD_ROOT})")
    ap.add_argument("--m", type=int, default=128, help="tokens (default 128)")
    ap.add_argument("--k", type=int, default=768, help="input features (default 768)")
    ap.add_argument("--n", type=int, default=768, help="output features (default 768)")
    ap.add_argument("--a-bits", type=int, default=8, choices=(4, 8))
    ap.add_argument("--group", type=int, default=128)
    args = ap.parse_args()
    print(f"layer {args.k}→{args.n}, {args.m} tokens, A{args.a_bits}, group {args.group}: "
          f"{args.m * args.k * args.n / 1e6:.1f} M int4 MACs")
    print(f"{'board':12} {'Fmax':>8} {'peak MAC/s':>11} {'runs':>6} {'wire MB':>8} {'baud':>9} {'UART s':>8} "
          f"{'compute s':>9} {'end-to-end MAC/s':>17} {'of peak':>8}")
    for name in args.boards:
        r = measure(name, report_for(name, args.build, args.builds), args.m, args.k, args.n, args.a_bits, args.group)
        wire = (r["sent"] + r["received"]) / 1e6
        print(f"{name:12} {r['fmax_mhz']:7.2f}M {r['peak']:11.3g} {r['runs']:6d} {wire:8.2f} {r['baud']:9d} "
              f"{r['uart_s']:8.1f} {r['compute_s']:9.4f} {r['end_to_end']:17.3g} "
              f"{r['end_to_end'] / r['peak']:8.2%}")
        print(f"{'':12} sent {r['sent'] / 1e6:.2f} MB, received {r['received'] / 1e6:.2f} MB; "
              f"host driver took {r['host_s']:.1f} s to plan and encode")


if __name__ == "__main__":
    main()
