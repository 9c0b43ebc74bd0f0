// GPT-2's byte-level BPE (vocab.json + merges.txt, or tokenizer.json): the GPT-2 pre-tokenizer
// regex on Unicode categories, bytes mapped to printable code points, then ranked merges.
#pragma once
#include <map>

#include "io/tokenizers/tokenizer.h"

namespace sqz::io {

// GPT-2 pre-tokenization: the regex pieces of `text`, each with its bytes mapped to GPT-2's
// printable code points (the strings BPE merges operate on).
std::vector<std::string> gpt2_pre_tokenize(const std::string& text);
// The printable symbol GPT-2 uses for one byte.
std::string gpt2_byte_symbol(uint8_t byte);

class ByteBpeTokenizer : public Tokenizer {
 public:
  explicit ByteBpeTokenizer(const fs::path& dir);

 protected:
  std::string prepare(const std::string& text) const override;
  std::vector<std::string> tokenize_chunk(const std::string& chunk) const override;
  std::vector<int64_t> with_special_tokens(const std::vector<int64_t>& a, const std::vector<int64_t>* b,
                                           std::vector<int64_t>* type_ids) const override;
  std::string tokens_to_string(const std::vector<std::string>& tokens) const override;

 private:
  std::vector<std::string> bpe(const std::string& word) const;

  std::map<std::pair<std::string, std::string>, int64_t> merge_rank_;
  std::map<char32_t, uint8_t> unicode_to_byte_;
  bool add_prefix_space_ = false;
  bool split_digits_ = false;  // a Digits(individual_digits) pre-tokenizer before GPT-2's regex
  bool add_bos_ = false;
};

}  // namespace sqz::io
