// BERT's WordPiece (vocab.txt): basic tokenization (clean, CJK split, lowercase, accent strip by
// NFD, punctuation split), then greedy longest-match-first sub-words with "##" continuations.
#pragma once
#include "io/tokenizers/tokenizer.h"

namespace sqz::io {

struct BasicTokenizeOptions {
  bool lowercase = true;
  std::optional<bool> strip_accents;  // unset: follow lowercase
  bool chinese_chars = true;
};

// BERT's BasicTokenizer: clean, split CJK, lowercase, strip accents, split punctuation.
std::vector<std::string> bert_basic_tokenize(const std::string& text, const BasicTokenizeOptions& options);

class WordPieceTokenizer : public Tokenizer {
 public:
  explicit WordPieceTokenizer(const fs::path& dir);

 protected:
  std::vector<std::string> tokenize_chunk(const std::string& chunk) const override;
  std::vector<int64_t> with_special_tokens(const std::vector<int64_t>& a, const std::vector<int64_t>* b,
                                           std::vector<int64_t>* type_ids) const override;
  std::string tokens_to_string(const std::vector<std::string>& tokens) const override;

 private:
  void wordpiece(const std::string& word, std::vector<std::string>& out) const;

  BasicTokenizeOptions basic_options_;
  bool basic_ = true;
};

}  // namespace sqz::io
