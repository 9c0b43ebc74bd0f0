#include "kernels/parallel.h"

#include <omp.h>

#include <atomic>

namespace sqz::kernels {

namespace {
std::atomic<int> g_threads{0};
}

void set_num_threads(int threads) { g_threads = threads < 0 ? 0 : threads; }
int num_threads() {
  int t = g_threads.load();
  return t > 0 ? t : omp_get_num_procs();
}
bool in_parallel() { return omp_in_parallel() != 0; }
int64_t omp_thread_index() { return omp_get_thread_num(); }
int64_t omp_team_size() { return omp_get_num_threads(); }

}  // namespace sqz::kernels
