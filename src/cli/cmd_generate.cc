// sqz generate MODEL_DIR --prompt "..." --max-new-tokens N: greedy (or sampled) continuation.
#include <iostream>

#include "compress/quant/export.h"
#include "cli/commands.h"
#include "io/tokenizers/tokenizer.h"
#include "models/generation.h"
#include "models/registry.h"
#include "runtime/decoder.h"

namespace sqz::cli {

namespace {

struct GenerateArgs {
  std::string model_dir, prompt;
  models::GenerationOptions options;
  bool ids = false;
  int threads = 0;
  std::string engine = "libtorch", precision;
};

// The runtime engine's greedy continuation, cut like models::generate: at n_positions and after
// the first EOS.
std::vector<int64_t> runtime_generate(const models::LoadedModel& loaded, const std::vector<int64_t>& prompt,
                                      const GenerateArgs& a) {
  if (a.options.sample) fail_invalid("generate: --engine runtime decodes greedily; drop --sample or use --engine libtorch");
  runtime::Decoder engine(loaded, {runtime::resolve_precision(a.precision, loaded.config.value()), a.threads});
  const int64_t room = std::max<int64_t>(0, engine.max_positions() - static_cast<int64_t>(prompt.size()));
  auto all = engine.generate_greedy(prompt.data(), 1, static_cast<int64_t>(prompt.size()), std::min(a.options.max_new_tokens, room));
  const auto eos = loaded.model->info().eos_token_id;
  if (a.options.stop_at_eos && eos) {
    auto it = std::find(all.begin() + static_cast<long>(prompt.size()), all.end(), *eos);
    if (it != all.end()) all.erase(it + 1, all.end());
  }
  return all;
}

void run_generate(const GenerateArgs& a) {
  apply_threads(a.threads);
  auto loaded = quant::load_any_model(a.model_dir);
  auto tok = io::load_tokenizer(a.model_dir);
  auto enc = tok->encode(a.prompt);
  if (enc.ids.empty()) {
    auto bos = loaded.model->info().bos_token_id;
    if (!bos) fail_invalid("generate: the prompt is empty and the model has no bos_token_id to start from");
    enc.ids.push_back(*bos);
  }
  std::vector<int64_t> all;
  if (a.engine == "runtime") {
    all = runtime_generate(loaded, enc.ids, a);
  } else {
    auto out = models::generate(*loaded.model, torch::tensor(enc.ids, torch::kLong).view({1, -1}), a.options);
    all.assign(out.data_ptr<int64_t>(), out.data_ptr<int64_t>() + out.numel());
  }
  std::vector<int64_t> fresh(all.begin() + static_cast<long>(enc.ids.size()), all.end());
  if (a.ids) {
    io::json j = {{"prompt_ids", enc.ids}, {"new_ids", fresh}, {"text", tok->decode(all)}};
    std::cout << j.dump(-1, ' ', false, io::json::error_handler_t::replace) << "\n";
  } else {
    std::cout << tok->decode(all) << "\n";
  }
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "Continue a prompt with a decoder model (greedy by default, KV cache)");
  auto a = std::make_shared<GenerateArgs>();
  cmd->add_option("model_dir", a->model_dir, "Hugging Face model directory")->required();
  cmd->add_option("--prompt", a->prompt, "prompt text")->required();
  cmd->add_option("--max-new-tokens", a->options.max_new_tokens, "tokens to generate")->check(CLI::NonNegativeNumber);
  cmd->add_flag("--sample", a->options.sample, "sample instead of greedy decoding");
  cmd->add_option("--temperature", a->options.temperature, "sampling temperature");
  cmd->add_option("--top-k", a->options.top_k, "keep the k most likely tokens (0 = off)");
  cmd->add_option("--top-p", a->options.top_p, "nucleus sampling mass (1 = off)");
  cmd->add_option("--seed", a->options.seed, "sampling seed");
  cmd->add_flag("--ids", a->ids, "print a JSON line with prompt ids, new ids and text");
  cmd->add_option("--engine", a->engine, "libtorch (default) or runtime (sqz's inference engine: GPT-2, OPT, Llama; greedy)")
      ->check(CLI::IsMember({"libtorch", "runtime"}));
  add_precision_option(cmd, &a->precision);
  add_threads_option(cmd, &a->threads);
  cmd->callback([a] { run_generate(*a); });
}

}  // namespace sqz::cli
