#include "models/registry.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "core/log.h"
#include "models/build_budget.h"
#include "io/safetensors.h"
#include "nn/layers.h"

namespace sqz::models {

ArchSpec bert_arch();
ArchSpec roberta_arch();
ArchSpec distilbert_arch();
ArchSpec gpt2_arch();
ArchSpec opt_arch();
ArchSpec llama_arch();
ArchSpec qwen2_arch();
ArchSpec gpt_neox_arch();
ArchSpec bart_arch();
ArchSpec t5_arch();
ArchSpec vit_arch();

const std::vector<ArchSpec>& architectures() {
  static const std::vector<ArchSpec> all = {
      bert_arch(), roberta_arch(), distilbert_arch(), gpt2_arch(), opt_arch(), llama_arch(), qwen2_arch(), gpt_neox_arch(), bart_arch(), t5_arch(), vit_arch(),
  };
  return all;
}

const ArchSpec& find_architecture(const std::string& model_type, const std::string& source) {
  std::string known;
  for (const auto& a : architectures()) {
    if (a.model_type == model_type) return a;
    known += (known.empty() ? "" : ", ") + a.model_type;
  }
  fail_unimplemented(source, ": model_type '", model_type, "' is not supported (supported: ", known, ")");
}

std::string resolve_head_class(const ArchSpec& arch, const io::JsonFields& config, const std::string& requested) {
  std::string head = requested;
  if (head.empty() && config.has("architectures") && config.value()["architectures"].is_array() &&
      !config.value()["architectures"].empty() && config.value()["architectures"][0].is_string())
    head = config.value()["architectures"][0].get<std::string>();
  if (head.empty()) return arch.head_classes.front();
  if (auto it = arch.head_aliases.find(head); it != arch.head_aliases.end()) return it->second;
  for (const auto& h : arch.head_classes)
    if (h == head) return h;
  std::string known;
  for (const auto& h : arch.head_classes) known += (known.empty() ? "" : ", ") + h;
  fail_unimplemented(config.source(), ": architecture '", head, "' is not supported for model_type '", arch.model_type,
                     "' (supported: ", known, ")");
}

std::shared_ptr<TransformerModel> build_model(const io::JsonFields& config, const std::string& requested_head) {
  const ArchSpec& arch = find_architecture(config.get_string("model_type"), config.source());
  auto model = arch.build(config, resolve_head_class(arch, config, requested_head));
  model->eval();
  return model;
}

namespace {

// Checkpoint key for one of our parameters: its HF name, or the same name with/without the base
// prefix (a BertModel checkpoint loaded into a head class, or the reverse), as HF accepts.
std::string find_key(const std::function<bool(const std::string&)>& has, const ModelInfo& info, const std::string& name) {
  std::string key = hf_name(info, name);
  if (has(key)) return key;
  const std::string prefix = info.base_prefix + ".";
  if (key.rfind(prefix, 0) == 0 && has(key.substr(prefix.size()))) return key.substr(prefix.size());
  if (key.rfind(prefix, 0) != 0 && has(prefix + key)) return prefix + key;
  return "";
}

void init_parameter(const std::string& name, torch::Tensor& p, double std) {
  torch::NoGradGuard no_grad;
  bool is_norm = name.find("norm") != std::string::npos || name.find("LayerNorm") != std::string::npos ||
                 name.find("ln_") != std::string::npos;
  bool is_bias = name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0;
  if (is_bias)
    p.zero_();
  else if (is_norm)
    p.fill_(1.0);
  else
    p.normal_(0.0, std);
}

// The blocks the tensors `names` hold in `module` ("encoder.layer" for "bert.encoder.layer.5.output..."):
// one more than the highest index found.
int64_t checkpoint_layers(const std::vector<std::string>& names, const std::string& module) {
  int64_t count = 0;
  for (const auto& name : names) {
    const auto at = name.find(module + ".");
    if (at == std::string::npos || (at > 0 && name[at - 1] != '.')) continue;
    size_t digits = at + module.size() + 1, end = digits;
    while (end < name.size() && std::isdigit(static_cast<unsigned char>(name[end]))) ++end;
    if (end > digits && end - digits < 10) count = std::max<int64_t>(count, std::stoll(name.substr(digits, end - digits)) + 1);
  }
  return count;
}

// A config that counts more blocks than the checkpoint holds would build every one (a tree of
// modules each) before the first missing tensor is noticed: 100000 tiny BERT layers took 24 GB.
void check_layer_counts(const io::JsonFields& config, const io::Checkpoint& ckpt, const LoadOptions& options) {
  auto names = ckpt.names();
  for (const auto& [name, t] : options.tensors) names.push_back(name);
  const ArchSpec& arch = find_architecture(config.get_string("model_type"), config.source());
  for (const auto& [module, key] : {std::pair{arch.layers_module, arch.layer_count_key},
                                    std::pair{arch.encoder_layers_module, arch.encoder_layer_count_key}}) {
    if (module.empty() || !config.has(key)) continue;
    const int64_t held = checkpoint_layers(names, module);
    // None held: a head without that stack (T5EncoderModel has no decoder blocks); a head that needs
    // them is refused at its first missing tensor, its tensor memory bounded by the budget below.
    if (held > 0 && config.get_int(key) > held)
      config.fail_field(key, to_text("at most ", held, ", the blocks under '", module, "' its checkpoint holds"));
  }
}

// Builds the model config.json describes, refusing one that needs far more tensor memory than the
// checkpoint holds: a model is at most 8x its checkpoint (4-bit packed weights as fp32), plus
// what `options` brings and room for buffers (causal masks, rotary tables).
std::shared_ptr<TransformerModel> build_from_checkpoint_config(const io::JsonFields& config, const LoadOptions& options,
                                                               uint64_t checkpoint_bytes) {
  uint64_t given = 0;
  for (const auto& [name, t] : options.tensors) given += t.nbytes();
  const uint64_t budget = 8 * checkpoint_bytes + given + (uint64_t{512} << 20);
  auto refusal = [&](const std::string& why) {
    return to_text(config.source(), ": the model it describes ", why, " (its checkpoint holds ", checkpoint_bytes >> 10,
                   " KiB); check its sizes (layer counts, hidden and intermediate sizes, vocab_size, num_labels, max_position_embeddings)");
  };
  return build_within_budget([&] { return build_model(config, options.head); }, budget, refusal);
}

}  // namespace

void init_weights(TransformerModel& model) {
  torch::NoGradGuard no_grad;
  double std = model.info().init_std;
  for (auto& item : model.named_parameters()) init_parameter(item.key(), item.value(), std);
  for (const auto& m : model.modules())
    if (auto* e = dynamic_cast<nn::EmbeddingImpl*>(m.get()); e && e->padding_idx && *e->padding_idx >= 0 && *e->padding_idx < e->num_embeddings())
      e->weight[*e->padding_idx].zero_();
  model.init_weights_extra();
}

LoadedModel load_model(const fs::path& dir, const LoadOptions& options) {
  if (!fs::is_directory(dir)) fail_not_found(dir.string(), ": model directory not found");
  LoadedModel out{nullptr, io::JsonFields::from_file(dir / "config.json"), dir};
  if (!options.config_overrides.empty()) out.config.value().update(options.config_overrides);
  // The checkpoint's layer counts and size bound what config.json may build; without one, the
  // config's own errors still come first, then the missing checkpoint is named.
  std::optional<io::Checkpoint> opened;
  if (io::Checkpoint::present_in(dir)) opened.emplace(dir);
  if (opened && !options.init_missing) check_layer_counts(out.config, *opened, options);
  out.model = build_from_checkpoint_config(out.config, options, opened ? opened->total_bytes() : 0);
  if (!opened) opened.emplace(dir);
  const io::Checkpoint& ckpt = *opened;
  const ModelInfo& info = out.model->info();
  std::set<std::string> used;
  std::vector<std::string> missing;
  torch::NoGradGuard no_grad;
  auto has = [&](const std::string& k) { return options.tensors.count(k) > 0 || ckpt.contains(k); };
  for (auto& item : out.model->named_parameters()) {
    std::string key = find_key(has, info, item.key());
    torch::Tensor& p = item.value();
    if (key.empty()) {
      missing.push_back(hf_name(info, item.key()));
      continue;
    }
    if (auto it = options.tensors.find(key); it != options.tensors.end()) {
      if (it->second.sizes() != p.sizes())
        fail_data(dir.string(), ": tensor '", key, "' has shape ", it->second.sizes(), ", but config.json implies ", p.sizes());
      p.copy_(it->second.to(p.scalar_type()));
    } else {
      const auto& e = ckpt.entry(key);
      if (!c10::isFloatingType(io::safetensors_dtype(e)) && c10::isFloatingType(p.scalar_type()))
        fail_data(ckpt.file_of(key).string(), ": tensor '", key, "' is stored as ", e.dtype_name,
                  "; integer weights need the quantization_config (compressed-tensors) that says how to dequantize them");
      if (torch::IntArrayRef(e.shape) != p.sizes())
        fail_data(ckpt.file_of(key).string(), ": tensor '", key, "' has shape ", torch::IntArrayRef(e.shape),
                  ", but config.json implies ", p.sizes());
      p.copy_(ckpt.tensor(key).to(p.scalar_type()));
    }
    used.insert(key);
  }
  if (!missing.empty()) {
    if (!options.init_missing)
      fail_data((dir / "model.safetensors").string(), ": tensor '", missing.front(), "' is missing",
                missing.size() > 1 ? to_text(" (and ", missing.size() - 1, " more)") : std::string(), " for ", info.head_class);
    // Fresh head: HF initialises what the checkpoint lacks (e.g. a classifier on a pretrained body).
    std::set<std::string> miss(missing.begin(), missing.end());
    for (auto& item : out.model->named_parameters())
      if (miss.count(hf_name(info, item.key()))) init_parameter(item.key(), item.value(), info.init_std);
    log_info("initialised ", missing.size(), " tensors the checkpoint lacks (", missing.front(), ", ...)");
  }
  // HF drops known buffers and re-ties tied weights; anything else unused is worth a word.
  auto benign = [](const std::string& n) {
    for (const char* pattern : {"position_ids", ".attn.bias", ".attn.masked_bias", ".attention.bias", ".attention.masked_bias",
                                "rotary_emb.inv_freq"})
      if (n.find(pattern) != std::string::npos) return true;
    return n == "lm_head.weight" || n.find("predictions.decoder.") != std::string::npos ||
           n.find("vocab_projector.weight") != std::string::npos || n.find("lm_head.decoder.") != std::string::npos;
  };
  std::vector<std::string> unused;
  for (const auto& n : ckpt.names())
    if (!used.count(n) && !options.consumed.count(n) && !benign(n)) unused.push_back(n);
  if (!unused.empty())
    log_warning(dir.string(), ": ", unused.size(), " checkpoint tensors not used by ", info.head_class, " (e.g. '",
                unused.front(), "')");
  out.model->eval();
  return out;
}

void save_model(TransformerModel& model, const io::json& config, const fs::path& dir) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (auto& item : model.named_parameters()) tensors.emplace_back(hf_name(model.info(), item.key()), item.value());
  io::write_safetensors(dir / "model.safetensors", tensors);
  io::json c = config;
  c["architectures"] = {model.info().head_class};
  c["model_type"] = model.info().model_type;
  io::write_json_file_atomic(dir / "config.json", c);
}

int64_t count_parameters(TransformerModel& model) {
  int64_t n = 0;
  for (auto& p : model.parameters()) n += p.numel();
  return n;
}

}  // namespace sqz::models
