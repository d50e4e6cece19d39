// A plain Verilog testbench for hwsim vectors (no cocotb): $readmemh one layer's hex files, drive one line
// per cycle, compare the output port with the expected lines, report mismatches. docs/rtl.md walks through it.
//
//   iverilog -g2005 -o tb.vvp -Ptb_readmemh.ROWS=32 ... -Ptb_readmemh.CYCLES=<manifest cycles.total> \
//       hwsim/rtl/systolic_array.v hwsim/rtl/tb_readmemh.v
//   vvp tb.vvp +prefix=DIR/conv1.            (reads DIR/conv1.left_data.hex, ...)
//
// Parameters are the manifest's rtl_parameters plus CYCLES (the layer's cycles.total).
`timescale 1ns / 1ps
module tb_readmemh;
    parameter ROWS = 4, COLS = 4, DATAFLOW = 0, L_BITS = 9, T_BITS = 9, ACC_BITS = 32, SATURATE = 0;
    parameter CYCLES = 16;

    reg clk = 1'b0, rst = 1'b1;
    reg [ROWS*L_BITS-1:0]   left_data_m  [0:CYCLES-1];
    reg [ROWS-1:0]          left_valid_m [0:CYCLES-1];
    reg [ROWS-1:0]          left_last_m  [0:CYCLES-1];
    reg [COLS*T_BITS-1:0]   top_data_m   [0:CYCLES-1];
    reg [0:0]               load_m       [0:CYCLES-1];
    reg [COLS*ACC_BITS-1:0] psum_in_m    [0:CYCLES-1];
    reg [COLS*ACC_BITS-1:0] out_data_m   [0:CYCLES-1];
    reg [COLS-1:0]          out_valid_m  [0:CYCLES-1];

    reg  [ROWS*L_BITS-1:0]   left_data = 0;
    reg  [ROWS-1:0]          left_valid = 0, left_last = 0;
    reg  [COLS*T_BITS-1:0]   top_data = 0;
    reg                      load = 1'b0;
    reg  [COLS*ACC_BITS-1:0] psum_in = 0;
    wire [COLS*ACC_BITS-1:0] out_data;
    wire [COLS-1:0]          out_valid;

    hwsim_systolic_array #(.ROWS(ROWS), .COLS(COLS), .DATAFLOW(DATAFLOW), .L_BITS(L_BITS), .T_BITS(T_BITS),
                           .ACC_BITS(ACC_BITS), .SATURATE(SATURATE)) dut (
        .clk(clk), .rst(rst), .left_data(left_data), .left_valid(left_valid), .left_last(left_last),
        .top_data(top_data), .load(load), .psum_in(psum_in), .out_data(out_data), .out_valid(out_valid));

    always #5 clk = ~clk;

    reg [1023:0] prefix;
    integer c, lane, bad, outs;
    initial begin
        if (!$value$plusargs("prefix=%s", prefix)) prefix = "";
        $readmemh({prefix, "left_data.hex"}, left_data_m);
        $readmemh({prefix, "left_valid.hex"}, left_valid_m);
        $readmemh({prefix, "top_data.hex"}, top_data_m);
        $readmemh({prefix, "out_data.hex"}, out_data_m);
        $readmemh({prefix, "out_valid.hex"}, out_valid_m);
        if (DATAFLOW == 0) $readmemh({prefix, "left_last.hex"}, left_last_m);
        else begin
            $readmemh({prefix, "load.hex"}, load_m);
            $readmemh({prefix, "psum_in.hex"}, psum_in_m);
        end
        bad = 0; outs = 0;
        @(negedge clk) rst = 1'b0;
        for (c = 0; c < CYCLES; c = c + 1) begin
            left_data = left_data_m[c];                     // line c is driven in cycle c ...
            left_valid = left_valid_m[c];
            top_data = top_data_m[c];
            if (DATAFLOW == 0) left_last = left_last_m[c];
            else begin load = load_m[c]; psum_in = psum_in_m[c]; end
            @(posedge clk) #1;                               // ... captured by edge c + 1
            for (lane = 0; lane < COLS; lane = lane + 1) begin
                if (out_valid[lane] !== out_valid_m[c][lane]
                    || (out_valid[lane] && out_data[lane*ACC_BITS +: ACC_BITS]
                                           !== out_data_m[c][lane*ACC_BITS +: ACC_BITS]))
                    bad = bad + 1;
                if (out_valid[lane]) outs = outs + 1;
            end
            @(negedge clk);
        end
        $display("hwsim vectors: cycles=%0d outputs=%0d mismatches=%0d", CYCLES, outs, bad);
        $finish;
    end
endmodule
