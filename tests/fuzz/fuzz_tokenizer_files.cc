// Tokenizer files as a model dir holds them: the first byte picks the layout, the rest is split
// at the first NUL into the files it needs (tokenizer.json; vocab.txt + tokenizer_config.json;
// vocab.json + merges.txt), then whatever loads encodes and decodes a fixed text.
#include "fuzz_util.h"
#include "io/tokenizers/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sqz;
  if (size < 1) return 0;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t cut = rest.find('\0');
  const std::string first = rest.substr(0, cut), second = cut == std::string::npos ? "" : rest.substr(cut + 1);
  const fs::path& dir = fuzz::fresh_scratch_dir();
  switch (data[0] % 3) {
    case 0:
      write_file_atomic(dir / "tokenizer.json", first);
      if (!second.empty()) write_file_atomic(dir / "tokenizer_config.json", second);
      break;
    case 1:
      write_file_atomic(dir / "vocab.txt", first);
      if (!second.empty()) write_file_atomic(dir / "tokenizer_config.json", second);
      break;
    default:
      write_file_atomic(dir / "vocab.json", first);
      write_file_atomic(dir / "merges.txt", second);
      break;
  }
  fuzz::refusals_allowed([&] {
    auto tok = io::load_tokenizer(dir);
    const std::string pair = "and a pair";
    auto enc = tok->encode("Hello, WORLD! caf\xc3\xa9 \xe4\xb8\xad  x", &pair, 16);
    tok->decode(enc.ids, true);
    tok->decode(enc.ids, false);
  });
  return 0;
}
