#include "io/safetensors_header.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/checked_size.h"
#include "core/error.h"

namespace sqz::io {

using json = nlohmann::json;

namespace {

// Refuse headers beyond this: real ones are a few hundred KiB even for 100B-parameter shards.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

struct DtypeSize {
  const char* name;
  uint64_t bytes;
};
constexpr DtypeSize kDtypeSizes[] = {{"F32", 4}, {"F16", 2}, {"BF16", 2}, {"F64", 8}, {"I8", 1},
                                     {"U8", 1},  {"I16", 2}, {"I32", 4},  {"I64", 8}, {"BOOL", 1}};

json parse_header_json(const uint8_t* bytes, uint64_t size, const std::string& where, uint64_t* data_offset) {
  if (size < 8) fail_data(where, ": truncated safetensors file (", size, " bytes, need at least 8 for the header length)");
  uint64_t header_len;
  std::memcpy(&header_len, bytes, 8);
  if (header_len > size - 8)
    fail_data(where, ": header length ", header_len, " is larger than the rest of the file (", size - 8, " bytes)");
  if (header_len > kMaxHeaderBytes) fail_data(where, ": header length ", header_len, " exceeds the 100 MiB limit");
  *data_offset = 8 + header_len;
  try {
    json header = json::parse(bytes + 8, bytes + 8 + header_len);
    if (!header.is_object()) fail_data(where, ": header must be a JSON object");
    return header;
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number beyond a double
    fail_data(where, ": header is not valid JSON (", e.what(), ")");
  }
}

TensorEntry parse_entry(const std::string& name, const json& value, uint64_t buffer_size, const std::string& where) {
  const std::string t = where + ": tensor '" + name + "'";
  if (!value.is_object()) fail_data(t, " must be an object");
  if (!value.contains("dtype") || !value["dtype"].is_string()) fail_data(t, ": missing string field 'dtype'");
  if (!value.contains("shape") || !value["shape"].is_array()) fail_data(t, ": missing array field 'shape'");
  if (!value.contains("data_offsets") || !value["data_offsets"].is_array() || value["data_offsets"].size() != 2)
    fail_data(t, ": 'data_offsets' must be an array of two integers");
  TensorEntry e;
  e.name = name;
  e.dtype_name = value["dtype"].get<std::string>();
  e.element_bytes = safetensors_element_bytes(e.dtype_name);
  if (!e.element_bytes)
    fail_data(t, ": unknown dtype '", e.dtype_name, "' (expected F32, F16, BF16, F64, I8, U8, I16, I32, I64 or BOOL)");
  std::vector<uint64_t> dims;
  for (const auto& s : value["shape"]) {
    if (!s.is_number_unsigned()) fail_data(t, ": shape entries must be non-negative integers, got ", s.dump());
    dims.push_back(s.get<uint64_t>());
    // A dimension libtorch cannot hold is refused even when another is 0 (no silent clamping).
    if (dims.back() > static_cast<uint64_t>(INT64_MAX)) fail_data(t, ": shape ", value["shape"].dump(), " has a dimension beyond 2^63");
    e.shape.push_back(static_cast<int64_t>(dims.back()));
  }
  // Exact: a product that wraps must not pass for the bytes present.
  const auto bytes = checked_byte_size(dims, e.element_bytes);
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
  return e;
}

// Against the furthest-reaching tensor so far, not only the neighbour: [0,100) overlaps [30,40)
// even with [10,20) between them. Empty tensors occupy nothing.
void check_no_overlap(const std::map<std::string, TensorEntry>& entries, const std::string& where) {
  std::vector<const TensorEntry*> by_offset;
  for (const auto& [name, e] : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
  const TensorEntry* reach = nullptr;
  for (const TensorEntry* e : by_offset) {
    if (e->end == e->begin) continue;
    if (reach && e->begin < reach->end)
      fail_data(where, ": tensors '", reach->name, "' and '", e->name, "' overlap in the data buffer");
    if (!reach || e->end > reach->end) reach = e;
  }
}

}  // namespace

uint64_t safetensors_element_bytes(const std::string& dtype_name) {
  for (const auto& d : kDtypeSizes)
    if (dtype_name == d.name) return d.bytes;
  return 0;
}

SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, uint64_t size, const std::string& where) {
  SafetensorsHeader out;
  const json header = parse_header_json(bytes, size, where, &out.data_offset);
  const uint64_t buffer_size = size - out.data_offset;
  for (auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) fail_data(where, ": __metadata__ must be an object of strings");
      for (auto& [k, v] : value.items()) {
        if (!v.is_string()) fail_data(where, ": __metadata__ field '", k, "' must be a string");
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    out.entries.emplace(name, parse_entry(name, value, buffer_size, where));
  }
  check_no_overlap(out.entries, where);
  return out;
}

}  // namespace sqz::io
