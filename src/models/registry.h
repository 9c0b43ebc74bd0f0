// The architectures sqz knows, by HF config.model_type, registered explicitly in registry.cc.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <set>

#include "core/fs.h"
#include "io/gguf_writer.h"
#include "models/model.h"

namespace sqz::io {
class GgufFile;
}

namespace sqz::models {

// A family's reading of a GGUF file (ggml's names and layouts): the HF config.json built from the
// metadata, and for each GGUF tensor its HF name and the change of layout it needs (none if empty).
struct GgufConversion {
  io::json config;
  struct Target {
    std::string hf_name;
    std::function<torch::Tensor(const torch::Tensor&)> relayout;
  };
  std::map<std::string, Target> tensors;
};

// Writing a family's model as GGUF: the metadata its config becomes, and for every HF parameter
// name its GGUF name and the change of layout it needs (none if empty). Parameters the family
// leaves out (a tied output head) are absent.
struct GgufExportPlan {
  std::vector<std::pair<std::string, io::GgufValue>> metadata;
  std::map<std::string, GgufConversion::Target> tensors;  // HF name -> {GGUF name, relayout}
};

// One family, as its file registers it (registry.cc lists them). Everything sqz needs to know
// about a family's layout comes from here or from its TransformerModel, never from name patterns
// elsewhere.
struct ArchSpec {
  std::string model_type;
  bool is_decoder = false;                            // causal LM family (gpt2, opt, llama)
  std::vector<std::string> head_classes;              // the first is the base model
  std::map<std::string, std::string> head_aliases;    // HF classes served by one of ours
  std::function<std::shared_ptr<TransformerModel>(const io::JsonFields& config, const std::string& head)> build;
  // The blocks: the HF module list that holds them under the base model ("encoder.layer" holds
  // "encoder.layer.0.attention...") and the config key that counts them.
  std::string layers_module;
  std::string layer_count_key;
  std::string gguf_architecture = "";  // general.architecture of the GGUF files this family reads
  std::function<GgufConversion(const io::GgufFile&)> from_gguf = nullptr;
  std::function<GgufExportPlan(const io::JsonFields& config)> to_gguf = nullptr;
  // Encoder-decoders: the encoder's blocks, as layers_module and layer_count_key above.
  std::string encoder_layers_module = "";
  std::string encoder_layer_count_key = "";
};

const std::vector<ArchSpec>& architectures();
const ArchSpec& find_architecture(const std::string& model_type, const std::string& source);

// Picks the head class: `requested` if given, else config.architectures[0], else the base model.
std::string resolve_head_class(const ArchSpec& arch, const io::JsonFields& config, const std::string& requested);

std::shared_ptr<TransformerModel> build_model(const io::JsonFields& config, const std::string& requested_head = "");

struct LoadOptions {
  std::string head;             // override config.architectures
  bool init_missing = false;    // initialise (HF-style) parameters the checkpoint lacks instead of failing
  io::json config_overrides = io::json::object();  // merged into config.json before building (e.g. id2label)
  // Tensors that replace or add to the checkpoint's (e.g. the dequantized weights of a quantized
  // export), and the checkpoint tensors they were made from (not reported as unused).
  std::map<std::string, torch::Tensor> tensors;
  std::set<std::string> consumed;
};

struct LoadedModel {
  std::shared_ptr<TransformerModel> model;
  io::JsonFields config;
  fs::path dir;
};

LoadedModel load_model(const fs::path& model_dir, const LoadOptions& options = {});

// HF's default initialisation: normal(init_std) weights, zero biases, unit norms, zero padding rows.
void init_weights(TransformerModel& model);

// Writes config.json (with architectures set to this head) and model.safetensors into `dir`.
void save_model(TransformerModel& model, const io::json& config, const fs::path& dir);

// Unique parameters (tied ones once), as HF's num_parameters().
int64_t count_parameters(TransformerModel& model);

}  // namespace sqz::models
