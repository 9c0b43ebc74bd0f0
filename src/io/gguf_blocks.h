// ggml's tensor storage types as GGUF files hold them: plain floats and the block-quantized
// formats (a block of 32 or a super-block of 256 values sharing fp16 scales). Decoding only;
// no torch, raw pointers in.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace sqz::io {

struct GgmlType {
  uint32_t id;            // ggml_type as written in the file
  const char* name;       // ggml's name ("Q4_K")
  int64_t block_values;   // values per block (1 for plain types)
  int64_t block_bytes;    // bytes per block
  bool decodable;         // dequantize_row handles it
};

// The type with this id, or nullopt for an id ggml does not define.
std::optional<GgmlType> ggml_type(uint32_t id);
// "F32, F16, BF16, Q4_0, ..." : the types dequantize_row decodes, for error messages.
std::string decodable_ggml_type_names();

// Decodes `n` values (a multiple of the type's block_values) from `src` into `dst`.
void dequantize_row(const GgmlType& type, const uint8_t* src, float* dst, int64_t n);

// The types quantize_row writes: F32, F16, Q8_0, Q4_K ("F32, F16, Q8_0, Q4_K").
bool encodable(const GgmlType& type);
// Encodes `n` floats (a multiple of block_values) into n / block_values blocks at `dst`, as ggml
// lays them out: F16 rounded to nearest even; Q8_0 with d = max|x| / 127 and round-half-away
// codes (ggml's quantize_row_q8_0); Q4_K with per-sub-block min-max ranges (min clamped to <= 0)
// whose 6-bit scales and mins are relative to the super-block's largest (a plain min-max rule,
// not llama.cpp's iterative search: valid Q4_K, slightly larger error).
void quantize_row(const GgmlType& type, const float* src, uint8_t* dst, int64_t n);

}  // namespace sqz::io
