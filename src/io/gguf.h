// GGUF (ggml's model file, versions 2 and 3): "GGUF", version, tensor and key-value counts, the
// key-value metadata, tensor infos (name, dims fastest-first, ggml type, offset), then the aligned
// tensor data. Every count, length, offset and size is checked against the file before use, so
// a hostile file gets an error naming the file, the field and what was expected.
#pragma once
#include <memory>

#include "io/gguf_blocks.h"
#include "io/json_file.h"

namespace sqz::io {

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> dims;  // ggml order: dims[0] is the contiguous (fastest) dimension
  GgmlType type;
  uint64_t offset = 0;  // absolute position in the file
  uint64_t bytes = 0;
  int64_t numel = 0;
  // The shape as torch (and Hugging Face) write it: dims reversed.
  std::vector<int64_t> torch_shape() const { return {dims.rbegin(), dims.rend()}; }
};

class GgufFile {
 public:
  explicit GgufFile(const fs::path& path);
  // The same checks on bytes in memory (the fuzz target); `where` names them in errors.
  GgufFile(std::string bytes, const std::string& where);
  ~GgufFile();

  const fs::path& path() const { return path_; }
  uint32_t version() const { return version_; }
  // Key -> value (integers, floats, bools, strings and arrays of them) with named-field getters.
  const JsonFields& metadata() const { return metadata_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find(const std::string& name) const;
  // The tensor decoded to float32 into `out` (numel floats, torch_shape() order); a type sqz does
  // not decode is refused by name.
  void dequantize_into(const GgufTensorInfo& info, float* out) const;

 private:
  void parse();

  fs::path path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  std::shared_ptr<const void> owner_;  // the mapping or the owned bytes data_ points into
  uint32_t version_ = 0;
  JsonFields metadata_;
  std::vector<GgufTensorInfo> tensors_;
};

}  // namespace sqz::io
