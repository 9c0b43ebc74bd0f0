// The parts of the compressed-tensors checkpoint format that readers need without the
// compression stack (the runtime packs exports; bench checks them): the quant_method marker, the
// packed low-bit layout and the sparse-24-bitmask codec. Writing whole exports is
// compress/quant/export.h's.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "io/json_file.h"

namespace sqz::io {

inline const char* kQuantMethod = "compressed-tensors";
inline const char* kSparse24Bitmask = "sparse-24-bitmask";
// The format prefix of exports whose layers carry SmoothQuant factors of their own
// (quantization_config.input_smoothing): sqz reads them, compressed-tensors refuses them.
inline const char* kSmoothedPrefix = "sqz-smoothed-";

// The compressed-tensors section of a config.json: "quantization_config", or "compression_config"
// as compressed-tensors before 0.5 named it; nullptr when there is none.
const json* compressed_tensors_config(const json& config);
// True when `config` declares a compressed-tensors quantization.
bool is_quantized_export(const json& config);

// b-bit signed codes [rows, cols] as int32 words, 32/b fields each, the first field in the lowest
// bits, every field biased to unsigned (code + 2^(b-1)); and back.
torch::Tensor pack_codes(const torch::Tensor& codes, int bits);
torch::Tensor unpack_codes(const torch::Tensor& packed, int bits, int64_t cols);

// sparse-24-bitmask of a 2:4 weight [out, in] (in a multiple of 4): {compressed [out, in/2],
// bitmask uint8 [out, ceil(in/8)], shape [[out], [in]]}. Groups with fewer than two non-zeros keep
// their lowest zero positions, so every group stores exactly two values.
std::vector<torch::Tensor> compress_24_bitmask(const torch::Tensor& w);
// The dense weight back; a bitmask that does not keep exactly 2 of every 4 is refused, naming
// `where` (file and module), the row and the group.
torch::Tensor decompress_24_bitmask(const torch::Tensor& values, const torch::Tensor& bitmask, const torch::Tensor& shape,
                                    const std::string& where);

// Groups of `m` along `in` in `w` ([out, in]) that keep more than `n` non-zeros; 0 = exact N:M.
int64_t count_nm_violations(const torch::Tensor& w, int64_t n, int64_t m);

}  // namespace sqz::io
