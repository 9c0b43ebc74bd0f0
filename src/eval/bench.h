// `sqz bench`: check, then time, every engine that can run a model — sqz's runtime (fp32, int8)
// and the peers a user would otherwise deploy, measured in the same process on the same input:
// libtorch fp32 eager, libtorch's dynamic int8 Linear (each quantized engine this libtorch has).
// Each case's logits are first compared with libtorch fp32; a case whose check fails is reported
// and not timed.
#pragma once
#include <ostream>
#include <string>
#include <vector>

#include "io/json_file.h"

namespace sqz::eval {

struct BenchOptions {
  std::string preset;     // "bert-base" or "gpt2" (random weights), or empty with model_dir
  std::string model_dir;  // any model dir sqz loads, a compressed-tensors export or a runtime dir (`sqz pack`)
  std::vector<int64_t> batches{1};
  int64_t seq = 128;           // encoder: sequence length; decoder: prompt length
  int64_t decode_steps = 32;   // decoder: greedy tokens after the prompt
  int threads = 2, warmup = 3, runs = 20;
  std::vector<std::string> cases;  // empty = every case this build and CPU can run
  uint64_t seed = 0;
  // libtorch peers are timed again in a child process with passive OpenMP waiting and each row
  // keeps its faster setting (see time_peers_in_child); false: in this process only.
  bool peers_in_child = true;
  bool peers_only = false;  // time only the libtorch peers (what the child process runs)
  bool profile = false;     // sqz cases: also time each op over `runs` more forwards (decoders: generations)
  // The model `model_dir` was compressed from: benched too, with every engine's speed-up of the
  // compressed model over it (same engine, and libtorch fp32).
  std::string baseline_dir;
  // With both: each case is also scored on that split (accuracy / perplexity), once.
  std::string task, split;
  int64_t max_length = 128;
  int64_t eval_batches = 0;     // --task: batches scored per case (0 = the whole split)
  int64_t eval_batch_size = 16;  // --task: examples (LM: blocks) per batch
  std::string shown_dir;     // how names and reproduce lines show model_dir (e.g. where a staging dir will move); "" = model_dir
  const std::string& shown_model_dir() const { return shown_dir.empty() ? model_dir : shown_dir; }
};

// The configs behind --preset (HF field names), e.g. bert-base = BERT-base-uncased's shape.
io::json bench_preset_config(const std::string& preset);

// Times the libtorch peers of `result` again in a child process (OMP_WAIT_POLICY=passive) and
// keeps, per row, the faster of the two settings; ratios are recomputed.
void time_peers_in_child(const BenchOptions& options, bool decoder, io::json& result);

// Runs the benchmark, prints a markdown table (and notes on skipped cases) to `out`, returns the
// same as JSON. With a baseline: {"baseline": its result, "compressed": this model's, "comparison":
// one row per compressed case with its speed-ups}, and a third table.
io::json run_bench(const BenchOptions& options, std::ostream& out);

// run_bench, in a child `sqz bench` with libgomp's default waiting when sqz made this process wait
// passively (train, compress: see reexec_with_passive_openmp), so that sqz's rows are timed as a
// standalone bench times them; in this process otherwise, or when the child fails (with a warning).
io::json run_bench_with_default_openmp(const BenchOptions& options, std::ostream& out);

// The third table of a --baseline result: per compressed case, both times, the speed-ups over the
// baseline on the same engine and on libtorch fp32, and the dev scores when --task ran.
void print_bench_comparison(const io::json& result, std::ostream& out);

}  // namespace sqz::eval
