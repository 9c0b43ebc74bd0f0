// The quantization math: ranges, qparams and fake-quantize per granularity, against hand values,
// against the kernels' scalar formulas (one definition for training and runtime) and against
// ATen's own fake-quantize ops.
#include "compress/quant/qmath.h"
#include "core/error.h"
#include "kernels/quant_math.h"
#include "unit/test_util.h"

namespace sqz {
namespace {

using quant::Granularity;
using quant::QuantSpec;

TEST(QuantMath, RangesPerBitWidth) {
  EXPECT_EQ(quant::qmin({8, true}), -127);
  EXPECT_EQ(quant::qmax({8, true}), 127);
  EXPECT_EQ(quant::qmin({4, true}), -7);
  EXPECT_EQ(quant::qmax({2, true}), 1);  // ternary
  EXPECT_EQ(quant::qmin({8, false}), 0);
  EXPECT_EQ(quant::qmax({3, false}), 7);
}

TEST(QuantMath, HandComputedSymmetricAndAsymmetric) {
  auto x = torch::tensor({-0.9f, -0.5f, 0.0f, 0.26f, 2.0f});
  QuantSpec sym{4, true};
  auto p = quant::dynamic_qparams(x, sym);
  EXPECT_FLOAT_EQ(p.scale.item<float>(), 2.0f / 7.0f);
  auto q = quant::quantize(x, p, sym);
  // -0.9/(2/7) = -3.15 -> -3; -1.75 -> -2; 0.91 -> 1; 7 -> 7
  EXPECT_TRUE(torch::equal(q, torch::tensor({-3, -2, 0, 1, 7}, torch::kInt32)));
  QuantSpec asym{8, false};
  auto pa = quant::dynamic_qparams(x, asym);
  EXPECT_FLOAT_EQ(pa.scale.item<float>(), 2.9f / 255.0f);
  EXPECT_FLOAT_EQ(pa.zero_point.item<float>(), 79.0f);  // round(0.9 / (2.9/255)) = round(79.14)
  auto fq = quant::fake_quantize(x, pa, asym);
  EXPECT_LE((fq - x).abs().max().item<float>(), 2.9f / 255.0f / 2 + 1e-6f);
  EXPECT_FLOAT_EQ(fq[2].item<float>(), 0.0f);  // zero stays exact
}

TEST(QuantMath, GranularityShapes) {
  auto w = torch::randn({6, 32});
  QuantSpec ch{8, true, Granularity::kChannel};
  EXPECT_EQ(quant::dynamic_qparams(w, ch).scale.sizes(), (std::vector<int64_t>{6, 1}));
  QuantSpec grp{4, true, Granularity::kGroup, 8};
  auto pg = quant::dynamic_qparams(w, grp);
  EXPECT_EQ(pg.scale.sizes(), (std::vector<int64_t>{6, 4, 1}));
  // Each group's largest magnitude maps to +-qmax exactly.
  auto q = quant::quantize(w, pg, grp).reshape({6, 4, 8});
  EXPECT_TRUE(q.abs().amax(-1).eq(7).all().item<bool>());
  auto act = torch::randn({2, 5, 16});
  QuantSpec tok{8, false, Granularity::kToken};
  auto pt = quant::dynamic_qparams(act, tok);
  EXPECT_EQ(pt.scale.sizes(), (std::vector<int64_t>{2, 5, 1}));
  EXPECT_EQ(quant::fake_quantize(act, pt, tok).sizes(), act.sizes());
}

// A group size that does not divide the width (SmolLM2's 576 in groups of 128): the last group is
// shorter, and quantizing it gives exactly what quantizing its columns alone as one group does.
TEST(QuantMath, RaggedLastGroupIsItsOwnShorterGroup) {
  auto w = torch::randn({6, 20});
  for (bool symmetric : {true, false}) {
    QuantSpec grp{4, symmetric, Granularity::kGroup, 8};
    auto p = quant::dynamic_qparams(w, grp);
    EXPECT_EQ(p.scale.sizes(), (std::vector<int64_t>{6, 3, 1}));
    auto fq = quant::fake_quantize(w, p, grp);
    ASSERT_EQ(fq.sizes(), w.sizes());
    QuantSpec whole{4, symmetric, Granularity::kChannel};
    for (int64_t g = 0; g < 3; ++g) {
      auto cols = w.slice(1, g * 8, std::min<int64_t>(20, g * 8 + 8));
      auto expected = quant::fake_quantize(cols, quant::dynamic_qparams(cols, whole), whole);
      EXPECT_TRUE(torch::equal(fq.slice(1, g * 8, std::min<int64_t>(20, g * 8 + 8)), expected)) << "group " << g;
    }
    EXPECT_TRUE(torch::equal(quant::dequantize(quant::quantize(w, p, grp), p, grp), fq));
  }
  EXPECT_TRUE(torch::allclose(quant::group_mean_abs(w, QuantSpec{4, true, Granularity::kGroup, 8}).select(1, 2).squeeze(-1),
                              w.slice(1, 16).abs().mean(1)));
}

TEST(QuantMath, ConstantAndZeroInputsNeedNoDivisionByZero) {
  for (bool sym : {true, false}) {
    QuantSpec s{8, sym, Granularity::kChannel};
    auto z = torch::zeros({3, 4});
    auto p = quant::dynamic_qparams(z, s);
    EXPECT_TRUE(torch::isfinite(p.scale).all().item<bool>());
    EXPECT_TRUE(torch::equal(quant::fake_quantize(z, p, s), z));
    auto c = torch::full({3, 4}, 0.7f);
    auto pc = quant::dynamic_qparams(c, s);
    EXPECT_TRUE(testing::all_close(quant::fake_quantize(c, pc, s), c, 1e-6, 1e-5));
  }
}

TEST(QuantMath, SameNumbersAsTheKernelsScalarFormulas) {
  torch::manual_seed(0);
  auto x = torch::randn({4, 64}) * 3;
  QuantSpec asym{8, false, Granularity::kToken};
  auto p = quant::dynamic_qparams(x, asym);
  auto q = quant::quantize(x, p, asym);
  QuantSpec sym{8, true, Granularity::kChannel};
  auto ps = quant::dynamic_qparams(x, sym);
  auto qs = quant::quantize(x, ps, sym);
  for (int64_t r = 0; r < 4; ++r) {
    auto row = x[r];
    auto kp = kernels::affine_u8_params(row.min().item<float>(), row.max().item<float>());
    EXPECT_FLOAT_EQ(kp.scale, p.scale[r][0].item<float>());
    EXPECT_EQ(kp.zero, static_cast<int32_t>(p.zero_point[r][0].item<float>()));
    float ks = kernels::symmetric_s8_scale(row.abs().max().item<float>());
    EXPECT_FLOAT_EQ(ks, ps.scale[r][0].item<float>());
    for (int64_t c = 0; c < 64; ++c) {
      EXPECT_EQ(kernels::quantize_u8(row[c].item<float>(), kp), q[r][c].item<int32_t>());
      EXPECT_EQ(kernels::quantize_s8(row[c].item<float>(), ks), qs[r][c].item<int32_t>());
    }
  }
}

TEST(QuantMath, AgreesWithAtenFakeQuantize) {
  torch::manual_seed(1);
  auto w = torch::randn({8, 48});
  for (int bits : {2, 4, 8}) {
    QuantSpec s{bits, true, Granularity::kChannel};
    auto p = quant::dynamic_qparams(w, s);
    auto ours = quant::fake_quantize(w, p, s);
    auto aten = torch::fake_quantize_per_channel_affine(w, p.scale.reshape({-1}), p.zero_point.reshape({-1}).to(torch::kInt32), 0,
                                                        quant::qmin(s), quant::qmax(s));
    // ATen multiplies by 1/scale where we divide: a value exactly at a rounding tie may land one
    // step apart; nothing else may differ.
    auto diff = (ours - aten).abs();
    EXPECT_LE(diff.gt(1e-6).sum().item<int64_t>(), 1) << bits << " bits";
    EXPECT_LE(diff.max().item<float>(), p.scale.max().item<float>() * 1.0001f);
    QuantSpec a{bits, false, Granularity::kTensor};
    auto pa = quant::dynamic_qparams(w, a);
    auto aten_t = torch::fake_quantize_per_tensor_affine(w, pa.scale.item<double>(), static_cast<int64_t>(pa.zero_point.item<float>()),
                                                         quant::qmin(a), quant::qmax(a));
    EXPECT_LE((quant::fake_quantize(w, pa, a) - aten_t).abs().gt(1e-6).sum().item<int64_t>(), 1) << bits << " bits";
  }
}

TEST(QuantMath, SteGradientIsIdentityAndBadSpecsAreNamed) {
  auto x = torch::randn({3, 8}).requires_grad_(true);
  QuantSpec s{4, true, Granularity::kChannel};
  quant::fake_quantize_ste(x, quant::dynamic_qparams(x, s), s).sum().backward();
  EXPECT_TRUE(torch::equal(x.grad(), torch::ones_like(x)));
  EXPECT_NE(testing::error_of([] { QuantSpec{9, true}.validate(16, "recipe.yaml prune[0]"); }).find("bits = 9 is outside 2..8"),
            std::string::npos);
  EXPECT_NE(testing::error_of([] { QuantSpec{1, true}.validate(16, "r"); }).find("outside 2..8"), std::string::npos);
  EXPECT_NE(testing::error_of([] { QuantSpec{4, true, Granularity::kGroup, 65}.validate(64, "r"); })
                .find("group_size 65 is outside 1..64 (the input dimension)"),
            std::string::npos);
  EXPECT_NE(testing::error_of([] { QuantSpec{4, true, Granularity::kGroup, 0}.validate(64, "r"); }).find("group_size 0 is outside 1..64"),
            std::string::npos);
  EXPECT_NE(testing::error_of([] { quant::parse_granularity("block", "r"); }).find("'block' is not one of"), std::string::npos);
}

}  // namespace
}  // namespace sqz
