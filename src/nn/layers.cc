#include "nn/layers.h"

#include <cmath>

#include "core/error.h"

namespace sqz::nn {

LinearImpl::LinearImpl(const LinearOptions& options) : options_(options) {
  auto shape = options.layout == WeightLayout::kOutIn
                   ? std::vector<int64_t>{options.out_features, options.in_features}
                   : std::vector<int64_t>{options.in_features, options.out_features};
  weight = register_parameter("weight", torch::empty(shape));
  if (options.bias) bias = register_parameter("bias", torch::zeros({options.out_features}));
}

torch::Tensor LinearImpl::logical_weight() const {
  return options_.layout == WeightLayout::kOutIn ? weight : weight.t();
}

torch::Tensor LinearImpl::forward(const torch::Tensor& input_in) {
  torch::Tensor input = site ? site->on_input(input_in) : input_in;
  if (site)
    if (auto replaced = site->run_linear(input); replaced.defined()) return site->on_output(replaced);
  torch::Tensor w = logical_weight();
  if (site) w = site->effective_weight(w);
  torch::Tensor out = torch::nn::functional::linear(input, w, bias);
  return site ? site->on_output(out) : out;
}

EmbeddingImpl::EmbeddingImpl(int64_t num_embeddings, int64_t dim, std::optional<int64_t> padding)
    : padding_idx(padding) {
  weight = register_parameter("weight", torch::empty({num_embeddings, dim}));
}

torch::Tensor EmbeddingImpl::forward(const torch::Tensor& ids) {
  torch::Tensor w = site ? site->effective_weight(weight) : weight;
  return torch::embedding(w, ids, padding_idx.value_or(-1));
}

LayerNormImpl::LayerNormImpl(int64_t dim, double eps_, bool affine, bool with_bias) : eps(eps_) {
  if (affine) {
    weight = register_parameter("weight", torch::ones({dim}));
    if (with_bias) bias = register_parameter("bias", torch::zeros({dim}));
  }
}

torch::Tensor LayerNormImpl::forward(const torch::Tensor& x) {
  if (!keep.defined()) return torch::layer_norm(x, {x.size(-1)}, weight, bias, eps);
  auto n = keep.sum().clamp_min(1.0);
  auto mean = (x * keep).sum(-1, /*keepdim=*/true) / n;
  auto centered = (x - mean) * keep;
  auto y = centered * torch::rsqrt(centered.pow(2).sum(-1, true) / n + eps);
  if (weight.defined()) y = y * weight;
  if (bias.defined()) y = y + bias;
  return y * keep;
}

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  // As HF's LlamaRMSNorm: normalise in fp32, cast back, then scale.
  auto xf = x.to(torch::kFloat32);
  auto var = xf.pow(2).mean(-1, /*keepdim=*/true);
  return weight * (xf * torch::rsqrt(var + eps)).to(x.scalar_type());
}

Activation activation_by_name(const std::string& name, const std::string& source) {
  namespace F = torch::nn::functional;
  if (name == "gelu") return [](const torch::Tensor& x) { return torch::gelu(x); };
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast")
    return [](const torch::Tensor& x) { return torch::gelu(x, "tanh"); };
  if (name == "quick_gelu") return [](const torch::Tensor& x) { return x * torch::sigmoid(1.702 * x); };
  if (name == "relu") return [](const torch::Tensor& x) { return torch::relu(x); };
  if (name == "relu6") return [](const torch::Tensor& x) { return torch::clamp(x, 0, 6); };
  if (name == "silu" || name == "swish") return [](const torch::Tensor& x) { return torch::silu(x); };
  if (name == "tanh") return [](const torch::Tensor& x) { return torch::tanh(x); };
  if (name == "sigmoid") return [](const torch::Tensor& x) { return torch::sigmoid(x); };
  if (name == "mish") return [](const torch::Tensor& x) { return torch::mish(x); };
  if (name == "linear") return [](const torch::Tensor& x) { return x; };
  fail_unimplemented(source, ": activation '", name,
                     "' is not supported (expected gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, quick_gelu, relu, "
                     "relu6, silu, swish, tanh, sigmoid, mish or linear)");
}

}  // namespace sqz::nn
