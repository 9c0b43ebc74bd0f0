// The hook through which compression reaches a layer (NNI's module wrapper, built in because
// libtorch C++ has neither forward hooks nor fx). A layer without a site runs its plain weight.
#pragma once
#include <torch/torch.h>

namespace sqz::nn {

class CompressionSite {
 public:
  virtual ~CompressionSite() = default;
  // The weight the forward pass should use (masked, fake-quantized, ...).
  virtual torch::Tensor effective_weight(const torch::Tensor& weight) { return weight; }
  // Sees (and may replace, e.g. fake-quantize) the layer input.
  virtual torch::Tensor on_input(const torch::Tensor& input) { return input; }
  // Runs a Linear itself instead of the float matmul (e.g. libtorch's int8 dynamic kernels for
  // `sqz bench`'s peer); an undefined result means "not replaced".
  virtual torch::Tensor run_linear(const torch::Tensor& /*input*/) { return {}; }
  // Sees (and may replace) the layer output.
  virtual torch::Tensor on_output(const torch::Tensor& output) { return output; }
};

}  // namespace sqz::nn
