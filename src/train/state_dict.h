// What a resumable run keeps besides the model and the optimizer: named tensors (masks, scores,
// observer ranges, learned scales, random generator states) and scalars (schedule positions,
// flags), saved with each training checkpoint as one safetensors file whose metadata holds the
// scalars. Compressors write theirs under a prefix ("pruner.0.") and read them back in place.
#pragma once
#include <torch/torch.h>

#include <map>

#include "core/fs.h"
#include "io/json_file.h"

namespace sqz::train {

class StateDict {
 public:
  // Undefined tensors are skipped (a state not created yet stays uncreated on load).
  void put(const std::string& key, const torch::Tensor& t);
  void put_value(const std::string& key, io::json v) { values_[key] = std::move(v); }
  bool has(const std::string& key) const { return tensors_.count(key) > 0; }
  // A copy of the saved tensor (undefined when it was not saved).
  torch::Tensor get(const std::string& key) const;
  // Copies the saved tensor into `dst` in place (so tensors that share its storage, and optimizer
  // references, see it); fails naming the key when it is missing or its shape differs.
  void copy_into(const std::string& key, const torch::Tensor& dst) const;
  const io::json& value(const std::string& key) const;  // fails naming the key when missing
  const std::map<std::string, torch::Tensor>& tensors() const { return tensors_; }

  void save(const fs::path& path) const;  // atomically
  static StateDict load(const fs::path& path);

 private:
  std::map<std::string, torch::Tensor> tensors_;
  io::json values_ = io::json::object();
  std::string source_ = "training state";
};

}  // namespace sqz::train
