// Kernel micro-benchmarks (Google Benchmark): GOP/s of the GEMMs per ISA, each with `peak`, its
// fraction of this machine's measured peak for the same threads (kernels/machine_peaks.h:
// register-resident multiply-add loops), the peaks themselves and the DRAM triad bandwidth.
// Single-threaded by default (SQZ_BENCH_THREADS=2: both cores); run: build/bench/sqz_kernels_bench
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <cstdlib>
#include <random>

#include "kernels/eltwise/eltwise.h"
#include "kernels/gemm_block_sparse/gemm_block_sparse.h"
#include "kernels/gemm_bf16/gemm_bf16.h"
#include "kernels/gemm_f32/gemm_f32.h"
#include "kernels/gemm_sparse24/gemm_sparse24.h"
#include "kernels/gemm_u8s8/gemm_u8s8.h"
#include "kernels/gemm_u8s8/linear_int8.h"
#include "kernels/machine_peaks.h"
#include "kernels/parallel.h"

namespace sqz::kernels {
namespace {

// Skips a case whose ISA this CPU cannot run; true when skipped.
bool skip_unsupported(benchmark::State& state, Isa isa) {
  if (static_cast<int>(isa) <= static_cast<int>(cpu_max_isa())) return false;
  state.SkipWithError("ISA not supported by this CPU");
  return true;
}

// kInt8: the peak of the kernel the dense int8 GEMM runs (AMX tiles where amx_int8_enabled(),
// else vpdpbusd); kVnni: vpdpbusd (the sparse kernels'); kBf16: AMX-BF16 tiles where
// amx_bf16_enabled(), else vdpbf16ps.
enum class Peak { kInt8, kVnni, kFp32, kBf16 };

double peak_ops_per_second(Peak peak) {
  const int threads = num_threads();
  switch (peak) {
    case Peak::kInt8: return (amx_int8_enabled() ? amx_int8_peak_gops(threads) : int8_peak_gops(threads)) * 1e9;
    case Peak::kVnni: return int8_peak_gops(threads) * 1e9;
    case Peak::kFp32: return fp32_peak_gflops(threads) * 1e9;
    case Peak::kBf16: return (amx_bf16_enabled() ? amx_bf16_peak_gflops(threads) : bf16_peak_gflops(threads)) * 1e9;
  }
  return 0;
}

// `ops` operations per iteration as a rate in `unit`, and as the fraction `peak` of the machine's
// measured peak of that kind (omitted where the CPU lacks that peak's instructions).
void count_ops(benchmark::State& state, double ops, const char* unit, Peak peak) {
  state.counters[unit] = benchmark::Counter(ops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::OneK::kIs1000);
  const double top = peak_ops_per_second(peak);
  if (top > 0) state.counters["peak"] = benchmark::Counter(ops / top, benchmark::Counter::kIsIterationInvariantRate);
}
// 2*m*n*k operations (dense-equivalent for sparse kernels), m, n, k = the case's arguments.
void count_gemm_ops(benchmark::State& state, const char* unit, Peak peak) {
  count_ops(state, 2.0 * state.range(0) * state.range(1) * state.range(2), unit, peak);
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
  count_gemm_ops(state, "GOP/s", Peak::kInt8);
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
  count_gemm_ops(state, "GOP/s", Peak::kInt8);
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
  count_ops(state, 4.0 * m * h * inner, "GOP/s", Peak::kInt8);
}

// The peaks as micro-benchmarks: the same inline-assembly loops kernels/machine_peaks.cc times.
void BM_Peak(benchmark::State& state, double (*loop)(int64_t), bool supported, const char* unit) {
  if (!supported) {
    state.SkipWithError("instructions not supported by this CPU");
    return;
  }
  double ops = 0;
  for (auto _ : state) ops = loop(100'000);
  state.counters[unit] = benchmark::Counter(ops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::OneK::kIs1000);
}

// STREAM triad over 3 x 256 MiB with range(0) threads (the figure is measured inside).
void BM_TriadBandwidth(benchmark::State& state) {
  double gbps = 0;
  for (auto _ : state) gbps = triad_bandwidth_gbps(static_cast<int>(state.range(0)));
  state.counters["GB/s"] = gbps;
}

// Block-sparse int8 (blocks of 4 outputs x 4 k, range(3)% of them kept at random): GOP/s counts
// the dense-equivalent work, so the ratio to BM_GemmU8S8 is the speed-up; `copies` as above.
void BM_GemmBlockSparse(benchmark::State& state, Isa isa, int copies) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  const double density = static_cast<double>(state.range(3)) / 100.0;
  if (skip_unsupported(state, isa)) return;
  std::mt19937 rng(1);
  std::bernoulli_distribution keep(density);
  std::vector<uint8_t> a(m * k);
  std::vector<int8_t> w(n * k);
  for (auto& v : a) v = static_cast<uint8_t>(rng());
  std::vector<PackedS8BlockSparse> layers;
  for (int l = 0; l < copies; ++l) {
    for (int64_t o = 0; o < n; o += 4)
      for (int64_t g = 0; g < k; g += 4) {
        const bool kept = keep(rng);
        for (int64_t j = o; j < o + 4; ++j)
          for (int64_t t = g; t < g + 4; ++t) w[j * k + t] = kept ? static_cast<int8_t>(rng() | 1) : int8_t{0};
      }
    layers.push_back(pack_s8_block_sparse(w.data(), n, k, k));
  }
  std::vector<int32_t> c(m * n);
  size_t next = 0;
  for (auto _ : state) {
    gemm_u8s8s32_block_sparse(a.data(), m, k, layers[next++ % layers.size()], c.data(), n, isa);
    benchmark::DoNotOptimize(c.data());
  }
  count_gemm_ops(state, "GOP/s", Peak::kVnni);
  state.counters["density"] = layers[0].density();
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
  count_gemm_ops(state, "GOP/s", Peak::kVnni);
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
  count_gemm_ops(state, "GFLOP/s", Peak::kFp32);
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
  count_gemm_ops(state, "GFLOP/s", isa == Isa::kAvx512Vnni ? Peak::kBf16 : Peak::kFp32);
}

#define GEMM_SHAPES ->Args({128, 3072, 768})->Args({128, 768, 3072})->Args({128, 768, 768})->Args({1, 768, 768})

BENCHMARK_CAPTURE(BM_GemmU8S8, ref, Isa::kRef, 1)->Args({128, 768, 768});
BENCHMARK_CAPTURE(BM_GemmU8S8, avx2, Isa::kAvx2, 1) GEMM_SHAPES;
BENCHMARK_CAPTURE(BM_GemmU8S8, avx512vnni, Isa::kAvx512Vnni, 1) GEMM_SHAPES;
BENCHMARK_CAPTURE(BM_GemmU8S8, avx512vnni_cold, Isa::kAvx512Vnni, 12)->Args({128, 3072, 768})->Args({128, 768, 3072})->Args({1024, 3072, 768})->Args({1024, 768, 3072});
BENCHMARK_CAPTURE(BM_Int8Linear, avx512vnni, Isa::kAvx512Vnni)->Args({128, 3072, 768})->Args({128, 768, 3072});
BENCHMARK_CAPTURE(BM_Int8Ffn, avx512vnni, Isa::kAvx512Vnni)->Args({128, 0})->Args({128, 1})->Args({1, 0})->Args({1, 1});
BENCHMARK_CAPTURE(BM_Peak, int8_vpdpbusd, run_int8_peak_loop, cpu_max_isa() == Isa::kAvx512Vnni, "GOP/s");
BENCHMARK_CAPTURE(BM_Peak, int8_amx_tdpbusd, run_amx_int8_peak_loop, amx_int8_enabled(), "GOP/s");
BENCHMARK_CAPTURE(BM_GemmBlockSparse, avx512vnni_80pct, Isa::kAvx512Vnni, 1)->Args({128, 3072, 768, 20})->Args({128, 768, 3072, 20})->Args({128, 768, 768, 20})->Args({1, 768, 768, 20});
BENCHMARK_CAPTURE(BM_GemmBlockSparse, avx512vnni_cold, Isa::kAvx512Vnni, 12)->Args({128, 3072, 768, 20})->Args({128, 768, 3072, 20})->Args({128, 3072, 768, 50})->Args({1024, 3072, 768, 20})->Args({1, 3072, 768, 20});
BENCHMARK_CAPTURE(BM_GemmBlockSparse, avx2_80pct, Isa::kAvx2, 1)->Args({128, 3072, 768, 20})->Args({128, 768, 3072, 20});
BENCHMARK_CAPTURE(BM_GemmBlockSparse, ref_80pct, Isa::kRef, 1)->Args({128, 768, 768, 20});
BENCHMARK_CAPTURE(BM_GemmF32, avx2, Isa::kAvx2) GEMM_SHAPES;
BENCHMARK_CAPTURE(BM_GemmF32, avx512, Isa::kAvx512Vnni) GEMM_SHAPES;
BENCHMARK_CAPTURE(BM_GemmBf16, avx2, Isa::kAvx2) GEMM_SHAPES;
BENCHMARK_CAPTURE(BM_GemmBf16, avx512bf16, Isa::kAvx512Vnni) GEMM_SHAPES;
BENCHMARK_CAPTURE(BM_Peak, bf16_vdpbf16ps, run_bf16_peak_loop, cpu_has_avx512bf16(), "GFLOP/s");
BENCHMARK_CAPTURE(BM_Peak, bf16_amx_tdpbf16ps, run_amx_bf16_peak_loop, amx_bf16_enabled(), "GFLOP/s");
BENCHMARK_CAPTURE(BM_GemmSparse24, avx2, Isa::kAvx2) GEMM_SHAPES;
BENCHMARK_CAPTURE(BM_GemmSparse24, avx512vnni, Isa::kAvx512Vnni) GEMM_SHAPES;
BENCHMARK_CAPTURE(BM_Gelu, avx2, Isa::kAvx2)->Args({128, 3072});
BENCHMARK_CAPTURE(BM_Gelu, avx512, Isa::kAvx512Vnni)->Args({128, 3072});
BENCHMARK_CAPTURE(BM_LayerNorm, avx2, Isa::kAvx2)->Args({128, 768});
BENCHMARK_CAPTURE(BM_LayerNorm, avx512, Isa::kAvx512Vnni)->Args({128, 768});
BENCHMARK_CAPTURE(BM_Softmax, avx2, Isa::kAvx2)->Args({128, 128});
BENCHMARK_CAPTURE(BM_Softmax, avx512, Isa::kAvx512Vnni)->Args({128, 128});
BENCHMARK_CAPTURE(BM_Peak, fp32_fma, run_fp32_peak_loop, cpu_max_isa() != Isa::kRef, "GFLOP/s");
BENCHMARK(BM_TriadBandwidth)->Arg(1)->Arg(2)->Iterations(1);

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
