#include "io/gguf_writer.h"

#include <cstring>

#include "core/error.h"

namespace sqz::io {

namespace {

constexpr uint32_t kAlignment = 32;
// GGUF value type ids.
constexpr uint32_t kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7, kString = 8, kArray = 9;

class Bytes {
 public:
  template <typename T>
  void put(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    out.insert(out.end(), p, p + sizeof(T));
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    out.insert(out.end(), s.begin(), s.end());
  }
  void pad_to(uint64_t alignment) { out.resize((out.size() + alignment - 1) / alignment * alignment, 0); }
  std::vector<uint8_t> out;
};

void put_value(Bytes& b, const GgufValue& v) {
  struct Visitor {
    Bytes& b;
    void operator()(uint32_t x) { b.put(kU32), b.put(x); }
    void operator()(int32_t x) { b.put(kI32), b.put(x); }
    void operator()(float x) { b.put(kF32), b.put(x); }
    void operator()(bool x) { b.put(kBool), b.put<uint8_t>(x ? 1 : 0); }
    void operator()(const std::string& x) { b.put(kString), b.put_string(x); }
    void operator()(const std::vector<std::string>& x) {
      b.put(kArray), b.put(kString), b.put<uint64_t>(x.size());
      for (const auto& s : x) b.put_string(s);
    }
    void operator()(const std::vector<int32_t>& x) {
      b.put(kArray), b.put(kI32), b.put<uint64_t>(x.size());
      for (int32_t i : x) b.put(i);
    }
    void operator()(const std::vector<float>& x) {
      b.put(kArray), b.put(kF32), b.put<uint64_t>(x.size());
      for (float f : x) b.put(f);
    }
  };
  std::visit(Visitor{b}, v);
}

}  // namespace

void GgufWriter::set(const std::string& key, GgufValue value) {
  for (auto& [k, v] : metadata_)
    if (k == key) {
      v = std::move(value);
      return;
    }
  metadata_.emplace_back(key, std::move(value));
}

void GgufWriter::add_tensor(const std::string& name, const std::vector<int64_t>& dims, const GgmlType& type, const float* values) {
  SQZ_CHECK(!dims.empty() && encodable(type), "gguf writer: tensor ", name, " of type ", type.name);
  int64_t numel = 1;
  for (int64_t d : dims) numel *= d;
  if (dims[0] % type.block_values != 0)
    fail_invalid("gguf: tensor '", name, "' has rows of ", dims[0], " values, which ", type.name, " blocks of ", type.block_values,
                 " do not divide");
  Tensor t{name, dims, type, std::vector<uint8_t>(static_cast<size_t>(numel / type.block_values * type.block_bytes))};
  quantize_row(type, values, t.data.data(), numel);
  tensors_.push_back(std::move(t));
}

void GgufWriter::write(const fs::path& path) const {
  Bytes b;
  b.out.insert(b.out.end(), {'G', 'G', 'U', 'F'});
  b.put<uint32_t>(3);
  b.put<uint64_t>(tensors_.size());
  b.put<uint64_t>(metadata_.size());
  for (const auto& [key, value] : metadata_) {
    b.put_string(key);
    put_value(b, value);
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    b.put_string(t.name);
    b.put<uint32_t>(static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) b.put<uint64_t>(static_cast<uint64_t>(d));
    b.put<uint32_t>(t.type.id);
    b.put<uint64_t>(offset);
    offset = (offset + t.data.size() + kAlignment - 1) / kAlignment * kAlignment;
  }
  b.pad_to(kAlignment);
  for (const auto& t : tensors_) {
    b.out.insert(b.out.end(), t.data.begin(), t.data.end());
    b.pad_to(kAlignment);
  }
  write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(b.out.data()), b.out.size()));
}

}  // namespace sqz::io
