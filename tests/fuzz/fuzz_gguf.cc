// GGUF files: metadata, tensor infos, every decodable tensor dequantized, and the tokenizer files
// sqz writes from the metadata loaded back, as `sqz import-gguf` does.
#include <vector>

#include "fuzz_util.h"
#include "io/gguf.h"
#include "io/tokenizers/gguf_vocab.h"
#include "io/tokenizers/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sqz;
  fuzz::refusals_allowed([&] {
    io::GgufFile g(std::string(reinterpret_cast<const char*>(data), size), "fuzz.gguf");
    std::vector<float> out;
    for (const auto& t : g.tensors()) {
      if (!t.type.decodable || t.numel > (int64_t{1} << 20)) continue;
      out.resize(static_cast<size_t>(t.numel));
      g.dequantize_into(t, out.data());
    }
    if (!g.metadata().has("tokenizer.ggml.tokens")) return;
    const fs::path& dir = fuzz::fresh_scratch_dir();
    io::write_gguf_tokenizer(g.metadata(), dir, 512);
    auto tok = io::load_tokenizer(dir);
    tok->decode(tok->encode("Hello, world! 123").ids);
  });
  return 0;
}
