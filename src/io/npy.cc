#include "io/npy.h"

#include <cstring>

#include "core/error.h"
#include "io/npy_header.h"

namespace sqz::io {

namespace {

struct NpyDtype {
  const char* descr;
  torch::ScalarType type;
};

constexpr NpyDtype kNpyDtypes[] = {
    {"<f4", torch::kFloat32}, {"<f8", torch::kFloat64}, {"<f2", torch::kFloat16},
    {"<i8", torch::kInt64},   {"<i4", torch::kInt32},   {"<i2", torch::kInt16},
    {"|i1", torch::kInt8},    {"|u1", torch::kUInt8},   {"|b1", torch::kBool},
};

torch::ScalarType dtype_from_descr(const std::string& descr) {
  for (const auto& d : kNpyDtypes)
    if (descr == d.descr) return d.type;
  fail_invalid(".npy dtype '", descr, "' has no torch type");
}

const char* descr_from_dtype(torch::ScalarType type) {
  for (const auto& d : kNpyDtypes)
    if (type == d.type) return d.descr;
  fail_invalid("cannot write dtype ", c10::toString(type), " to .npy");
}

}  // namespace

torch::Tensor read_npy(const fs::path& path) {
  const std::string bytes = read_text_file(path);
  const NpyHeader h = parse_npy_header(bytes, path.string());
  auto tensor = torch::empty(h.shape, torch::TensorOptions().dtype(dtype_from_descr(h.descr)));
  // An empty tensor has no storage (data_ptr() is null), and memcpy to null is undefined even for 0 bytes.
  if (h.data_bytes > 0) std::memcpy(tensor.data_ptr(), bytes.data() + h.data_offset, h.data_bytes);
  return tensor;
}

std::string encode_npy(const torch::Tensor& tensor_in) {
  torch::Tensor t = tensor_in.detach().to(torch::kCPU).contiguous();
  std::string shape = "(";
  for (int64_t i = 0; i < t.dim(); ++i) shape += std::to_string(t.size(i)) + (t.dim() == 1 ? "," : (i + 1 < t.dim() ? ", " : ""));
  shape += ")";
  std::string header = to_text("{'descr': '", descr_from_dtype(t.scalar_type()), "', 'fortran_order': False, 'shape': ", shape, ", }");
  // Pad so that magic + len + header + '\n' is a multiple of 64, as numpy does.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>((header.size() >> 8) & 0xff);
  out += header;
  out.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  return out;
}

void write_npy(const fs::path& path, const torch::Tensor& tensor) {
  write_file_atomic(path, encode_npy(tensor));
}

}  // namespace sqz::io
