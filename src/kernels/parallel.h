// The kernels' thread pool: OpenMP's (the same runtime libtorch already links), with a thread
// count of our own so that libtorch's setting does not leak in. Work is split statically, so a
// result never depends on timing: every output element is computed by one thread, in one order.
#pragma once
#include <cstdint>

namespace sqz::kernels {

// 0 = every core OpenMP sees. Set by the runtime and `sqz bench --threads`.
void set_num_threads(int threads);
int num_threads();
// True inside a parallel region (nested calls then run serially on the calling thread).
bool in_parallel();

// Thin wrappers so that the header does not need <omp.h>.
int64_t omp_thread_index();
int64_t omp_team_size();

// fn(begin, end) on contiguous chunks of [0, n), one chunk per thread.
template <typename Fn>
void parallel_for(int64_t n, Fn&& fn) {
  const int threads = num_threads();
  if (n <= 0) return;
  if (threads <= 1 || n == 1 || in_parallel()) {
    fn(int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_thread_index(), nt = omp_team_size();
    const int64_t begin = n * t / nt, end = n * (t + 1) / nt;
    if (begin < end) fn(begin, end);
  }
}

}  // namespace sqz::kernels
