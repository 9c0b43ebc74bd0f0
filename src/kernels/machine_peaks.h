// What this machine can do at most, measured rather than assumed, so that kernel and engine
// speeds can be read as a fraction of it: the multiply-add peaks of one core with accumulators
// that provably stay in registers (the loops are inline assembly: a compiler may otherwise copy
// each accumulator between registers after every instruction and halve the rate), and the DRAM
// bandwidth of a STREAM triad. Each figure is measured once per process (best of several short
// runs) and cached; `threads` > 1 runs the loop on that many of the kernels' threads at once and
// sums their rates (what the cores reach together, not one core times the count).
#pragma once
#include <cstdint>

namespace sqz::kernels {

// int8 multiply-adds (vpdpbusd zmm), GOP/s, 2 ops per multiply-add; 0 without AVX-512 VNNI.
double int8_peak_gops(int threads = 1);
// AMX-INT8 tile multiply-adds (tdpbusd on 4 accumulator tiles), GOP/s; 0 where
// amx_int8_enabled() is false.
double amx_int8_peak_gops(int threads = 1);
// AMX-BF16 tile multiply-adds (tdpbf16ps on 4 accumulator tiles), GFLOP/s; 0 where
// amx_bf16_enabled() is false.
double amx_bf16_peak_gflops(int threads = 1);
// fp32 FMA at the widest vector the fp32 kernels use (zmm with AVX-512, else ymm), GFLOP/s.
double fp32_peak_gflops(int threads = 1);
// bf16 dot products (vdpbf16ps zmm), GFLOP/s; 0 without AVX-512 BF16.
double bf16_peak_gflops(int threads = 1);
// STREAM triad a = b + s c over 3 arrays of 256 MiB (beyond every cache), GB/s counting 12 bytes
// per element (two reads and one write, as STREAM counts them).
double triad_bandwidth_gbps(int threads = 1);

// One run of each loop (for micro-benchmarks that time them themselves): `iterations` rounds of
// 12 independent instructions; returns the operations done.
double run_int8_peak_loop(int64_t iterations);
double run_fp32_peak_loop(int64_t iterations);
double run_bf16_peak_loop(int64_t iterations);
double run_amx_int8_peak_loop(int64_t iterations);  // 4 tdpbusd (16 x 16 x 64 each) per iteration
double run_amx_bf16_peak_loop(int64_t iterations);  // 4 tdpbf16ps (16 x 16 x 32 each) per iteration

}  // namespace sqz::kernels
