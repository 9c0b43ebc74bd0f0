// The compression site sqz attaches to a Linear or Embedding: it multiplies the weight by the
// factors its compressors registered (pruning masks, gates that collect importance, movement
// scores) before the forward pass uses it. The stored weight is never changed during training,
// so a mask can be recomputed (AGP) and baked in only at the end.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "nn/site.h"

namespace sqz::compress {

class Site : public nn::CompressionSite {
 public:
  // A factor returns a tensor that broadcasts against the logical [out, in] weight.
  using Factor = std::function<torch::Tensor()>;
  void add_factor(std::string owner, Factor factor);
  // Multiplies the layer's output ([..., out]): masks bias entries with their weight rows.
  void add_output_factor(std::string owner, Factor factor);
  // Quantizers: a weight transform sees the weight after every factor (so pruned weights stay
  // zero), an input transform sees the layer's input (activation fake-quant, calibration).
  using Transform = std::function<torch::Tensor(const torch::Tensor&)>;
  void add_weight_transform(std::string owner, Transform t);
  void add_input_transform(std::string owner, Transform t);
  torch::Tensor effective_weight(const torch::Tensor& weight) override;
  torch::Tensor on_input(const torch::Tensor& input) override;
  torch::Tensor on_output(const torch::Tensor& output) override;
  // The weight after the factors only (masked, without quantization), no autograd.
  torch::Tensor masked_weight(const torch::Tensor& weight) const;
  // The product of the output factors (undefined when there are none), without autograd.
  torch::Tensor output_mask() const;
  // The product of the factors' current values without autograd (1 where nothing masks).
  torch::Tensor mask(const torch::Tensor& weight) const;
  bool empty() const { return factors_.empty() && output_factors_.empty() && weight_transforms_.empty() && input_transforms_.empty(); }

 private:
  std::vector<std::pair<std::string, Factor>> factors_, output_factors_;
  std::vector<std::pair<std::string, Transform>> weight_transforms_, input_transforms_;
};

// The site on a layer's slot, created on first use.
Site& site_of(std::shared_ptr<nn::CompressionSite>& slot, const std::string& layer_name);

}  // namespace sqz::compress
