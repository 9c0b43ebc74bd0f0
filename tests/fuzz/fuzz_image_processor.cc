// preprocessor_config.json and raw images: byte 0 and 1 give the image's height and width (1..32),
// then the config's JSON text up to a NUL, then the RGB pixels (zero-padded). Any input is either
// preprocessed or refused by name; configs asking for more than 4096 output pixels are skipped
// (the harness keeps each run small, the loader's own limit is checked in the unit tests).
#include <algorithm>
#include <vector>

#include "fuzz_util.h"
#include "io/image_processor.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const int64_t h = data[0] % 32 + 1, w = data[1] % 32 + 1;
  const uint8_t* end = data + size;
  const uint8_t* nul = std::find(data + 2, end, uint8_t{0});
  auto json = sqz::io::json::parse(std::string(data + 2, nul), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) return 0;
  std::vector<uint8_t> pixels(static_cast<size_t>(h * w * 3), 0);
  if (nul != end) std::copy(nul + 1, nul + 1 + std::min<ptrdiff_t>(end - nul - 1, static_cast<ptrdiff_t>(pixels.size())), pixels.begin());
  sqz::fuzz::refusals_allowed([&] {
    auto config = sqz::io::ImageProcessorConfig::parse(sqz::io::JsonFields(json, "fuzz/preprocessor_config.json"));
    if (config.do_resize && config.height * config.width > 4096) return;
    int64_t out_h = 0, out_w = 0;
    sqz::io::preprocess_images(config, pixels.data(), 1, h, w, 3, out_h, out_w);
  });
  return 0;
}
