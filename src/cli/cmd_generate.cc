// sqz generate MODEL_DIR --prompt "..." --max-new-tokens N: greedy (or sampled) continuation.
#include <iostream>
#include <optional>

#include "compress/quant/export.h"
#include "cli/commands.h"
#include "io/tokenizers/tokenizer.h"
#include "models/beam_search.h"
#include "models/generation.h"
#include "models/registry.h"
#include "runtime/engine.h"
#include "runtime/runtime_dir.h"

namespace sqz::cli {

namespace {

struct GenerateArgs {
  std::string model_dir, prompt;
  models::GenerationOptions options;
  models::BeamSearchOptions beams{.num_beams = 0};  // 0 = generation_config.json's num_beams, else 1
  bool early_stopping_given = false, length_penalty_given = false;
  bool ids = false;
  int threads = 0;
  std::string engine, precision;
  bool int8_attention = false;
};

// What HF's generate reads besides the flags: generation_config.json when the model dir has one
// (HF reads that file first), else config.json.
io::JsonFields generation_fields(const fs::path& dir) {
  const fs::path gen = dir / "generation_config.json";
  return io::JsonFields::from_file(fs::exists(gen) ? gen : dir / "config.json");
}

// Beam search settings: the flags given, else the generation config's, else HF's defaults.
models::BeamSearchOptions beam_options(const GenerateArgs& a, const io::JsonFields& g, const models::GenerationOptions& o) {
  models::BeamSearchOptions b = a.beams;
  b.max_new_tokens = o.max_new_tokens;
  b.forced_bos_token_id = o.forced_bos_token_id;
  b.forced_eos_token_id = o.forced_eos_token_id;
  if (b.num_beams == 0) b.num_beams = g.has("num_beams") ? g.get_positive_int("num_beams") : 1;
  if (!a.length_penalty_given) b.length_penalty = g.get_float("length_penalty", 1.0);
  if (!a.early_stopping_given && g.has("early_stopping")) {
    if (!g.value()["early_stopping"].is_boolean())
      g.fail_field("early_stopping", "true or false (the \"never\" mode is not supported); or pass --early-stopping");
    b.early_stopping = g.get_bool("early_stopping");
  }
  return b;
}

// The prompt encoded once, then greedy decoding (or beam search: the flags', else the generation
// config's num_beams) from decoder_start_token_id up to EOS with the generation config's forced
// BOS/EOS, as models::generate and models::beam_search do for encoder-decoders.
std::vector<int64_t> runtime_generate_seq2seq(const runtime::EncoderDecoder& engine, const std::vector<int64_t>& prompt,
                                              const GenerateArgs& a) {
  const auto g = generation_fields(a.model_dir);
  auto options = a.options;
  options.forced_bos_token_id = models::config_token_id(g, "forced_bos_token_id");
  options.forced_eos_token_id = models::config_token_id(g, "forced_eos_token_id");
  const auto beams = beam_options(a, g, options);
  std::vector<int64_t> all = prompt, fresh;
  if (beams.num_beams > 1) {
    fresh = engine.generate_beam(prompt.data(), nullptr, 1, static_cast<int64_t>(prompt.size()), beams).front();
  } else {
    int64_t n = 0;
    fresh = engine.generate_greedy(prompt.data(), nullptr, 1, static_cast<int64_t>(prompt.size()), options.max_new_tokens, &n,
                                   {options.forced_bos_token_id, options.forced_eos_token_id});
  }
  all.insert(all.end(), fresh.begin(), fresh.end());
  return all;
}

// The runtime engine's continuation (greedy; encoder-decoders also beam search), cut like models::generate: at n_positions and after
// the first EOS.
std::vector<int64_t> runtime_generate(const runtime::Engine& engine, const std::vector<int64_t>& prompt, const GenerateArgs& a) {
  if (a.options.sample) fail_invalid("generate: --engine runtime does not sample; drop --sample or use --engine libtorch");
  engine.require_text("generate");
  if (engine.seq2seq) return runtime_generate_seq2seq(*engine.seq2seq, prompt, a);
  if (a.beams.num_beams > 1)
    fail_invalid("generate: the runtime's decoder engine decodes greedily (beam search runs there for encoder-decoders); "
                 "drop --num-beams or use --engine libtorch");
  if (!engine.decoder) fail_invalid("generate: ", a.model_dir, " is an encoder; generate runs decoders (GPT-2, OPT, Llama) and encoder-decoders (BART)");
  const auto& decoder = *engine.decoder;
  const int64_t room = std::max<int64_t>(0, decoder.max_positions() - static_cast<int64_t>(prompt.size()));
  auto all = decoder.generate_greedy(prompt.data(), 1, static_cast<int64_t>(prompt.size()), std::min(a.options.max_new_tokens, room));
  if (a.options.stop_at_eos && engine.eos_token_id) {
    auto it = std::find(all.begin() + static_cast<long>(prompt.size()), all.end(), *engine.eos_token_id);
    if (it != all.end()) all.erase(it + 1, all.end());
  }
  return all;
}



void run_generate(const GenerateArgs& a) {
  apply_threads(a.threads);
  const std::string engine_name = resolve_engine(a.engine, a.model_dir);
  refuse_runtime_options_on_libtorch(engine_name, a.precision, a.int8_attention);
  std::optional<models::LoadedModel> loaded;
  std::optional<runtime::Engine> engine;
  if (runtime::is_runtime_dir(a.model_dir)) {
    engine = runtime::open_runtime_dir(a.model_dir, a.precision, a.threads, a.int8_attention);
  } else {
    loaded = quant::load_any_model(a.model_dir);
    if (engine_name == "runtime") engine = runtime::build_engine(*loaded, a.precision, a.threads, a.int8_attention);
  }
  auto tok = io::load_tokenizer(a.model_dir);
  auto enc = tok->encode(a.prompt);
  if (enc.ids.empty()) {
    auto bos = engine ? engine->bos_token_id : loaded->model->info().bos_token_id;
    if (!bos) fail_invalid("generate: the prompt is empty and the model has no bos_token_id to start from");
    enc.ids.push_back(*bos);
  }
  std::vector<int64_t> all;
  if (engine) {
    all = runtime_generate(*engine, enc.ids, a);
  } else {
    auto options = a.options;
    const auto g = generation_fields(loaded->dir);
    if (loaded->model->info().is_encoder_decoder) {
      options.forced_bos_token_id = models::config_token_id(g, "forced_bos_token_id");
      options.forced_eos_token_id = models::config_token_id(g, "forced_eos_token_id");
    }
    auto prompt = torch::tensor(enc.ids, torch::kLong).view({1, -1});
    auto beams = beam_options(a, g, options);
    if (beams.num_beams > 1) {
      if (options.sample) fail_invalid("generate: --sample with beam search (num_beams ", beams.num_beams, ") is not supported");
      all = enc.ids;
      auto fresh = models::beam_search(*loaded->model, prompt, {}, beams).front();
      all.insert(all.end(), fresh.begin(), fresh.end());
    } else {
      auto out = models::generate(*loaded->model, prompt, options);
      all.assign(out.data_ptr<int64_t>(), out.data_ptr<int64_t>() + out.numel());
    }
  }
  std::vector<int64_t> fresh(all.begin() + static_cast<long>(enc.ids.size()), all.end());
  // An encoder-decoder's output is the new text alone; a decoder's continues the prompt.
  const bool seq2seq = engine ? engine->seq2seq != nullptr : loaded->model->info().is_encoder_decoder;
  const auto& shown = seq2seq ? fresh : all;
  if (a.ids) {
    io::json j = {{"prompt_ids", enc.ids}, {"new_ids", fresh}, {"text", tok->decode(shown)}};
    std::cout << j.dump(-1, ' ', false, io::json::error_handler_t::replace) << "\n";
  } else {
    std::cout << tok->decode(shown) << "\n";
  }
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "Continue a prompt with a decoder, or answer it with an encoder-decoder (greedy by default, KV caches)");
  auto a = std::make_shared<GenerateArgs>();
  cmd->add_option("model_dir", a->model_dir, "Hugging Face model directory")->required();
  cmd->add_option("--prompt", a->prompt, "prompt text")->required();
  cmd->add_option("--max-new-tokens", a->options.max_new_tokens, "tokens to generate")->check(non_negative());
  cmd->add_flag("--sample", a->options.sample, "sample instead of greedy decoding");
  cmd->add_option("--temperature", a->options.temperature, "sampling temperature (> 0)")->check(positive());
  cmd->add_option("--top-k", a->options.top_k, "keep the k most likely tokens (0 = off)")->check(non_negative());
  cmd->add_option("--top-p", a->options.top_p, "nucleus sampling mass, in (0, 1] (1 = off)")
      ->check(unit_interval());
  cmd->add_option("--seed", a->options.seed, "sampling seed");
  cmd->add_option("--num-beams", a->beams.num_beams, "beam search with this many beams (default: generation_config.json's, else 1 = greedy)")
      ->check(positive());
  cmd->add_option("--length-penalty", a->beams.length_penalty, "beam search: hypothesis score = log-prob sum / length^this (default 1)")
      ->each([a](const std::string&) { a->length_penalty_given = true; });
  cmd->add_flag("--early-stopping", a->beams.early_stopping, "beam search: stop once num_beams hypotheses are finished")
      ->each([a](const std::string&) { a->early_stopping_given = true; });
  cmd->add_flag("--ids", a->ids, "print a JSON line with prompt ids, new ids and text");
  add_engine_option(cmd, &a->engine);
  add_precision_option(cmd, &a->precision, &a->int8_attention);
  add_threads_option(cmd, &a->threads);
  cmd->callback([a] { run_generate(*a); });
}

}  // namespace sqz::cli
