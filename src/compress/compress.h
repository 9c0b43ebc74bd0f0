// `sqz compress`: the main job. Loads the model (and a teacher), trains with the recipe's pruners
// and distiller attached, bakes the masks, runs SpeedUp, and writes the compressed model with a
// report (dev scores, parameters, bytes, per-layer heads/neurons, latency, plots).
#pragma once
#include "compress/recipe.h"

namespace sqz::compress {

struct CompressOptions {
  bool overwrite = false;
};

// Returns the report (also written to OUT/report.json).
io::json run_compress(const CompressRecipe& recipe, const CompressOptions& options);

// Runs the recipe once per value of `key` (a --set path such as prune.0.sparsity) into
// OUT/<key>=<value>/ and plots the dev score against the parameters removed (OUT/sweep.svg).
io::json run_sweep(const fs::path& recipe_path, const std::vector<std::string>& overrides, const std::string& key,
                   const std::vector<std::string>& values, const CompressOptions& options);

}  // namespace sqz::compress
