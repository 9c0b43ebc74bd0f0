// The fp32 GEMM on every ISA this CPU runs against a plain double-precision product of the
// unpacked matrices: m, n, k below/at/above the 6x16 tile and the 256 k block, strided inputs,
// both packing orientations (Linear [n, k] and row-major [k, n]) and every epilogue term.
#include "kernels/gemm_f32/gemm_f32.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kernels/parallel.h"

namespace sqz::kernels {
namespace {

struct Case {
  int64_t m, n, k;
};

std::vector<Case> cases() {
  std::vector<Case> out;
  for (int64_t m : {1, 5, 6, 7, 8, 13, 17})
    for (int64_t n : {1, 15, 16, 17, 40, 63, 80})
      for (int64_t k : {0, 1, 7, 255, 256, 257})
        out.push_back({m, n, k});
  out.push_back({128, 768, 64});
  out.push_back({31, 100, 600});
  return out;
}

// Checks one case; `kn` packs from a [k, n] row-major source instead of [n, k].
void check(Isa isa, const Case& s, bool kn, bool epilogue, std::mt19937& rng) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  const int64_t lda = s.k + 3, ldc = s.n + 2, ldw = (kn ? s.n : s.k) + 1;
  std::vector<float> a(static_cast<size_t>(s.m * lda)), w(static_cast<size_t>((kn ? s.k : s.n) * ldw) + 1);
  std::vector<float> bias(static_cast<size_t>(s.n)), res(static_cast<size_t>(s.m * ldc));
  for (auto* v : {&a, &w, &bias, &res})
    for (auto& x : *v) x = d(rng);
  auto at = [&](int64_t j, int64_t kk) { return kn ? w[kk * ldw + j] : w[j * ldw + kk]; };
  auto packed = kn ? pack_f32_weights(w.data(), s.n, s.k, 1, ldw) : pack_f32_weights(w.data(), s.n, s.k, ldw, 1);
  GemmF32Epilogue e;
  if (epilogue) e = {0.125f, bias.data(), res.data(), ldc};
  std::vector<float> c(static_cast<size_t>(s.m * ldc), 99.0f);
  gemm_f32(a.data(), s.m, lda, packed, c.data(), ldc, e, isa);
  for (int64_t i = 0; i < s.m; ++i)
    for (int64_t j = 0; j < s.n; ++j) {
      double want = 0, mag = 0;
      for (int64_t kk = 0; kk < s.k; ++kk) {
        want += double(a[i * lda + kk]) * at(j, kk);
        mag += std::fabs(double(a[i * lda + kk]) * at(j, kk));
      }
      if (epilogue) want = 0.125 * want + bias[j] + res[i * ldc + j];
      const double tol = 1e-6 * (mag + 1.0);  // fp32 summation error grows with sum |terms|
      ASSERT_NEAR(c[i * ldc + j], want, tol) << isa_name(isa) << " m=" << s.m << " n=" << s.n << " k=" << s.k
                                             << " kn=" << kn << " epilogue=" << epilogue << " at " << i << "," << j;
    }
  // Padding columns of c (beyond n) are never written.
  for (int64_t i = 0; i < s.m; ++i)
    for (int64_t j = s.n; j < ldc; ++j) ASSERT_EQ(c[i * ldc + j], 99.0f);
}

TEST(GemmF32, EveryIsaMatchesPlainProduct) {
  std::mt19937 rng(7);
  for (Isa isa : runnable_isas())
    for (const auto& s : cases())
      for (bool kn : {false, true})
        for (bool epilogue : {false, true}) check(isa, s, kn, epilogue, rng);
}

TEST(GemmF32, UnpackReturnsThePackedMatrix) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  for (int64_t n : {1, 15, 16, 17, 33})
    for (int64_t k : {1, 3, 255, 257}) {
      std::vector<float> w(static_cast<size_t>(n * k)), back(w.size(), 0.0f);
      for (auto& v : w) v = nd(rng);
      unpack_f32_weights(pack_f32_weights(w.data(), n, k, k, 1), back.data());
      EXPECT_EQ(back, w) << n << "x" << k;
    }
}

TEST(GemmF32, ThreadCountDoesNotChangeResults) {
  std::mt19937 rng(3);
  const int64_t m = 37, n = 130, k = 300;
  std::vector<float> a(m * k), w(n * k);
  std::normal_distribution<float> d;
  for (auto& x : a) x = d(rng);
  for (auto& x : w) x = d(rng);
  auto packed = pack_f32_weights(w.data(), n, k, k, 1);
  std::vector<float> one(m * n), two(m * n);
  set_num_threads(1);
  gemm_f32(a.data(), m, k, packed, one.data(), n);
  set_num_threads(2);
  gemm_f32(a.data(), m, k, packed, two.data(), n);
  set_num_threads(0);
  EXPECT_EQ(one, two);  // bit-identical: each output is one thread's, in one order
}

}  // namespace
}  // namespace sqz::kernels
