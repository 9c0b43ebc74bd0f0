// The safetensors header, parsed and validated without torch: 8-byte little-endian length N, N
// bytes of JSON naming each tensor's dtype, shape and byte range in the buffer that follows. Every
// structural rule is checked (sizes exactly, overlaps against all tensors) so a hostile file is
// refused here, before anything reads its data; the fuzz target and the sanitizer build run this.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sqz::io {

struct TensorEntry {
  std::string name;
  std::string dtype_name;  // as written in the header ("F32", "BF16", ...)
  uint64_t element_bytes = 0;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // offsets relative to the start of the byte buffer
  uint64_t end = 0;
};

struct SafetensorsHeader {
  uint64_t data_offset = 0;  // where the byte buffer starts in the file
  std::map<std::string, TensorEntry> entries;
  std::map<std::string, std::string> metadata;
};

// `bytes` is the whole file (`size` bytes); errors name `where` and the tensor.
SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, uint64_t size, const std::string& where);

// The byte size of one element of a safetensors dtype name, or 0 when the name is not one.
uint64_t safetensors_element_bytes(const std::string& dtype_name);

}  // namespace sqz::io
