// sqz bench (--preset bert-base|gpt2|vit-base|bart-base|t5-small | MODEL_DIR) [--batch B ...] [--seq S] [--threads T] [--runs N]
// [--case NAME ...] [--json FILE]: checks, then times, the sqz runtime and its peers in one run.
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "core/fs.h"
#include "eval/bench.h"

namespace sqz::cli {

void add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Check then time sqz's runtime (fp32, int8) against libtorch fp32 and int8 in one run");
  auto o = std::make_shared<eval::BenchOptions>();
  auto json_path = std::make_shared<std::string>(), markdown_path = std::make_shared<std::string>();
  auto* model = cmd->add_option("model_dir", o->model_dir, "model directory (or use --preset)");
  cmd->add_option("--preset", o->preset, "a random-weight shape instead of a model: bert-base, gpt2, vit-base, bart-base, t5-small")->excludes(model);
  cmd->add_option("--batch", o->batches, "batch sizes (repeatable)")->check(positive());
  cmd->add_option("--seq", o->seq, "sequence length (decoders: prompt length)")->check(positive());
  cmd->add_option("--decode-steps", o->decode_steps, "decoders: greedy tokens timed after the prompt")->check(non_negative());
  cmd->add_option("--threads", o->threads, "threads for every engine")->check(positive());
  cmd->add_option("--runs", o->runs, "timed runs per case")->check(positive());
  cmd->add_option("--warmup", o->warmup, "untimed runs first")->check(non_negative());
  cmd->add_option("--baseline", o->baseline_dir, "the model MODEL_DIR was compressed from: bench both, with speed-ups per engine")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--task", o->task, "also score every case on this task's --split (accuracy and macro-F1, or perplexity)");
  cmd->add_option("--split", o->split, "the split file --task scores on (e.g. ../shared/data/spam/dev.jsonl)")->check(CLI::ExistingFile);
  cmd->add_option("--max-length", o->max_length, "--task: tokens per example / LM block")->check(positive());
  cmd->add_option("--max-batches", o->eval_batches, "--task: score the first N batches of the split (0 = all)")->check(non_negative());
  cmd->add_option("--batch-size", o->eval_batch_size, "--task: examples (LM: blocks) per scoring batch")->check(positive());
  cmd->add_option("--case", o->cases, "only these cases (libtorch-fp32 always runs: it is the reference)");
  cmd->add_option("--seed", o->seed, "seed of the preset's weights and of the input ids");
  cmd->add_option("--json", *json_path, "also write the table as JSON");
  cmd->add_option("--markdown", *markdown_path, "also write the tables (what it prints) to this file");
  cmd->add_option("--show-as", o->shown_dir, "how tables and reproduce lines name MODEL_DIR (e.g. where it will be moved)");
  cmd->add_flag("!--peers-in-process", o->peers_in_child,
                "time the libtorch peers in this process only (default: also in a child process with "
                "OMP_WAIT_POLICY=passive, keeping each row's faster setting)");
  cmd->add_flag("--peers-only", o->peers_only, "time only the libtorch peers (what that child process runs)");
  cmd->add_flag("--profile", o->profile, "sqz cases: also print the time per op (Linears, attention, norms) over --runs more forwards (decoders: per prompt and per decoded token)");
  cmd->callback([o, json_path, markdown_path] {
    if (o->preset.empty() && o->model_dir.empty()) throw CLI::ValidationError("sqz bench", "give a model_dir or --preset");
    std::ostringstream tables;
    auto result = eval::run_bench(*o, tables);
    std::cout << tables.str();
    if (!json_path->empty()) write_file_atomic(*json_path, result.dump(2) + "\n");
    if (!markdown_path->empty()) write_file_atomic(*markdown_path, tables.str());
  });
}

}  // namespace sqz::cli
