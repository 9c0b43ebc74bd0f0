// Thread counts for libtorch work. libtorch's set_num_threads does not reach OpenBLAS (its BLAS
// on Debian), whose own pool defaults to one thread per core: without this a "1 thread" run
// still runs its matmuls on every core (measured: 2048x1024x1024 fp32 matmuls, CPU time 1.37x
// wall time under torch::set_num_threads(1) alone).
#pragma once
#include <string>
#include <vector>

namespace sqz {

// Sets libtorch's intra-op threads and, when OpenBLAS is loaded, OpenBLAS's threads to `threads`.
void set_torch_threads(int threads);

// libtorch's OpenMP threads spin after every parallel region (libgomp's default wait policy)
// while OpenBLAS's threads need the same cores: MLM training of the 4-layer teacher on 2 threads
// ran at 1493 tokens/s so, 2589 with OMP_WAIT_POLICY=passive, 1820 on one thread. libgomp reads
// the policy once, when it loads, so a libtorch-heavy command (train, compress) starts itself
// again with it set — unless the user set OMP_WAIT_POLICY, or exec fails (then it runs as is).
void reexec_with_passive_openmp(char** argv);

// How this process's OpenMP threads wait: OMP_WAIT_POLICY, or "default" when unset.
std::string openmp_wait_policy();

// Whether this process waits passively because reexec_with_passive_openmp set it (not the user).
bool openmp_passive_set_by_sqz();

// run_process's environment changes that give a child libgomp's default waiting again.
std::vector<std::string> openmp_default_env();

}  // namespace sqz
