// Kernel micro-benchmarks (Google Benchmark): GOP/s of the int8 GEMM per ISA, and a measured
// int8 peak (a register-only vpdpbusd loop) so results can be read as a fraction of the machine.
// Single-threaded (SQZ kernels' pool set to 1 thread); run: build/bench/sqz_kernels_bench
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <cstdlib>
#include <random>

#include "kernels/eltwise/eltwise.h"
#include "kernels/gemm_bf16/gemm_bf16.h"
#include "kernels/gemm_f32/gemm_f32.h"
#include "kernels/gemm_sparse24/gemm_sparse24.h"
#include "kernels/gemm_u8s8/gemm_u8s8.h"
#include "kernels/gemm_u8s8/linear_int8.h"
#include "kernels/parallel.h"

namespace sqz::kernels {
namespace {

// Skips a case whose ISA this CPU cannot run; true when skipped.
bool skip_unsupported(benchmark::State& state, Isa isa) {
  if (static_cast<int>(isa) <= static_cast<int>(cpu_max_isa())) return false;
  state.SkipWithError("ISA not supported by this CPU");
  return true;
}

// 2*m*n*k operations per iteration (dense-equivalent for 2:4), m, n, k = the case's arguments.
void count_ops(benchmark::State& state, const char* unit) {
  state.counters[unit] = benchmark::Counter(2.0 * state.range(0) * state.range(1) * state.range(2),
                                            benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::OneK::kIs1000);
}

// `copies` weight matrices used in turn: 1 keeps the weights in L2; 12 (a 12-layer model's
// forward) makes them come from L3 or memory, as they do in the engine.
void BM_GemmU8S8(benchmark::State& state, Isa isa, int copies) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  if (skip_unsupported(state, isa)) return;
  std::mt19937 rng(1);
  std::vector<uint8_t> a(m * k);
  std::vector<int8_t> w(n * k);
  for (auto& v : a) v = static_cast<uint8_t>(rng());
  std::vector<PackedS8Weights> layers;
  for (int l = 0; l < copies; ++l) {
    for (auto& v : w) v = static_cast<int8_t>(rng());
    layers.push_back(pack_s8_weights(w.data(), n, k, k));
  }
  std::vector<int32_t> c(m * n);
  size_t next = 0;
  for (auto _ : state) {
    gemm_u8s8s32(a.data(), m, k, layers[next++ % layers.size()], c.data(), n, isa);
    benchmark::DoNotOptimize(c.data());
  }
  count_ops(state, "GOP/s");
}

// A whole int8 Linear as the runtime calls it (quantize the fp32 activations per row, GEMM,
// dequantize with bias), on 12 weight matrices used in turn as above.
void BM_Int8Linear(benchmark::State& state, Isa isa) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  if (skip_unsupported(state, isa)) return;
  std::mt19937 rng(1);
  std::normal_distribution<float> d;
  std::vector<float> x(m * k), w(n * k), b(n), y(m * n);
  for (auto& v : x) v = d(rng);
  std::vector<Int8Linear> layers;
  for (int l = 0; l < 12; ++l) {
    for (auto& v : w) v = d(rng);
    layers.push_back(make_int8_linear(w.data(), n, k, b.data()));
  }
  size_t next = 0;
  for (auto _ : state) {
    int8_linear_forward(layers[next++ % layers.size()], x.data(), m, k, y.data(), n, isa);
    benchmark::DoNotOptimize(y.data());
  }
  count_ops(state, "GOP/s");
}

// BERT-base's int8 FFN (768 -> 3072 + GELU -> 768 + residual) on m rows: the inner activations
// written in fp32 and quantized again by the output Linear (range(1) = 0), or passed as u8 codes
// by the requantizing epilogue (range(1) = 1).
void BM_Int8Ffn(benchmark::State& state, Isa isa) {
  const int64_t m = state.range(0), h = 768, inner = 3072;
  const bool requantize = state.range(1) != 0;
  if (skip_unsupported(state, isa)) return;
  std::mt19937 rng(1);
  std::normal_distribution<float> d;
  std::vector<float> x(m * h), w1(inner * h), w2(h * inner), b1(inner), b2(h), mid(m * inner), y(m * h);
  for (auto* v : {&x, &w1, &w2, &b1, &b2})
    for (auto& e : *v) e = d(rng);
  const auto first = make_int8_linear(w1.data(), inner, h, b1.data()), second = make_int8_linear(w2.data(), h, inner, b2.data());
  QuantizedRows codes;
  for (auto _ : state) {
    if (requantize) {
      int8_linear_forward_requantize(first, x.data(), m, h, codes, isa, Activation::kGelu);
      int8_linear_forward_quantized(second, codes, y.data(), h, isa, x.data(), h);
    } else {
      int8_linear_forward(first, x.data(), m, h, mid.data(), inner, isa, nullptr, 0, Activation::kGelu);
      int8_linear_forward(second, mid.data(), m, inner, y.data(), h, isa, x.data(), h);
    }
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GOP/s"] = benchmark::Counter(4.0 * m * h * inner, benchmark::Counter::kIsIterationInvariantRate,
                                               benchmark::Counter::OneK::kIs1000);
}

__attribute__((target("avx512f,avx512vnni"))) void BM_VnniPeak(benchmark::State& state) {
  if (cpu_max_isa() != Isa::kAvx512Vnni) {
    state.SkipWithError("no AVX-512 VNNI");
    return;
  }
  constexpr int kChains = 12;  // independent accumulators hide the instruction latency
  constexpr int kInner = 1000;
  __m512i acc[kChains];
  for (auto& x : acc) x = _mm512_setzero_si512();
  __m512i a = _mm512_set1_epi32(0x01010101), b = _mm512_set1_epi32(0x01010101);
  for (auto _ : state) {
    for (int i = 0; i < kInner; ++i)
      for (int c = 0; c < kChains; ++c) acc[c] = _mm512_dpbusd_epi32(acc[c], a, b);
    for (auto& x : acc) benchmark::DoNotOptimize(x);
  }
  // one vpdpbusd = 64 multiply-adds = 128 ops
  state.counters["GOP/s"] = benchmark::Counter(128.0 * kChains * kInner, benchmark::Counter::kIsIterationInvariantRate,
                                               benchmark::Counter::OneK::kIs1000);
}

// The same shapes with 2:4 weights (the 2 largest-magnitude of each 4 kept): GOP/s counts the
// dense-equivalent work (2*m*n*k), so the ratio to BM_GemmU8S8 is the speed-up.
void BM_GemmSparse24(benchmark::State& state, Isa isa) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  if (skip_unsupported(state, isa)) return;
  std::mt19937 rng(1);
  std::vector<uint8_t> a(m * k);
  std::vector<int8_t> w(n * k);
  for (auto& v : a) v = static_cast<uint8_t>(rng());
  for (auto& v : w) v = static_cast<int8_t>(rng());
  for (int64_t i = 0; i + 4 <= n * k; i += 4) {  // keep 2 of 4 (k is a multiple of 4 here)
    w[i + (rng() % 2)] = 0;
    w[i + 2 + (rng() % 2)] = 0;
  }
  auto packed = pack_s8_sparse24(w.data(), n, k, k);
  std::vector<int32_t> c(m * n);
  for (auto _ : state) {
    gemm_u8s8s32_sparse24(a.data(), m, k, packed, c.data(), n, isa);
    benchmark::DoNotOptimize(c.data());
  }
  count_ops(state, "GOP/s");
}

// Row ops of a BERT-base layer at seq 128 (m x n floats): GELU on the FFN's 128 x 3072 output,
// LayerNorm on 128 x 768, softmax on one head's 128 x 128 scores; counter = elements per second.
// An in-place row op (GELU, softmax) on m x n random floats, `scale` their spread.
template <void (*Op)(float*, int64_t, int64_t, int64_t, Isa)>
void BM_RowOpInPlace(benchmark::State& state, Isa isa, float scale) {
  if (skip_unsupported(state, isa)) return;
  const int64_t m = state.range(0), n = state.range(1);
  std::mt19937 rng(1);
  std::normal_distribution<float> d;
  std::vector<float> x(m * n), y(x.size());
  for (auto& v : x) v = scale * d(rng);
  for (auto _ : state) {
    y = x;
    Op(y.data(), m, n, n, isa);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["elem/s"] = benchmark::Counter(double(m * n), benchmark::Counter::kIsIterationInvariantRate);
}
void BM_Gelu(benchmark::State& state, Isa isa) { BM_RowOpInPlace<gelu_rows>(state, isa, 1.0f); }
void BM_Softmax(benchmark::State& state, Isa isa) { BM_RowOpInPlace<softmax_rows>(state, isa, 4.0f); }

void BM_LayerNorm(benchmark::State& state, Isa isa) {
  if (skip_unsupported(state, isa)) return;
  const int64_t m = state.range(0), n = state.range(1);
  std::mt19937 rng(1);
  std::normal_distribution<float> d;
  std::vector<float> x(m * n), y(x.size()), gamma(n, 1.0f), beta(n, 0.0f);
  for (auto& v : x) v = d(rng);
  for (auto _ : state) {
    layer_norm_rows(x.data(), m, n, n, gamma.data(), beta.data(), 1e-12f, y.data(), n, isa);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["elem/s"] = benchmark::Counter(double(m * n), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_GemmF32(benchmark::State& state, Isa isa) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  if (skip_unsupported(state, isa)) return;
  std::mt19937 rng(1);
  std::normal_distribution<float> d;
  std::vector<float> a(m * k), w(n * k), c(m * n);
  for (auto& v : a) v = d(rng);
  for (auto& v : w) v = d(rng);
  auto packed = pack_f32_weights(w.data(), n, k, k, 1);
  for (auto _ : state) {
    gemm_f32(a.data(), m, k, packed, c.data(), n, {}, isa);
    benchmark::DoNotOptimize(c.data());
  }
  count_ops(state, "GFLOP/s");
}

// The bf16 GEMM as the runtime calls it (activations rounded per call, fp32 out), GFLOP/s.
void BM_GemmBf16(benchmark::State& state, Isa isa) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  if (skip_unsupported(state, isa)) return;
  if (isa == Isa::kAvx512Vnni && !cpu_has_avx512bf16()) {
    state.SkipWithError("no AVX-512 BF16");
    return;
  }
  std::mt19937 rng(1);
  std::normal_distribution<float> d;
  std::vector<float> a(m * k), w(n * k), c(m * n);
  for (auto& v : a) v = d(rng);
  for (auto& v : w) v = d(rng);
  const auto packed = pack_bf16_weights(w.data(), n, k, k);
  for (auto _ : state) {
    gemm_bf16(a.data(), m, k, packed, c.data(), n, {}, isa);
    benchmark::DoNotOptimize(c.data());
  }
  count_ops(state, "GFLOP/s");
}

// bf16 dot-product peak of one core: vdpbf16ps does 2 multiply-adds per fp32 lane.
__attribute__((target("avx512f,avx512bf16"))) void BM_Bf16DotPeak(benchmark::State& state) {
  if (!cpu_has_avx512bf16()) {
    state.SkipWithError("no AVX-512 BF16");
    return;
  }
  constexpr int kChains = 12;
  constexpr int kInner = 1000;
  __m512 acc[kChains];
  for (auto& x : acc) x = _mm512_setzero_ps();
  const __m512bh a = (__m512bh)_mm512_set1_epi32(0x3F803F80), b = (__m512bh)_mm512_set1_epi32(0x2F802F80);
  for (auto _ : state) {
    for (int i = 0; i < kInner; ++i)
      for (int c = 0; c < kChains; ++c) acc[c] = _mm512_dpbf16_ps(acc[c], a, b);
    for (auto& x : acc) benchmark::DoNotOptimize(x);
  }
  state.counters["GFLOP/s"] = benchmark::Counter(64.0 * kChains * kInner, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::OneK::kIs1000);
}

// fp32 FMA peak of one core with zmm registers (the AVX-512 kernels' ceiling).
__attribute__((target("avx512f"))) void BM_Fp32FmaPeakAvx512(benchmark::State& state) {
  if (cpu_max_isa() != Isa::kAvx512Vnni) {
    state.SkipWithError("no AVX-512");
    return;
  }
  constexpr int kChains = 12;
  constexpr int kInner = 1000;
  __m512 acc[kChains];
  for (auto& x : acc) x = _mm512_setzero_ps();
  const __m512 a = _mm512_set1_ps(1e-9f), b = _mm512_set1_ps(1.0f);
  for (auto _ : state) {
    for (int i = 0; i < kInner; ++i)
      for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(a, b, acc[c]);
    for (auto& x : acc) benchmark::DoNotOptimize(x);
  }
  state.counters["GFLOP/s"] = benchmark::Counter(32.0 * kChains * kInner, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::OneK::kIs1000);
}

// fp32 FMA peak of one core with ymm registers (the AVX2 kernels' ceiling).
__attribute__((target("avx2,fma"))) void BM_Fp32FmaPeakAvx2(benchmark::State& state) {
  constexpr int kChains = 12;
  constexpr int kInner = 1000;
  __m256 acc[kChains];
  for (auto& x : acc) x = _mm256_setzero_ps();
  const __m256 a = _mm256_set1_ps(1e-9f), b = _mm256_set1_ps(1.0f);
  for (auto _ : state) {
    for (int i = 0; i < kInner; ++i)
      for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(a, b, acc[c]);
    for (auto& x : acc) benchmark::DoNotOptimize(x);
  }
  state.counters["GFLOP/s"] = benchmark::Counter(16.0 * kChains * kInner, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::OneK::kIs1000);
}

#define GEMM_SHAPES ->Args({128, 3072, 768})->Args({128, 768, 3072})->Args({128, 768, 768})->Args({1, 768, 768})

BENCHMARK_CAPTURE(BM_GemmU8S8, ref, Isa::kRef, 1)->Args({128, 768, 768});
BENCHMARK_CAPTURE(BM_GemmU8S8, avx2, Isa::kAvx2, 1) GEMM_SHAPES;
BENCHMARK_CAPTURE(BM_GemmU8S8, avx512vnni, Isa::kAvx512Vnni, 1) GEMM_SHAPES;
BENCHMARK_CAPTURE(BM_GemmU8S8, avx512vnni_cold, Isa::kAvx512Vnni, 12)->Args({128, 3072, 768})->Args({128, 768, 3072})->Args({1024, 3072, 768})->Args({1024, 768, 3072});
BENCHMARK_CAPTURE(BM_Int8Linear, avx512vnni, Isa::kAvx512Vnni)->Args({128, 3072, 768})->Args({128, 768, 3072});
BENCHMARK_CAPTURE(BM_Int8Ffn, avx512vnni, Isa::kAvx512Vnni)->Args({128, 0})->Args({128, 1})->Args({1, 0})->Args({1, 1});
BENCHMARK(BM_VnniPeak);
BENCHMARK_CAPTURE(BM_GemmF32, avx2, Isa::kAvx2) GEMM_SHAPES;
BENCHMARK_CAPTURE(BM_GemmF32, avx512, Isa::kAvx512Vnni) GEMM_SHAPES;
BENCHMARK_CAPTURE(BM_GemmBf16, avx2, Isa::kAvx2) GEMM_SHAPES;
BENCHMARK_CAPTURE(BM_GemmBf16, avx512bf16, Isa::kAvx512Vnni) GEMM_SHAPES;
BENCHMARK(BM_Bf16DotPeak);
BENCHMARK_CAPTURE(BM_GemmSparse24, avx2, Isa::kAvx2) GEMM_SHAPES;
BENCHMARK_CAPTURE(BM_GemmSparse24, avx512vnni, Isa::kAvx512Vnni) GEMM_SHAPES;
BENCHMARK_CAPTURE(BM_Gelu, avx2, Isa::kAvx2)->Args({128, 3072});
BENCHMARK_CAPTURE(BM_Gelu, avx512, Isa::kAvx512Vnni)->Args({128, 3072});
BENCHMARK_CAPTURE(BM_LayerNorm, avx2, Isa::kAvx2)->Args({128, 768});
BENCHMARK_CAPTURE(BM_LayerNorm, avx512, Isa::kAvx512Vnni)->Args({128, 768});
BENCHMARK_CAPTURE(BM_Softmax, avx2, Isa::kAvx2)->Args({128, 128});
BENCHMARK_CAPTURE(BM_Softmax, avx512, Isa::kAvx512Vnni)->Args({128, 128});
BENCHMARK(BM_Fp32FmaPeakAvx2);
BENCHMARK(BM_Fp32FmaPeakAvx512);

}  // namespace
}  // namespace sqz::kernels

int main(int argc, char** argv) {
  // SQZ_BENCH_THREADS=2 measures both cores (the default, 1, gives per-core rates).
  const char* threads = std::getenv("SQZ_BENCH_THREADS");
  sqz::kernels::set_num_threads(threads ? std::atoi(threads) : 1);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
