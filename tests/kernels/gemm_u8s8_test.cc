// Every GEMM kernel against the reference, exactly, on every ISA this CPU runs: m, n, k below,
// at and above the tiles, and inputs at the int8/uint8 limits.
#include "kernels/gemm_u8s8/gemm_u8s8.h"

#include <gtest/gtest.h>

#include <random>

#include "int8_reference.h"

namespace sqz::kernels {
namespace {

struct Shape {
  int64_t m, n, k;
};

std::vector<Shape> shapes() {
  std::vector<Shape> out;
  for (int64_t m : {1, 2, 3, 4, 5, 6, 9, 13})
    for (int64_t n : {1, 15, 16, 17, 63, 64, 65, 130})
      for (int64_t k : {0, 1, 3, 4, 5, 63, 64, 65})
        out.push_back({m, n, k});
  out.push_back({128, 768, 768});
  out.push_back({7, 3072, 771});
  // AMX tiles (within the avx512vnni tier where amx_int8_enabled()): 32 x 32 tiles over k in
  // steps of 64, with row tails, odd column blocks and k that tiles do not take left to VNNI.
  for (int64_t m : {32, 47, 64, 100})
    for (int64_t n : {32, 48, 80, 130})
      for (int64_t k : {64, 192, 200})
        out.push_back({m, n, k});
  return out;
}

enum class Fill { kRandom, kMax, kMin };

void fill(std::vector<uint8_t>& a, std::vector<int8_t>& w, Fill f, std::mt19937& rng) {
  std::uniform_int_distribution<int> ua(0, 255), uw(-128, 127);
  for (auto& v : a) v = f == Fill::kRandom ? static_cast<uint8_t>(ua(rng)) : 255;
  for (auto& v : w) v = f == Fill::kRandom ? static_cast<int8_t>(uw(rng)) : (f == Fill::kMax ? 127 : -128);
}

TEST(GemmU8S8, EveryIsaMatchesReferenceExactly) {
  std::mt19937 rng(42);
  for (Isa isa : runnable_isas()) {
    for (const auto& s : shapes())
      for (Fill f : {Fill::kRandom, Fill::kMax, Fill::kMin}) {
        int64_t lda = s.k + 3, ldc = s.n + 5;  // strides wider than the data
        std::vector<uint8_t> a(static_cast<size_t>(s.m * lda));
        std::vector<int8_t> w(static_cast<size_t>(s.n * s.k));
        fill(a, w, f, rng);
        auto packed = pack_s8_weights(w.data(), s.n, s.k, s.k);
        const auto want = reference_s32_product(a, s.m, lda, w, s.n, s.k, ldc);
        std::vector<int32_t> got(want.size(), -7);
        gemm_u8s8s32(a.data(), s.m, lda, packed, got.data(), ldc, isa);
        ASSERT_EQ(got, want) << isa_name(isa) << " m=" << s.m << " n=" << s.n << " k=" << s.k << " fill=" << int(f);
      }
  }
}

// The AMX entry point itself, on shapes its tiles cover whole and in part (skipped without AMX).
TEST(GemmU8S8, AmxTilesMatchReferenceExactly) {
  if (!amx_int8_enabled()) GTEST_SKIP() << "no AMX-INT8 on this CPU (or SQZ_AMX=0)";
  std::mt19937 rng(7);
  for (const Shape s : {Shape{32, 32, 64}, Shape{64, 96, 768}, Shape{33, 64, 128}, Shape{128, 3072, 64}})
    for (Fill f : {Fill::kRandom, Fill::kMax, Fill::kMin}) {
      const int64_t lda = s.k + 64, ldc = s.n + 16;
      std::vector<uint8_t> a(static_cast<size_t>(s.m * lda));
      std::vector<int8_t> w(static_cast<size_t>(s.n * s.k));
      fill(a, w, f, rng);
      const auto packed = pack_s8_weights(w.data(), s.n, s.k, s.k);
      std::vector<int32_t> want(static_cast<size_t>(s.m * ldc), -7), got(want);
      gemm_u8s8s32_ref(a.data(), s.m, lda, packed, 0, packed.n_blocks, want.data(), ldc);
      gemm_u8s8s32_amx(a.data(), s.m, lda, packed, 0, packed.n_blocks, got.data(), ldc);
      ASSERT_EQ(got, want) << "m=" << s.m << " n=" << s.n << " k=" << s.k << " fill=" << int(f);
    }
}

TEST(GemmU8S8, UnpackReturnsThePackedCodes) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> uw(-128, 127);
  for (int64_t n : {1, 15, 16, 17, 33})
    for (int64_t k : {1, 3, 4, 5, 7, 258}) {
      std::vector<int8_t> w(static_cast<size_t>(n * k)), back(w.size(), 0);
      for (auto& v : w) v = static_cast<int8_t>(uw(rng));
      unpack_s8_weights(pack_s8_weights(w.data(), n, k, k), back.data());
      EXPECT_EQ(back, w) << n << "x" << k;
    }
}

// Attention repacks K and V into the same buffers per call: a smaller packing into a struct that
// held a larger one must equal a fresh packing (padding zeroed, sums not carried over).
TEST(GemmU8S8, PackingIntoAReusedBufferEqualsAFreshPacking) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> uw(-128, 127);
  PackedS8Weights reused;
  for (auto [n, k] : {std::pair<int64_t, int64_t>{33, 258}, {17, 5}, {1, 3}, {40, 64}}) {
    std::vector<int8_t> w(static_cast<size_t>(n * k));
    for (auto& v : w) v = static_cast<int8_t>(uw(rng));
    pack_s8_weights_into(w.data(), n, k, k, reused);
    const auto fresh = pack_s8_weights(w.data(), n, k, k);
    EXPECT_EQ(reused.data, fresh.data) << n << "x" << k;
    EXPECT_EQ(reused.column_sums, fresh.column_sums) << n << "x" << k;
    EXPECT_EQ(reused.n_blocks, fresh.n_blocks);
    EXPECT_EQ(reused.k_groups, fresh.k_groups);
  }
}

TEST(GemmU8S8, ColumnSumsForZeroPointCorrection) {
  std::vector<int8_t> w = {1, -2, 3, 127, -128, 0};
  auto p = pack_s8_weights(w.data(), 2, 3, 3);
  EXPECT_EQ(p.column_sums[0], 2);
  EXPECT_EQ(p.column_sums[1], -1);
  EXPECT_EQ(p.n_blocks, 1);
  EXPECT_EQ(p.k_groups, 1);
}

TEST(CpuIsa, DetectsSomethingRunnable) {
  auto isas = runnable_isas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), Isa::kRef);
  EXPECT_LE(static_cast<int>(active_isa()), static_cast<int>(cpu_max_isa()));
}

}  // namespace
}  // namespace sqz::kernels
