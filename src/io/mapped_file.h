// A whole file mapped into memory, private and writable: tensors handed out may be modified in
// place without touching the file. Readers of hostile formats (safetensors, GGUF) check every
// offset against size() before touching data().
#pragma once
#include <cstdint>

#include "core/fs.h"

namespace sqz::io {

class MappedFile {
 public:
  explicit MappedFile(const fs::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace sqz::io
