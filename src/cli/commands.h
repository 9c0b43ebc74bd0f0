// One add_<name>_command per `sqz <name>`, each in cmd_<name>.cc; main.cc lists them.
#pragma once
#include <CLI/CLI.hpp>

#include "dist/group.h"

namespace sqz::cli {

void add_info_command(CLI::App& app);
void add_forward_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_init_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_train_tokenizer_command(CLI::App& app);
void add_compress_command(CLI::App& app);  // also adds `speedup`
void add_latency_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_pack_command(CLI::App& app);
void add_export_command(CLI::App& app);
void add_import_gguf_command(CLI::App& app);

// --threads N on a subcommand; applied before the command runs (0 = libtorch's default).
void add_threads_option(CLI::App* cmd, int* threads);
// --precision for --engine runtime (fp32, bf16, int8, int8-2:4, int8-block); empty = what the checkpoint
// declares (runtime::resolve_precision). With `int8_attention`, also --int8-attention.
void add_precision_option(CLI::App* cmd, std::string* precision, bool* int8_attention = nullptr);
void apply_threads(int threads);
// --engine on forward/generate/eval; resolve_engine turns "" into runtime for a runtime dir (the
// only engine it runs on) and libtorch otherwise, and refuses libtorch for a runtime dir.
void add_engine_option(CLI::App* cmd, std::string* engine);
std::string resolve_engine(const std::string& requested, const std::string& model_dir);
// --precision and --int8-attention configure the runtime engine: on libtorch they are refused,
// not ignored.
void refuse_runtime_options_on_libtorch(const std::string& engine, const std::string& precision, bool int8_attention);

// Data parallelism on train, compress and eval: --nproc N (N local ranks), or one rank per host
// with --rank, --world-size, --master ADDR:PORT; --dist-timeout for a silent rank.
struct DistArgs {
  int nproc = 1;
  dist::GroupSpec spec;
};
void add_dist_options(CLI::App* cmd, DistArgs* a);
// With --nproc N > 1, runs this command line as N local ranks and exits with their status (never
// returns). Otherwise joins the group --world-size asks for (a group of one without it); ranks
// other than 0 stay quiet but for their warnings and errors.
std::unique_ptr<dist::Group> join_group(const DistArgs& a);
void set_command_line(int argc, char** argv);  // main's argv, for the launcher

// Range checks on numeric flags whose refusal says what was expected: "--batch-size: expected a
// number > 0, got 0" (CLI11's own print the whole double range).
const CLI::Validator& positive();      // > 0
const CLI::Validator& non_negative();  // >= 0
const CLI::Validator& unit_interval(); // in (0, 1]

}  // namespace sqz::cli
