// Thread counts for libtorch work. libtorch's set_num_threads does not reach OpenBLAS (its BLAS
// on Debian), whose own pool defaults to one thread per core: without this a "1 thread" run
// still runs its matmuls on every core (measured: 2048x1024x1024 fp32 matmuls, CPU time 1.37x
// wall time under torch::set_num_threads(1) alone).
#pragma once

namespace sqz {

// Sets libtorch's intra-op threads and, when OpenBLAS is loaded, OpenBLAS's threads to `threads`.
void set_torch_threads(int threads);

}  // namespace sqz
