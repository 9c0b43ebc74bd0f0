// Writes GGUF version 3 files (what llama.cpp and the `gguf` package read): "GGUF", version,
// counts, the key-value metadata in the order given, the tensor infos, then each tensor's blocks
// at a 32-byte aligned offset. The file appears only when complete (temporary sibling, rename).
// No torch: tensors arrive as float rows and are encoded by io/gguf_blocks' quantize_row.
#pragma once
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "core/fs.h"
#include "io/gguf_blocks.h"

namespace sqz::io {

// One metadata value: the GGUF types the model and tokenizer keys use.
using GgufValue = std::variant<uint32_t, int32_t, float, bool, std::string, std::vector<std::string>, std::vector<int32_t>,
                               std::vector<float>>;

class GgufWriter {
 public:
  void set(const std::string& key, GgufValue value);
  // `values`: numel floats in torch order; `dims` fastest-first (ggml order). The row length
  // (dims[0]) must be a multiple of the type's block size.
  void add_tensor(const std::string& name, const std::vector<int64_t>& dims, const GgmlType& type, const float* values);
  void write(const fs::path& path) const;
  size_t tensor_count() const { return tensors_.size(); }

 private:
  struct Tensor {
    std::string name;
    std::vector<int64_t> dims;
    GgmlType type;
    std::vector<uint8_t> data;
  };
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<Tensor> tensors_;
};

}  // namespace sqz::io
