// sqz pack MODEL_DIR --out DIR: a runtime dir (runtime/runtime_dir.h) the runtime engine loads
// without libtorch's model or a second quantization: what a deployment ships.
#include <chrono>
#include <iostream>

#include "cli/commands.h"
#include "compress/quant/export.h"
#include "core/progress.h"
#include "io/json_file.h"
#include "runtime/engine.h"
#include "runtime/runtime_dir.h"

namespace sqz::cli {

namespace {

struct PackArgs {
  std::string model_dir, out, precision;
  bool overwrite = false, int8_attention = false;
  int threads = 0;
};

// What the commands read besides the weights: the config (labels, special token ids) and the tokenizer.
constexpr const char* kCopiedFiles[] = {"config.json",     "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                                        "special_tokens_map.json", "vocab.txt", "vocab.json", "merges.txt",
                                        "spiece.model",    "tokenizer.model",        "preprocessor_config.json"};

void run_pack(const PackArgs& a) {
  apply_threads(a.threads);
  if (runtime::is_runtime_dir(a.model_dir))
    fail_invalid(a.model_dir, ": already a runtime dir; pack the model dir it came from");
  auto t0 = std::chrono::steady_clock::now();
  auto loaded = quant::load_any_model(a.model_dir);
  auto engine = runtime::build_engine(loaded, a.precision, a.threads, a.int8_attention);
  const double pack_s = seconds_since(t0);
  StagingDir staging(a.out, a.overwrite);
  runtime::RuntimeDirWriter writer;
  auto manifest = engine.encoder   ? engine.encoder->save(writer)
                  : engine.decoder ? engine.decoder->save(writer)
                  : engine.seq2seq ? engine.seq2seq->save(writer)
                                   : engine.vision->save(writer);
  if (engine.bos_token_id) manifest["bos_token_id"] = *engine.bos_token_id;
  if (engine.eos_token_id) manifest["eos_token_id"] = *engine.eos_token_id;
  manifest["source"] = {{"model_dir", a.model_dir},
                        {"model_type", loaded.model->info().model_type},
                        {"architecture", loaded.model->info().head_class}};
  writer.write(staging.path(), manifest);
  for (const char* name : kCopiedFiles)
    if (fs::is_regular_file(loaded.dir / name)) fs::copy_file(loaded.dir / name, staging.path() / name);
  staging.commit();
  const auto weights = fs::path(a.out) / runtime::kRuntimeWeightsFile;
  t0 = std::chrono::steady_clock::now();
  runtime::open_runtime_dir(a.out, "", a.threads);  // what a deployment pays at start-up
  io::json summary = {{"out", a.out},
                      {"engine", manifest["engine"]},
                      {"precision", runtime::precision_name(engine.precision())},
                      {"int8_attention", engine.options().int8_attention},
                      {"weights_bytes", fs::file_size(weights)},
                      {"build_from_model_dir_s", pack_s},
                      {"load_runtime_dir_s", seconds_since(t0)}};
  std::cout << summary.dump() << std::endl;
}

}  // namespace

void add_pack_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("pack", "Write a runtime dir: the model's weights as the runtime engine runs them (fp32, bf16, int8, int8-2:4, int8-block)");
  auto a = std::make_shared<PackArgs>();
  cmd->add_option("model_dir", a->model_dir, "model directory (dense, SpeedUp-shrunk or a compressed-tensors export)")->required();
  cmd->add_option("--out", a->out, "the runtime dir to write")->required();
  cmd->add_flag("--overwrite", a->overwrite, "replace an existing output directory");
  add_precision_option(cmd, &a->precision, &a->int8_attention);
  add_threads_option(cmd, &a->threads);
  cmd->callback([a] { run_pack(*a); });
}

}  // namespace sqz::cli
