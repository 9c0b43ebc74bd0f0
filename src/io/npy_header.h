// The NumPy .npy header (format 1.0/2.0/3.0, little-endian, C order), parsed without torch: the
// dtype, the shape and where the data starts, with the data length checked exactly against the
// shape before anyone allocates for it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace sqz::io {

struct NpyHeader {
  std::string descr;  // "<f4", "|u1", ... ('=' normalised to '<')
  uint64_t element_bytes = 0;
  std::vector<int64_t> shape;
  uint64_t data_offset = 0;
  uint64_t data_bytes = 0;  // exactly what the shape needs, and what the file holds
};

// `bytes` is the whole file; errors name `where`. Unsupported dtypes are refused by name.
NpyHeader parse_npy_header(const std::string& bytes, const std::string& where);

// The npy descr strings sqz reads and writes, in one list with their element sizes.
uint64_t npy_element_bytes(const std::string& descr);

}  // namespace sqz::io
