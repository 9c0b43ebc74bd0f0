// LayerNorm, GELU and softmax on every ISA against the libm/double reference: row lengths
// below/at/above the 8-lane vector, wide ranges (exp under/overflow, erf saturation) and
// masked (-inf) entries.
#include "kernels/eltwise/eltwise.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace sqz::kernels {
namespace {

std::vector<float> random_rows(int64_t m, int64_t ld, float scale, std::mt19937& rng) {
  std::normal_distribution<float> d(0.5f, scale);
  std::vector<float> x(static_cast<size_t>(m * ld));
  for (auto& v : x) v = d(rng);
  return x;
}

TEST(Eltwise, LayerNormMatchesReference) {
  std::mt19937 rng(1);
  for (Isa isa : runnable_isas())
    for (int64_t n : {1, 7, 8, 9, 768, 771}) {
      const int64_t m = 5, ld = n + 3;
      auto x = random_rows(m, ld, 3.0f, rng), g = random_rows(1, n, 1.0f, rng), b = random_rows(1, n, 1.0f, rng);
      std::vector<float> want(x.size()), got(x.size());
      layer_norm_rows_ref(x.data(), m, n, ld, g.data(), b.data(), 1e-12f, want.data(), ld);
      layer_norm_rows(x.data(), m, n, ld, g.data(), b.data(), 1e-12f, got.data(), ld, isa);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j)
          ASSERT_NEAR(got[i * ld + j], want[i * ld + j], 2e-5f * (1 + std::fabs(want[i * ld + j])))
              << isa_name(isa) << " n=" << n;
      // In place gives the same answer.
      layer_norm_rows(x.data(), m, n, ld, g.data(), b.data(), 1e-12f, x.data(), ld, isa);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) ASSERT_EQ(x[i * ld + j], got[i * ld + j]);
    }
}

TEST(Eltwise, RmsNormAndSiluMulMatchTheirDefinitions) {
  std::mt19937 rng(4);
  for (int64_t n : {1, 8, 9, 771}) {
    const int64_t m = 3, ld = n + 2;
    auto x = random_rows(m, ld, 3.0f, rng), g = random_rows(1, n, 1.0f, rng), u = random_rows(m, ld, 1.0f, rng);
    std::vector<float> y(x.size());
    rms_norm_rows(x.data(), m, n, ld, g.data(), 1e-6f, y.data(), ld);
    for (int64_t i = 0; i < m; ++i) {
      double ss = 0;
      for (int64_t j = 0; j < n; ++j) ss += double(x[i * ld + j]) * x[i * ld + j];
      const double inv = 1.0 / std::sqrt(ss / n + 1e-6);
      for (int64_t j = 0; j < n; ++j) ASSERT_NEAR(y[i * ld + j], g[j] * x[i * ld + j] * inv, 1e-5 * (1 + std::fabs(y[i * ld + j])));
    }
    auto s = x;
    silu_mul_rows(s.data(), ld, u.data(), ld, m, n);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        const double v = x[i * ld + j];
        ASSERT_NEAR(s[i * ld + j], v / (1 + std::exp(-v)) * u[i * ld + j], 1e-5 * (1 + std::fabs(s[i * ld + j])));
      }
  }
}

TEST(Eltwise, GeluMatchesErfDefinition) {
  std::mt19937 rng(2);
  for (Isa isa : runnable_isas())
    for (int64_t n : {1, 8, 13, 16, 21, 3072}) {
      auto x = random_rows(3, n, 4.0f, rng);
      x[0] = -12.0f;  // erf saturates: GELU is ~0
      if (n > 1) x[1] = 12.0f;
      auto want = x;
      gelu_rows_ref(want.data(), 3, n, n);
      gelu_rows(x.data(), 3, n, n, isa);
      for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(x[i], want[i], 2e-6f * (1 + std::fabs(want[i]))) << isa_name(isa);
    }
}

TEST(Eltwise, GeluTanhMatchesDefinition) {
  std::mt19937 rng(5);
  for (Isa isa : runnable_isas())
    for (int64_t n : {1, 8, 13, 16, 21, 3072}) {
      auto x = random_rows(2, n, 4.0f, rng);
      x[0] = -30.0f;  // tanh saturates: ~0
      if (n > 1) x[1] = 30.0f;
      auto want = x;
      gelu_tanh_rows_ref(want.data(), 2, n, n);
      gelu_tanh_rows(x.data(), 2, n, n, isa);
      for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(x[i], want[i], 2e-6f * (1 + std::fabs(want[i]))) << isa_name(isa);
    }
}

TEST(Eltwise, SiluMatchesDefinitionThroughActivateRows) {
  std::mt19937 rng(8);
  for (Isa isa : runnable_isas())
    for (int64_t n : {1, 8, 13, 16, 21, 3072}) {
      auto x = random_rows(2, n, 6.0f, rng);
      x[0] = -100.0f;  // exp(100) saturates: silu is -0
      if (n > 1) x[1] = 100.0f;  // exp(-100) underflows: silu is x
      auto want = x;
      silu_rows_ref(want.data(), 2, n, n);
      activate_rows(Activation::kSilu, x.data(), 2, n, n, isa);
      for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(x[i], want[i], 2e-6f * (1 + std::fabs(want[i]))) << isa_name(isa);
    }
}

TEST(Eltwise, ReluThroughActivateRows) {
  std::vector<float> x = {-2.0f, -0.0f, 0.5f, 3.0f, -1e-7f, 7.0f, 1.0f, -5.0f};
  for (Isa isa : runnable_isas()) {
    auto y = x;
    activate_rows(Activation::kRelu, y.data(), 2, 3, 4, isa);  // 2 rows of 3, stride 4: the 4th column untouched
    EXPECT_EQ(y, (std::vector<float>{0.0f, 0.0f, 0.5f, 3.0f, 0.0f, 7.0f, 1.0f, -5.0f})) << isa_name(isa);
  }
}

TEST(Eltwise, SoftmaxMatchesReferenceWithMaskedEntries) {
  std::mt19937 rng(3);
  const float ninf = -INFINITY;
  for (Isa isa : runnable_isas())
    for (int64_t n : {1, 5, 8, 9, 128, 131}) {
      const int64_t m = 4, ld = n + 1;
      auto x = random_rows(m, ld, 20.0f, rng);  // spreads of hundreds: exp underflows for many entries
      for (int64_t j = (n + 1) / 2; j < n; ++j) x[1 * ld + j] = ninf;  // padding keys
      for (int64_t j = 0; j < n; ++j) x[2 * ld + j] = ninf;      // nothing to attend to
      auto want = x;
      softmax_rows_ref(want.data(), m, n, ld);
      softmax_rows(x.data(), m, n, ld, isa);
      for (int64_t i = 0; i < m; ++i) {
        double sum = 0;
        for (int64_t j = 0; j < n; ++j) {
          ASSERT_NEAR(x[i * ld + j], want[i * ld + j], 1e-6f) << isa_name(isa) << " n=" << n << " row " << i;
          sum += x[i * ld + j];
        }
        if (i != 2) EXPECT_NEAR(sum, 1.0, 1e-5);
      }
      for (int64_t j = (n + 1) / 2; j < n; ++j) EXPECT_EQ(x[1 * ld + j], 0.0f);
      for (int64_t j = 0; j < n; ++j) EXPECT_EQ(x[2 * ld + j], 0.0f);
    }
}

}  // namespace
}  // namespace sqz::kernels
