// The int8 Linear against float math on the same dequantized operands (exact up to float
// rounding) and against the float layer within the error int8 rounding allows.
#include "kernels/gemm_u8s8/linear_int8.h"
#include "kernels/gemm_f32/gemm_f32.h"

#include <gtest/gtest.h>

#include <random>

namespace sqz::kernels {
namespace {

struct LinearCase {
  int64_t m, n, k;
  bool sparse24, residual;
  bool blocks = false;  // 4 x 4 block-sparse packing (of weights with whole blocks zeroed)
};

Int8Packing packing_of(bool sparse24, bool blocks) {
  return blocks ? Int8Packing::kBlocks4x4 : sparse24 ? Int8Packing::kSparse24 : Int8Packing::kDense;
}

// Zeroes about `fraction` of w's 4 x 4 blocks ([n, k]), deterministically.
void zero_blocks(std::vector<float>& w, int64_t n, int64_t k, double fraction, std::mt19937& rng) {
  std::bernoulli_distribution drop(fraction);
  for (int64_t o = 0; o < n; o += 4)
    for (int64_t g = 0; g < k; g += 4)
      if (drop(rng))
        for (int64_t j = o; j < std::min(n, o + 4); ++j)
          for (int64_t kk = g; kk < std::min(k, g + 4); ++kk) w[j * k + kk] = 0.0f;
}

// k = 600 spans several of the AVX-512 kernels' k blocks (256), so partial sums go through c
// before the fused dequantize; m = 13 mixes full and tail row tiles.
TEST(Int8Linear, MatchesDequantizedMathOnEveryIsa) {
  for (const LinearCase& s : {LinearCase{5, 37, 70, false, false}, LinearCase{13, 70, 600, false, true},
                              LinearCase{5, 37, 70, true, false}, LinearCase{13, 70, 600, true, true}, LinearCase{1, 40, 600, true, true},
                              // n = 150: column blocks split across threads, and a 6-column tail
                              LinearCase{20, 150, 100, false, true}, LinearCase{20, 150, 100, true, false},
                              LinearCase{1, 37, 70, false, true, true}, LinearCase{13, 70, 600, false, false, true},
                              LinearCase{70, 150, 100, false, true, true}}) {
    const int64_t m = s.m, n = s.n, k = s.k;
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x(m * k), w(n * k), b(n), r(m * n);
    for (auto& v : x) v = nd(rng);
    for (auto& v : w) v = 0.1f * nd(rng);
    for (auto& v : b) v = nd(rng);
    for (auto& v : r) v = nd(rng);
    if (s.sparse24)  // keep 2 of every 4 along k
      for (int64_t j = 0; j < n; ++j)
        for (int64_t kk = 0; kk < k; kk += 4)
          for (int64_t t : {1, 2})
            if (kk + t < k) w[j * k + kk + t] = 0.0f;
    if (s.blocks) zero_blocks(w, n, k, 0.7, rng);
    x[3] = 0.0f;  // padding-like zeros must stay exact
    auto layer = make_int8_linear(w.data(), n, k, b.data(), packing_of(s.sparse24, s.blocks));
    if (s.blocks) {
      ASSERT_TRUE(layer.blocks);
      EXPECT_LT(layer.blocks->density(), 0.45);
    }
    std::vector<uint8_t> q(m * k);
    std::vector<AffineParams> p(m);
    quantize_rows_u8(x.data(), m, k, k, q.data(), p.data());
    std::vector<int8_t> wq(n * k);
    for (int64_t j = 0; j < n; ++j)
      for (int64_t kk = 0; kk < k; ++kk) wq[j * k + kk] = quantize_s8(w[j * k + kk], layer.w_scale[j]);
    for (Isa isa : runnable_isas()) {
      std::vector<float> y(m * n);
      int8_linear_forward(layer, x.data(), m, k, y.data(), n, isa, s.residual ? r.data() : nullptr, n);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double deq = 0, exact = 0;
          for (int64_t kk = 0; kk < k; ++kk) {
            deq += double(p[i].scale) * (int(q[i * k + kk]) - p[i].zero) * double(layer.w_scale[j]) * wq[j * k + kk];
            exact += double(x[i * k + kk]) * w[j * k + kk];
          }
          const double add = b[j] + (s.residual ? r[i * n + j] : 0.0);
          const std::string where = std::string(isa_name(isa)) + " m=" + std::to_string(m) + " k=" + std::to_string(k) +
                                    (s.sparse24 ? " 2:4" : "") + (s.blocks ? " blocks" : "") + " at " + std::to_string(i) + "," + std::to_string(j);
          ASSERT_NEAR(y[i * n + j], deq + add, 1e-4 * (1 + std::fabs(deq))) << where;
          // int8 rounding error bound: half a step on each operand, summed over k.
          double bound = 0;
          for (int64_t kk = 0; kk < k; ++kk)
            bound += 0.5 * p[i].scale * std::fabs(w[j * k + kk]) + 0.5 * layer.w_scale[j] * (std::fabs(x[i * k + kk]) + p[i].scale);
          ASSERT_NEAR(y[i * n + j], exact + add, bound) << where;
        }
    }
  }
}

// The activation epilogue (FFN input layers) equals the activation applied afterwards, on every
// ISA, for the int8 Linear (dense and 2:4) and the fp32 GEMM; a residual is added after it.
TEST(Int8Linear, ActivationEpilogueEqualsActivationAfterwards) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t m = 9, n = 101, k = 64;  // several column blocks, the last one 5 wide
  std::vector<float> x(m * k), w(n * k), b(n), r(m * n);
  for (auto& v : x) v = nd(rng);
  for (auto& v : w) v = 0.2f * nd(rng);
  for (auto& v : b) v = nd(rng);
  for (auto& v : r) v = nd(rng);
  for (int64_t i = 0; i < n * k; i += 4) w[i + 1] = w[i + 3] = 0.0f;  // k % 4 == 0: 2:4 as well
  auto add_residual = [&](std::vector<float>& y) {
    for (int64_t i = 0; i < m * n; ++i) y[i] += r[i];
  };
  for (bool residual : {false, true})
    for (Int8Packing packing : {Int8Packing::kDense, Int8Packing::kSparse24, Int8Packing::kBlocks4x4})
      for (Activation act : {Activation::kGelu, Activation::kGeluTanh})
        for (Isa isa : runnable_isas()) {
          auto layer = make_int8_linear(w.data(), n, k, b.data(), packing);
          std::vector<float> want(m * n), got(m * n);
          int8_linear_forward(layer, x.data(), m, k, want.data(), n, isa);
          activate_rows(act, want.data(), m, n, n, Isa::kRef);
          if (residual) add_residual(want);
          int8_linear_forward(layer, x.data(), m, k, got.data(), n, isa, residual ? r.data() : nullptr, n, act);
          for (int64_t i = 0; i < m * n; ++i) ASSERT_NEAR(got[i], want[i], 1e-6f * (1 + std::fabs(want[i]))) << isa_name(isa);
        }
  auto packed = pack_f32_weights(w.data(), n, k, k, 1);
  for (bool residual : {false, true})
    for (Isa isa : runnable_isas()) {
      std::vector<float> want(m * n), got(m * n);
      GemmF32Epilogue e;
      e.bias = b.data();
      gemm_f32(x.data(), m, k, packed, want.data(), n, e, isa);
      gelu_rows_ref(want.data(), m, n, n);
      if (residual) add_residual(want);
      e.activation = Activation::kGelu;
      e.residual = residual ? r.data() : nullptr;
      e.ldr = n;
      gemm_f32(x.data(), m, k, packed, got.data(), n, e, isa);
      for (int64_t i = 0; i < m * n; ++i) ASSERT_NEAR(got[i], want[i], 1e-6f * (1 + std::fabs(want[i]))) << isa_name(isa);
    }
}

// Two int8 Linears chained through the requantizing epilogue (the FFN: input Linear + GELU, then
// output Linear + residual) compute bit for bit what the unfused pair computes.
TEST(Int8Linear, RequantizingEpilogueEqualsDequantizeThenQuantize) {
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (Isa isa : runnable_isas())
    for (Int8Packing packing : {Int8Packing::kDense, Int8Packing::kSparse24, Int8Packing::kBlocks4x4})
      for (int64_t m : {1, 7, 20}) {
        const bool sparse24 = packing == Int8Packing::kSparse24;
        const int64_t k = 64, inner = 150;
        std::vector<float> x(m * k), w1(inner * k), b1(inner), w2(k * inner), b2(k), r(m * k);
        for (auto* v : {&x, &w1, &b1, &w2, &b2, &r})
          for (auto& e : *v) e = nd(rng);
        if (sparse24)
          for (auto* w : {&w1, &w2})
            for (size_t i = 0; i < w->size(); ++i)
              if (i % 4 == 1 || i % 4 == 2) (*w)[i] = 0.0f;
        if (packing == Int8Packing::kBlocks4x4) {
          zero_blocks(w1, inner, k, 0.6, rng);
          zero_blocks(w2, k, inner, 0.6, rng);
        }
        auto first = make_int8_linear(w1.data(), inner, k, b1.data(), packing);
        auto second = make_int8_linear(w2.data(), k, inner, b2.data(), packing);
        std::vector<float> mid(m * inner), want(m * k), got(m * k);
        int8_linear_forward(first, x.data(), m, k, mid.data(), inner, isa, nullptr, 0, Activation::kGelu);
        int8_linear_forward(second, mid.data(), m, inner, want.data(), k, isa, r.data(), k);
        QuantizedRows codes;
        int8_linear_forward_requantize(first, x.data(), m, k, codes, isa, Activation::kGelu);
        ASSERT_EQ(codes.m, m);
        ASSERT_EQ(codes.k, inner);
        int8_linear_forward_quantized(second, codes, got.data(), k, isa, r.data(), k);
        EXPECT_EQ(got, want) << isa_name(isa) << " packing " << int(packing) << " m " << m;
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

namespace sqz::kernels {
namespace {

// The activation codes are bit-identical on every ISA (same division, rounding and clamp), row
// tails and a static range included; dequantization agrees to float rounding.
TEST(QuantizeRows, EveryIsaGivesTheReferenceCodes) {
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  for (int64_t k : {1, 7, 8, 9, 16, 17, 33, 70}) {
    const int64_t m = 4, ldx = k + 2;
    std::vector<float> x(m * ldx);
    for (auto& v : x) v = nd(rng);
    x[1] = 0.5f * 3.0f / 255.0f;  // lands on a rounding tie for some ranges
    const AffineParams fixed = affine_u8_params(-1.0f, 2.0f);  // saturates both ends
    for (const AffineParams* f : {static_cast<const AffineParams*>(nullptr), &fixed}) {
      std::vector<uint8_t> want(m * k), got(m * k);
      std::vector<AffineParams> pw(m), pg(m);
      quantize_rows_u8_ref(x.data(), m, k, ldx, want.data(), pw.data(), f);
      for (Isa isa : runnable_isas()) {
        quantize_rows_u8(x.data(), m, k, ldx, got.data(), pg.data(), f, isa);
        ASSERT_EQ(got, want) << isa_name(isa) << " k=" << k;
        for (int64_t i = 0; i < m; ++i) ASSERT_EQ(pg[i].scale, pw[i].scale);
      }
    }
  }
}

TEST(QuantizeRows, DequantizeMatchesReference) {
  std::mt19937 rng(4);
  const int64_t m = 3, n = 21;
  std::vector<int32_t> acc(m * n), sums(n);
  std::vector<float> ws(n), bias(n), res(m * n);
  std::uniform_int_distribution<int32_t> ua(-2000000, 2000000), us(-3000, 3000);
  std::normal_distribution<float> nd;
  for (auto& v : acc) v = ua(rng);
  for (auto& v : sums) v = us(rng);
  for (auto& v : ws) v = std::fabs(nd(rng)) * 1e-3f;
  for (auto& v : bias) v = nd(rng);
  for (auto& v : res) v = nd(rng);
  std::vector<AffineParams> a = {{0.01f, 0}, {0.02f, 128}, {0.5f, 255}};
  DequantizeArgs args{acc.data(), a.data(), ws.data(), sums.data(), bias.data(), res.data(), n};
  std::vector<float> want(m * n), got(m * n);
  dequantize_rows_ref(args, m, n, want.data(), n);
  for (Isa isa : runnable_isas()) {
    dequantize_rows(args, m, n, got.data(), n, isa);
    for (int64_t i = 0; i < m * n; ++i) ASSERT_NEAR(got[i], want[i], 1e-6f * (1 + std::fabs(want[i]))) << isa_name(isa);
  }
}

}  // namespace
}  // namespace sqz::kernels
