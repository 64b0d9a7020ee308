"""Run a cocotb bench against an Amaranth component on Verilator or Icarus.

One entry point, :func:`cosim`: it exports the component to Verilog, builds it
with cocotb's runner in a folder keyed by the Verilog text and the simulator
(so unchanged designs are not rebuilt), runs the bench module with a JSON
configuration, and returns what the bench reported.  A bench that fails, or a
run that executed no test, raises :class:`CosimFailed`.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog
from amaranth.lib import wiring

from .folder_lock import folder_lock
from .vendor_models import models_for
from .toolchain import SIMULATORS, require_simulator

__all__ = ["BENCH_CONFIG_ENV", "BUILD_ROOT", "CosimFailed", "CosimResult", "cosim", "bench_config"]

BENCH_CONFIG_ENV = "AGILEQ_BENCH_CONFIG"
BUILD_ROOT = Path(os.environ.get("AGILEQ_BUILD", Path(__file__).resolve().parent.parent / "build"))
_TIMESCALE = ("1ns", "1ps")   # Icarus needs one from the runner; Verilator accepts it too


class CosimFailed(AssertionError):
    """The co-simulation ran and some bench test failed, or no test ran at all."""


@dataclass(frozen=True)
class CosimResult:
    simulator: str
    tests: int
    failed: int
    build_seconds: float
    run_seconds: float
    report: dict          # what the bench wrote to report.json (counts, cycles, ...)


def bench_config() -> dict:
    """Inside a bench: the configuration :func:`cosim` passed in."""
    return json.loads(os.environ[BENCH_CONFIG_ENV])


def cosim(component: wiring.Component, *, toplevel: str, simulator: str, bench: str,
          config: dict, build_root: Path = BUILD_ROOT, quiet: bool = True, platform=None) -> CosimResult:
    """Co-simulate ``component`` with cocotb bench module ``bench`` (e.g. ``"sim.bench_simd_mul4"``).

    ``platform`` elaborates the netlist as for that FPGA family (its vendor primitive instances and all),
    simulated with the models in :mod:`sim.vendor_models`; ``None`` is the portable netlist.
    """
    from cocotb_tools.runner import get_runner
    from cocotb_tools.check_results import get_results

    if simulator not in SIMULATORS:
        raise ValueError(f"unknown simulator {simulator!r}; choose one of {SIMULATORS}")
    require_simulator(simulator)
    text = verilog.convert(component, name=toplevel, emit_src=False, platform=platform) + models_for(platform)
    key = hashlib.sha256((simulator + text).encode()).hexdigest()[:12]
    build_dir = Path(build_root) / "cosim" / f"{toplevel}-{simulator}-{key}"
    source = build_dir / f"{toplevel}.v"
    runner = get_runner(simulator)
    t0 = time.perf_counter()
    build_args = ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC"] if simulator == "verilator" else []
    with folder_lock(build_dir):      # another pytest worker may be building the same design
        if not source.exists() or source.read_text() != text:
            source.write_text(text)
        runner.build(sources=[source], hdl_toplevel=toplevel, build_dir=build_dir, always=False,
                     timescale=_TIMESCALE, build_args=build_args,
                     log_file=build_dir / "build.log" if quiet else None)
    t1 = time.perf_counter()
    run_id = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:10]
    test_dir = build_dir / f"run-{run_id}"
    report_path, results = test_dir / "report.json", test_dir / "results.xml"
    env = {BENCH_CONFIG_ENV: json.dumps({**config, "report": str(report_path)})}
    with folder_lock(test_dir):       # ... or running the same configuration
        report_path.unlink(missing_ok=True)
        results.unlink(missing_ok=True)
        try:
            runner.test(hdl_toplevel=toplevel, test_module=bench, build_dir=build_dir, test_dir=test_dir,
                        extra_env=env, results_xml=str(results), timescale=_TIMESCALE,
                        log_file=test_dir / "sim.log" if quiet else None)
        except SystemExit as exc:   # cocotb's runner exits the process on failures under pytest
            raise CosimFailed(f"{bench} on {simulator} failed (exit {exc.code}); "
                              f"log: {test_dir / 'sim.log'}") from None
        t2 = time.perf_counter()
        if not results.exists():
            raise CosimFailed(f"{bench} on {simulator} wrote no results; log: {test_dir / 'sim.log'}")
        tests, failed = get_results(results)
        if tests == 0 or failed:
            raise CosimFailed(f"{bench} on {simulator}: {failed} of {tests} test(s) failed; "
                              f"log: {test_dir / 'sim.log'}")
        report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return CosimResult(simulator, tests, failed, t1 - t0, t2 - t1, report)
