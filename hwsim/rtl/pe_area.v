// Area-study modules for Yosys (hwsim/rtl/_area.py, docs/validation_area.md). The array's own PE is
// hwsim_pe in systolic_array.v; these are the parts the technology table prices separately.

// An A_BITS x B_BITS multiplier, signed (SIGNED = 1, the array's PE) or unsigned: the PE's multiplier alone,
// the technology table's int_mult (~ b_a * b_w).
module hwsim_mult #(parameter A_BITS = 8, parameter B_BITS = 8, parameter SIGNED = 1) (
    input  wire [A_BITS-1:0]        a,
    input  wire [B_BITS-1:0]        b,
    output wire [A_BITS+B_BITS-1:0] p
);
    generate
        if (SIGNED != 0) begin : g_s
            assign p = $signed(a) * $signed(b);
        end else begin : g_u
            assign p = a * b;
        end
    endgenerate
endmodule

// A Bit Fusion unit (Sharma et al., ISCA 2018, 45 nm): 16 BitBricks of 2x2 unsigned multipliers and a
// shift-add tree, fused by `mode` into one 8x8 product (mode 0), four 4x4 products (mode 1) or sixteen 2x2
// products (mode 2) per cycle, summed into an ACC_BITS accumulator. Unsigned operands (the paper's bricks
// also take a sign bit per operand; left out here, which makes this unit slightly smaller than theirs).
// a, w: mode 0 uses bits [7:0]; mode 1 four 4-bit values in [15:0]; mode 2 sixteen 2-bit values in [31:0].
module hwsim_fusion_pe #(parameter ACC_BITS = 32) (
    input  wire                clk,
    input  wire                rst,
    input  wire [1:0]          mode,
    input  wire [31:0]         a,
    input  wire [31:0]         w,
    output reg  [ACC_BITS-1:0] acc
);
    wire [15:0] term [0:15];
    genvar k;
    generate
        for (k = 0; k < 16; k = k + 1) begin : g_brick
            // brick k: in mode 0 slice (i, j) = (k / 4, k % 4) of the 8x8 product; in mode 1 slice
            // (i, j) = ((k % 4) / 2, k % 2) of product p = k / 4; in mode 2 product k of 2-bit values
            localparam integer I0 = k / 4, J0 = k % 4;
            localparam integer P1 = k / 4, I1 = (k % 4) / 2, J1 = k % 2;
            wire [1:0] x = (mode == 2'd2) ? a[2*k +: 2] : (mode == 2'd1) ? a[4*P1 + 2*I1 +: 2] : a[2*I0 +: 2];
            wire [1:0] y = (mode == 2'd2) ? w[2*k +: 2] : (mode == 2'd1) ? w[4*P1 + 2*J1 +: 2] : w[2*J0 +: 2];
            wire [3:0] prod = x * y;                   // the BitBrick: a 2x2 unsigned multiplier
            assign term[k] = (mode == 2'd2) ? {12'd0, prod}
                           : (mode == 2'd1) ? ({12'd0, prod} << (2 * (I1 + J1)))
                           : ({12'd0, prod} << (2 * (I0 + J0)));
        end
    endgenerate
    // the shift-add tree: 15 adders over the 16 shifted brick products
    wire [15:0] sum = term[0] + term[1] + term[2] + term[3] + term[4] + term[5] + term[6] + term[7]
                    + term[8] + term[9] + term[10] + term[11] + term[12] + term[13] + term[14] + term[15];
    always @(posedge clk) begin
        if (rst) acc <= 0;
        else acc <= acc + {{(ACC_BITS-16){1'b0}}, sum};
    end
endmodule

// The fixed-precision counterpart of hwsim_fusion_pe: one unsigned 8x8 multiplier and the same accumulator.
module hwsim_fixed8_pe #(parameter ACC_BITS = 32) (
    input  wire                clk,
    input  wire                rst,
    input  wire [7:0]          a,
    input  wire [7:0]          w,
    output reg  [ACC_BITS-1:0] acc
);
    always @(posedge clk) begin
        if (rst) acc <= 0;
        else acc <= acc + {{(ACC_BITS-16){1'b0}}, a * w};
    end
endmodule
