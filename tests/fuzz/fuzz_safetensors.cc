// safetensors headers: any bytes either parse into entries that lie inside the buffer without
// overlapping, or are refused by name.
#include "fuzz_util.h"
#include "io/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sqz::fuzz::refusals_allowed([&] {
    auto h = sqz::io::parse_safetensors_header(data, size, "fuzz.safetensors");
    for (const auto& [name, e] : h.entries)
      if (e.end > size - h.data_offset || e.begin > e.end) __builtin_trap();  // accepted but outside the file
  });
  return 0;
}
