"""The boards ``python -m fpga.build`` knows: an amaranth-boards platform, its device's budget, its UART.

Adding a board is one entry: the platform class, the device key of
:data:`hw.sizes.DEVICES` that sizes the accelerator, and the link's default baud
rate.  Every entry needs a device with DSP blocks (the SIMD multiplier lives in them)
and a UART resource on the platform.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

__all__ = ["BOARDS", "Board", "board"]


@dataclass(frozen=True)
class Board:
    name: str
    platform: str          # "module:Class" inside amaranth_boards
    device: str            # key of hw.sizes.DEVICES
    description: str
    baud: int = 1_000_000

    def make_platform(self):
        module, cls = self.platform.split(":")
        return getattr(importlib.import_module(f"amaranth_boards.{module}"), cls)()


BOARDS = {b.name: b for b in (
    Board("icebreaker", "icebreaker:ICEBreakerPlatform", "ice40up5k", "1BitSquared iCEBreaker (iCE40UP5K, 12 MHz)"),
    Board("ulx3s-25f", "ulx3s:ULX3S_25F_Platform", "ecp5-25f", "Radiona ULX3S with LFE5U-25F (25 MHz)"),
    Board("ulx3s-45f", "ulx3s:ULX3S_45F_Platform", "ecp5-45f", "Radiona ULX3S with LFE5U-45F (25 MHz)"),
    Board("ulx3s-85f", "ulx3s:ULX3S_85F_Platform", "ecp5-85f", "Radiona ULX3S with LFE5U-85F (25 MHz)"),
)}


def board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        known = "\n".join(f"  {b.name:18} {b.description}" for b in BOARDS.values())
        raise SystemExit(f"unknown board {name!r}. Known boards:\n{known}") from None
