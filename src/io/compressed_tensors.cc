#include "io/compressed_tensors.h"

#include "core/error.h"

namespace sqz::io {

// b-bit signed codes, biased to unsigned fields, 32/b per int32, little end first.
torch::Tensor pack_codes(const torch::Tensor& codes, int bits) {
  const int64_t per = 32 / bits, rows = codes.size(0), cols = codes.size(1);
  const int64_t words = (cols + per - 1) / per;
  auto u = (codes.to(torch::kInt64) + (int64_t{1} << (bits - 1))).contiguous();
  auto padded = torch::zeros({rows, words * per}, torch::kInt64);
  padded.slice(1, 0, cols).copy_(u);
  auto fields = padded.reshape({rows, words, per});
  auto place = torch::pow(2, torch::arange(per, torch::kInt64) * bits);  // field j at bit j * bits
  auto packed = (fields * place).sum(-1);                                   // < 2^32
  return torch::where(packed >= (int64_t{1} << 31), packed - (int64_t{1} << 32), packed).to(torch::kInt32);
}

torch::Tensor unpack_codes(const torch::Tensor& packed, int bits, int64_t cols) {
  const int64_t per = 32 / bits;
  auto w = packed.to(torch::kInt64);
  w = torch::where(w < 0, w + (int64_t{1} << 32), w);  // the unsigned 32-bit word
  auto place = torch::pow(2, torch::arange(per, torch::kInt64) * bits);
  auto fields = torch::remainder(torch::div(w.unsqueeze(-1), place, "floor"), int64_t{1} << bits);
  return fields.reshape({packed.size(0), -1}).slice(1, 0, cols) - (int64_t{1} << (bits - 1));
}

// sparse-24-bitmask: exactly two positions per group of four are kept, the nonzeros first, then
// (for groups with fewer than two) the lowest zero positions, so every row has in/2 values.
std::vector<torch::Tensor> compress_24_bitmask(const torch::Tensor& w) {
  const int64_t rows = w.size(0), cols = w.size(1);
  auto groups = w.reshape({rows, cols / 4, 4});
  auto rank = groups.ne(0).to(torch::kInt64) * 8 + (3 - torch::arange(4, torch::kInt64));
  auto keep = torch::zeros({rows, cols / 4, 4}, torch::kBool).scatter_(2, std::get<1>(rank.topk(2, 2)), true).reshape({rows, cols});
  auto values = w.masked_select(keep).reshape({rows, cols / 2});
  const int64_t bytes = (cols + 7) / 8;
  auto bits = torch::zeros({rows, bytes * 8}, torch::kInt64);
  bits.slice(1, 0, cols).copy_(keep.to(torch::kInt64));
  auto packed = (bits.reshape({rows, bytes, 8}) * torch::pow(2, torch::arange(8, torch::kInt64))).sum(-1).to(torch::kUInt8);
  return {values, packed, torch::tensor({rows, cols}, torch::kInt64).reshape({2, 1})};
}

// The dense [out, in] weight back from its three tensors; `where` names the module in errors.
torch::Tensor decompress_24_bitmask(const torch::Tensor& values, const torch::Tensor& bitmask, const torch::Tensor& shape,
                                    const std::string& where) {
  if (shape.numel() != 2) fail_data(where, ".shape: expected 2 entries, found ", shape.numel());
  const int64_t rows = shape.reshape({-1})[0].item<int64_t>(), cols = shape.reshape({-1})[1].item<int64_t>();
  if (rows < 0 || cols < 0 || cols % 4 != 0) fail_data(where, ".shape: [", rows, ", ", cols, "] is not a 2:4 weight shape");
  if (bitmask.dim() != 2 || bitmask.size(0) != rows || bitmask.size(1) != (cols + 7) / 8 || bitmask.scalar_type() != torch::kUInt8)
    fail_data(where, ".bitmask: expected uint8 [", rows, ", ", (cols + 7) / 8, "], found ", bitmask.scalar_type(), " ", bitmask.sizes());
  if (values.dim() != 2 || values.size(0) != rows || values.size(1) != cols / 2)
    fail_data(where, ".compressed: expected [", rows, ", ", cols / 2, "], found ", values.sizes());
  auto bits = torch::remainder(torch::div(bitmask.to(torch::kInt64).unsqueeze(-1), torch::pow(2, torch::arange(8, torch::kInt64)), "floor"), 2);
  auto keep = bits.reshape({rows, -1}).slice(1, 0, cols).to(torch::kBool);
  auto per_group = keep.reshape({rows, cols / 4, 4}).sum(-1);
  if (per_group.ne(2).any().item<bool>()) {
    auto bad = per_group.ne(2).nonzero()[0];
    fail_data(where, ".bitmask: row ", bad[0].item<int64_t>(), ", group ", bad[1].item<int64_t>(), " keeps ",
              per_group[bad[0]][bad[1]].item<int64_t>(), " of 4 positions; 2:4 keeps exactly 2");
  }
  auto dense = torch::zeros({rows, cols}, values.options());
  dense.masked_scatter_(keep, values.contiguous());
  return dense;
}

const json* compressed_tensors_config(const json& config) {
  for (const char* key : {"quantization_config", "compression_config"})
    if (config.contains(key) && config[key].is_object() && config[key].value("quant_method", "") == kQuantMethod) return &config[key];
  return nullptr;
}

bool is_quantized_export(const io::json& config) { return compressed_tensors_config(config) != nullptr; }

int64_t count_nm_violations(const torch::Tensor& w, int64_t n, int64_t m) {
  if (w.size(1) % m != 0) return w.size(0) * w.size(1) / m + 1;
  auto nz = w.ne(0).reshape({w.size(0), -1, m}).sum(-1);
  return (nz > n).sum().item<int64_t>();
}

}  // namespace sqz::io
