#include "models/gguf_import.h"

#include "core/progress.h"
#include "io/gguf.h"
#include "io/tokenizers/gguf_vocab.h"
#include "models/registry.h"

namespace sqz::models {

namespace {

const ArchSpec& arch_for_gguf(const io::GgufFile& g) {
  const std::string name = g.metadata().get_string("general.architecture");
  std::string known;
  for (const auto& a : architectures()) {
    if (!a.from_gguf) continue;
    if (a.gguf_architecture == name) return a;
    known += (known.empty() ? "" : ", ") + a.gguf_architecture;
  }
  fail_unimplemented(g.path().string(), ": general.architecture '", name, "' cannot be imported (supported: ", known, ")");
}

// Fills every parameter of `model` from the GGUF tensors the conversion names; refuses a tensor
// without a parameter, a shape that differs, and a parameter left without a tensor.
void fill_parameters(const io::GgufFile& g, const GgufConversion& conv, TransformerModel& model,
                     GgufImportSummary& summary) {
  std::map<std::string, torch::Tensor> params;
  for (auto& item : model.named_parameters()) params[hf_name(model.info(), item.key())] = item.value();
  std::set<std::string> filled;
  torch::NoGradGuard no_grad;
  Progress progress("import " + g.path().filename().string(), static_cast<int64_t>(g.tensors().size()));
  int64_t done = 0;
  for (const auto& t : g.tensors()) {
    const auto& target = conv.tensors.at(t.name);
    auto it = params.find(target.hf_name);
    if (it == params.end())
      fail_data(g.path().string(), ": tensor '", t.name, "' (", target.hf_name, ") has no parameter in the ",
                model.info().head_class, " its metadata describes");
    torch::Tensor w = torch::empty(t.torch_shape(), torch::kFloat32);
    g.dequantize_into(t, w.data_ptr<float>());
    if (target.relayout) w = target.relayout(w);
    if (w.sizes() != it->second.sizes())
      fail_data(g.path().string(), ": tensor '", t.name, "' has shape ", w.sizes(), ", but the metadata gives ",
                target.hf_name, " the shape ", it->second.sizes());
    it->second.copy_(w);
    filled.insert(target.hf_name);
    ++summary.tensors_by_type[t.type.name];
    progress.update(++done);
  }
  progress.finish();
  for (const auto& [name, p] : params)
    if (!filled.count(name)) fail_data(g.path().string(), ": no tensor for ", name);
}

}  // namespace

GgufImportSummary import_gguf(const fs::path& gguf_file, const fs::path& out_dir, const GgufImportOptions& options) {
  if (options.dtype != torch::kFloat32 && options.dtype != torch::kBFloat16)
    fail_invalid("import-gguf: dtype must be float32 or bfloat16");
  io::GgufFile g(gguf_file);
  const ArchSpec& arch = arch_for_gguf(g);
  GgufConversion conv = arch.from_gguf(g);
  conv.config["torch_dtype"] = options.dtype == torch::kBFloat16 ? "bfloat16" : "float32";
  auto model = build_model(io::JsonFields(conv.config, gguf_file.string() + " (config from its metadata)"));
  GgufImportSummary summary{g.metadata().get_string("general.architecture"), model->info().head_class, 0, {}};
  fill_parameters(g, conv, *model, summary);
  if (options.dtype == torch::kBFloat16) model->to(torch::kBFloat16);
  StagingDir staging(out_dir, options.overwrite);
  save_model(*model, conv.config, staging.path());
  io::write_gguf_tokenizer(g.metadata(), staging.path(), conv.config.value("max_position_embeddings", int64_t{2048}));
  staging.commit();
  summary.parameters = count_parameters(*model);
  return summary;
}

}  // namespace sqz::models
