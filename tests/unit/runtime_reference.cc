#include "unit/runtime_reference.h"

#include "compress/site.h"
#include "nn/layers.h"

namespace sqz::testing {

double relative_error(const std::vector<float>& got, const torch::Tensor& want) {
  auto w = want.contiguous().to(torch::kFloat32);
  auto g = torch::from_blob(const_cast<float*>(got.data()), w.sizes(), torch::kFloat32);
  return ((g - w).abs().max() / w.abs().max()).item<double>();
}

void fake_quantize_like_engine(models::TransformerModel& model, runtime::Precision precision) {
  for (auto& block : model.structure().attention)
    for (auto l : block.head_rows) l->site = std::make_shared<compress::Site>();
  for (auto& block : model.structure().attention) block.head_cols->site = std::make_shared<compress::Site>();
  for (auto& block : model.structure().ffn) {
    for (auto l : block.neuron_rows) l->site = std::make_shared<compress::Site>();  // gate and up, when gated
    block.neuron_cols->site = std::make_shared<compress::Site>();
  }
  auto weight = [](const torch::Tensor& w) {
    auto s = (w.abs().amax(1, true) / 127.0).clamp_min(1e-30);
    return torch::round(w / s).clamp(-127, 127) * s;
  };
  auto input = [](const torch::Tensor& x) {
    auto lo = x.amin(-1, true).clamp_max(0), hi = x.amax(-1, true).clamp_min(0);
    auto scale = (hi - lo) / 255.0;
    auto zero = torch::round(-lo / scale).clamp(0, 255);
    return (torch::clamp(torch::round(x / scale) + zero, 0, 255) - zero) * scale;
  };
  auto bf16 = [](const torch::Tensor& x) { return x.to(torch::kBFloat16).to(torch::kFloat32); };
  const bool int8 = precision != runtime::Precision::kBf16;
  for (auto& p : model.named_modules()) {
    auto* lin = p.value()->as<nn::LinearImpl>();
    if (!lin || !lin->site) continue;
    auto site = std::static_pointer_cast<compress::Site>(lin->site);
    site->add_weight_transform("test", int8 ? compress::Site::Transform(weight) : compress::Site::Transform(bf16));
    site->add_input_transform("test", int8 ? compress::Site::Transform(input) : compress::Site::Transform(bf16));
  }
}

}  // namespace sqz::testing
