#include "io/safetensors.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/checked_size.h"
#include "core/error.h"
#include "io/mapped_file.h"

namespace sqz::io {

using json = nlohmann::json;

namespace {

// Refuse headers beyond this: real ones are a few hundred KiB even for 100B-parameter shards.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

struct DtypeInfo {
  const char* name;
  torch::ScalarType type;
  size_t size;
};

constexpr DtypeInfo kDtypes[] = {
    {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2}, {"BF16", torch::kBFloat16, 2},
    {"F64", torch::kFloat64, 8}, {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
    {"I16", torch::kInt16, 2},   {"I32", torch::kInt32, 4},   {"I64", torch::kInt64, 8},
    {"BOOL", torch::kBool, 1},
};

const DtypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

}  // namespace

const char* safetensors_dtype_name(torch::ScalarType type) {
  for (const auto& d : kDtypes)
    if (d.type == type) return d.name;
  fail_invalid("dtype ", c10::toString(type), " cannot be stored in safetensors");
}

SafetensorsFile::SafetensorsFile(const fs::path& path) : path_(path) {
  if (!fs::exists(path)) fail_not_found(path.string(), ": file not found");
  map_ = std::make_shared<MappedFile>(path);
  const std::string where = path.string();
  uint64_t size = map_->size();
  if (size < 8) fail_data(where, ": truncated safetensors file (", size, " bytes, need at least 8 for the header length)");
  uint64_t header_len;
  std::memcpy(&header_len, map_->data(), 8);
  if (header_len > size - 8)
    fail_data(where, ": header length ", header_len, " is larger than the rest of the file (", size - 8, " bytes)");
  if (header_len > kMaxHeaderBytes) fail_data(where, ": header length ", header_len, " exceeds the 100 MiB limit");
  data_offset_ = 8 + header_len;
  const uint64_t buffer_size = size - data_offset_;
  json header;
  try {
    header = json::parse(map_->data() + 8, map_->data() + 8 + header_len);
  } catch (const json::parse_error& e) {
    fail_data(where, ": header is not valid JSON (", e.what(), ")");
  }
  if (!header.is_object()) fail_data(where, ": header must be a JSON object");
  std::vector<const TensorEntry*> by_offset;
  for (auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) fail_data(where, ": __metadata__ must be an object of strings");
      for (auto& [k, v] : value.items()) {
        if (!v.is_string()) fail_data(where, ": __metadata__ field '", k, "' must be a string");
        metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string t = where + ": tensor '" + name + "'";
    if (!value.is_object()) fail_data(t, " must be an object");
    if (!value.contains("dtype") || !value["dtype"].is_string()) fail_data(t, ": missing string field 'dtype'");
    if (!value.contains("shape") || !value["shape"].is_array()) fail_data(t, ": missing array field 'shape'");
    if (!value.contains("data_offsets") || !value["data_offsets"].is_array() || value["data_offsets"].size() != 2)
      fail_data(t, ": 'data_offsets' must be an array of two integers");
    TensorEntry e;
    e.name = name;
    e.dtype_name = value["dtype"].get<std::string>();
    const DtypeInfo* d = find_dtype(e.dtype_name);
    if (!d) fail_data(t, ": unknown dtype '", e.dtype_name, "' (expected F32, F16, BF16, F64, I8, U8, I16, I32, I64 or BOOL)");
    e.dtype = d->type;
    std::vector<uint64_t> dims;
    for (const auto& s : value["shape"]) {
      if (!s.is_number_unsigned()) fail_data(t, ": shape entries must be non-negative integers, got ", s.dump());
      dims.push_back(s.get<uint64_t>());
      // A dimension libtorch cannot hold is refused even when another is 0 (no silent clamping).
      if (dims.back() > static_cast<uint64_t>(INT64_MAX)) fail_data(t, ": shape ", value["shape"].dump(), " has a dimension beyond 2^63");
      e.shape.push_back(static_cast<int64_t>(dims.back()));
    }
    // Exact: a product that wraps must not pass for the bytes present.
    const auto bytes = checked_byte_size(dims, d->size);
    if (!bytes) fail_data(t, ": shape ", value["shape"].dump(), " of ", e.dtype_name, " is larger than 2^63 bytes");
    for (const auto& o : value["data_offsets"])
      if (!o.is_number_unsigned()) fail_data(t, ": data_offsets must be non-negative integers, got ", value["data_offsets"].dump());
    e.begin = value["data_offsets"][0].get<uint64_t>();
    e.end = value["data_offsets"][1].get<uint64_t>();
    if (e.begin > e.end) fail_data(t, ": data_offsets [", e.begin, ", ", e.end, "] are reversed");
    if (e.end > buffer_size)
      fail_data(t, ": data_offsets [", e.begin, ", ", e.end, "] run past the end of the data (", buffer_size,
                " bytes); the file is truncated or corrupt");
    if (e.end - e.begin != *bytes)
      fail_data(t, ": holds ", e.end - e.begin, " bytes but shape ", value["shape"].dump(), " of ", e.dtype_name, " needs ", *bytes);
    entries_.emplace(name, std::move(e));
  }
  for (const auto& [name, e] : entries_) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
  // Against the furthest-reaching tensor so far, not only the neighbour: [0,100) overlaps [30,40)
  // even with [10,20) between them. Empty tensors occupy nothing.
  const TensorEntry* reach = nullptr;
  for (const TensorEntry* e : by_offset) {
    if (e->end == e->begin) continue;
    if (reach && e->begin < reach->end)
      fail_data(where, ": tensors '", reach->name, "' and '", e->name, "' overlap in the data buffer");
    if (!reach || e->end > reach->end) reach = e;
  }
}

SafetensorsFile::~SafetensorsFile() = default;

const TensorEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) fail_not_found(path_.string(), ": no tensor named '", name, "'");
  return it->second;
}

torch::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const TensorEntry& e = entry(name);
  auto options = torch::TensorOptions().dtype(e.dtype);
  uint8_t* p = map_->data() + data_offset_ + e.begin;
  if (e.end == e.begin) return torch::empty(e.shape, options);
  size_t elem = torch::elementSize(e.dtype);
  if (reinterpret_cast<uintptr_t>(p) % elem == 0) {
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

Checkpoint::Checkpoint(const fs::path& model_dir) {
  fs::path single = model_dir / "model.safetensors";
  fs::path index = model_dir / "model.safetensors.index.json";
  if (fs::exists(single)) {
    files_.push_back(std::make_unique<SafetensorsFile>(single));
  } else if (fs::exists(index)) {
    json j;
    try {
      j = json::parse(read_text_file(index));
    } catch (const json::parse_error& e) {
      fail_data(index.string(), ": not valid JSON (", e.what(), ")");
    }
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
