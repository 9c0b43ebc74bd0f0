// The 2:4 sparse int8 GEMM against a plain int32 product of the unpacked weights, exactly, on
// every ISA this CPU runs: m, n, k around the window (8) and block (16), groups with 0, 1 or 2
// non-zeros, values at the int8/uint8 limits; and the packing's refusals.
#include "kernels/gemm_sparse24/gemm_sparse24.h"

#include <gtest/gtest.h>

#include <random>

#include "int8_reference.h"

namespace sqz::kernels {
namespace {

enum class Fill { kRandom, kExtreme };

// Random 2:4 weights: each group of 4 keeps 0, 1 or 2 entries at random positions.
std::vector<int8_t> sparse_weights(int64_t n, int64_t k, Fill f, std::mt19937& rng) {
  std::vector<int8_t> w(static_cast<size_t>(n * k), 0);
  std::uniform_int_distribution<int> value(-128, 127), keep(0, 2), pos(0, 3);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t g = 0; g * 4 < k; ++g) {
      const int kept = keep(rng);
      for (int t = 0; t < kept; ++t) {
        const int64_t kk = g * 4 + pos(rng);
        if (kk < k) w[j * k + kk] = f == Fill::kExtreme ? static_cast<int8_t>(t ? -128 : 127) : static_cast<int8_t>(value(rng));
      }
    }
  return w;
}

TEST(GemmSparse24, EveryIsaMatchesDenseProductExactly) {
  std::mt19937 rng(11);
  for (Isa isa : runnable_isas())
    for (int64_t m : {1, 2, 3, 7, 9})
      for (int64_t n : {1, 15, 16, 17, 48, 80})
        for (int64_t k : {0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 64, 66})
          for (Fill f : {Fill::kRandom, Fill::kExtreme}) {
            const int64_t lda = k + 5, ldc = n + 3;
            std::vector<uint8_t> a(static_cast<size_t>(m * lda));
            std::uniform_int_distribution<int> ua(0, 255);
            for (auto& v : a) v = f == Fill::kExtreme ? 255 : static_cast<uint8_t>(ua(rng));
            auto w = sparse_weights(n, k, f, rng);
            auto packed = pack_s8_sparse24(w.data(), n, k, k);
            ASSERT_EQ(validate_sparse24(packed), "");
            const auto want = reference_s32_product(a, m, lda, w, n, k, ldc);
            std::vector<int32_t> got(want.size(), -7);
            gemm_u8s8s32_sparse24(a.data(), m, lda, packed, got.data(), ldc, isa);
            ASSERT_EQ(got, want) << isa_name(isa) << " m=" << m << " n=" << n << " k=" << k << " fill=" << int(f);
            ASSERT_EQ(std::vector<int32_t>(packed.column_sums.begin(), packed.column_sums.begin() + n),
                      reference_column_sums(w, n, k));
          }
}

TEST(GemmSparse24, UnpackReturnsThePackedCodes) {
  std::mt19937 rng(5);
  for (int64_t n : {1, 15, 16, 17, 48})
    for (int64_t k : {1, 3, 4, 7, 8, 9, 66})
      for (Fill f : {Fill::kRandom, Fill::kExtreme}) {
        auto w = sparse_weights(n, k, f, rng);
        std::vector<int8_t> back(w.size(), 1);
        unpack_s8_sparse24(pack_s8_sparse24(w.data(), n, k, k), back.data());
        EXPECT_EQ(back, w) << n << "x" << k;
      }
}

TEST(GemmSparse24, RefusesDenseGroupsAndBadPositions) {
  std::vector<int8_t> w(2 * 8, 0);
  w[8 + 4] = w[8 + 5] = w[8 + 7] = 1;  // row 1, group 1: three non-zeros
  try {
    pack_s8_sparse24(w.data(), 2, 8, 8);
    FAIL() << "accepted a 3:4 group";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("row 1, group 1 (k 4..7) has 3 non-zeros"), std::string::npos) << e.what();
  }
  w[8 + 7] = 0;
  auto packed = pack_s8_sparse24(w.data(), 2, 8, 8);
  EXPECT_EQ(validate_sparse24(packed), "");
  auto bad = packed;
  bad.positions[0] = 9;  // out of the window
  EXPECT_NE(validate_sparse24(bad).find("position 9"), std::string::npos) << validate_sparse24(bad);
  bad = packed;
  bad.positions[1] = bad.positions[0];  // the same activation twice
  EXPECT_NE(validate_sparse24(bad).find("duplicate position"), std::string::npos);
}

}  // namespace
}  // namespace sqz::kernels
