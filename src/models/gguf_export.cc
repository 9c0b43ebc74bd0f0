#include "models/gguf_export.h"

#include "core/progress.h"
#include "io/gguf.h"
#include "io/tokenizers/gguf_vocab.h"
#include "models/gguf_import.h"

namespace sqz::models {

namespace {

io::GgmlType type_named(const std::string& name) {
  const std::map<std::string, uint32_t> ids = {{"f32", 0}, {"f16", 1}, {"q8_0", 8}, {"q4_k", 12}};
  auto it = ids.find(name);
  if (it == ids.end() || name == "f32") fail_invalid("--type '", name, "' is not one of: f16, q8_0, q4_k");
  return *io::ggml_type(it->second);
}

// llama.cpp's general.file_type for a file that is mostly `type`.
uint32_t file_type(const io::GgmlType& type) { return type.id == 1 ? 1 : type.id == 8 ? 7 : 14; /* MOSTLY_Q4_K_S */ }

// The requested type when its blocks divide the rows, else Q8_0, else F16.
io::GgmlType type_for(const io::GgmlType& wanted, int64_t row) {
  for (uint32_t id : {wanted.id, 8u, 1u})
    if (row % io::ggml_type(id)->block_values == 0) return *io::ggml_type(id);
  return *io::ggml_type(1);
}

}  // namespace

io::json export_gguf(const LoadedModel& loaded, const fs::path& model_dir, const std::string& type_name, const fs::path& out) {
  const io::GgmlType wanted = type_named(type_name);
  TransformerModel& model = *loaded.model;
  const ArchSpec& arch = find_architecture(model.info().model_type, loaded.config.source());
  if (!arch.to_gguf)
    fail_unimplemented(model_dir.string(), ": model_type '", model.info().model_type, "' cannot be written as GGUF (llama can)");
  if (!model.info().is_decoder || model.info().head_class.find("CausalLM") == std::string::npos)
    fail_unimplemented(model_dir.string(), ": GGUF holds causal LMs; this model is a ", model.info().head_class);
  GgufExportPlan plan = arch.to_gguf(loaded.config);
  io::GgufWriter w;
  for (auto& [k, v] : plan.metadata) w.set(k, v);
  w.set("general.name", model_dir.filename().string());
  w.set("general.file_type", file_type(wanted));
  if (wanted.id != 1) w.set("general.quantization_version", uint32_t{2});
  for (auto& [k, v] : io::gguf_tokenizer_metadata(model_dir)) w.set(k, v);

  std::map<std::string, int64_t> by_type;
  torch::NoGradGuard no_grad;
  auto params = model.named_parameters();
  Progress progress("gguf " + type_name, static_cast<int64_t>(params.size()));
  int64_t done = 0;
  for (const auto& item : params) {
    const std::string name = hf_name(model.info(), item.key());
    auto it = plan.tensors.find(name);
    if (it == plan.tensors.end()) fail_unimplemented(model_dir.string(), ": parameter '", name, "' has no GGUF tensor name");
    torch::Tensor t = item.value().detach().to(torch::kFloat32);
    if (it->second.relayout) t = it->second.relayout(t);
    t = t.contiguous();
    std::vector<int64_t> dims(t.sizes().rbegin(), t.sizes().rend());
    const io::GgmlType type = t.dim() == 1 ? *io::ggml_type(0) : type_for(wanted, dims[0]);
    w.add_tensor(it->second.hf_name, dims, type, t.data_ptr<float>());
    ++by_type[type.name];
    progress.update(++done);
  }
  progress.finish();
  w.write(out);

  // Read back: the file parses, imports as a model, and that model's logits are compared.
  const fs::path check = out.parent_path() / ("." + out.filename().string() + ".check");
  fs::remove_all(check);
  GgufImportOptions options;
  options.overwrite = true;
  import_gguf(out, check, options);
  auto again = load_model(check);
  fs::remove_all(check);
  torch::manual_seed(0);
  ModelInputs in;
  in.input_ids = torch::randint(0, model.info().vocab_size, {2, 16}, torch::kLong);
  in.attention_mask = torch::ones_like(in.input_ids);
  model.eval();
  auto a = model.forward(in).tensors.at("logits"), b = again.model->forward(in).tensors.at("logits");
  io::json types = io::json::object();
  for (const auto& [k, v] : by_type) types[k] = v;
  return {{"file", out.string()},
          {"bytes", static_cast<int64_t>(fs::file_size(out))},
          {"tensors", static_cast<int64_t>(w.tensor_count())},
          {"tensor_types", types},
          {"max_abs_logit_diff", (a - b).abs().max().item<double>()},
          {"top1_agreement", a.argmax(-1).eq(b.argmax(-1)).to(torch::kFloat64).mean().item<double>()}};
}

}  // namespace sqz::models
