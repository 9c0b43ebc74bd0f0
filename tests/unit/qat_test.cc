// Quantization II: the fake quantizers' gradients (LSQ against ATen's learnable fake-quantize;
// every estimator against central finite differences of the function it differentiates),
// observers, GPTQ against round-to-nearest, quantizers on a model, and the compressed-tensors
// export loaded back to exactly the fake-quantized model.
#include <yaml-cpp/yaml.h>

#include "compress/quant/export.h"
#include "compress/quant/fake_quant.h"
#include "compress/quant/gptq.h"
#include "compress/quant/observer.h"
#include "compress/quant/quantizer.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "unit/test_util.h"
#include "unit/tiny_models.h"

namespace sqz {
namespace {

using quant::Granularity;
using quant::QuantSpec;

// Gradient of sum(c * f(p)) with respect to p, by autograd.
torch::Tensor autograd_grad(const std::function<torch::Tensor(const torch::Tensor&)>& f, const torch::Tensor& p0, const torch::Tensor& c) {
  auto p = p0.clone().set_requires_grad(true);
  (f(p) * c).sum().backward();
  return p.grad();
}

// The same by central differences, one entry of p at a time (double precision).
torch::Tensor numeric_grad(const std::function<torch::Tensor(const torch::Tensor&)>& f, const torch::Tensor& p0, const torch::Tensor& c,
                           double eps = 1e-6) {
  torch::NoGradGuard no_grad;
  auto g = torch::zeros_like(p0);
  auto flat = p0.reshape({-1});
  for (int64_t i = 0; i < flat.numel(); ++i) {
    auto hi = flat.clone(), lo = flat.clone();
    hi[i] += eps;
    lo[i] -= eps;
    double d = ((f(hi.reshape(p0.sizes())) * c).sum() - (f(lo.reshape(p0.sizes())) * c).sum()).item<double>() / (2 * eps);
    g.reshape({-1})[i] = d;
  }
  return g;
}

TEST(FakeQuant, LsqMatchesAtenPerTensorAndPerChannel) {
  torch::manual_seed(0);
  auto x = torch::randn({6, 20}) * 3;
  auto dy = torch::randn({6, 20});
  QuantSpec spec{4, false, Granularity::kTensor};
  auto scale = torch::tensor({0.37f}), zero = torch::tensor({5.0f});
  const double gf = 0.5;
  auto ours = [&](bool per_channel) {
    auto xs = x.clone().set_requires_grad(true);
    QuantSpec s = spec;
    torch::Tensor sc;
    if (per_channel) {
      s.granularity = Granularity::kChannel;
      sc = torch::linspace(0.2, 0.6, 6).reshape({6, 1}).set_requires_grad(true);
      auto y = quant::lsq_fake_quantize(xs, sc, torch::full({6, 1}, 5.0), s, gf);
      (y * dy).sum().backward();
      return std::make_tuple(y.detach(), xs.grad(), sc.grad().reshape({6}));
    }
    sc = scale.reshape({1, 1}).clone().set_requires_grad(true);
    auto y = quant::lsq_fake_quantize(xs, sc, zero.reshape({1, 1}), s, gf);
    (y * dy).sum().backward();
    return std::make_tuple(y.detach(), xs.grad(), sc.grad().reshape({1}));
  };
  for (bool per_channel : {false, true}) {
    SCOPED_TRACE(per_channel ? "per channel" : "per tensor");
    auto [y, dx, ds] = ours(per_channel);
    auto xa = x.clone().set_requires_grad(true);
    torch::Tensor sa, za, ya;
    if (per_channel) {
      sa = torch::linspace(0.2, 0.6, 6).set_requires_grad(true);
      za = torch::full({6}, 5.0).set_requires_grad(true);
      ya = at::_fake_quantize_learnable_per_channel_affine(xa, sa, za, 0, 0, 15, gf);
    } else {
      sa = scale.clone().set_requires_grad(true);
      za = zero.clone().set_requires_grad(true);
      ya = at::_fake_quantize_learnable_per_tensor_affine(xa, sa, za, 0, 15, gf);
    }
    (ya * dy).sum().backward();
    EXPECT_TRUE(testing::all_close(y, ya.detach(), 1e-5, 1e-5));
    EXPECT_TRUE(testing::all_close(dx, xa.grad(), 1e-6, 0));
    EXPECT_TRUE(testing::all_close(ds, sa.grad(), 1e-4, 1e-4));
  }
}

TEST(FakeQuant, LsqScaleGradientIsTheDerivativeWithRoundingHeldLocallyLinear) {
  // LSQ differentiates s * clamp(R(x/s)) with R's slope taken as 1: the derivative of
  // s * (round(x/s0) + x/s - x/s0) at s0 inside the range, and of s * qmax / qmin outside.
  torch::manual_seed(1);
  auto x = torch::randn({40}, torch::kFloat64) * 2;
  auto c = torch::randn({40}, torch::kFloat64);
  QuantSpec spec{3, true, Granularity::kTensor};
  auto s0 = torch::full({1, 1}, 0.31, torch::kFloat64);
  auto fq = [&](const torch::Tensor& s) { return quant::lsq_fake_quantize(x, s, torch::zeros({1, 1}, torch::kFloat64), spec, 1.0); };
  auto u0 = x / s0.item<double>();
  auto surrogate = [&](const torch::Tensor& s) {
    auto u = x / s;
    auto inside = u0.round().abs() <= 3;
    return torch::where(inside, s * (u0.round() + u - u0), s * u0.round().clamp(-3, 3));
  };
  EXPECT_TRUE(testing::all_close(autograd_grad(fq, s0, c), numeric_grad(surrogate, s0, c), 1e-6, 1e-6));
}

TEST(FakeQuant, PactAlphaGradientComesFromClippedInputsOnly) {
  torch::manual_seed(2);
  auto x = torch::randn({50}, torch::kFloat64) * 2;
  auto c = torch::randn({50}, torch::kFloat64);
  QuantSpec spec{4, true, Granularity::kTensor};
  auto a0 = torch::full({1, 1}, 1.3, torch::kFloat64);
  auto fq = [&](const torch::Tensor& a) { return quant::pact_fake_quantize(x, a, spec); };
  // PACT's estimator: d/dalpha of clip(x, -alpha, alpha) with the rounding treated as identity.
  auto surrogate = [&](const torch::Tensor& a) { return torch::maximum(torch::minimum(x, a), -a); };
  EXPECT_TRUE(testing::all_close(autograd_grad(fq, a0, c), numeric_grad(surrogate, a0, c), 1e-6, 1e-6));
  // And x's gradient is 1 inside the clip range, 0 outside.
  auto dx = autograd_grad([&](const torch::Tensor& xx) { return quant::pact_fake_quantize(xx, a0, spec); }, x, torch::ones_like(x));
  EXPECT_TRUE(torch::equal(dx, (x.abs() <= 1.3).to(torch::kFloat64)));
  // Forward: on the grid alpha / 7, clipped at alpha.
  auto y = quant::pact_fake_quantize(x, a0, spec);
  EXPECT_LE(y.abs().max().item<double>(), 1.3 + 1e-12);
  EXPECT_TRUE(testing::all_close(y / (1.3 / 7), (y / (1.3 / 7)).round(), 1e-9, 0));
}

TEST(FakeQuant, QuantGptGammaGradientUsesBothSidesOfTheClipRange) {
  torch::manual_seed(3);
  auto w = torch::randn({4, 16}, torch::kFloat64);
  auto c = torch::randn({4, 16}, torch::kFloat64);
  QuantSpec spec{2, true, Granularity::kChannel};
  auto g0 = torch::full({4, 1}, 1.5, torch::kFloat64);
  auto m = w.abs().mean(1, true);
  auto fq = [&](const torch::Tensor& g) { return quant::quantgpt_fake_quantize(w, g, spec); };
  auto alpha0 = g0 * m;
  auto u0 = (w / alpha0).clamp(-1, 1);
  auto r0 = u0.round();  // qmax = 1 at 2 bits
  auto surrogate = [&](const torch::Tensor& g) {
    auto alpha = g * m;
    auto outside = w.abs() > alpha0;
    // Inside: alpha * (round(u0) + u - u0); outside: alpha * sign(w).
    return torch::where(outside, alpha * w.sign(), alpha * (r0 + w / alpha - u0));
  };
  auto analytic = autograd_grad(fq, g0, c);
  EXPECT_TRUE(testing::all_close(analytic, numeric_grad(surrogate, g0, c), 1e-6, 1e-6));
  // Both sides contribute: with only clipped elements (PACT) the gradient would differ.
  auto pact_only = (c * torch::where(w.abs() > alpha0, w.sign(), torch::zeros_like(w)) * m).sum(1, true);
  EXPECT_GT((analytic - pact_only).abs().max().item<double>(), 1e-3);
}

TEST(FakeQuant, TernaryAndBinaryLevelsAndStraightThroughGradient) {
  torch::manual_seed(4);
  auto w = torch::randn({3, 32});
  QuantSpec spec{2, true, Granularity::kChannel};
  auto t = quant::ternary_fake_quantize(w, spec);
  for (int64_t r = 0; r < 3; ++r) {
    auto levels = std::get<0>(at::_unique(t[r].abs()));
    EXPECT_EQ(levels.numel(), 2);  // {0, alpha}
    auto delta = 0.7 * w[r].abs().mean().item<float>();
    auto kept = w[r].abs() > delta;
    EXPECT_NEAR(levels[1].item<float>(), w[r].abs().masked_select(kept).mean().item<float>(), 1e-5);
    EXPECT_TRUE(torch::equal(t[r].ne(0), kept));
  }
  auto b = quant::binary_fake_quantize(w, spec);
  EXPECT_TRUE(testing::all_close(b.abs(), w.abs().mean(1, true).expand_as(w), 1e-6, 0));
  auto dw = autograd_grad([&](const torch::Tensor& x) { return quant::ternary_fake_quantize(x, spec); }, w, torch::ones_like(w));
  EXPECT_TRUE(torch::equal(dw, torch::ones_like(w)));
}

TEST(Observers, MinMaxMovingAveragePercentileMse) {
  QuantSpec a8{8, false, Granularity::kTensor};
  auto batch1 = torch::linspace(-1, 3, 1000).reshape({10, 100});
  auto batch2 = torch::linspace(-2, 1, 1000).reshape({10, 100});
  quant::Observer mm({quant::ObserverKind::kMinMax}, a8, "test");
  mm.observe(batch1), mm.observe(batch2);
  auto p = mm.qparams();
  EXPECT_NEAR(p.scale.item<float>(), 5.0f / 255, 1e-6);
  quant::ObserverSpec ema{quant::ObserverKind::kMovingAverage, 0.75};
  quant::Observer ma(ema, a8, "test");
  ma.observe(batch1), ma.observe(batch2);
  // lo = 0.75 * -1 + 0.25 * -2, hi = 0.75 * 3 + 0.25 * 1
  EXPECT_NEAR(ma.qparams().scale.item<float>(), (2.5f + 1.25f) / 255, 1e-6);
  // One outlier moves min-max, not the 99th percentile.
  auto spiky = torch::randn({100, 100});
  spiky[0][0] = 1000;
  quant::ObserverSpec pct{quant::ObserverKind::kPercentile};
  pct.percentile = 99.0;
  quant::Observer pc(pct, a8, "test");
  pc.observe(spiky);
  EXPECT_LT(pc.qparams().scale.item<float>() * 255, 10.0f);
  // MSE clipping never does worse than min-max on what it saw.
  quant::Observer ms({quant::ObserverKind::kMse}, a8, "test");
  ms.observe(spiky);
  auto err = [&](const quant::QParams& q) { return (quant::fake_quantize(spiky, q, a8) - spiky).pow(2).sum().item<double>(); };
  EXPECT_LE(err(ms.qparams()), err(quant::dynamic_qparams(spiky, a8)) + 1e-9);
  // Channel |x| maxima for SmoothQuant.
  EXPECT_NEAR(mm.channel_absmax()[99].item<float>(), 3.0f, 1e-6);
}

// KL (entropy) calibration clips rare outliers that min-max would spend the grid on, leaves a
// range with no outliers alone, and its clipped range errs less on the bulk of the values.
TEST(Observers, KlThresholdClipsOutliersAndKeepsAFullRange) {
  torch::manual_seed(0);
  auto x = torch::randn({64, 1024});
  x.view({-1}).slice(0, 0, 20).fill_(50.0);
  x.view({-1}).slice(0, 20, 40).fill_(-50.0);
  const double t = quant::kl_threshold(x, 8);
  EXPECT_GT(t, 2.5);
  EXPECT_LT(t, 12.0);
  EXPECT_GT(quant::kl_threshold(torch::linspace(-1, 1, 20000), 8), 0.9);
  EXPECT_EQ(quant::kl_threshold(torch::zeros({100}), 8), 0.0);
  QuantSpec a8{8, false, Granularity::kTensor};
  quant::Observer kl({quant::ObserverKind::kKl}, a8, "test");
  kl.observe(x);
  auto p = kl.qparams();
  EXPECT_NEAR(p.scale.item<double>() * 255, 2 * t, 0.05 * t);  // [-t, t] on 255 steps
  auto bulk = x.abs() < 3;
  auto bulk_err = [&](const quant::QParams& q) { return (quant::fake_quantize(x, q, a8) - x).masked_select(bulk).pow(2).sum().item<double>(); };
  EXPECT_LT(bulk_err(p), 0.1 * bulk_err(quant::dynamic_qparams(x, a8)));
  EXPECT_EQ(quant::parse_observer("kl", "test"), quant::ObserverKind::kKl);
}

TEST(Observers, NoBatchesIsAnErrorAndConstantInputsGetADefinedScale) {
  QuantSpec a8{8, false, Granularity::kTensor};
  quant::Observer empty({quant::ObserverKind::kMinMax}, a8, "layer.x");
  EXPECT_NE(testing::error_of([&] { empty.qparams(); }).find("layer.x: the observer saw no calibration batches"), std::string::npos);
  for (float v : {0.0f, 2.5f}) {
    quant::Observer constant({quant::ObserverKind::kMse}, a8, "c");
    constant.observe(torch::full({4, 8}, v));
    auto p = constant.qparams();
    EXPECT_TRUE(std::isfinite(p.scale.item<float>()) && p.scale.item<float>() > 0);
    EXPECT_TRUE(testing::all_close(quant::fake_quantize(torch::full({4, 8}, v), p, a8), torch::full({4, 8}, v), 1e-6, 0));
  }
}

TEST(Gptq, BeatsRoundToNearestOnCorrelatedInputs) {
  torch::manual_seed(5);
  // Inputs with strongly correlated features, as hidden states are.
  auto basis = torch::randn({16, 64});
  auto x = torch::randn({512, 16}).mm(basis) + 0.1 * torch::randn({512, 64});
  auto w = torch::randn({24, 64});
  quant::HessianAccumulator h;
  h.add(x.slice(0, 0, 256));
  h.add(x.slice(0, 256));
  for (auto g : {Granularity::kGroup, Granularity::kChannel}) {
    QuantSpec spec{3, true, g, 16};
    auto r = quant::gptq_quantize(w, h.hessian(), spec, 0.01, "test");
    auto rtn = quant::fake_quantize(w, quant::dynamic_qparams(w, spec), spec);
    auto err = [&](const torch::Tensor& wq) { return (x.mm((wq - w).t())).pow(2).sum().item<double>(); };
    EXPECT_LT(err(r.weight), 0.8 * err(rtn)) << quant::granularity_name(g);
    // GPTQ's values sit exactly on its own grid.
    auto back = quant::dequantize(quant::quantize(r.weight, r.qparams, spec), r.qparams, spec);
    EXPECT_TRUE(testing::all_close(back, r.weight, 1e-6, 0));
  }
  EXPECT_NE(testing::error_of([&] { quant::gptq_quantize(w, h.hessian(), {4, true, Granularity::kTensor}, 0.01, "L"); })
                .find("per channel or per group"),
            std::string::npos);
}

quant::QuantizerSpec spec_from(const std::string& yaml) { return quant::QuantizerSpec::parse(YAML::Load(yaml), "test.yaml quantize[0]"); }

TEST(QuantizerSpec, BadInputIsNamed) {
  auto err = [](const std::string& y) { return testing::error_of([&] { spec_from(y); }); };
  EXPECT_NE(err("{targets: {types: [linear]}, weight: {bits: 9}}").find("bits = 9 is outside 2..8"), std::string::npos);
  EXPECT_NE(err("{targets: {types: [linear]}, weight: {method: lsq}}").find("use mode: qat"), std::string::npos);
  EXPECT_NE(err("{targets: {types: [linear]}, mode: qat, weight: {method: gptq}}").find("use mode: ptq"), std::string::npos);
  EXPECT_NE(err("{targets: {types: [linear]}, weight: {method: fancy}}").find("weight method 'fancy' is not one of"), std::string::npos);
  EXPECT_NE(err("{targets: {types: [linear]}, activation: {granularity: channel}}").find("one range per tensor"), std::string::npos);
  EXPECT_NE(err("{targets: {types: [linear]}, mode: qat, weight: {method: lsq, symmetric: false}}").find("is symmetric"),
            std::string::npos);
  EXPECT_NE(err("{targets: {types: [linear]}}").find("needs weight:, activation: or both"), std::string::npos);
  EXPECT_NE(err("{targets: {types: [linear]}, weight: {}, activation: {}, smoothquant: {alpha: 1.5}}").find("alpha = 1.5 is outside 0..1"),
            std::string::npos);
  EXPECT_NE(err("{targets: {types: [linear]}, weight: {}, smoothquant: {}}").find("needs both weight: and activation:"), std::string::npos);
  EXPECT_NE(err("{targets: {types: [linear]}, mode: qat, weight: {}, activation: {}, smoothquant: {}}").find("use mode: ptq"),
            std::string::npos);
  EXPECT_NE(err("{targets: {types: [linear]}, weight: {}, activation: {}, smoothquant: {unfoldable: fold}}")
                .find("smoothquant unfoldable 'fold' is not one of: skip, scale"),
            std::string::npos);
  EXPECT_NE(err("{targets: {types: [linear]}, weight: {}, activation: {}, smoothquant: {beta: 1}}").find("unknown key 'beta'"),
            std::string::npos);
  // A group wider than a layer's input is refused at attach, naming the layer.
  auto model = testing::tiny_bert();
  quant::Quantizer q(spec_from("{targets: {types: [linear]}, weight: {bits: 4, granularity: group, group_size: 33}}"));
  auto e = testing::error_of([&] { q.attach(*model); });
  EXPECT_NE(e.find("weight (bert.encoder.layer.0.attention.self.query): group_size 33 is outside 1..32"), std::string::npos) << e;
}

// Calibrates a PTQ quantizer on a few random batches (SmoothQuant's own pass first, if asked).
void calibrate(quant::Quantizer& q, models::TransformerModel& m) {
  torch::NoGradGuard no_grad;
  auto pass = [&] {
    q.begin_calibration();
    for (uint64_t s = 10; s < 13; ++s) m.forward(testing::inputs(s));
  };
  if (q.spec().smooth_alpha) pass(), q.smooth(m);
  pass();
  q.end_calibration();
}

TEST(Export, CompressedTensorsRoundTripIsExactlyTheFakeQuantizedModel) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"bert", "{targets: {types: [linear]}, weight: {bits: 8}, activation: {bits: 8, observer: minmax}}"},
      {"bert", "{targets: {types: [linear]}, weight: {bits: 4, granularity: group, group_size: 16, method: gptq}}"},
      {"bert", "{targets: {types: [linear]}, weight: {bits: 4, symmetric: false, granularity: group, group_size: 24, method: gptq}}"},
      {"gpt2", "{targets: {types: [linear]}, weight: {bits: 3, symmetric: false, granularity: group, group_size: 8, method: mse}, "
               "activation: {method: dynamic}}"},
      {"gpt2", "{targets: {types: [linear]}, weight: {bits: 8, symmetric: false}, activation: {bits: 8, observer: percentile}}"},
      {"gpt2", "{targets: {types: [linear]}, weight: {bits: 8}, activation: {bits: 6}, smoothquant: {alpha: 0.5}}"},
      {"opt", "{targets: {types: [linear]}, weight: {bits: 8}, activation: {bits: 6, observer: kl}, smoothquant: {alpha: 0.8}}"},
      {"llama", "{targets: {types: [linear]}, weight: {bits: 8}, activation: {bits: 8}, smoothquant: {alpha: 0.5}}"},
      {"bert", "{targets: {types: [linear]}, weight: {bits: 8}, activation: {bits: 6}, smoothquant: {alpha: 0.5, unfoldable: scale}}"},
      {"llama", "{targets: {types: [linear]}, weight: {bits: 4, granularity: group, group_size: 16, method: gptq}, activation: {bits: 8}, "
                "smoothquant: {alpha: 0.5, unfoldable: scale}}"}};
  for (const auto& [arch, yaml] : cases) {
    SCOPED_TRACE(arch + " " + yaml);
    auto m = testing::tiny_model(testing::arch_config(arch));
    auto float_logits = [&] {
      torch::NoGradGuard g;
      return m->forward(testing::inputs()).at("logits");
    }();
    quant::Quantizer q(spec_from(yaml));
    q.attach(*m);
    calibrate(q, *m);
    torch::Tensor fq_logits;
    {
      torch::NoGradGuard g;
      fq_logits = m->forward(testing::inputs()).at("logits");
    }
    EXPECT_GT((fq_logits - float_logits).abs().max().item<float>(), 0.0f);  // quantization did something
    testing::ScratchDir dir("export");
    quant::export_compressed_tensors(*m, testing::arch_config(arch), q.snapshot(), {}, dir.path());
    auto loaded = quant::load_any_model(dir.path());
    torch::NoGradGuard g;
    auto back = loaded.model->forward(testing::inputs()).at("logits");
    EXPECT_TRUE(testing::all_close(back, fq_logits, 1e-6, 1e-6));
    auto c = io::JsonFields::from_file(dir / "config.json").value();
    EXPECT_EQ(c["quantization_config"]["quant_method"], "compressed-tensors");
  }
}

TEST(Export, RefusesAWeightThatBreaksTwoFour) {
  auto m = testing::tiny_bert();
  quant::Quantizer q(spec_from("{targets: {types: [linear], roles: [ffn_in]}, weight: {bits: 8}}"));
  q.attach(*m);
  calibrate(q, *m);
  testing::ScratchDir dir("export-bad");
  quant::SparsityExport nm{2, 4, {"bert.encoder.layer.0.intermediate.dense"}};
  auto e = testing::error_of([&] { quant::export_compressed_tensors(*m, testing::tiny_bert_config(), q.snapshot(), nm, dir.path()); });
  EXPECT_NE(e.find("bert.encoder.layer.0.intermediate.dense.weight: "), std::string::npos) << e;
  EXPECT_NE(e.find("refusing to export it as 2:4 sparse"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(dir / "model.safetensors"));
  // An exact 2:4 weight passes and is declared.
  {
    torch::NoGradGuard g;
    auto w = m->named_parameters()["bert.encoder.layer.0.intermediate.dense.weight"];
    auto groups = w.view({w.size(0), -1, 4});
    groups.select(2, 0).zero_(), groups.select(2, 3).zero_();
  }
  quant::export_compressed_tensors(*m, testing::tiny_bert_config(), q.snapshot(), nm, dir.path());
  auto c = io::JsonFields::from_file(dir / "config.json").value();
  EXPECT_EQ(c["quantization_config"]["sparsity_config"]["sparsity_structure"], "2:4");
}

// sparse-24-bitmask storage: half the values plus one bit per position, loaded back to exactly the
// model that was evaluated; a quantized and a float 2:4 target, and a corrupted bitmask named.
TEST(Export, SparseTwoFourBitmaskStoresHalfTheValuesAndLoadsBackExactly) {
  auto m = testing::tiny_bert();
  const std::string ffn_in = "bert.encoder.layer.0.intermediate.dense", ffn_out = "bert.encoder.layer.0.output.dense";
  {
    torch::NoGradGuard g;
    for (const auto& name : {ffn_in, ffn_out}) {
      auto w = m->named_parameters()[name + ".weight"].view({-1, 4});
      w.select(1, 0).zero_(), w.select(1, 2).zero_();
      w[5].zero_();  // a group with no nonzero at all still stores two values
    }
  }
  quant::Quantizer q(spec_from("{targets: {names: [" + ffn_in + "]}, weight: {bits: 8}, activation: {method: dynamic}}"));
  q.attach(*m);
  calibrate(q, *m);
  torch::Tensor fq_logits;
  {
    torch::NoGradGuard g;
    fq_logits = m->forward(testing::inputs()).at("logits");
  }
  testing::ScratchDir dir("export-bitmask");
  quant::SparsityExport nm{2, 4, {ffn_in, ffn_out}, io::kSparse24Bitmask};
  quant::export_compressed_tensors(*m, testing::tiny_bert_config(), q.snapshot(), nm, dir.path());
  {
    io::SafetensorsFile f(dir / "model.safetensors");
    EXPECT_FALSE(f.contains(ffn_in + ".weight"));
    EXPECT_FALSE(f.contains(ffn_out + ".weight"));
    EXPECT_EQ(f.tensor(ffn_in + ".compressed").sizes(), (std::vector<int64_t>{48, 16}));  // [out, in/2]
    EXPECT_EQ(f.tensor(ffn_in + ".compressed").scalar_type(), torch::kInt8);
    EXPECT_EQ(f.tensor(ffn_in + ".bitmask").sizes(), (std::vector<int64_t>{48, 4}));      // [out, in/8]
    EXPECT_EQ(f.tensor(ffn_out + ".compressed").sizes(), (std::vector<int64_t>{32, 24}));
    EXPECT_EQ(f.tensor(ffn_out + ".compressed").scalar_type(), torch::kFloat32);
    // Positions 1 and 3 of every group kept: bits 1, 3, 5, 7 of each byte = 0xAA.
    EXPECT_EQ(f.tensor(ffn_out + ".bitmask")[1][0].item<int64_t>(), 0xAA);
  }
  auto c = io::JsonFields::from_file(dir / "config.json").value();
  EXPECT_EQ(c["quantization_config"]["sparsity_config"]["format"], "sparse-24-bitmask");
  {
    auto loaded = quant::load_any_model(dir.path());
    torch::NoGradGuard g;
    EXPECT_TRUE(testing::all_close(loaded.model->forward(testing::inputs()).at("logits"), fq_logits, 1e-6, 1e-6));
  }
  // A bitmask that keeps three of four positions is refused, naming the tensor, row and group.
  {
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    io::SafetensorsFile f(dir / "model.safetensors");
    for (const auto& [name, _] : f.entries()) tensors.emplace_back(name, f.tensor(name).clone());
    for (auto& [name, t] : tensors)
      if (name == ffn_out + ".bitmask") t[2][0] = 0xAB;
    io::write_safetensors(dir / "model.safetensors", tensors);
  }
  auto e = testing::error_of([&] { quant::load_any_model(dir.path()); });
  EXPECT_NE(e.find(ffn_out + ".bitmask: row 2, group 0 keeps 3 of 4 positions"), std::string::npos) << e;
  // Asymmetric weights keep their zero point where a weight was pruned: refused for bitmask storage.
  auto m2 = testing::tiny_bert();
  {
    torch::NoGradGuard g;
    auto w = m2->named_parameters()[ffn_in + ".weight"].view({-1, 4});
    w.select(1, 0).zero_(), w.select(1, 2).zero_();
  }
  quant::Quantizer asym(spec_from("{targets: {names: [" + ffn_in + "]}, weight: {bits: 8, symmetric: false}}"));
  asym.attach(*m2);
  calibrate(asym, *m2);
  quant::SparsityExport nm2{2, 4, {}, io::kSparse24Bitmask};
  nm2.targets = {ffn_in};
  e = testing::error_of([&] { quant::export_compressed_tensors(*m2, testing::tiny_bert_config(), asym.snapshot(), nm2, dir / "asym"); });
  EXPECT_NE(e.find("needs symmetric weights"), std::string::npos) << e;
}

}  // namespace
}  // namespace sqz
