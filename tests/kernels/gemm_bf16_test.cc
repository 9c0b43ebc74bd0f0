// The bf16 GEMM: rounding against hand-computed bit patterns, the AVX-512 BF16 conversion against
// the scalar one (bit for bit), and every ISA this CPU runs against a double-precision product
// of the bf16-rounded matrices: m, n, k below/at/above the tiles and the 256-k block, odd k,
// strided inputs, every epilogue term; the AMX-BF16 tiles (where the CPU has them) on shapes they
// cover whole and in part, and on any split of the panels.
#include "kernels/gemm_bf16/gemm_bf16.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "kernels/parallel.h"

namespace sqz::kernels {
namespace {

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

TEST(GemmBf16, RoundsToNearestEvenAndFlushesSubnormals) {
  EXPECT_EQ(float_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(float_to_bf16(-2.0f), 0xC000);
  EXPECT_EQ(float_to_bf16(from_bits(0x3F808000u)), 0x3F80);  // tie, even below: down
  EXPECT_EQ(float_to_bf16(from_bits(0x3F818000u)), 0x3F82);  // tie, odd below: up
  EXPECT_EQ(float_to_bf16(from_bits(0x3F808001u)), 0x3F81);  // just above the tie: up
  EXPECT_EQ(float_to_bf16(from_bits(0x3F807FFFu)), 0x3F80);  // just below: down
  EXPECT_EQ(float_to_bf16(from_bits(0x7F7FFFFFu)), 0x7F80);  // largest float rounds to inf
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(float_to_bf16(from_bits(0x00000001u)), 0x0000);  // subnormal -> +0
  EXPECT_EQ(float_to_bf16(from_bits(0x807FFFFFu)), 0x8000);  // subnormal -> -0
  const uint16_t nan = float_to_bf16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_TRUE(std::isnan(bf16_to_float(nan)));
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(from_bits(0x7F800001u)))));  // low-bit NaN stays NaN
  EXPECT_EQ(bf16_to_float(0x3F81), 1.0078125f);
}

TEST(GemmBf16, VectorRoundingEqualsScalarBitForBit) {
  if (!cpu_has_avx512bf16()) GTEST_SKIP() << "no AVX-512 BF16 on this CPU";
  std::mt19937 rng(5);
  std::normal_distribution<float> d(0.0f, 3.0f);
  for (int64_t k : {1, 2, 15, 16, 17, 31, 33, 64, 301}) {
    const int64_t m = 3, lda = k + 5, pairs = (k + 1) / 2;
    std::vector<float> a(static_cast<size_t>(m * lda));
    for (size_t i = 0; i < a.size(); ++i) {
      a[i] = d(rng);
      if (i % 7 == 3) a[i] = from_bits(static_cast<uint32_t>(rng()) & 0x807FFFFFu);  // subnormals
      if (i % 11 == 5) a[i] = from_bits((static_cast<uint32_t>(rng()) & 0x8000FFFFu) | 0x3F808000u);  // near ties
    }
    std::vector<uint32_t> want(static_cast<size_t>(m * pairs)), got(want.size() + 1, 0xDEADBEEFu);
    round_rows_to_bf16_ref(a.data(), m, k, lda, want.data());
    round_rows_to_bf16_avx512bf16(a.data(), m, k, lda, got.data());
    for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[i], want[i]) << "k=" << k << " pair " << i;
    EXPECT_EQ(got.back(), 0xDEADBEEFu) << "wrote past the last row, k=" << k;
  }
}

struct Case {
  int64_t m, n, k;
};

void check(Isa isa, const Case& s, bool epilogue, std::mt19937& rng) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  const int64_t lda = s.k + 3, ldc = s.n + 2, ldw = s.k + 1;
  std::vector<float> a(static_cast<size_t>(s.m * lda)), w(static_cast<size_t>(s.n * ldw) + 1);
  std::vector<float> bias(static_cast<size_t>(s.n)), res(static_cast<size_t>(s.m * ldc));
  for (auto* v : {&a, &w, &bias, &res})
    for (auto& x : *v) x = d(rng);
  const auto packed = pack_bf16_weights(w.data(), s.n, s.k, ldw);
  GemmF32Epilogue e;
  if (epilogue) e = {0.125f, bias.data(), res.data(), ldc, Activation::kGelu};
  std::vector<float> c(static_cast<size_t>(s.m * ldc), 99.0f);
  gemm_bf16(a.data(), s.m, lda, packed, c.data(), ldc, e, isa);
  auto r = [](float x) { return double(bf16_to_float(float_to_bf16(x))); };
  for (int64_t i = 0; i < s.m; ++i)
    for (int64_t j = 0; j < s.n; ++j) {
      double want = 0, mag = 0;
      for (int64_t kk = 0; kk < s.k; ++kk) {
        want += r(a[i * lda + kk]) * r(w[j * ldw + kk]);
        mag += std::fabs(r(a[i * lda + kk]) * r(w[j * ldw + kk]));
      }
      double tol = 1e-6 * (mag + 1.0);  // fp32 summation error grows with sum |terms|
      if (epilogue) {
        const double x = 0.125 * want + bias[j];
        want = 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))) + res[i * ldc + j];
        tol = 1e-5 * (mag + 1.0);  // plus the vectorised erf's error
      }
      ASSERT_NEAR(c[i * ldc + j], want, tol) << isa_name(isa) << " m=" << s.m << " n=" << s.n << " k=" << s.k
                                             << " epilogue=" << epilogue << " at " << i << "," << j;
    }
  for (int64_t i = 0; i < s.m; ++i)  // padding columns of c (beyond n) are never written
    for (int64_t j = s.n; j < ldc; ++j) ASSERT_EQ(c[i * ldc + j], 99.0f);
}

TEST(GemmBf16, EveryIsaMatchesProductOfRoundedMatrices) {
  std::mt19937 rng(7);
  std::vector<Case> cases;
  for (int64_t m : {1, 5, 6, 7, 8, 9, 17})
    for (int64_t n : {1, 15, 16, 17, 48, 63, 80})
      for (int64_t k : {0, 1, 2, 7, 255, 256, 257, 258})
        cases.push_back({m, n, k});
  cases.push_back({128, 768, 64});
  cases.push_back({31, 100, 600});
  for (int64_t m : {16, 32, 45, 64})  // AMX tiles (where enabled): whole, lone 16-row block, row tail
    for (int64_t n : {16, 48, 100}) cases.push_back({m, n, 96});
  for (Isa isa : runnable_isas())
    for (const auto& s : cases)
      for (bool epilogue : {false, true}) check(isa, s, epilogue, rng);
}

// The AMX entry point on panel ranges as threads split them: each panel's sums do not depend on
// the split (bit for bit), and every output is the product of the rounded matrices.
TEST(GemmBf16, AmxTilesGiveEveryPanelTheSameSumsOnAnySplit) {
  if (!amx_bf16_enabled()) GTEST_SKIP() << "no AMX-BF16 on this CPU (or SQZ_AMX=0)";
  std::mt19937 rng(11);
  std::normal_distribution<float> d;
  for (const Case& s : {Case{48, 120, 256}, Case{35, 96, 64}, Case{16, 16, 32}, Case{64, 64, 80}}) {
    const int64_t pairs = (s.k + 1) / 2, ldc = s.n + 3;
    std::vector<float> a(static_cast<size_t>(s.m * s.k)), w(static_cast<size_t>(s.n * s.k));
    for (auto* v : {&a, &w})
      for (auto& x : *v) x = d(rng);
    const auto packed = pack_bf16_weights(w.data(), s.n, s.k, s.k);
    std::vector<uint32_t> rounded(static_cast<size_t>(s.m * pairs));
    round_rows_to_bf16_ref(a.data(), s.m, s.k, s.k, rounded.data());
    std::vector<float> whole(static_cast<size_t>(s.m * ldc), 99.0f), split(whole);
    gemm_bf16_panels_amx(rounded.data(), s.m, pairs, packed, 0, packed.panels, whole.data(), ldc);
    for (int64_t p0 = 0; p0 < packed.panels; p0 += 3)  // odd ranges: pairs of panels fall apart
      gemm_bf16_panels_amx(rounded.data(), s.m, pairs, packed, p0, std::min(packed.panels, p0 + 3), split.data(), ldc);
    EXPECT_EQ(whole, split) << s.m << "x" << s.n << "x" << s.k;
    auto r = [](float x) { return double(bf16_to_float(float_to_bf16(x))); };
    for (int64_t i = 0; i < s.m; ++i)
      for (int64_t j = 0; j < s.n; ++j) {
        double want = 0, mag = 0;
        for (int64_t kk = 0; kk < s.k; ++kk) {
          want += r(a[i * s.k + kk]) * r(w[j * s.k + kk]);
          mag += std::fabs(r(a[i * s.k + kk]) * r(w[j * s.k + kk]));
        }
        ASSERT_NEAR(whole[i * ldc + j], want, 1e-6 * (mag + 1.0)) << s.m << "x" << s.n << "x" << s.k << " at " << i << "," << j;
      }
    for (int64_t i = 0; i < s.m; ++i)
      for (int64_t j = s.n; j < ldc; ++j) ASSERT_EQ(whole[i * ldc + j], 99.0f);
  }
}

TEST(GemmBf16, UnpackReturnsTheRoundedMatrix) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  for (int64_t n : {1, 15, 16, 17, 33})
    for (int64_t k : {1, 2, 3, 255, 258}) {
      std::vector<float> w(static_cast<size_t>(n * k));
      for (auto& v : w) v = nd(rng);
      std::vector<uint16_t> back(w.size(), 0), rounded(w.size());
      for (size_t i = 0; i < w.size(); ++i) rounded[i] = float_to_bf16(w[i]);
      unpack_bf16_weights(pack_bf16_weights(w.data(), n, k, k), back.data());
      EXPECT_EQ(back, rounded) << n << "x" << k;
    }
}

TEST(GemmBf16, ThreadCountDoesNotChangeResults) {
  std::mt19937 rng(3);
  const int64_t m = 37, n = 130, k = 301;
  std::vector<float> a(m * k), w(n * k);
  std::normal_distribution<float> d;
  for (auto& x : a) x = d(rng);
  for (auto& x : w) x = d(rng);
  const auto packed = pack_bf16_weights(w.data(), n, k, k);
  std::vector<float> one(m * n), two(m * n);
  set_num_threads(1);
  gemm_bf16(a.data(), m, k, packed, one.data(), n);
  set_num_threads(2);
  gemm_bf16(a.data(), m, k, packed, two.data(), n);
  set_num_threads(0);
  EXPECT_EQ(one, two);  // bit-identical: each output is one thread's, in one order
}

}  // namespace
}  // namespace sqz::kernels
