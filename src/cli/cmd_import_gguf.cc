// sqz import-gguf FILE.gguf --out DIR [--dtype float32|bfloat16]: an HF model dir from a GGUF file.
#include <iostream>

#include "cli/commands.h"
#include "models/gguf_import.h"

namespace sqz::cli {

void add_import_gguf_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("import-gguf",
                                 "Write a Hugging Face model dir (config.json, model.safetensors, tokenizer.json) from a GGUF "
                                 "file, its tensors dequantized");
  struct Args {
    std::string file, out, dtype = "float32";
    bool overwrite = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("file", a->file, "GGUF file")->required();
  cmd->add_option("--out", a->out, "output model directory")->required();
  cmd->add_option("--dtype", a->dtype, "weights as float32 (default) or bfloat16")->check(CLI::IsMember({"float32", "bfloat16"}));
  cmd->add_flag("--overwrite", a->overwrite, "replace an existing output directory");
  cmd->callback([a] {
    models::GgufImportOptions o;
    o.dtype = a->dtype == "bfloat16" ? torch::kBFloat16 : torch::kFloat32;
    o.overwrite = a->overwrite;
    auto s = models::import_gguf(a->file, a->out, o);
    std::string types;
    for (const auto& [name, n] : s.tensors_by_type) types += (types.empty() ? "" : ", ") + std::to_string(n) + " " + name;
    std::cout << "wrote " << a->out << ": " << s.head_class << " (" << s.architecture << "), " << s.parameters
              << " parameters, from " << types << " tensors\n";
  });
}

}  // namespace sqz::cli
