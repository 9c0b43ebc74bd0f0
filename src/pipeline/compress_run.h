// `sqz compress`: the main job. Loads the model (and a teacher), trains with the recipe's pruners
// and distiller attached, bakes the masks, runs SpeedUp, and writes the compressed model with a
// report (dev scores, parameters, bytes, per-layer heads/neurons, latency, plots). The stages
// are in stages.h.
#pragma once
#include "compress/recipe.h"
#include "dist/group.h"

namespace sqz::pipeline {

struct CompressOptions {
  bool overwrite = false;
  // Continue the run whose work directory (OUT.partial) a kill or Ctrl-C left: training goes on
  // from its last checkpoint (model, optimizer, masks, scores, observers, schedules, generators);
  // the stages after training run again from the trained state. The recipe must be the same.
  bool resume = false;
  // Data parallelism: every rank trains on its share of each global batch; rank 0 alone measures,
  // bakes, runs SpeedUp and writes OUT, the others return an empty report once training ends.
  dist::Group* group = nullptr;
};

// Returns the report (also written to OUT/report.json). The run works in OUT.partial and renames
// it to OUT when done; once training has written a checkpoint, a failed or interrupted run keeps
// OUT.partial for --resume.
io::json run_compress(const compress::CompressRecipe& recipe, const CompressOptions& options);

// One swept recipe path (e.g. prune.0.sparsity) and its values; several sweeps run in lockstep
// (point i sets every key to its i-th value).
struct Sweep {
  std::string key;
  std::vector<std::string> values;
  static Sweep parse(const std::string& text);  // "key=v1,v2,..."
};

// Runs the recipe once per point into OUT/point-<i>/ and plots the dev score against the
// encoder parameters removed (OUT/sweep.svg, OUT/sweep.json, OUT/sweep.md).
io::json run_sweep(const fs::path& recipe_path, const std::vector<std::string>& overrides, const std::vector<Sweep>& sweeps,
                   const CompressOptions& options);

}  // namespace sqz::pipeline
