// One add_<name>_command per `sqz <name>`, each in cmd_<name>.cc; main.cc lists them.
#pragma once
#include <CLI/CLI.hpp>

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
void add_import_gguf_command(CLI::App& app);

// --threads N on a subcommand; applied before the command runs (0 = libtorch's default).
void add_threads_option(CLI::App* cmd, int* threads);
// --precision for --engine runtime (fp32, bf16, int8, int8-2:4); empty = what the checkpoint
// declares (runtime::resolve_precision). With `int8_attention`, also --int8-attention.
void add_precision_option(CLI::App* cmd, std::string* precision, bool* int8_attention = nullptr);
void apply_threads(int threads);
// --engine on forward/generate/eval; resolve_engine turns "" into runtime for a runtime dir (the
// only engine it runs on) and libtorch otherwise, and refuses libtorch for a runtime dir.
void add_engine_option(CLI::App* cmd, std::string* engine);
std::string resolve_engine(const std::string& requested, const std::string& model_dir);

}  // namespace sqz::cli
