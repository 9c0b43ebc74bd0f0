#include "io/npy.h"

#include <cstring>
#include <regex>

#include "core/checked_size.h"
#include "core/error.h"

namespace sqz::io {

namespace {

struct NpyDtype {
  const char* descr;
  torch::ScalarType type;
};

// '<' little-endian, '|' not applicable (single byte).
constexpr NpyDtype kNpyDtypes[] = {
    {"<f4", torch::kFloat32}, {"<f8", torch::kFloat64}, {"<f2", torch::kFloat16},
    {"<i8", torch::kInt64},   {"<i4", torch::kInt32},   {"<i2", torch::kInt16},
    {"|i1", torch::kInt8},    {"|u1", torch::kUInt8},   {"|b1", torch::kBool},
};

torch::ScalarType dtype_from_descr(const std::string& descr, const fs::path& path) {
  for (const auto& d : kNpyDtypes)
    if (descr == d.descr) return d.type;
  fail_data(path.string(), ": unsupported .npy dtype '", descr,
            "' (expected one of <f4 <f8 <f2 <i8 <i4 <i2 |i1 |u1 |b1, little-endian)");
}

const char* descr_from_dtype(torch::ScalarType type) {
  for (const auto& d : kNpyDtypes)
    if (type == d.type) return d.descr;
  fail_invalid("cannot write dtype ", c10::toString(type), " to .npy");
}

std::string header_field(const std::string& header, const std::string& key, const fs::path& path) {
  std::smatch m;
  std::regex re("'" + key + "'\\s*:\\s*('[^']*'|True|False|\\([^)]*\\))");
  if (!std::regex_search(header, m, re))
    fail_data(path.string(), ": .npy header lacks '", key, "' (header: ", header, ")");
  return m[1].str();
}

}  // namespace

torch::Tensor read_npy(const fs::path& path) {
  std::string bytes = read_text_file(path);
  const std::string magic = "\x93NUMPY";
  if (bytes.size() < 10 || bytes.compare(0, magic.size(), magic) != 0)
    fail_data(path.string(), ": not a .npy file (bad magic)");
  uint8_t major = static_cast<uint8_t>(bytes[6]);
  size_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len = static_cast<uint8_t>(bytes[8]) | (static_cast<uint8_t>(bytes[9]) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) fail_data(path.string(), ": truncated .npy header");
    uint32_t len;
    std::memcpy(&len, bytes.data() + 8, 4);
    header_len = len;
    header_start = 12;
  } else {
    fail_data(path.string(), ": unsupported .npy version ", int(major));
  }
  if (header_start + header_len > bytes.size())
    fail_data(path.string(), ": .npy header length ", header_len, " runs past the end of the file");
  std::string header = bytes.substr(header_start, header_len);
  std::string descr = header_field(header, "descr", path);
  descr = descr.substr(1, descr.size() - 2);
  if (descr.size() == 3 && descr[0] == '=') descr[0] = '<';
  if (header_field(header, "fortran_order", path) != "False")
    fail_data(path.string(), ": Fortran-ordered arrays are not supported (save with C order)");
  std::string shape_text = header_field(header, "shape", path);
  std::vector<uint64_t> dims;
  std::regex num("\\d+");
  for (auto it = std::sregex_iterator(shape_text.begin(), shape_text.end(), num); it != std::sregex_iterator(); ++it) {
    const std::string digits = it->str();
    if (digits.size() > 18) fail_data(path.string(), ": .npy shape ", shape_text, " has a dimension beyond int64");
    dims.push_back(std::stoull(digits));
  }
  torch::ScalarType type = dtype_from_descr(descr, path);
  // The byte count, exact, is checked against the file before anything is allocated.
  const auto nbytes = checked_byte_size(dims, c10::elementSize(type));
  const size_t data_start = header_start + header_len;
  if (!nbytes || bytes.size() - data_start != *nbytes)
    fail_data(path.string(), ": expected ", nbytes ? std::to_string(*nbytes) : std::string("more than 2^63"), " data bytes for shape ",
              shape_text, " of ", descr, ", found ", bytes.size() - data_start);
  std::vector<int64_t> shape(dims.begin(), dims.end());
  auto tensor = torch::empty(shape, torch::TensorOptions().dtype(type));
  std::memcpy(tensor.data_ptr(), bytes.data() + data_start, *nbytes);
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
