// Layers whose parameter names match the Hugging Face checkpoint keys ("weight", "bias"), each
// able to carry a CompressionSite.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <memory>

#include "nn/site.h"

namespace sqz::nn {

// HF nn.Linear stores [out, in]; GPT-2's Conv1D stores [in, out]. The layout is data so that
// one layer type serves both and compression sees the logical [out, in] view.
enum class WeightLayout { kOutIn, kInOut };

struct LinearOptions {
  int64_t in_features;
  int64_t out_features;
  bool bias = true;
  WeightLayout layout = WeightLayout::kOutIn;
};

class LinearImpl : public torch::nn::Module {
 public:
  explicit LinearImpl(const LinearOptions& options);
  torch::Tensor forward(const torch::Tensor& input);
  // Weight as [out, in] regardless of storage layout (a view for kInOut).
  torch::Tensor logical_weight() const;
  int64_t in_features() const { return options_.in_features; }
  int64_t out_features() const { return options_.out_features; }
  const LinearOptions& options() const { return options_; }

  torch::Tensor weight;
  torch::Tensor bias;  // undefined when options.bias is false
  std::shared_ptr<CompressionSite> site;

 private:
  LinearOptions options_;
};
TORCH_MODULE(Linear);

// An HF-layout Linear ([out, in]), with a bias unless `bias` is false.
inline Linear make_linear(int64_t in, int64_t out, bool bias = true) { return Linear(LinearOptions{in, out, bias}); }

class EmbeddingImpl : public torch::nn::Module {
 public:
  EmbeddingImpl(int64_t num_embeddings, int64_t dim, std::optional<int64_t> padding_idx = std::nullopt);
  torch::Tensor forward(const torch::Tensor& ids);
  int64_t num_embeddings() const { return weight.size(0); }
  std::optional<int64_t> padding_idx;
  torch::Tensor weight;
  std::shared_ptr<CompressionSite> site;
};
TORCH_MODULE(Embedding);

class LayerNormImpl : public torch::nn::Module {
 public:
  LayerNormImpl(int64_t dim, double eps, bool affine = true, bool bias = true);
  torch::Tensor forward(const torch::Tensor& x);
  double eps;
  torch::Tensor weight, bias;  // undefined when not affine
  // Hidden-dimension pruning: 1 = kept. When set, statistics run over the kept entries only and
  // pruned ones output 0, so the masked model equals the one SpeedUp shrinks.
  torch::Tensor keep;
};
TORCH_MODULE(LayerNorm);

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  double eps;
  torch::Tensor weight;
};
TORCH_MODULE(RMSNorm);

using Activation = std::function<torch::Tensor(const torch::Tensor&)>;
// HF's ACT2FN names: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, quick_gelu, relu, silu, swish, tanh, ...
Activation activation_by_name(const std::string& name, const std::string& source);

}  // namespace sqz::nn
