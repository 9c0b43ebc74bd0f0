// Block-level surgery on a loaded model, driven by the family's ArchSpec (which module list holds
// the blocks, which config key counts them): FastFormers' shallower student keeps some of the
// teacher's blocks, renumbered, and everything else as it was.
#pragma once
#include <optional>

#include "models/registry.h"

namespace sqz::models {

// An HF parameter name split around its block index: "bert.encoder.layer.3.output.dense.weight"
// is {"bert.encoder.layer.", 3, ".output.dense.weight"} for BERT.
struct LayerName {
  std::string before;
  int64_t index = 0;
  std::string after;
};
// nullopt for names outside the blocks (embeddings, final norms, heads).
std::optional<LayerName> split_layer_name(const ArchSpec& arch, const std::string& hf_name);

// `loaded` with only the blocks `layers` (distinct, in range), renumbered 0.. in the order
// given: the HF-named tensors and the config, whose layer count, `pruned_heads` and
// `sqz_intermediate_sizes` follow the kept blocks. `source` names the request in errors.
struct LayerSubset {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  io::json config;
};
LayerSubset keep_layers(const LoadedModel& loaded, const std::vector<int64_t>& layers, const std::string& source);

}  // namespace sqz::models
