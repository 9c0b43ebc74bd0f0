// Size arithmetic that cannot wrap. Every loader computes element counts and byte sizes of what a
// file declares with these, so a shape whose product overflows is refused instead of silently
// becoming a small number that happens to match the bytes present.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

namespace sqz {

// a * b, or nullopt when it does not fit in 64 bits.
inline std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) {
  uint64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// The byte size of `dims` elements of `element_bytes` each, or nullopt when the product (or any
// partial product) exceeds `limit` (default: what an int64 byte count can hold).
inline std::optional<uint64_t> checked_byte_size(const std::vector<uint64_t>& dims, uint64_t element_bytes,
                                                 uint64_t limit = static_cast<uint64_t>(INT64_MAX)) {
  std::optional<uint64_t> n = element_bytes;
  for (uint64_t d : dims) {
    n = checked_mul(*n, d);
    if (!n || *n > limit) return std::nullopt;
  }
  return n;
}

}  // namespace sqz
