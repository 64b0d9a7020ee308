"""fpga.timing: arrival times and path classes from an SDF, checked on a design small enough to add by hand
(the agreement with nextpnr's own Fmax on a real build is in test_fpga_build)."""
import pytest

from fpga.timing import UNTIMED, main, parse_sdf, path_classes


def _flip_flop(name: str, clock_to_q_ps: int, setup_ps: dict[str, int]) -> str:
    """A TRELLIS_FF cell as nextpnr writes it: clock-to-out, and a setup check per timed input."""
    checks = "".join(f"      (SETUPHOLD (posedge {port}) (posedge CLK) ({ps}:{ps}:{ps}) (0:0:0))\n"
                     for port, ps in setup_ps.items())
    return (f'  (CELL\n    (CELLTYPE "TRELLIS_FF")\n    (INSTANCE {name})\n    (DELAY\n      (ABSOLUTE\n'
            f"        (IOPATH CLK Q ({clock_to_q_ps}:{clock_to_q_ps}:{clock_to_q_ps}) "
            f"({clock_to_q_ps}:{clock_to_q_ps}:{clock_to_q_ps}))\n      )\n    )\n"
            f"    (TIMINGCHECK\n{checks}    )\n  )\n")


# Two registers launch; a LUT joins them and a constant into acc_1; acc_2 takes a register directly; a DCCA puts
# an enable on a global net (nextpnr writes such a net's arcs with zero delay).  Delays in ps as nextpnr
# writes them, names escaped as it escapes them.
_WIRING = r"""(DELAYFILE
  (SDFVERSION "3.0")
  (DESIGN "top")
  (VENDOR "nextpnr")
  (PROGRAM "nextpnr")
  (DIVIDER /)
  (TIMESCALE 1ps)
  (CELL
    (CELLTYPE "top")
    (INSTANCE )
    (DELAY
      (ABSOLUTE
        (INTERCONNECT a\$ff/Q lut/A (1000:1000:1000) (1200:1200:1200))
        (INTERCONNECT b_ff/Q lut/B (300:300:300) (300:300:300))
        (INTERCONNECT \$PACKER_VCC/F lut/C (5000:5000:5000) (5000:5000:5000))
        (INTERCONNECT lut/F acc_1_ff/DI (500:500:500) (400:400:400))
        (INTERCONNECT a\$ff/Q acc_2_ff/DI (300:300:300) (300:300:300))
        (INTERCONNECT b_ff/Q en_global/CLKI (2000:2000:2000) (2000:2000:2000))
        (INTERCONNECT en_global/CLKO acc_1_ff/CE (0:0:0) (0:0:0))
        (INTERCONNECT en_global/CLKO acc_2_ff/CE (0:0:0) (0:0:0))
      )
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_COMB")
    (INSTANCE lut)
    (DELAY
      (ABSOLUTE
        (IOPATH B F (200:200:200) (200:200:200))
        (IOPATH C F (200:200:200) (200:200:200))
        (IOPATH A F (240:240:240) (250:250:250))
      )
    )
  )
  (CELL
    (CELLTYPE "VCC")
    (INSTANCE \$PACKER_VCC)
  )
  (CELL
    (CELLTYPE "DCCA")
    (INSTANCE en_global)
    (DELAY
      (ABSOLUTE
        (IOPATH CLKI CLKO (100:100:100) (100:100:100))
      )
    )
  )
"""
SDF = (_WIRING + _flip_flop(r"a\$ff", 520, {"DI": 80}) + _flip_flop("b_ff", 500, {"DI": 80})
       + _flip_flop("acc_1_ff", 520, {"DI": 80, "CE": 150}) + _flip_flop("acc_2_ff", 520, {"DI": 80, "CE": 150})
       + ")\n")


def test_arrivals_take_the_latest_input_and_the_slower_edge():
    timing = parse_sdf(SDF.splitlines())
    arrival, came_from = timing.arrivals()
    assert arrival["lut", "A"] == pytest.approx(0.52 + 1.2)           # the fall delay is the larger
    assert arrival["lut", "F"] == pytest.approx(0.52 + 1.2 + 0.25)    # through A, not B (1.0) nor the constant
    assert came_from["lut", "F"] == ("lut", "A") and came_from["lut", "A"] == ("a$ff", "Q")
    assert arrival["acc_1_ff", "DI"] == pytest.approx(2.47)
    assert arrival["acc_2_ff", "CE"] == pytest.approx(0.5 + 2.0 + 0.1)  # the global net itself is free
    assert arrival["a$ff", "DI"] == arrival["$PACKER_VCC", "F"] == UNTIMED     # no register reaches them


def test_path_classes_group_indices_and_rank_by_period():
    classes = path_classes(parse_sdf(SDF.splitlines()))
    assert [(c.name, c.endpoints) for c in classes] == [("acc_#_ff.CE", 2), ("acc_#_ff.DI", 2)]
    ce, di = classes[0], classes[1]
    assert ce.worst_ns == pytest.approx(2.6 + 0.15) and ce.fmax_mhz == pytest.approx(1000 / 2.75)
    assert di.worst_ns == pytest.approx(2.47 + 0.08)
    assert [pin for _, pin in di.path] == [("a$ff", "Q"), ("lut", "A"), ("lut", "F"), ("acc_1_ff", "DI")]
    assert [c.name for c in path_classes(parse_sdf(SDF.splitlines()), top=1)] == ["acc_#_ff.CE"]
    only_slow = path_classes(parse_sdf(SDF.splitlines()), min_ns=2.6)
    assert [(c.name, c.endpoints) for c in only_slow] == [("acc_#_ff.CE", 2)]


def test_cli_reports_and_refuses_what_is_not_a_routed_build(tmp_path, capsys):
    (tmp_path / "top.sdf").write_text(SDF)
    assert main([str(tmp_path), "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "2.75 ns (363.64 MHz)       2 endpoints  acc_#_ff.CE" in out
    assert "a$ff.Q" in out and "PACKER" not in out
    assert main([str(tmp_path), "--no-paths"]) == 0
    assert "lut.A" not in capsys.readouterr().out
    assert main([str(tmp_path / "nowhere")]) == 2
    assert "no SDF at" in capsys.readouterr().err
    assert main([str(tmp_path), "--top", "0"]) == 2
    assert "--top must be at least 1" in capsys.readouterr().err
    (tmp_path / "empty.sdf").write_text("(DELAYFILE\n)\n")
    assert main([str(tmp_path / "empty.sdf")]) == 2
    assert "no register inputs" in capsys.readouterr().err
