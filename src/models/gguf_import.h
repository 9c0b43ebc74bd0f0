// A GGUF file (llama.cpp's format) turned into a Hugging Face model dir: config.json from the
// metadata, every tensor dequantized and put back into HF's names and layouts by the family that
// reads that general.architecture, and the tokenizer as tokenizer.json.
#pragma once
#include <torch/torch.h>

#include "core/fs.h"

namespace sqz::models {

struct GgufImportOptions {
  torch::ScalarType dtype = torch::kFloat32;  // float32 or bfloat16
  bool overwrite = false;
};

struct GgufImportSummary {
  std::string architecture, head_class;
  int64_t parameters = 0;
  std::map<std::string, int64_t> tensors_by_type;  // ggml type name -> tensor count
};

GgufImportSummary import_gguf(const fs::path& gguf_file, const fs::path& out_dir, const GgufImportOptions& options);

}  // namespace sqz::models
