#include "io/gguf.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "core/checked_size.h"
#include "core/error.h"
#include "io/mapped_file.h"
#include "io/tokenizers/unicode.h"
#include "kernels/parallel.h"

namespace sqz::io {

namespace {

constexpr int kMaxDims = 4;         // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 4;   // arrays of arrays are legal; deeper nesting is not seen in practice
constexpr uint64_t kDefaultAlignment = 32;

enum ValueType : uint32_t {
  kU8 = 0, kI8, kU16, kI16, kU32, kI32, kF32, kBool, kString, kArray, kU64, kI64, kF64, kTypeCount
};

// The fewest bytes one value of `type` occupies: bounds array counts before anything is allocated.
uint64_t min_value_bytes(uint32_t type) {
  switch (type) {
    case kU8: case kI8: case kBool: return 1;
    case kU16: case kI16: return 2;
    case kU32: case kI32: case kF32: return 4;
    case kString: case kU64: case kI64: case kF64: return 8;
    default: return 12;  // array: element type + count
  }
}

// Reads little-endian values from the mapping; every read is checked against what is left.
struct Cursor {
  const uint8_t* base;
  uint64_t size;
  uint64_t pos;
  const std::string& where;

  void need(uint64_t n, const std::string& what) const {
    if (n > size - pos)
      fail_data(where, ": truncated at byte ", pos, " reading ", what, " (need ", n, " bytes, ", size - pos, " left)");
  }
  template <typename T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, base + pos, sizeof(T));
    pos += sizeof(T);
    return v;
  }
  std::string read_string(const std::string& what) {
    const uint64_t n = read<uint64_t>(what + " length");
    need(n, what);
    std::string s(reinterpret_cast<const char*>(base + pos), n);
    // GGUF strings are UTF-8; anything else would only fail later, unnamed, when written as JSON.
    if (!unicode::is_valid_utf8(s)) fail_data(where, ": ", what, " at byte ", pos, " is not valid UTF-8");
    pos += n;
    return s;
  }
};

json read_value(Cursor& c, uint32_t type, const std::string& key, int depth) {
  switch (type) {
    case kU8: return c.read<uint8_t>(key);
    case kI8: return c.read<int8_t>(key);
    case kU16: return c.read<uint16_t>(key);
    case kI16: return c.read<int16_t>(key);
    case kU32: return c.read<uint32_t>(key);
    case kI32: return c.read<int32_t>(key);
    case kF32: return c.read<float>(key);
    case kBool: {
      const uint8_t b = c.read<uint8_t>(key);
      if (b > 1) fail_data(c.where, ": metadata '", key, "': bool byte is ", int(b), ", expected 0 or 1");
      return b == 1;
    }
    case kString: return c.read_string(key);
    case kU64: return c.read<uint64_t>(key);
    case kI64: return c.read<int64_t>(key);
    case kF64: return c.read<double>(key);
    case kArray: {
      if (depth >= kMaxArrayDepth) fail_data(c.where, ": metadata '", key, "': arrays nested deeper than ", kMaxArrayDepth);
      const uint32_t elem = c.read<uint32_t>(key + " element type");
      if (elem >= kTypeCount) fail_data(c.where, ": metadata '", key, "': unknown array element type ", elem);
      const uint64_t count = c.read<uint64_t>(key + " element count");
      if (count > (c.size - c.pos) / min_value_bytes(elem))
        fail_data(c.where, ": metadata '", key, "': array of ", count, " elements cannot fit in the ", c.size - c.pos,
                  " bytes left");
      json a = json::array();
      a.get_ref<json::array_t&>().reserve(count);
      for (uint64_t i = 0; i < count; ++i) a.push_back(read_value(c, elem, key, depth + 1));
      return a;
    }
    default: fail_data(c.where, ": metadata '", key, "': unknown value type ", type);
  }
}

GgufTensorInfo read_tensor_info(Cursor& c, uint64_t index) {
  GgufTensorInfo t;
  t.name = c.read_string(to_text("tensor ", index, " name"));
  const std::string what = c.where + ": tensor '" + t.name + "'";
  const uint32_t n_dims = c.read<uint32_t>(t.name + " n_dims");
  if (n_dims < 1 || n_dims > kMaxDims) fail_data(what, ": n_dims is ", n_dims, ", expected 1 to ", kMaxDims);
  uint64_t numel = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    const uint64_t dim = c.read<uint64_t>(t.name + " dims");
    const auto product = checked_mul(numel, dim);
    if (!product || *product > static_cast<uint64_t>(INT64_MAX))
      fail_data(what, ": element count overflows 64 bits (dims so far ", numel, " x ", dim, ")");
    numel = *product;
    t.dims.push_back(static_cast<int64_t>(dim));
  }
  t.numel = static_cast<int64_t>(numel);
  const uint32_t type_id = c.read<uint32_t>(t.name + " type");
  auto type = ggml_type(type_id);
  if (!type) fail_data(what, ": unknown ggml type id ", type_id);
  t.type = *type;
  if (t.dims[0] % t.type.block_values != 0)
    fail_data(what, ": first dimension ", t.dims[0], " is not a multiple of ", t.type.name, "'s block of ",
              t.type.block_values, " values");
  const uint64_t blocks = numel / static_cast<uint64_t>(t.type.block_values);
  const auto bytes = checked_mul(blocks, static_cast<uint64_t>(t.type.block_bytes));
  if (!bytes) fail_data(what, ": byte size overflows 64 bits");
  t.bytes = *bytes;
  t.offset = c.read<uint64_t>(t.name + " offset");
  return t;
}

}  // namespace

GgufFile::GgufFile(const fs::path& path) : path_(path), metadata_(json::object(), path.string() + " metadata") {
  if (!fs::exists(path)) fail_not_found(path.string(), ": file not found");
  auto map = std::make_shared<MappedFile>(path);
  data_ = map->data();
  size_ = map->size();
  owner_ = map;
  parse();
}

GgufFile::GgufFile(std::string bytes, const std::string& where) : path_(where), metadata_(json::object(), where + " metadata") {
  auto owned = std::make_shared<std::string>(std::move(bytes));
  data_ = reinterpret_cast<const uint8_t*>(owned->data());
  size_ = owned->size();
  owner_ = owned;
  parse();
}

void GgufFile::parse() {
  const std::string where = path_.string();
  Cursor c{data_, size_, 0, where};
  if (c.size < 4 || std::memcmp(c.base, "GGUF", 4) != 0)
    fail_data(where, ": not a GGUF file (expected the magic 'GGUF' in the first 4 bytes)");
  c.pos = 4;
  version_ = c.read<uint32_t>("version");
  if (version_ != 2 && version_ != 3) fail_data(where, ": GGUF version ", version_, ", expected 2 or 3");
  const uint64_t tensor_count = c.read<uint64_t>("tensor_count");
  const uint64_t kv_count = c.read<uint64_t>("metadata_kv_count");
  // A key-value pair takes at least 12 bytes, a tensor info at least 28: counts beyond what the
  // file can hold are refused before anything is allocated.
  if (kv_count > (c.size - c.pos) / 12)
    fail_data(where, ": metadata_kv_count ", kv_count, " cannot fit in the ", c.size - c.pos, " bytes left");
  json& meta = metadata_.value();
  for (uint64_t i = 0; i < kv_count; ++i) {
    std::string key = c.read_string(to_text("metadata key ", i));
    const uint32_t type = c.read<uint32_t>(key + " value type");
    if (meta.contains(key)) fail_data(where, ": metadata key '", key, "' appears twice");
    meta[key] = read_value(c, type, key, 0);
  }
  if (tensor_count > (c.size - c.pos) / 28)
    fail_data(where, ": tensor_count ", tensor_count, " cannot fit in the ", c.size - c.pos, " bytes left");
  std::set<std::string> names;
  for (uint64_t i = 0; i < tensor_count; ++i) {
    tensors_.push_back(read_tensor_info(c, i));
    if (!names.insert(tensors_.back().name).second) fail_data(where, ": tensor '", tensors_.back().name, "' appears twice");
  }
  uint64_t alignment = kDefaultAlignment;
  if (metadata_.has("general.alignment")) {
    const json& a = meta["general.alignment"];
    if (!a.is_number_unsigned() || a.get<uint64_t>() == 0 || (a.get<uint64_t>() & (a.get<uint64_t>() - 1)) != 0)
      fail_data(where, ": metadata 'general.alignment' is ", a.dump(), ", expected a power of two");
    alignment = a.get<uint64_t>();
  }
  const uint64_t data_start = (c.pos + alignment - 1) / alignment * alignment;
  if (data_start > c.size && !tensors_.empty())
    fail_data(where, ": tensor data would start at byte ", data_start, " beyond the end of the file (", c.size, " bytes)");
  const uint64_t data_bytes = data_start <= c.size ? c.size - data_start : 0;
  for (auto& t : tensors_) {
    if (t.offset % alignment != 0)
      fail_data(where, ": tensor '", t.name, "' offset ", t.offset, " is not a multiple of the alignment ", alignment);
    if (t.offset > data_bytes || t.bytes > data_bytes - t.offset)
      fail_data(where, ": tensor '", t.name, "' bytes [", t.offset, ", ", t.offset + t.bytes, ") of the data section lie outside it (",
                data_bytes, " bytes; the file is truncated or the offset is wrong)");
    t.offset += data_start;
  }
  std::vector<const GgufTensorInfo*> by_offset;
  for (const auto& t : tensors_)
    if (t.bytes > 0) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  const GgufTensorInfo* furthest = nullptr;
  for (const auto* t : by_offset) {
    if (furthest && t->offset < furthest->offset + furthest->bytes)
      fail_data(where, ": tensors '", furthest->name, "' and '", t->name, "' overlap");
    if (!furthest || t->offset + t->bytes > furthest->offset + furthest->bytes) furthest = t;
  }
}

GgufFile::~GgufFile() = default;

const GgufTensorInfo* GgufFile::find(const std::string& name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

void GgufFile::dequantize_into(const GgufTensorInfo& info, float* out) const {
  if (!info.type.decodable)
    fail_unimplemented(path_.string(), ": tensor '", info.name, "' is stored as ", info.type.name,
                       ", which sqz does not decode (decoded: ", decodable_ggml_type_names(), ")");
  // An empty tensor may still declare a huge first dimension (dims [2^62, 0]); with numel > 0 the
  // row's byte count is bounded by the checked tensor byte size.
  if (info.numel == 0) return;
  const int64_t row = info.dims[0];
  const int64_t rows = info.numel / row;
  const int64_t row_bytes = row / info.type.block_values * info.type.block_bytes;
  const uint8_t* src = data_ + info.offset;
  kernels::parallel_for(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) dequantize_row(info.type, src + r * row_bytes, out + r * row, row);
  });
}

}  // namespace sqz::io
