#include "eval/bandwidth.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "core/progress.h"
#include "kernels/cpu_isa.h"
#include "kernels/parallel.h"

namespace sqz::eval {

namespace {

// A sum that the loads, not the adds, limit: 32 independent lanes with AVX2.
__attribute__((target("avx2"))) double read_sum_avx2(const float* p, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + i + 24));
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  double s = 0;
  for (float v : lanes) s += v;
  for (; i < n; ++i) s += p[i];
  return s;
}

double read_sum(const float* p, int64_t n) {
  if (kernels::active_isa() != kernels::Isa::kRef) return read_sum_avx2(p, n);
  double s = 0;  // without AVX2 the adds may limit: the figure is then a lower bound
  for (int64_t i = 0; i < n; ++i) s += p[i];
  return s;
}

}  // namespace

double measure_read_bandwidth_gbps() {
  const int64_t n = int64_t{1} << 27;
  std::vector<float> buf(static_cast<size_t>(n), 1.0f);
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    std::vector<double> partial(static_cast<size_t>(kernels::num_threads()) + 1, 0.0);
    auto t0 = std::chrono::steady_clock::now();
    kernels::parallel_for(n, [&](int64_t begin, int64_t end) {
      partial[static_cast<size_t>(kernels::omp_thread_index())] += read_sum(buf.data() + begin, end - begin);
    });
    const double sec = seconds_since(t0);
    if (partial[0] < 0) return 0;  // keeps the sums alive
    best = std::max(best, static_cast<double>(n) * 4.0 / sec / 1e9);
  }
  return best;
}

}  // namespace sqz::eval
