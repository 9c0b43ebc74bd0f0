// NNI-style target selection: which layers of a model a compressor acts on, by HF module names,
// full-match regexes, layer types, architecture roles and layer indices, minus excludes. A
// selector that matches nothing is an error, never a silent no-op.
#pragma once
#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <vector>

#include "models/model.h"

namespace sqz::compress {

// One compressible layer of a model.
struct LayerTarget {
  std::string name;  // HF module name, e.g. bert.encoder.layer.0.attention.self.query
  std::string type;  // linear | embedding
  std::string role;  // q, k, v, o, ffn_in, ffn_out, or "" (heads, poolers, embeddings ...)
  int64_t layer = -1;
  std::shared_ptr<nn::CompressionSite>* site = nullptr;
  std::function<torch::Tensor()> weight;  // logical [out, in] (embeddings: [vocab, dim])
  nn::Linear linear{nullptr};             // set for linear layers
};

// Every Linear and Embedding of the model, in module order.
std::vector<LayerTarget> list_layers(models::TransformerModel& model);

struct Selector {
  std::vector<std::string> names, regex, types, roles, exclude;
  std::vector<int64_t> layers;
  std::string source;  // where it was written (recipe file:line), for errors

  bool empty() const { return names.empty() && regex.empty() && types.empty() && roles.empty() && layers.empty(); }
  bool matches(const LayerTarget& t) const;
  // The matching layers; an error naming the selector when there are none (or a name is unknown).
  std::vector<LayerTarget> select(const std::vector<LayerTarget>& all) const;
  static Selector parse(const YAML::Node& node, const std::string& source);
  YAML::Node to_yaml() const;
};

}  // namespace sqz::compress
