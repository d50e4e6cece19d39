// hwsim reference systolic array (Verilog-2005): ROWS x COLS PEs, dataflow os / ws / is, signed operands,
// ACC_BITS-bit accumulators that wrap or saturate. It is, register for register, the machine that
// hwsim/datapath/_systolic.py steps in Python; docs/rtl.md describes the ports and the vectors that drive it.
//
// Cycle convention: the inputs driven in cycle c are captured by rising edge c + 1; out_data/out_valid are
// registers, valid right after the edge that wrote them.
//
// DATAFLOW 0 (os): a streams in from the left (left_data, left_valid, left_last per row), b from the top
//   (top_data per column). PE (i, j) accumulates left x top; on a valid operand with left_last set it writes
//   the finished sum into its output register and clears its accumulator. Output registers form one chain per
//   column that moves up one row per edge; row 0's output registers are the port.
// DATAFLOW 1 (ws) and 2 (is): the same hardware (which operand is stationary is the vectors' business: ws holds
//   weights, is holds inputs). While load is high the stationary registers shift down one row per edge, taking
//   top_data at row 0. The streamed operand enters from the left (left_data, left_valid) and moves right; each
//   PE adds left x stationary to the partial sum from above (psum_in at row 0) and passes it down; the bottom
//   row's partial-sum registers are the port.
//
// Buses are packed lane 0 in the least significant bits: left_* has ROWS lanes, top_data/psum_in/out_* COLS.
// Operands are the zero-shifted values (code - zero point), two's complement, L_BITS / T_BITS wide.

module hwsim_pe #(
    parameter DATAFLOW = 0,
    parameter L_BITS = 9,
    parameter T_BITS = 9,
    parameter ACC_BITS = 32,
    parameter SATURATE = 0
) (
    input  wire                       clk,
    input  wire                       rst,
    input  wire signed [L_BITS-1:0]   l_in,
    input  wire                       l_valid_in,
    input  wire                       l_last_in,
    output reg  signed [L_BITS-1:0]   l_out,
    output reg                        l_valid_out,
    output reg                        l_last_out,
    input  wire signed [T_BITS-1:0]   t_in,
    output wire signed [T_BITS-1:0]   t_out,
    input  wire                       load,
    input  wire signed [ACC_BITS-1:0] p_in,        // os: output chain from below; ws/is: partial sum from above
    input  wire                       p_valid_in,
    output reg  signed [ACC_BITS-1:0] p_out,
    output reg                        p_valid_out
);
    localparam PW = L_BITS + T_BITS;
    localparam SW = ((ACC_BITS > PW) ? ACC_BITS : PW) + 1;
    localparam signed [SW-1:0] AMAX = {{(SW - ACC_BITS + 1){1'b0}}, {(ACC_BITS - 1){1'b1}}};
    localparam signed [SW-1:0] AMIN = {{(SW - ACC_BITS + 1){1'b1}}, {(ACC_BITS - 1){1'b0}}};

    reg  signed [T_BITS-1:0]   t_reg;     // os: the b operand passing down; ws/is: the stationary operand
    reg  signed [ACC_BITS-1:0] acc;       // os only
    wire signed [T_BITS-1:0]   mul_t = (DATAFLOW == 0) ? t_in : t_reg;
    wire signed [PW-1:0]       prod = l_in * mul_t;
    wire signed [ACC_BITS-1:0] addend = (DATAFLOW == 0) ? acc : p_in;
    wire signed [SW-1:0]       addend_x = {{(SW - ACC_BITS){addend[ACC_BITS-1]}}, addend};  // sign-extended
    wire signed [SW-1:0]       prod_x = {{(SW - PW){prod[PW-1]}}, prod};
    wire signed [SW-1:0]       sum_x = addend_x + prod_x;
    wire signed [ACC_BITS-1:0] nxt = (SATURATE != 0) ?
        ((sum_x > AMAX) ? AMAX[ACC_BITS-1:0] : ((sum_x < AMIN) ? AMIN[ACC_BITS-1:0] : sum_x[ACC_BITS-1:0]))
        : sum_x[ACC_BITS-1:0];

    assign t_out = t_reg;

    always @(posedge clk) begin
        if (rst) begin
            l_out <= 0; l_valid_out <= 1'b0; l_last_out <= 1'b0;
            t_reg <= 0; acc <= 0; p_out <= 0; p_valid_out <= 1'b0;
        end else begin
            l_out <= l_in;
            l_valid_out <= l_valid_in;
            l_last_out <= l_last_in;
            if (DATAFLOW == 0) begin
                t_reg <= t_in;
                if (l_valid_in && l_last_in) begin
                    p_out <= nxt;
                    p_valid_out <= 1'b1;
                    acc <= 0;
                end else begin
                    p_out <= p_in;
                    p_valid_out <= p_valid_in;
                    if (l_valid_in) acc <= nxt;
                end
            end else begin
                if (load) t_reg <= t_in;
                p_out <= l_valid_in ? nxt : {ACC_BITS{1'b0}};
                p_valid_out <= l_valid_in;
            end
        end
    end
endmodule

module hwsim_systolic_array #(
    parameter ROWS = 4,
    parameter COLS = 4,
    parameter DATAFLOW = 0,   // 0 os, 1 ws, 2 is
    parameter L_BITS = 9,     // streamed-from-the-left operand width (os: a; ws: a; is: b)
    parameter T_BITS = 9,     // top operand width (os: b streamed; ws: b stationary; is: a stationary)
    parameter ACC_BITS = 32,
    parameter SATURATE = 0    // 0 wrap, 1 saturate after every addition
) (
    input  wire                     clk,
    input  wire                     rst,
    input  wire [ROWS*L_BITS-1:0]   left_data,
    input  wire [ROWS-1:0]          left_valid,
    input  wire [ROWS-1:0]          left_last,    // os only
    input  wire [COLS*T_BITS-1:0]   top_data,
    input  wire                     load,         // ws/is only
    input  wire [COLS*ACC_BITS-1:0] psum_in,      // ws/is only
    output wire [COLS*ACC_BITS-1:0] out_data,
    output wire [COLS-1:0]          out_valid
);
    // horizontal nets: index r * (COLS + 1) + c is the input of PE (r, c); c = COLS is row r's right end
    wire [L_BITS-1:0]   lh  [0:ROWS*(COLS+1)-1];
    wire                lvh [0:ROWS*(COLS+1)-1];
    wire                llh [0:ROWS*(COLS+1)-1];
    // vertical nets: index r * COLS + c is the input of PE (r, c) from above; r = ROWS is the bottom end
    wire [T_BITS-1:0]   tv  [0:(ROWS+1)*COLS-1];
    // PE (r, c)'s partial-sum / output register
    wire [ACC_BITS-1:0] pr  [0:ROWS*COLS-1];
    wire                pvr [0:ROWS*COLS-1];

    genvar r, c;
    generate
        for (r = 0; r < ROWS; r = r + 1) begin : g_left
            assign lh[r*(COLS+1)]  = left_data[r*L_BITS +: L_BITS];
            assign lvh[r*(COLS+1)] = left_valid[r];
            assign llh[r*(COLS+1)] = left_last[r];
        end
        for (c = 0; c < COLS; c = c + 1) begin : g_top
            assign tv[c] = top_data[c*T_BITS +: T_BITS];
            if (DATAFLOW == 0) begin : g_port_os
                assign out_data[c*ACC_BITS +: ACC_BITS] = pr[c];
                assign out_valid[c] = pvr[c];
            end else begin : g_port_ws
                assign out_data[c*ACC_BITS +: ACC_BITS] = pr[(ROWS-1)*COLS + c];
                assign out_valid[c] = pvr[(ROWS-1)*COLS + c];
            end
        end
        for (r = 0; r < ROWS; r = r + 1) begin : g_row
            for (c = 0; c < COLS; c = c + 1) begin : g_col
                wire [ACC_BITS-1:0] p_in;
                wire                p_valid_in;
                if (DATAFLOW == 0) begin : g_chain_up
                    if (r == ROWS - 1) begin : g_bottom
                        assign p_in = {ACC_BITS{1'b0}};
                        assign p_valid_in = 1'b0;
                    end else begin : g_inner
                        assign p_in = pr[(r+1)*COLS + c];
                        assign p_valid_in = pvr[(r+1)*COLS + c];
                    end
                end else begin : g_chain_down
                    if (r == 0) begin : g_top_row
                        assign p_in = psum_in[c*ACC_BITS +: ACC_BITS];
                        assign p_valid_in = 1'b1;
                    end else begin : g_inner
                        assign p_in = pr[(r-1)*COLS + c];
                        assign p_valid_in = pvr[(r-1)*COLS + c];
                    end
                end
                hwsim_pe #(.DATAFLOW(DATAFLOW), .L_BITS(L_BITS), .T_BITS(T_BITS), .ACC_BITS(ACC_BITS),
                           .SATURATE(SATURATE)) pe (
                    .clk(clk), .rst(rst),
                    .l_in(lh[r*(COLS+1)+c]), .l_valid_in(lvh[r*(COLS+1)+c]), .l_last_in(llh[r*(COLS+1)+c]),
                    .l_out(lh[r*(COLS+1)+c+1]), .l_valid_out(lvh[r*(COLS+1)+c+1]),
                    .l_last_out(llh[r*(COLS+1)+c+1]),
                    .t_in(tv[r*COLS+c]), .t_out(tv[(r+1)*COLS+c]),
                    .load(load),
                    .p_in(p_in), .p_valid_in(p_valid_in), .p_out(pr[r*COLS+c]), .p_valid_out(pvr[r*COLS+c])
                );
            end
        end
    endgenerate
endmodule
