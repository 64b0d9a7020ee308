"""Simulation models of the vendor primitives our gateware instantiates, for co-simulating a netlist
elaborated for an FPGA family (``cosim(..., platform=...)``).

yosys ships ECP5's ``MULT18X18D`` and ``DCCA`` only as black boxes, so these are ours.  They model the
subset the components use and stop the simulation on anything else, rather than simulate a setting
they do not understand:

- ``DCCA``: ``CLKO = CLKI & CE`` (a global buffer with its enable; no glitch or skew model).
- ``MULT18X18D``: ``P = A · B`` on 18-bit ports, signed where ``SIGNEDA``/``SIGNEDB`` say, with the
  input, pipeline and output registers each on (``"CLK0"``: clocked by ``CLK0``, enabled by ``CE0``,
  synchronously cleared by ``RST0``) or off (``"NONE"``), as the ECP5 sysDSP user guide describes them.
  ``C``, the ``SOURCE``/``SRI``/``SRO`` shift chains and ``CLK1``–``CLK3`` are not modelled.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ECP5_MODELS", "FamilyOnly", "models_for"]


@dataclass(frozen=True)
class FamilyOnly:
    """Just enough of an amaranth-boards platform for ``elaborate()``: the FPGA family, which is what
    the components ask when they choose a vendor primitive (``FamilyOnly("ecp5")``)."""
    family: str


def _bits(prefix: str, n: int) -> str:
    return ", ".join(f"{prefix}{i}" for i in range(n))


def _concat(prefix: str, n: int) -> str:
    """``{P(n-1), ..., P0}``: the separate pins as one vector, most significant first."""
    return "{" + ", ".join(f"{prefix}{i}" for i in reversed(range(n))) + "}"


def _register_check(name: str) -> str:
    return (f'    initial if ({name} != "NONE" && {name} != "CLK0") begin\n'
            f'        $display("MULT18X18D model: {name} = %s is not modelled", {name}); $finish;\n'
            f'    end\n')


_MULT18X18D = f"""
module MULT18X18D #(
    parameter REG_INPUTA_CLK = "NONE", parameter REG_INPUTB_CLK = "NONE",
    parameter REG_PIPELINE_CLK = "NONE", parameter REG_OUTPUT_CLK = "NONE",
    parameter GSR = "ENABLED", parameter RESETMODE = "SYNC"
) (
    input {_bits("A", 18)},
    input {_bits("B", 18)},
    input {_bits("C", 18)},
    input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
    input CLK0, CE0, RST0,
    output {_bits("P", 36)}
);
{_register_check("REG_INPUTA_CLK")}{_register_check("REG_INPUTB_CLK")}\
{_register_check("REG_PIPELINE_CLK")}{_register_check("REG_OUTPUT_CLK")}
    wire [17:0] a_in = {_concat("A", 18)};
    wire [17:0] b_in = {_concat("B", 18)};
    reg [17:0] a_q = 0, b_q = 0;
    reg sa_q = 0, sb_q = 0;
    always @(posedge CLK0) if (RST0) begin a_q <= 0; b_q <= 0; sa_q <= 0; sb_q <= 0; end
        else if (CE0) begin a_q <= a_in; b_q <= b_in; sa_q <= SIGNEDA; sb_q <= SIGNEDB; end
    wire [17:0] a = REG_INPUTA_CLK == "NONE" ? a_in : a_q;
    wire [17:0] b = REG_INPUTB_CLK == "NONE" ? b_in : b_q;
    wire sa = REG_INPUTA_CLK == "NONE" ? SIGNEDA : sa_q;
    wire sb = REG_INPUTB_CLK == "NONE" ? SIGNEDB : sb_q;
    wire signed [35:0] a_ext = {{{{18{{sa & a[17]}}}}, a}};
    wire signed [35:0] b_ext = {{{{18{{sb & b[17]}}}}, b}};
    wire [35:0] product = a_ext * b_ext;
    reg [35:0] pipe_q = 0, out_q = 0;
    always @(posedge CLK0) if (RST0) pipe_q <= 0; else if (CE0) pipe_q <= product;
    wire [35:0] piped = REG_PIPELINE_CLK == "NONE" ? product : pipe_q;
    always @(posedge CLK0) if (RST0) out_q <= 0; else if (CE0) out_q <= piped;
    assign {_concat("P", 36)} = REG_OUTPUT_CLK == "NONE" ? piped : out_q;
endmodule
"""

_DCCA = """
module DCCA (input CLKI, input CE, output CLKO);
    assign CLKO = CLKI & CE;
endmodule
"""

#: Verilog models of the ECP5 primitives, by family.
ECP5_MODELS = _DCCA + _MULT18X18D


def models_for(platform) -> str:
    """The models a netlist elaborated for ``platform`` needs ("" off the FPGA families we model)."""
    family = getattr(platform, "family", None)
    if family is None:
        return ""
    if family == "ecp5":
        return ECP5_MODELS
    raise ValueError(f"no simulation models of {family!r} primitives; co-simulate with platform=None "
                     f"or add them to sim/vendor_models.py")
