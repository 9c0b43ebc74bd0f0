#include "train/state_dict.h"

#include "core/error.h"
#include "io/safetensors.h"

namespace sqz::train {

void StateDict::put(const std::string& key, const torch::Tensor& t) {
  if (t.defined()) tensors_[key] = t.detach().contiguous().clone();
}

torch::Tensor StateDict::get(const std::string& key) const {
  auto it = tensors_.find(key);
  return it == tensors_.end() ? torch::Tensor() : it->second.clone();
}

void StateDict::copy_into(const std::string& key, const torch::Tensor& dst) const {
  auto it = tensors_.find(key);
  if (it == tensors_.end()) fail_invalid(source_, ": no saved state '", key, "' (was the checkpoint written by another recipe?)");
  if (it->second.sizes() != dst.sizes())
    fail_invalid(source_, ": saved state '", key, "' has shape ", it->second.sizes(), " but the run has ", dst.sizes());
  torch::NoGradGuard no_grad;
  dst.copy_(it->second);
}

const io::json& StateDict::value(const std::string& key) const {
  if (!values_.contains(key)) fail_invalid(source_, ": no saved value '", key, "' (was the checkpoint written by another recipe?)");
  return values_[key];
}

void StateDict::save(const fs::path& path) const {
  std::vector<std::pair<std::string, torch::Tensor>> tensors(tensors_.begin(), tensors_.end());
  io::write_safetensors(path, tensors, {{"format", "pt"}, {"sqz_state", values_.dump()}});
}

StateDict StateDict::load(const fs::path& path) {
  io::SafetensorsFile file(path);
  StateDict s;
  s.source_ = path.string();
  for (const auto& [name, entry] : file.entries()) s.tensors_[name] = file.tensor(name).clone();
  auto it = file.metadata().find("sqz_state");
  if (it == file.metadata().end()) fail_invalid(path.string(), ": no 'sqz_state' metadata (not a training state file)");
  try {
    s.values_ = io::json::parse(it->second);
  } catch (const io::json::exception& e) {
    fail_invalid(path.string(), ": 'sqz_state' metadata is not JSON: ", e.what());
  }
  if (!s.values_.is_object()) fail_invalid(path.string(), ": 'sqz_state' metadata must be a JSON object");
  return s;
}

}  // namespace sqz::train
