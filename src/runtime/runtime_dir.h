// A runtime dir: what `sqz pack` writes so the engines load a model without building it in
// libtorch or quantizing it again. It holds
//   manifest.json        format name and version, the engine, its precision and structure
//                        (per layer: head count, head size, FFN width, each Linear's precision
//                        and shape), the scalars the engine needs (norm epsilon, positions ...);
//   weights.safetensors  each Linear's weight in the precision it runs — fp32, bf16, int8 codes
//                        with per-output-channel scales, or 2:4 int8 as compressed-tensors'
//                        sparse-24-bitmask (the kept values, a bitmask, the shape) — plus the
//                        fp32 embeddings and norms;
//   config.json and the tokenizer files of the model it was packed from.
// Weights are stored unpacked (the logical [out, in] layout) and packed for the CPU's kernels at
// load, so one dir runs on every ISA the kernels have. Every tensor is checked against the
// manifest, and the manifest against this format version, with errors naming the file and field.
#pragma once
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <memory>

#include "core/fs.h"
#include "io/json_file.h"
#include "io/safetensors.h"

namespace sqz::runtime {

inline constexpr const char* kRuntimeFormat = "sqz-runtime";
inline constexpr int64_t kRuntimeFormatVersion = 1;
inline constexpr const char* kManifestFile = "manifest.json";
inline constexpr const char* kRuntimeWeightsFile = "weights.safetensors";

// True when `dir` has a manifest.json that names this format (any version).
bool is_runtime_dir(const fs::path& dir);

class RuntimeDirWriter {
 public:
  // Stores a copy of `t` (contiguous, CPU) under `name`; names are unique.
  void add(const std::string& name, const torch::Tensor& t);
  void add_floats(const std::string& name, const std::vector<float>& v, const std::vector<int64_t>& shape);
  // manifest.json and weights.safetensors into `dir` (an existing, e.g. staging, directory).
  void write(const fs::path& dir, nlohmann::json manifest) const;

 private:
  std::vector<std::pair<std::string, torch::Tensor>> tensors_;
};

class RuntimeDirReader {
 public:
  // Reads and checks the manifest (format, version) and opens the weights file.
  explicit RuntimeDirReader(const fs::path& dir);
  ~RuntimeDirReader();

  const fs::path& dir() const { return dir_; }
  const io::JsonFields& manifest() const { return manifest_; }
  // A manifest sub-object (`where` is how errors name it, e.g. "layers[3].qkv").
  io::JsonFields object(const nlohmann::json& parent, const std::string& key, const std::string& where) const;
  io::JsonFields object(const nlohmann::json& array, size_t index, const std::string& where) const;
  // The tensor `name`, refused unless it has `dtype` and `shape` (what the manifest implies).
  torch::Tensor tensor(const std::string& name, torch::ScalarType dtype, const std::vector<int64_t>& shape) const;
  std::vector<float> floats(const std::string& name, const std::vector<int64_t>& shape) const;
  bool has_tensor(const std::string& name) const;
  std::string weights_path() const { return (dir_ / kRuntimeWeightsFile).string(); }

 private:
  fs::path dir_;
  io::JsonFields manifest_;
  std::unique_ptr<io::SafetensorsFile> weights_;
};

}  // namespace sqz::runtime
