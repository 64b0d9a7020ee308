"""Simulation models of the vendor primitives our gateware instantiates, for co-simulating a netlist
elaborated for an FPGA family (``cosim(..., platform=...)``).

yosys ships ECP5's ``MULT18X18D``, ``DP16KD`` and ``DCCA`` only as black boxes, so these are ours.  They model the
subset the components use and stop the simulation on anything else, rather than simulate a setting
they do not understand:

- ``DCCA``: ``CLKO = CLKI & CE`` (a global buffer with its enable; no glitch or skew model).
- ``MULT18X18D``: ``P = A · B`` on 18-bit ports, signed where ``SIGNEDA``/``SIGNEDB`` say, with the
  input, pipeline and output registers each on (``"CLK0"``: clocked by ``CLK0``, enabled by ``CE0``,
  synchronously cleared by ``RST0``) or off (``"NONE"``), as the ECP5 sysDSP user guide describes them.
  ``C``, the ``SOURCE``/``SRI``/``SRO`` shift chains and ``CLK1``–``CLK3`` are not modelled.
- ``DP16KD``: both ports of one width (1, 2, 4, 9 or 18 bits, the word address on the top address pins, an
  18-bit write's two byte enables on ``ADA1``/``ADA0``; or 36 bits, the pseudo dual-port mode: written
  through both ports' data pins, ``ADA3``–``ADA0`` enabling its bytes, read at port B's address out of
  both ports' data pins, with both output registers alike), written through port A only, ``WRITEMODE``
  ``NORMAL`` (a write leaves the port's read data as it was), each port's read taken in a cycle its ``CE``
  is high, and with ``REGMODE`` ``OUTREG`` registered once more in a cycle its ``OCE`` is high, as the ECP5
  memory user guide describes them.  A read of the word port A writes in the same cycle gives the old word.
  The contents start at zero (no ``INITVAL``).  Chip selects other than ``0b000`` with all ``CS`` pins low,
  a write on port B and a reset are not modelled.
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


def _setting_check(primitive: str, name: str, *allowed: str) -> str:
    """Verilog that stops the simulation when parameter ``name`` is none of ``allowed``."""
    test = " && ".join(f'{name} != "{value}"' for value in allowed)
    return (f'    initial if ({test}) begin\n'
            f'        $display("{primitive} model: {name} = %s is not modelled", {name}); $finish;\n'
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
{_setting_check("MULT18X18D", "REG_INPUTA_CLK", "NONE", "CLK0")}\
{_setting_check("MULT18X18D", "REG_INPUTB_CLK", "NONE", "CLK0")}\
{_setting_check("MULT18X18D", "REG_PIPELINE_CLK", "NONE", "CLK0")}\
{_setting_check("MULT18X18D", "REG_OUTPUT_CLK", "NONE", "CLK0")}
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

def _dp16kd_read(port: str, width: str, data: str) -> str:
    """A port's read: the word at its address while ``CE`` is high and ``WE`` low, then its output register."""
    p = port.lower()
    return f"""
        wire [13:0] ad{p} = {_concat(f"AD{port}", 14)};
        reg [{width} - 1:0] read_{p} = 0, out_{p} = 0;
        always @(posedge CLK{port}) begin
            if (RST{port}) begin
                $display("DP16KD model: RST{port} is not modelled"); $finish;
            end
            if (CE{port} && !WE{port} && {{CS{port}2, CS{port}1, CS{port}0}} == 3'b000) read_{p} <= mem[ad{p}[13:LOW]];
            if (OCE{port}) out_{p} <= read_{p};
        end
        wire [{width} - 1:0] {data} = REGMODE_{port} == "OUTREG" ? out_{p} : read_{p};
"""


_DP16KD = f"""
module DP16KD #(
    parameter DATA_WIDTH_A = 18, parameter DATA_WIDTH_B = 18,
    parameter REGMODE_A = "NOREG", parameter REGMODE_B = "NOREG",
    parameter WRITEMODE_A = "NORMAL", parameter WRITEMODE_B = "NORMAL",
    parameter CSDECODE_A = "0b000", parameter CSDECODE_B = "0b000",
    parameter RESETMODE = "SYNC", parameter ASYNC_RESET_RELEASE = "SYNC", parameter GSR = "ENABLED"
) (
    input {_bits("DIA", 18)},
    input {_bits("ADA", 14)},
    input CEA, OCEA, CLKA, WEA, RSTA, CSA2, CSA1, CSA0,
    output {_bits("DOA", 18)},
    input {_bits("DIB", 18)},
    input {_bits("ADB", 14)},
    input CEB, OCEB, CLKB, WEB, RSTB, CSB2, CSB1, CSB0,
    output {_bits("DOB", 18)}
);
    localparam W = DATA_WIDTH_A;
    // the lowest address pin of the word address: the RAM holds 2 ** (14 - LOW) words
    localparam LOW = W == 1 ? 0 : W == 2 ? 1 : W == 4 ? 2 : W == 9 ? 3 : W == 18 ? 4 : 5;
    initial if (DATA_WIDTH_A != DATA_WIDTH_B || (W != 1 && W != 2 && W != 4 && W != 9 && W != 18 && W != 36)) begin
        $display("DP16KD model: DATA_WIDTH_A = %0d, DATA_WIDTH_B = %0d is not modelled", DATA_WIDTH_A,
                 DATA_WIDTH_B); $finish;
    end
{"".join(_setting_check("DP16KD", f"REGMODE_{p}", "NOREG", "OUTREG") for p in "AB")}\
{"".join(_setting_check("DP16KD", f"WRITEMODE_{p}", "NORMAL") for p in "AB")}\
{"".join(_setting_check("DP16KD", f"CSDECODE_{p}", "0b000") for p in "AB")}
    reg [W - 1:0] mem [0:(1 << (14 - LOW)) - 1];
    integer i;
    initial for (i = 0; i < (1 << (14 - LOW)); i = i + 1) mem[i] = 0;
    wire [35:0] di = {{{_concat("DIB", 18)}, {_concat("DIA", 18)}}};
    wire [13:0] ada_w = {_concat("ADA", 14)};
    wire write_a = CEA && WEA && {{CSA2, CSA1, CSA0}} == 3'b000;
    always @(posedge CLKB) if (CEB && WEB) begin
        $display("DP16KD model: a write on port B is not modelled"); $finish;
    end
    generate if (W == 36) begin : pseudo_dual_port
        // written through both ports' data pins, ADA3..ADA0 enabling its four 9-bit bytes; read at port B's
        // address, the low half out of DOA, both halves registered alike
        initial if (REGMODE_A != REGMODE_B) begin
            $display("DP16KD model: 36-bit mode with REGMODE_A != REGMODE_B is not modelled"); $finish;
        end
        always @(posedge CLKB) if (OCEA !== OCEB) begin
            $display("DP16KD model: 36-bit mode with OCEA != OCEB is not modelled"); $finish;
        end
        always @(posedge CLKA) if (write_a) begin
            if (ada_w[0]) mem[ada_w[13:LOW]][8:0] <= di[8:0];
            if (ada_w[1]) mem[ada_w[13:LOW]][17:9] <= di[17:9];
            if (ada_w[2]) mem[ada_w[13:LOW]][26:18] <= di[26:18];
            if (ada_w[3]) mem[ada_w[13:LOW]][35:27] <= di[35:27];
        end
{_dp16kd_read("B", "36", "do_b")}
        assign {{{_concat("DOB", 18)}, {_concat("DOA", 18)}}} = do_b;
    end else begin : true_dual_port
        // written through port A (an 18-bit word's two 9-bit bytes enabled by ADA1 / ADA0), read by both
        if (W == 18) begin : bytes
            always @(posedge CLKA) if (write_a) begin
                if (ada_w[0]) mem[ada_w[13:LOW]][8:0] <= di[8:0];
                if (ada_w[1]) mem[ada_w[13:LOW]][17:9] <= di[17:9];
            end
        end else begin : words
            always @(posedge CLKA) if (write_a) mem[ada_w[13:LOW]] <= di[W - 1:0];
        end
{_dp16kd_read("A", "18", "do_a")}{_dp16kd_read("B", "18", "do_b")}
        assign {_concat("DOA", 18)} = do_a;
        assign {_concat("DOB", 18)} = do_b;
    end endgenerate
endmodule
"""

_DCCA = """
module DCCA (input CLKI, input CE, output CLKO);
    assign CLKO = CLKI & CE;
endmodule
"""

#: Verilog models of the ECP5 primitives, by family.
ECP5_MODELS = _DCCA + _MULT18X18D + _DP16KD


def models_for(platform) -> str:
    """The models a netlist elaborated for ``platform`` needs ("" off the FPGA families we model)."""
    family = getattr(platform, "family", None)
    if family is None:
        return ""
    if family == "ecp5":
        return ECP5_MODELS
    raise ValueError(f"no simulation models of {family!r} primitives; co-simulate with platform=None "
                     f"or add them to sim/vendor_models.py")
