#include "runtime/runtime_dir.h"

#include "core/error.h"

namespace sqz::runtime {

namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

bool is_runtime_dir(const fs::path& dir) {
  const auto path = dir / kManifestFile;
  if (!fs::is_regular_file(path)) return false;
  try {
    auto j = io::read_json_file(path);
    return j.is_object() && j.value("format", "") == kRuntimeFormat;
  } catch (const std::exception&) {
    return false;
  }
}

void RuntimeDirWriter::add(const std::string& name, const torch::Tensor& t) {
  for (const auto& [n, _] : tensors_)
    if (n == name) fail_invalid("runtime dir: tensor '", name, "' written twice");
  tensors_.emplace_back(name, t.detach().to(torch::kCPU).contiguous().clone());
}

void RuntimeDirWriter::add_floats(const std::string& name, const std::vector<float>& v, const std::vector<int64_t>& shape) {
  add(name, torch::from_blob(const_cast<float*>(v.data()), shape, torch::kFloat32));
}

void RuntimeDirWriter::write(const fs::path& dir, nlohmann::json manifest) const {
  manifest["format"] = kRuntimeFormat;
  manifest["format_version"] = kRuntimeFormatVersion;
  manifest["weights"] = kRuntimeWeightsFile;
  io::write_safetensors(dir / kRuntimeWeightsFile, tensors_, {{"format", "pt"}, {"sqz", kRuntimeFormat}});
  io::write_json_file_atomic(dir / kManifestFile, manifest);
}

RuntimeDirReader::RuntimeDirReader(const fs::path& dir) : dir_(dir), manifest_(io::JsonFields::from_file(dir / kManifestFile)) {
  const auto format = manifest_.get_string("format", "");
  if (format != kRuntimeFormat) manifest_.fail_field("format", std::string("'") + kRuntimeFormat + "'");
  const auto version = manifest_.get_int("format_version");
  if (version != kRuntimeFormatVersion)
    fail_unimplemented(manifest_.source(), ": field 'format_version' = ", version, "; this sqz reads version ",
                       kRuntimeFormatVersion, " (pack the model again with this sqz: sqz pack MODEL_DIR --out DIR)");
  const auto weights = manifest_.get_string("weights");
  if (weights != kRuntimeWeightsFile) manifest_.fail_field("weights", std::string("'") + kRuntimeWeightsFile + "'");
  weights_ = std::make_unique<io::SafetensorsFile>(dir / kRuntimeWeightsFile);
}

RuntimeDirReader::~RuntimeDirReader() = default;

io::JsonFields RuntimeDirReader::object(const nlohmann::json& parent, const std::string& key, const std::string& where) const {
  if (!parent.contains(key) || !parent[key].is_object())
    fail_invalid(manifest_.source(), ": field '", where, "' expected an object, got ",
                 parent.contains(key) ? parent[key].dump() : std::string("nothing"));
  return io::JsonFields(parent[key], manifest_.source() + ": " + where);
}

io::JsonFields RuntimeDirReader::object(const nlohmann::json& array, size_t index, const std::string& where) const {
  if (!array.is_array() || index >= array.size() || !array[index].is_object())
    fail_invalid(manifest_.source(), ": field '", where, "' expected an object");
  return io::JsonFields(array[index], manifest_.source() + ": " + where);
}

bool RuntimeDirReader::has_tensor(const std::string& name) const { return weights_->contains(name); }

torch::Tensor RuntimeDirReader::tensor(const std::string& name, torch::ScalarType dtype, const std::vector<int64_t>& shape) const {
  if (!weights_->contains(name))
    fail_data(weights_path(), ": no tensor '", name, "' (", manifest_.source(), " describes it)");
  const auto& e = weights_->entry(name);
  if (e.dtype_name != io::safetensors_dtype_name(dtype) || e.shape != shape)
    fail_data(weights_path(), ": tensor '", name, "' is ", e.dtype_name, " ", shape_text(e.shape), "; ",
              manifest_.source(), " implies ", io::safetensors_dtype_name(dtype), " ", shape_text(shape));
  return weights_->tensor(name).contiguous();
}

std::vector<float> RuntimeDirReader::floats(const std::string& name, const std::vector<int64_t>& shape) const {
  auto t = tensor(name, torch::kFloat32, shape);
  return std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
}

}  // namespace sqz::runtime
