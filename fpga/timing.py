"""Where a build's clock period goes: static timing over nextpnr's SDF, endpoint by endpoint.

    python -m fpga.timing build/fpga/ulx3s-85f              # the 15 slowest path classes
    python -m fpga.timing build/fpga/ulx3s-85f --top 40 --min-ns 12

nextpnr prints one critical path per clock.  A large design has thousands of
endpoints near it, and which structures they belong to decides what to change
next.  ``fpga.build`` has nextpnr write ``top.sdf`` (the delay of every routed
arc, and every cell's delays and setup times); this module recomputes the
arrival time at every register input from it, with nextpnr's own numbers, and
groups the endpoints into classes: a cell name with its indices replaced by
``#``, so the 12,288 accumulator bits of an array are one line.  Each class
shows how many endpoints it has, its worst arrival plus setup, and that path.

Like nextpnr's figure for the design clock, this is single-clock: every
register launches at 0 and captures at the next edge; paths from constants and
device inputs are not timed; and a net on an ECP5 global network costs nothing
(nextpnr gives those nets zero delay), so what a global enable costs is the
logic and routing in front of its ``DCCA``.
"""
from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

__all__ = ["UNTIMED", "PathClass", "SdfTiming", "main", "parse_sdf", "path_classes"]

Pin = tuple[str, str]           # (cell instance, port)
UNTIMED = float("-inf")         # the arrival of a pin no register reaches

_UNESCAPE = re.compile(r"\\(.)")
_TRIPLES = r"\(([^()]*)\)\s*\(([^()]*)\)"
_INTERCONNECT = re.compile(r"\(INTERCONNECT\s+(\S+)\s+(\S+)\s+" + _TRIPLES)
_IOPATH = re.compile(r"\(IOPATH\s+(\S+)\s+(\S+)\s+" + _TRIPLES)
_SETUPHOLD = re.compile(r"\(SETUPHOLD\s+\((?:posedge|negedge)\s+(\S+)\)\s+\((?:posedge|negedge)\s+(\S+)\)\s+"
                        r"\(([^()]*)\)")
_INSTANCE = re.compile(r"\(INSTANCE\s*([^)]*)\)")
_INDEX = re.compile(r"\d+")


def _name(text: str) -> str:
    return _UNESCAPE.sub(r"\1", text)


def _pin(text: str) -> Pin:
    cell, _, port = _name(text).rpartition("/")
    return cell, port


def _max_ns(*triples: str) -> float:
    """The largest max of SDF ``min:typ:max`` triples, which nextpnr writes in picoseconds."""
    return max(float(t.split(":")[-1]) for t in triples) / 1000.0


@dataclass
class SdfTiming:
    """The timing graph of one routed design."""
    fanin: dict[Pin, list[tuple[Pin, float]]]     # a pin's drivers and each arc's delay (ns)
    launch: dict[Pin, float]                       # register outputs: clock-to-out (ns)
    setup: dict[Pin, float]                        # register inputs: setup time (ns)

    def arrivals(self) -> tuple[dict[Pin, float], dict[Pin, Pin | None]]:
        """Latest arrival at every pin (:data:`UNTIMED` where no register reaches it), and the pin it came
        through."""
        arrival: dict[Pin, float] = {}
        came_from: dict[Pin, Pin | None] = {}
        for pin in self.setup:
            stack = [pin]
            while stack:
                p = stack[-1]
                if p in arrival:
                    stack.pop()
                    continue
                if p in self.launch:            # a register output starts a path
                    arrival[p], came_from[p] = self.launch[p], None
                    stack.pop()
                    continue
                waiting = [src for src, _ in self.fanin.get(p, ()) if src not in arrival]
                if waiting:
                    # a combinational loop would come back to a pin still on the stack: cut it there
                    for src in waiting:
                        if src in stack:
                            arrival[src], came_from[src] = UNTIMED, None
                    stack.extend(src for src in waiting if src not in arrival)
                    continue
                # A pin no register reaches (a constant, a device input) starts no path: nextpnr times
                # neither, and a constant's route into a carry chain is often long.
                best, via = UNTIMED, None
                for src, delay in self.fanin.get(p, ()):
                    if arrival[src] + delay > best:
                        best, via = arrival[src] + delay, src
                arrival[p], came_from[p] = best, via
                stack.pop()
        return arrival, came_from


def parse_sdf(lines: Iterable[str]) -> SdfTiming:
    """Read the SDF nextpnr writes (``--sdf``): one statement per line, delays in picoseconds."""
    fanin: dict[Pin, list[tuple[Pin, float]]] = defaultdict(list)
    launch: dict[Pin, float] = {}
    setup: dict[Pin, float] = {}
    cell: str | None = None
    clocks: set[str] = set()
    arcs: list[tuple[str, str, float]] = []

    def finish_cell() -> None:
        for src, dst, delay in arcs:
            if src in clocks:
                launch[cell, dst] = max(launch.get((cell, dst), 0.0), delay)
            else:
                fanin[cell, dst].append(((cell, src), delay))

    for line in lines:
        line = line.strip()
        if line.startswith("(INTERCONNECT"):
            m = _INTERCONNECT.match(line)
            fanin[_pin(m[2])].append((_pin(m[1]), _max_ns(m[3], m[4])))
        elif line.startswith("(INSTANCE"):
            if cell is not None:
                finish_cell()
            cell, clocks, arcs = _name(_INSTANCE.match(line)[1].strip()), set(), []
        elif line.startswith("(IOPATH"):
            m = _IOPATH.match(line)
            arcs.append((_name(m[1]), _name(m[2]), _max_ns(m[3], m[4])))
        elif line.startswith("(SETUPHOLD"):
            m = _SETUPHOLD.match(line)
            port, clock = _name(m[1]), _name(m[2])
            clocks.add(clock)
            setup[cell, port] = max(setup.get((cell, port), 0.0), _max_ns(m[3]))
    if cell is not None:
        finish_cell()
    if not setup:
        raise ValueError("no register inputs in this SDF (is it nextpnr's --sdf output of a routed design?)")
    return SdfTiming(dict(fanin), launch, setup)


@dataclass
class PathClass:
    """Endpoints whose cell names differ only in their indices, and the worst path into them."""
    name: str
    endpoints: int
    worst_ns: float                                 # arrival plus setup: the period this class needs
    path: list[tuple[float, Pin]]                   # (arrival, pin) from the launching register on

    @property
    def fmax_mhz(self) -> float:
        return 1000.0 / self.worst_ns if self.worst_ns > 0 else float("inf")


def _class_of(pin: Pin) -> str:
    return f"{_INDEX.sub('#', pin[0])}.{_INDEX.sub('#', pin[1])}"


def path_classes(timing: SdfTiming, *, top: int = 15, min_ns: float = 0.0) -> list[PathClass]:
    """The ``top`` endpoint classes by worst required period, counting only endpoints needing ``min_ns`` or more."""
    arrival, came_from = timing.arrivals()
    classes: dict[str, PathClass] = {}
    for pin, setup in timing.setup.items():
        need = arrival[pin] + setup
        if need == UNTIMED or need < min_ns:
            continue
        name = _class_of(pin)
        known = classes.get(name)
        if known is None:
            classes[name] = known = PathClass(name, 0, -1.0, [])
        known.endpoints += 1
        if need > known.worst_ns:
            known.worst_ns, known.path = need, _path_to(pin, arrival, came_from)
    return sorted(classes.values(), key=lambda c: -c.worst_ns)[:top]


def _path_to(pin: Pin, arrival: dict[Pin, float], came_from: dict[Pin, Pin | None]) -> list[tuple[float, Pin]]:
    path = []
    while pin is not None:
        path.append((arrival[pin], pin))
        pin = came_from[pin]
    return path[::-1]


def report(classes: list[PathClass], *, paths: bool = True) -> str:
    lines = []
    for c in classes:
        lines.append(f"{c.worst_ns:7.2f} ns ({c.fmax_mhz:6.2f} MHz)  {c.endpoints:6d} endpoints  {c.name}")
        if paths:
            for t, (cell, port) in c.path:
                lines.append(f"      {t:7.2f}  {cell}.{port}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m fpga.timing",
        description="Rank a routed build's register inputs by the clock period they need, grouped by "
                    "structure (cell names with indices as #), from the SDF that fpga.build has nextpnr write. "
                    "Shows each group's endpoint count and its worst path, arc by arc.")
    ap.add_argument("build", type=Path, help="a build folder of fpga.build (with top.sdf), or an SDF file")
    ap.add_argument("--top", type=int, default=15, help="how many classes to show (default %(default)s)")
    ap.add_argument("--min-ns", type=float, default=0.0,
                    help="count only endpoints that need at least this period, in ns (default: all)")
    ap.add_argument("--no-paths", action="store_true", help="one line per class, without its worst path")
    args = ap.parse_args(argv)
    sdf = args.build / "top.sdf" if args.build.is_dir() else args.build
    if not sdf.is_file():
        print(f"error: no SDF at {sdf}: build with `python -m fpga.build --board NAME --out "
              f"{args.build}` (it has nextpnr write top.sdf)", file=sys.stderr)
        return 2
    if args.top < 1:
        print(f"error: --top must be at least 1, not {args.top}", file=sys.stderr)
        return 2
    try:
        with sdf.open() as f:
            timing = parse_sdf(f)
    except (ValueError, TypeError) as e:
        print(f"error: {sdf}: {e}", file=sys.stderr)
        return 2
    print(report(path_classes(timing, top=args.top, min_ns=args.min_ns), paths=not args.no_paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
