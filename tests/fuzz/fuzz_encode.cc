// The tokenizers' encode and decode on arbitrary bytes (invalid UTF-8 included), with the
// fixtures' WordPiece and byte-level BPE vocabularies: never a crash; ids stay in the vocab.
#include <memory>
#include <vector>

#include "fuzz_util.h"
#include "io/tokenizers/tokenizer.h"

namespace {

const std::vector<std::unique_ptr<sqz::io::Tokenizer>>& tokenizers() {
  static const auto all = [] {
    std::vector<std::unique_ptr<sqz::io::Tokenizer>> out;
    const sqz::fs::path fixtures = sqz::fs::path(SQZ_SHARED_DIR) / "fixtures";
    for (const char* name : {"bert-mlm", "gpt2-lm"}) out.push_back(sqz::io::load_tokenizer(fixtures / name / "model"));
    return out;
  }();
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (const auto& tok : tokenizers()) {
    sqz::fuzz::refusals_allowed([&] {
      auto enc = tok->encode(text);
      for (int64_t id : enc.ids)
        if (id < 0 || id >= tok->vocab_size()) __builtin_trap();
      tok->decode(enc.ids, true);
      tok->tokenize(text);
    });
  }
  return 0;
}
