// SpeedUp: from masks to a physically smaller model (NNI's ModelSpeedup as its own pass). Heads
// and FFN neurons whose dependency group is pruned are cut out of the weight matrices; the
// result is an HF dir that sqz loads like any other (and `transformers` too when the shapes fit
// its config: BERT's pruned_heads, one FFN width for all layers).
#pragma once
#include "core/fs.h"
#include "io/json_file.h"
#include "models/model.h"

namespace sqz::speedup {

// Kept head / neuron indices per layer, in the model's current numbering.
struct GroupKeep {
  std::vector<std::vector<int64_t>> heads, neurons;
  std::vector<int64_t> hidden;  // kept hidden dimensions (all of them when none were pruned)
};

// From the compression sites' masks: a head (neuron) goes when its output-projection columns
// (FFN-output columns) are all masked. A head masked on its whole input side (Q, K and V rows)
// but not its output cannot be removed exactly and is refused with the layer, head and sizes;
// row/column masks that do not empty a group are baked as zeros, not shrunk.
GroupKeep groups_from_masks(models::TransformerModel& model);

// From the weights of a saved model: a head (neuron) goes when those columns are all zero.
// Hidden dimensions are not inferred from zeros (a saved model has no norm masks); they are
// cut by `sqz compress`, which still holds the masks.
GroupKeep groups_from_zeros(models::TransformerModel& model);

// Multiplies every site's mask into its weight (output masks into biases, norm masks into norm
// parameters) and removes the sites; norms keep their masks.
void bake_masks(models::TransformerModel& model);

// One transformer layer: "3", or "encoder 0" / "decoder 1" in encoder-decoders, whose decoder
// layers also count their cross-attention heads.
struct LayerShape {
  std::string name;
  int64_t heads_before, heads_after, neurons_before, neurons_after;
  int64_t cross_heads_before = 0, cross_heads_after = 0;
};

struct SpeedupReport {
  std::vector<LayerShape> layers;
  int64_t params_before = 0, params_after = 0;
  int64_t hidden_before = 0, hidden_after = 0;
  bool hf_loadable = true;  // false when per-layer FFN widths differ (sqz_intermediate_sizes)
  io::json to_json() const;
};

// Whether shrink_and_save can cut this family's groups out: its structure names the config keys
// that record the new shapes (GPT-NeoX does not; its masks are baked into full-size weights).
bool can_shrink(models::TransformerModel& model);

// Writes config.json and model.safetensors of the shrunk model into `dir` (which must exist).
SpeedupReport shrink_and_save(models::TransformerModel& model, const io::json& config, const GroupKeep& keep, const fs::path& dir);

}  // namespace sqz::speedup
