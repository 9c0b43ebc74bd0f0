#include "kernels/machine_peaks.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>

#include "kernels/amx_tiles.h"
#include "kernels/cpu_isa.h"
#include "kernels/parallel.h"

namespace sqz::kernels {

namespace {

// 12 independent accumulators (enough to cover the instruction latency times the ports on every
// core sqz meets), each updated in place by one instruction per round.
#define SQZ_TWELVE(insn)                                                                                           \
  asm volatile(insn " %[a], %[a], %[c0]\n\t" insn " %[a], %[a], %[c1]\n\t" insn " %[a], %[a], %[c2]\n\t" insn     \
                    " %[a], %[a], %[c3]\n\t" insn " %[a], %[a], %[c4]\n\t" insn " %[a], %[a], %[c5]\n\t" insn      \
                    " %[a], %[a], %[c6]\n\t" insn " %[a], %[a], %[c7]\n\t" insn " %[a], %[a], %[c8]\n\t" insn      \
                    " %[a], %[a], %[c9]\n\t" insn " %[a], %[a], %[c10]\n\t" insn " %[a], %[a], %[c11]\n\t"         \
               : [c0] "+v"(c0), [c1] "+v"(c1), [c2] "+v"(c2), [c3] "+v"(c3), [c4] "+v"(c4), [c5] "+v"(c5),       \
                 [c6] "+v"(c6), [c7] "+v"(c7), [c8] "+v"(c8), [c9] "+v"(c9), [c10] "+v"(c10), [c11] "+v"(c11)     \
               : [a] "v"(a))

__attribute__((target("avx512f,avx512vnni"))) void int8_loop(int64_t iterations) {
  __m512i a = _mm512_set1_epi32(0x01010101), c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0,
          c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
  for (int64_t i = 0; i < iterations; ++i) SQZ_TWELVE("vpdpbusd");
}

__attribute__((target("avx512f,avx512bf16"))) void bf16_loop(int64_t iterations) {
  __m512 a = _mm512_set1_ps(1e-9f), c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0,
         c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
  for (int64_t i = 0; i < iterations; ++i) SQZ_TWELVE("vdpbf16ps");
}

__attribute__((target("avx512f"))) void fp32_loop_avx512(int64_t iterations) {
  __m512 a = _mm512_set1_ps(1e-9f), c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0,
         c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
  for (int64_t i = 0; i < iterations; ++i) SQZ_TWELVE("vfmadd231ps");
}

__attribute__((target("avx2,fma"))) void fp32_loop_avx2(int64_t iterations) {
  __m256 a = _mm256_set1_ps(1e-9f), c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0,
         c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
  for (int64_t i = 0; i < iterations; ++i) SQZ_TWELVE("vfmadd231ps");
}
#undef SQZ_TWELVE

// 4 accumulator tiles updated from the same 2 operand tiles: the tile unit's throughput with no
// loads (the tiles stay in the tile registers). The operands hold ones (bf16 1.0 pairs, int8 1
// bytes), not zeros: on the Xeon measured here zero tiles ran 25% faster than real data.
template <bool kBf16>
__attribute__((target("amx-tile,amx-int8,amx-bf16"))) void amx_loop(int64_t iterations) {
  alignas(64) uint32_t ones[256];
  std::fill(std::begin(ones), std::end(ones), kBf16 ? 0x3F803F80u : 0x01010101u);
  amx::configure_16x64_tiles(6);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, ones, 64);
  _tile_loadd(5, ones, 64);
  for (int64_t i = 0; i < iterations; ++i) {
    if constexpr (kBf16) {
      _tile_dpbf16ps(0, 4, 5);
      _tile_dpbf16ps(1, 4, 5);
      _tile_dpbf16ps(2, 4, 5);
      _tile_dpbf16ps(3, 4, 5);
    } else {
      _tile_dpbusd(0, 4, 5);
      _tile_dpbusd(1, 4, 5);
      _tile_dpbusd(2, 4, 5);
      _tile_dpbusd(3, 4, 5);
    }
  }
  _tile_release();
}

double seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Best rate of `run` (returns the operations it did) over 5 tries, `threads` running it at once.
template <typename Run>
double best_rate(int threads, Run&& run) {
  const int previous = num_threads();
  set_num_threads(threads);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    std::vector<double> ops(static_cast<size_t>(threads), 0.0), secs(ops);
    parallel_for(threads, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const auto start = std::chrono::steady_clock::now();
        ops[static_cast<size_t>(t)] = run();
        secs[static_cast<size_t>(t)] = seconds(start);
      }
    });
    double rate = 0;
    for (size_t t = 0; t < ops.size(); ++t) rate += ops[t] / secs[t];
    best = std::max(best, rate);
  }
  set_num_threads(previous);
  return best;
}

// Measured once per (figure, threads).
template <typename Measure>
double cached(int figure, int threads, Measure&& measure) {
  static std::mutex mu;
  static std::map<std::pair<int, int>, double> values;
  std::lock_guard<std::mutex> lock(mu);
  const auto key = std::make_pair(figure, std::max(1, threads));
  auto it = values.find(key);
  if (it == values.end()) it = values.emplace(key, measure(key.second)).first;
  return it->second;
}

constexpr int64_t kPeakRounds = 2'000'000;  // ~5 ms per run at 1 TOP/s

}  // namespace

double run_amx_int8_peak_loop(int64_t iterations) {
  if (!amx_int8_enabled()) return 0;
  amx_loop<false>(iterations);
  return 4.0 * 2.0 * 16 * 16 * 64 * static_cast<double>(iterations);
}

double run_amx_bf16_peak_loop(int64_t iterations) {
  if (!amx_bf16_enabled()) return 0;
  amx_loop<true>(iterations);
  return 4.0 * 2.0 * 16 * 16 * 32 * static_cast<double>(iterations);
}

double run_int8_peak_loop(int64_t iterations) {
  int8_loop(iterations);
  return 12.0 * 128.0 * static_cast<double>(iterations);
}
double run_bf16_peak_loop(int64_t iterations) {
  bf16_loop(iterations);
  return 12.0 * 64.0 * static_cast<double>(iterations);
}
double run_fp32_peak_loop(int64_t iterations) {
  if (cpu_max_isa() == Isa::kAvx512Vnni) {
    fp32_loop_avx512(iterations);
    return 12.0 * 32.0 * static_cast<double>(iterations);
  }
  fp32_loop_avx2(iterations);
  return 12.0 * 16.0 * static_cast<double>(iterations);
}

double int8_peak_gops(int threads) {
  if (cpu_max_isa() != Isa::kAvx512Vnni) return 0;
  return cached(0, threads, [](int t) { return best_rate(t, [] { return run_int8_peak_loop(kPeakRounds); }) / 1e9; });
}

double amx_int8_peak_gops(int threads) {
  if (!amx_int8_enabled()) return 0;
  return cached(4, threads, [](int t) { return best_rate(t, [] { return run_amx_int8_peak_loop(kPeakRounds / 16); }) / 1e9; });
}

double amx_bf16_peak_gflops(int threads) {
  if (!amx_bf16_enabled()) return 0;
  return cached(5, threads, [](int t) { return best_rate(t, [] { return run_amx_bf16_peak_loop(kPeakRounds / 16); }) / 1e9; });
}

double fp32_peak_gflops(int threads) {
  if (cpu_max_isa() == Isa::kRef) return 0;
  return cached(1, threads, [](int t) { return best_rate(t, [] { return run_fp32_peak_loop(kPeakRounds); }) / 1e9; });
}

double bf16_peak_gflops(int threads) {
  if (!cpu_has_avx512bf16()) return 0;
  return cached(2, threads, [](int t) { return best_rate(t, [] { return run_bf16_peak_loop(kPeakRounds); }) / 1e9; });
}

double triad_bandwidth_gbps(int threads) {
  return cached(3, threads, [](int t) {
    const int64_t n = int64_t{1} << 26;  // 256 MiB per array
    std::unique_ptr<float[]> a(new float[n]), b(new float[n]), c(new float[n]);
    const int previous = num_threads();
    set_num_threads(t);
    // First touch by the threads that use each part.
    parallel_for(n, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) a[i] = 0.0f, b[i] = 1.0f, c[i] = 2.0f;
    });
    double best = 0;
    for (int rep = 0; rep < 4; ++rep) {
      const auto start = std::chrono::steady_clock::now();
      parallel_for(n, [&](int64_t i0, int64_t i1) {
        float* __restrict out = a.get();
        const float* __restrict x = b.get();
        const float* __restrict y = c.get();
        for (int64_t i = i0; i < i1; ++i) out[i] = x[i] + 3.0f * y[i];
      });
      best = std::max(best, 12.0 * static_cast<double>(n) / seconds(start) / 1e9);
    }
    set_num_threads(previous);
    if (a[n / 2] != 7.0f) return 0.0;  // keeps the stores alive
    return best;
  });
}

}  // namespace sqz::kernels
