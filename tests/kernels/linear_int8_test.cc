// The int8 Linear against float math on the same dequantized operands (exact up to float
// rounding) and against the float layer within the error int8 rounding allows.
#include "kernels/gemm_u8s8/linear_int8.h"

#include <gtest/gtest.h>

#include <random>

namespace sqz::kernels {
namespace {

TEST(Int8Linear, MatchesDequantizedMathOnEveryIsa) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t m = 5, n = 37, k = 70;
  std::vector<float> x(m * k), w(n * k), b(n);
  for (auto& v : x) v = nd(rng);
  for (auto& v : w) v = 0.1f * nd(rng);
  for (auto& v : b) v = nd(rng);
  x[3] = 0.0f;  // padding-like zeros must stay exact
  auto layer = make_int8_linear(w.data(), n, k, b.data());
  std::vector<uint8_t> q(m * k);
  std::vector<AffineParams> p(m);
  quantize_rows_u8(x.data(), m, k, k, q.data(), p.data());
  std::vector<int8_t> wq(n * k);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t kk = 0; kk < k; ++kk) wq[j * k + kk] = quantize_s8(w[j * k + kk], layer.w_scale[j]);
  for (Isa isa : runnable_isas()) {
    std::vector<float> y(m * n);
    int8_linear_forward(layer, x.data(), m, k, y.data(), n, isa);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double deq = 0, exact = 0;
        for (int64_t kk = 0; kk < k; ++kk) {
          deq += double(p[i].scale) * (int(q[i * k + kk]) - p[i].zero) * double(layer.w_scale[j]) * wq[j * k + kk];
          exact += double(x[i * k + kk]) * w[j * k + kk];
        }
        EXPECT_NEAR(y[i * n + j], deq + b[j], 1e-4 * (1 + std::fabs(deq))) << isa_name(isa);
        // int8 rounding error bound: half a step on each operand, summed over k.
        double bound = 0;
        for (int64_t kk = 0; kk < k; ++kk)
          bound += 0.5 * p[i].scale * std::fabs(w[j * k + kk]) + 0.5 * layer.w_scale[j] * (std::fabs(x[i * k + kk]) + p[i].scale);
        EXPECT_NEAR(y[i * n + j], exact + b[j], bound) << isa_name(isa);
      }
  }
}

TEST(QuantMath, AffineParamsCoverZeroAndConstants) {
  auto p = affine_u8_params(0.0f, 0.0f);
  EXPECT_GT(p.scale, 0);
  EXPECT_EQ(quantize_u8(0.0f, p), p.zero);
  p = affine_u8_params(-1.0f, 3.0f);
  EXPECT_EQ(quantize_u8(-1.0f, p), 0);
  EXPECT_EQ(quantize_u8(3.0f, p), 255);
  EXPECT_NEAR(p.scale * (quantize_u8(0.0f, p) - p.zero), 0.0f, 1e-7);
  p = affine_u8_params(2.0f, 5.0f);  // the range is widened to include 0
  EXPECT_EQ(p.zero, 0);
  EXPECT_EQ(quantize_s8(1000.0f, 1.0f), 127);
  EXPECT_EQ(quantize_s8(-1000.0f, 1.0f), -127);
}

}  // namespace
}  // namespace sqz::kernels
