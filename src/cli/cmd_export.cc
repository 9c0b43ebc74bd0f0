// sqz export MODEL_DIR --format onnx --out FILE.onnx [--int8 [--int8-form qdq|dynamic]]: the model as an ONNX graph that ONNX
// Runtime runs (BERT encoders; GPT-2, OPT and Llama decoders with a KV cache; BART and T5 as a
// directory with an encoder graph and a decoder graph with a KV cache), checked by ONNX Runtime
// itself before it is written (eval/onnxruntime_peer.h).
// sqz export MODEL_DIR --format gguf --type f16|q8_0|q4_k --out FILE.gguf: a Llama for llama.cpp
// (models/gguf_export.h), imported back and compared before the command returns.
#include <iostream>

#include "cli/commands.h"
#include "compress/quant/export.h"
#include "eval/onnxruntime_peer.h"
#include "models/gguf_export.h"
#include "runtime/runtime_dir.h"

namespace sqz::cli {

namespace {

struct ExportArgs {
  std::string model_dir, format = "onnx", out, type = "q8_0", int8_form = "qdq";
  bool int8 = false, overwrite = false, int8_given = false;
  int threads = 2;
};

void run_export(const ExportArgs& a) {
  if (runtime::is_runtime_dir(a.model_dir))
    fail_invalid(a.model_dir, ": a runtime dir holds the weights as sqz's engine runs them; export the model dir it was packed from");
  if (fs::exists(a.out) && !a.overwrite) fail_invalid(a.out, ": already exists (pass --overwrite)");
  if (fs::path(a.out).has_parent_path() && !fs::is_directory(fs::path(a.out).parent_path()))
    fail_not_found(a.out, ": its directory does not exist");
  auto loaded = quant::load_any_model(a.model_dir);
  if (a.int8_given && !a.int8) fail_invalid("--int8-form: needs --int8");
  if (a.format == "gguf") {
    std::cout << models::export_gguf(loaded, a.model_dir, a.type, a.out).dump() << std::endl;
    return;
  }
  if (eval::onnx_exporter_for(loaded.model->info().model_type).empty())
    fail_unimplemented(a.model_dir, ": no ONNX exporter for model_type '", loaded.model->info().model_type,
                       "' (bert, gpt2, opt, llama, bart, t5)");
  const std::string variant = !a.int8 ? "fp32" : a.int8_form == "qdq" ? "int8" : "int8-matmulinteger";
  std::cout << eval::export_onnx(loaded, a.out, variant, a.threads).dump() << std::endl;
}

}  // namespace

void add_export_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("export", "Write a model in a format other engines run (ONNX), checked by that engine first");
  auto a = std::make_shared<ExportArgs>();
  cmd->add_option("model_dir", a->model_dir, "model directory (dense, SpeedUp-shrunk, or a compressed-tensors export, dequantized)")
      ->required();
  cmd->add_option("--format", a->format, "onnx (BERT, GPT-2, OPT, Llama, BART, T5) or gguf (Llama, for llama.cpp)")
      ->check(CLI::IsMember({"onnx", "gguf"}));
  cmd->add_option("--out", a->out, "the file to write (e.g. model.onnx, model.gguf); for BART and T5 a directory (encoder_model.onnx, decoder_model.onnx, cache_shapes.json)")->required();
  cmd->add_option("--type", a->type, "gguf: the matrices' type, f16, q8_0 or q4_k (norms stay f32)")
      ->check(CLI::IsMember({"f16", "q8_0", "q4_k"}));
  cmd->add_flag("--int8", a->int8, "int8 Linears (u8 activations quantized per call, s8 weights per output channel)");
  cmd->add_option("--int8-form", a->int8_form,
                  "qdq (default: QuantizeLinear/DequantizeLinear pairs before float MatMuls) or dynamic (MatMulInteger, as "
                  "ONNX Runtime's dynamic quantization writes it)")
      ->check(CLI::IsMember({"qdq", "dynamic"}))
      ->each([a](const std::string&) { a->int8_given = true; });
  cmd->add_flag("--overwrite", a->overwrite, "replace an existing file");
  cmd->add_option("--threads", a->threads, "ONNX Runtime threads for the check")->check(positive());
  cmd->callback([a] { run_export(*a); });
}

}  // namespace sqz::cli
