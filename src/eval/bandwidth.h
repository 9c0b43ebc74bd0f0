// Sustained DRAM read bandwidth of this machine, the floor of batch-1 decoding (every weight is
// read once per token).
#pragma once

namespace sqz::eval {

// GB/s with the kernels' threads: the best of 3 sums over 512 MiB (far beyond every cache).
double measure_read_bandwidth_gbps();

}  // namespace sqz::eval
