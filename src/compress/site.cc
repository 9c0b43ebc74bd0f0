#include "compress/site.h"

#include "core/error.h"

namespace sqz::compress {

void Site::add_factor(std::string owner, Factor factor) { factors_.emplace_back(std::move(owner), std::move(factor)); }

void Site::add_weight_transform(std::string owner, Transform t) { weight_transforms_.emplace_back(std::move(owner), std::move(t)); }
void Site::add_input_transform(std::string owner, Transform t) { input_transforms_.emplace_back(std::move(owner), std::move(t)); }

torch::Tensor Site::effective_weight(const torch::Tensor& weight) {
  torch::Tensor w = weight;
  for (auto& [owner, f] : factors_) w = w * f();
  for (auto& [owner, t] : weight_transforms_) w = t(w);
  return w;
}

torch::Tensor Site::masked_weight(const torch::Tensor& weight) const {
  torch::NoGradGuard no_grad;
  torch::Tensor w = weight.detach();
  for (const auto& [owner, f] : factors_) w = w * f().detach();
  return w;
}

torch::Tensor Site::on_input(const torch::Tensor& input) {
  torch::Tensor x = input;
  for (auto& [owner, t] : input_transforms_) x = t(x);
  return x;
}

torch::Tensor Site::mask(const torch::Tensor& weight) const {
  torch::NoGradGuard no_grad;
  torch::Tensor m = torch::ones_like(weight);
  for (const auto& [owner, f] : factors_) m = m * f().detach().ne(0).to(weight.scalar_type());
  return m;
}

void Site::add_output_factor(std::string owner, Factor factor) { output_factors_.emplace_back(std::move(owner), std::move(factor)); }

torch::Tensor Site::on_output(const torch::Tensor& output) {
  torch::Tensor y = output;
  for (auto& [owner, f] : output_factors_) y = y * f();
  return y;
}

torch::Tensor Site::output_mask() const {
  torch::NoGradGuard no_grad;
  torch::Tensor m;
  for (const auto& [owner, f] : output_factors_) {
    auto v = f().detach().ne(0).to(torch::kFloat);
    m = m.defined() ? m * v : v;
  }
  return m;
}

Site& site_of(std::shared_ptr<nn::CompressionSite>& slot, const std::string& layer_name) {
  if (!slot) slot = std::make_shared<Site>();
  auto* site = dynamic_cast<Site*>(slot.get());
  if (!site) fail_invalid(layer_name, ": carries a compression site of another kind");
  return *site;
}

}  // namespace sqz::compress
