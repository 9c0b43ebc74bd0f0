#include "compress/site.h"

#include "core/error.h"

namespace sqz::compress {

void Site::add_factor(std::string owner, Factor factor) { factors_.emplace_back(std::move(owner), std::move(factor)); }

torch::Tensor Site::effective_weight(const torch::Tensor& weight) {
  torch::Tensor w = weight;
  for (auto& [owner, f] : factors_) w = w * f();
  return w;
}

torch::Tensor Site::mask(const torch::Tensor& weight) const {
  torch::NoGradGuard no_grad;
  torch::Tensor m = torch::ones_like(weight);
  for (const auto& [owner, f] : factors_) m = m * f().detach().ne(0).to(weight.scalar_type());
  return m;
}

Site& site_of(std::shared_ptr<nn::CompressionSite>& slot, const std::string& layer_name) {
  if (!slot) slot = std::make_shared<Site>();
  auto* site = dynamic_cast<Site*>(slot.get());
  if (!site) fail_invalid(layer_name, ": carries a compression site of another kind");
  return *site;
}

}  // namespace sqz::compress
