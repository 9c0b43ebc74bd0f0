#include "io/safetensors.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/json_file.h"
#include "io/mapped_file.h"

namespace sqz::io {

using json = nlohmann::json;

namespace {

struct DtypeInfo {
  const char* name;
  torch::ScalarType type;
};

constexpr DtypeInfo kDtypes[] = {
    {"F32", torch::kFloat32}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16}, {"F64", torch::kFloat64},
    {"I8", torch::kInt8},     {"U8", torch::kUInt8},    {"I16", torch::kInt16},     {"I32", torch::kInt32},
    {"I64", torch::kInt64},   {"BOOL", torch::kBool},
};

}  // namespace

const char* safetensors_dtype_name(torch::ScalarType type) {
  for (const auto& d : kDtypes)
    if (d.type == type) return d.name;
  fail_invalid("dtype ", c10::toString(type), " cannot be stored in safetensors");
}

torch::ScalarType safetensors_dtype(const TensorEntry& e) {
  for (const auto& d : kDtypes)
    if (e.dtype_name == d.name) return d.type;
  fail_invalid("tensor '", e.name, "': dtype ", e.dtype_name, " has no torch type");
}

SafetensorsFile::SafetensorsFile(const fs::path& path) : path_(path) {
  if (!fs::exists(path)) fail_not_found(path.string(), ": file not found");
  map_ = std::make_shared<MappedFile>(path);
  SafetensorsHeader header = parse_safetensors_header(map_->data(), map_->size(), path.string());
  data_offset_ = header.data_offset;
  entries_ = std::move(header.entries);
  metadata_ = std::move(header.metadata);
}

SafetensorsFile::~SafetensorsFile() = default;

const TensorEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) fail_not_found(path_.string(), ": no tensor named '", name, "'");
  return it->second;
}

torch::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const TensorEntry& e = entry(name);
  auto options = torch::TensorOptions().dtype(safetensors_dtype(e));
  uint8_t* p = map_->data() + data_offset_ + e.begin;
  if (e.end == e.begin) return torch::empty(e.shape, options);
  if (reinterpret_cast<uintptr_t>(p) % e.element_bytes == 0) {
    auto keep = map_;  // the tensor keeps the mapping alive
    return torch::from_blob(p, e.shape, [keep](void*) {}, options);
  }
  auto out = torch::empty(e.shape, options);
  std::memcpy(out.data_ptr(), p, e.end - e.begin);
  return out;
}

void write_safetensors(const fs::path& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, torch::Tensor>> sorted;
  for (const auto& [name, t] : tensors) sorted.emplace_back(name, t.detach().to(torch::kCPU).contiguous());
  std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.first < b.first; });
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : sorted) {
    if (header.contains(name)) fail_invalid(path.string(), ": tensor '", name, "' given twice");
    uint64_t n = t.numel() * t.element_size();
    header[name] = {{"dtype", safetensors_dtype_name(t.scalar_type())},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string head = header.dump();
  head.append((8 - head.size() % 8) % 8, ' ');  // keep the buffer 8-byte aligned
  std::string out;
  out.reserve(8 + head.size() + offset);
  uint64_t len = head.size();
  out.append(reinterpret_cast<const char*>(&len), 8);
  out += head;
  for (const auto& [name, t] : sorted) out.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  write_file_atomic(path, out);
}

namespace {
fs::path single_file(const fs::path& model_dir) { return model_dir / "model.safetensors"; }
fs::path index_file(const fs::path& model_dir) { return model_dir / "model.safetensors.index.json"; }
}  // namespace

bool Checkpoint::present_in(const fs::path& model_dir) {
  return fs::exists(single_file(model_dir)) || fs::exists(index_file(model_dir));
}

Checkpoint::Checkpoint(const fs::path& model_dir) {
  const fs::path single = single_file(model_dir), index = index_file(model_dir);
  if (fs::exists(single)) {
    files_.push_back(std::make_unique<SafetensorsFile>(single));
  } else if (fs::exists(index)) {
    const json j = read_json_file(index);
    if (!j.contains("weight_map") || !j["weight_map"].is_object())
      fail_data(index.string(), ": missing object field 'weight_map'");
    std::map<std::string, const SafetensorsFile*> shard_by_name;
    for (auto& [tensor_name, shard] : j["weight_map"].items()) {
      if (!shard.is_string()) fail_data(index.string(), ": weight_map['", tensor_name, "'] must be a file name");
      std::string file = shard.get<std::string>();
      if (file.find('/') != std::string::npos || file.find("..") != std::string::npos)
        fail_data(index.string(), ": weight_map['", tensor_name, "'] = '", file, "' must be a plain file name in the model dir");
      if (!shard_by_name.count(file)) {
        files_.push_back(std::make_unique<SafetensorsFile>(model_dir / file));
        shard_by_name[file] = files_.back().get();
      }
      if (!shard_by_name[file]->contains(tensor_name))
        fail_data(index.string(), ": lists tensor '", tensor_name, "' in '", file, "', which does not hold it");
    }
  } else {
    fail_not_found(model_dir.string(), ": no model.safetensors or model.safetensors.index.json");
  }
  for (const auto& f : files_)
    for (const auto& [name, e] : f->entries()) {
      if (where_.count(name)) fail_data(f->path().string(), ": tensor '", name, "' also stored in ", where_[name]->path().string());
      where_[name] = f.get();
    }
}

const TensorEntry& Checkpoint::entry(const std::string& name) const { return where_.at(name)->entry(name); }

torch::Tensor Checkpoint::tensor(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) fail_not_found("checkpoint has no tensor '", name, "'");
  return it->second->tensor(name);
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (const auto& [name, f] : where_) out.push_back(name);
  return out;
}

const fs::path& Checkpoint::file_of(const std::string& name) const { return where_.at(name)->path(); }

uint64_t Checkpoint::total_bytes() const {
  uint64_t total = 0;
  for (const auto& [name, f] : where_) {
    const auto& e = f->entry(name);
    total += e.end - e.begin;
  }
  return total;
}

}  // namespace sqz::io
