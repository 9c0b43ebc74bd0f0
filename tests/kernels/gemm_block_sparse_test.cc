// The block-sparse int8 GEMM against a plain int32 product of the unpacked weights, exactly, on
// every ISA this CPU runs: m around the decode path (<= 4), the vector (16 rows) and the register
// tile (64 rows); n and k around the 4 x 4 block; blocks kept at several densities, values at the
// int8/uint8 limits; the packing's round trip and what its validator refuses.
#include "kernels/gemm_block_sparse/gemm_block_sparse.h"

#include <gtest/gtest.h>

#include <random>

#include "int8_reference.h"

namespace sqz::kernels {
namespace {

// Weights in which each 4 x 4 block is kept with probability `density` (kept blocks may still
// hold zeros inside).
std::vector<int8_t> block_sparse_weights(int64_t n, int64_t k, double density, bool extreme, std::mt19937& rng) {
  std::vector<int8_t> w(static_cast<size_t>(n * k), 0);
  std::uniform_int_distribution<int> value(-128, 127);
  std::bernoulli_distribution keep(density), zero(0.2);
  for (int64_t o = 0; o * 4 < n; ++o)
    for (int64_t g = 0; g * 4 < k; ++g) {
      if (!keep(rng)) continue;
      for (int64_t j = o * 4; j < std::min(n, o * 4 + 4); ++j)
        for (int64_t kk = g * 4; kk < std::min(k, g * 4 + 4); ++kk)
          if (!zero(rng)) w[j * k + kk] = extreme ? static_cast<int8_t>((j + kk) % 2 ? -128 : 127) : static_cast<int8_t>(value(rng));
    }
  return w;
}

TEST(GemmBlockSparse, EveryIsaMatchesDenseProductExactly) {
  std::mt19937 rng(5);
  for (Isa isa : runnable_isas())
    for (int64_t m : {1, 2, 4, 5, 15, 16, 17, 63, 64, 65, 130})
      for (int64_t n : {1, 3, 4, 5, 16, 19})
        for (int64_t k : {0, 1, 3, 4, 7, 8, 33, 64})
          for (double density : {0.0, 0.3, 1.0})
            for (bool extreme : {false, true}) {
              const int64_t lda = k + 3, ldc = n + 2;
              std::vector<uint8_t> a(static_cast<size_t>(m * lda));
              std::uniform_int_distribution<int> ua(0, 255);
              for (auto& v : a) v = extreme ? 255 : static_cast<uint8_t>(ua(rng));
              const auto w = block_sparse_weights(n, k, density, extreme, rng);
              const auto packed = pack_s8_block_sparse(w.data(), n, k, k);
              ASSERT_EQ(validate_block_sparse(packed), "");
              const auto want = reference_s32_product(a, m, lda, w, n, k, ldc);
              std::vector<int32_t> got(want.size(), -7);
              gemm_u8s8s32_block_sparse(a.data(), m, lda, packed, got.data(), ldc, isa);
              ASSERT_EQ(got, want) << isa_name(isa) << " m=" << m << " n=" << n << " k=" << k << " density=" << density
                                   << " extreme=" << extreme;
              ASSERT_EQ(std::vector<int32_t>(packed.column_sums.begin(), packed.column_sums.begin() + n),
                        reference_column_sums(w, n, k));
            }
}

// The activations regrouped by each ISA's packing equal the scalar regrouping byte for byte (the
// AVX-512 one transposes 16 x 16 words under byte masks).
TEST(GemmBlockSparse, ActivationRegroupingEqualsScalarOnEveryIsa) {
  std::mt19937 rng(2);
  for (Isa isa : runnable_isas())
    for (int64_t m : {1, 4, 5, 16, 33, 130})
      for (int64_t k : {1, 3, 4, 63, 64, 65, 200}) {
        const int64_t lda = k + 7;
        std::vector<uint8_t> a(static_cast<size_t>(m * lda));
        for (auto& v : a) v = static_cast<uint8_t>(rng());
        std::vector<uint8_t> want, got;
        pack_block_sparse_activations(a.data(), m, lda, k, want, Isa::kRef);
        pack_block_sparse_activations(a.data(), m, lda, k, got, isa);
        ASSERT_EQ(got, want) << isa_name(isa) << " m=" << m << " k=" << k;
        ASSERT_EQ(static_cast<int64_t>(want.size()), block_sparse_rows_padded(m) * ((k + 3) / 4) * 4);
      }
}

TEST(GemmBlockSparse, PackingRoundTripsAndStoresOnlyNonZeroBlocks) {
  std::mt19937 rng(9);
  const int64_t n = 37, k = 70;
  const auto w = block_sparse_weights(n, k, 0.25, false, rng);
  const auto p = pack_s8_block_sparse(w.data(), n, k, k);
  std::vector<int8_t> back(w.size(), 1);
  unpack_s8_block_sparse(p, back.data());
  EXPECT_EQ(back, w);
  EXPECT_NEAR(p.density(), 1.0 - block_sparsity(w.data(), n, k, k), 1e-12);
  EXPECT_GT(p.density(), 0.1);
  EXPECT_LT(p.density(), 0.4);
  for (int64_t b = 0; b < p.blocks(); ++b) {
    bool any = false;
    for (int t = 0; t < 16; ++t) any |= p.values[b * 16 + t] != 0;
    EXPECT_TRUE(any) << "block " << b << " is all zero";
  }
}

TEST(GemmBlockSparse, ValidatorNamesWhatIsWrong) {
  std::mt19937 rng(3);
  const auto w = block_sparse_weights(8, 16, 1.0, false, rng);
  const auto good = pack_s8_block_sparse(w.data(), 8, 16, 16);
  ASSERT_EQ(validate_block_sparse(good), "");
  auto bad = good;
  bad.block_k[1] = 99;
  EXPECT_NE(validate_block_sparse(bad).find("k group out of range"), std::string::npos);
  bad = good;
  std::swap(bad.block_k[0], bad.block_k[1]);
  EXPECT_NE(validate_block_sparse(bad).find("not ascending"), std::string::npos);
  bad = good;
  bad.group_start[1] = 100;
  EXPECT_NE(validate_block_sparse(bad), "");
  bad = good;
  bad.values.pop_back();
  EXPECT_NE(validate_block_sparse(bad).find("16 bytes per block"), std::string::npos);
}

}  // namespace
}  // namespace sqz::kernels
