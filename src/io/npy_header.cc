#include "io/npy_header.h"

#include <cstring>
#include <regex>

#include "core/checked_size.h"
#include "core/error.h"

namespace sqz::io {

namespace {

struct NpyDescr {
  const char* descr;
  uint64_t bytes;
};
// '<' little-endian, '|' not applicable (single byte).
constexpr NpyDescr kDescrs[] = {{"<f4", 4}, {"<f8", 8}, {"<f2", 2}, {"<i8", 8}, {"<i4", 4},
                                {"<i2", 2}, {"|i1", 1}, {"|u1", 1}, {"|b1", 1}};

// The value of `key` in the header dict: a quoted string, True/False or a tuple.
std::string header_field(const std::string& header, const std::string& key, const std::string& where) {
  static const std::regex value_of_key("'([a-z_]+)'\\s*:\\s*('[^']*'|True|False|\\([^)]*\\))");  // built once
  for (auto it = std::sregex_iterator(header.begin(), header.end(), value_of_key); it != std::sregex_iterator(); ++it)
    if ((*it)[1].str() == key) return (*it)[2].str();
  fail_data(where, ": .npy header lacks '", key, "' (header: ", header, ")");
}

// The dict text between the preamble and the data: [start, start + len).
void locate_header(const std::string& bytes, const std::string& where, size_t* start, size_t* len) {
  const std::string magic = "\x93NUMPY";
  if (bytes.size() < 10 || bytes.compare(0, magic.size(), magic) != 0) fail_data(where, ": not a .npy file (bad magic)");
  const uint8_t major = static_cast<uint8_t>(bytes[6]);
  if (major == 1) {
    *len = static_cast<uint8_t>(bytes[8]) | (static_cast<uint8_t>(bytes[9]) << 8);
    *start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) fail_data(where, ": truncated .npy header");
    uint32_t n;
    std::memcpy(&n, bytes.data() + 8, 4);
    *len = n;
    *start = 12;
  } else {
    fail_data(where, ": unsupported .npy version ", int(major));
  }
  if (*len > bytes.size() - *start) fail_data(where, ": .npy header length ", *len, " runs past the end of the file");
}

}  // namespace

uint64_t npy_element_bytes(const std::string& descr) {
  for (const auto& d : kDescrs)
    if (descr == d.descr) return d.bytes;
  return 0;
}

NpyHeader parse_npy_header(const std::string& bytes, const std::string& where) {
  size_t start = 0, len = 0;
  locate_header(bytes, where, &start, &len);
  const std::string header = bytes.substr(start, len);
  NpyHeader out;
  std::string descr = header_field(header, "descr", where);
  out.descr = descr.substr(1, descr.size() - 2);
  if (out.descr.size() == 3 && out.descr[0] == '=') out.descr[0] = '<';
  out.element_bytes = npy_element_bytes(out.descr);
  if (!out.element_bytes)
    fail_data(where, ": unsupported .npy dtype '", out.descr, "' (expected one of <f4 <f8 <f2 <i8 <i4 <i2 |i1 |u1 |b1, little-endian)");
  if (header_field(header, "fortran_order", where) != "False")
    fail_data(where, ": Fortran-ordered arrays are not supported (save with C order)");
  const std::string shape_text = header_field(header, "shape", where);
  std::vector<uint64_t> dims;
  static const std::regex num("\\d+");
  for (auto it = std::sregex_iterator(shape_text.begin(), shape_text.end(), num); it != std::sregex_iterator(); ++it) {
    const std::string digits = it->str();
    if (digits.size() > 18) fail_data(where, ": .npy shape ", shape_text, " has a dimension beyond int64");
    dims.push_back(std::stoull(digits));
    out.shape.push_back(static_cast<int64_t>(dims.back()));
  }
  // The byte count, exact, is checked against the file before anything is allocated.
  const auto nbytes = checked_byte_size(dims, out.element_bytes);
  out.data_offset = start + len;
  if (!nbytes || bytes.size() - out.data_offset != *nbytes)
    fail_data(where, ": expected ", nbytes ? std::to_string(*nbytes) : std::string("more than 2^63"), " data bytes for shape ",
              shape_text, " of ", out.descr, ", found ", bytes.size() - out.data_offset);
  out.data_bytes = *nbytes;
  return out;
}

}  // namespace sqz::io
