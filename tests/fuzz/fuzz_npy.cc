// .npy headers: accepted only when the data length is exactly what dtype and shape need.
#include "fuzz_util.h"
#include "io/npy_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  sqz::fuzz::refusals_allowed([&] {
    auto h = sqz::io::parse_npy_header(bytes, "fuzz.npy");
    if (h.data_offset + h.data_bytes != bytes.size()) __builtin_trap();
  });
  return 0;
}
