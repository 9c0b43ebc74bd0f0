// safetensors files as torch tensors: the header is validated by parse_safetensors_header (no
// torch), then tensors are handed out over the mapped file.
#pragma once
#include <torch/torch.h>

#include <map>
#include <memory>

#include "core/fs.h"
#include "io/safetensors_header.h"

namespace sqz::io {

class MappedFile;

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const fs::path& path);
  ~SafetensorsFile();

  const fs::path& path() const { return path_; }
  const std::map<std::string, TensorEntry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return entries_.count(name) > 0; }
  const TensorEntry& entry(const std::string& name) const;
  // A tensor that shares the mapped pages (copy-on-write) when the data is aligned for its
  // dtype, or a copy otherwise. It stays valid after this object is destroyed.
  torch::Tensor tensor(const std::string& name) const;

 private:
  fs::path path_;
  std::shared_ptr<MappedFile> map_;
  uint64_t data_offset_ = 0;
  std::map<std::string, TensorEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

// Writes tensors (sorted by name) atomically; dtypes kept as given.
void write_safetensors(const fs::path& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

const char* safetensors_dtype_name(torch::ScalarType type);
torch::ScalarType safetensors_dtype(const TensorEntry& e);

// A checkpoint in a model dir: model.safetensors, or shards listed by model.safetensors.index.json.
class Checkpoint {
 public:
  explicit Checkpoint(const fs::path& model_dir);
  // Whether model_dir holds one (either file), without opening it.
  static bool present_in(const fs::path& model_dir);
  bool contains(const std::string& name) const { return where_.count(name) > 0; }
  const TensorEntry& entry(const std::string& name) const;
  torch::Tensor tensor(const std::string& name) const;
  std::vector<std::string> names() const;
  const fs::path& file_of(const std::string& name) const;
  uint64_t total_bytes() const;

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*> where_;
};

}  // namespace sqz::io
