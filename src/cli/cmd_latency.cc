// sqz latency MODEL_DIR [--batch B ...] [--seq S] [--threads T] [--runs N]: forward-pass latency
// of a model dir on this machine (libtorch eager), with the FLOPs it implies, one JSON line per
// batch size. Peers and the sqz runtime come with `sqz bench` (issue 6).
#include <iostream>

#include "compress/quant/export.h"
#include "cli/commands.h"
#include "eval/latency.h"
#include "models/registry.h"

namespace sqz::cli {

namespace {

struct LatencyArgs {
  std::string model_dir;
  std::vector<int64_t> batches = {1, 8};
  int64_t seq = 128;
  int threads = 2, runs = 20, warmup = 3;
};

void run_latency(const LatencyArgs& a) {
  auto loaded = quant::load_any_model(a.model_dir);
  for (int64_t b : a.batches) {
    eval::LatencyOptions o{b, a.seq, a.threads, a.warmup, a.runs};
    auto r = eval::measure_latency(*loaded.model, o).to_json(o);
    r["model"] = a.model_dir;
    std::cout << r.dump() << std::endl;
  }
}

}  // namespace

void add_latency_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("latency", "Time a model's forward pass (median, p10, p90 over N runs after warm-up)");
  auto a = std::make_shared<LatencyArgs>();
  cmd->add_option("model_dir", a->model_dir, "model directory")->required();
  cmd->add_option("--batch", a->batches, "batch sizes (repeatable)")->check(positive());
  cmd->add_option("--seq", a->seq, "sequence length")->check(positive());
  cmd->add_option("--threads", a->threads, "libtorch threads")->check(positive());
  cmd->add_option("--runs", a->runs, "timed runs")->check(positive());
  cmd->add_option("--warmup", a->warmup, "untimed runs first")->check(non_negative());
  cmd->callback([a] { run_latency(*a); });
}

}  // namespace sqz::cli
