// BERT's WordPiece (vocab.txt): basic tokenization (clean, CJK split, lowercase, accent strip by
// NFD, punctuation split), then greedy longest-match-first sub-words with "##" continuations.
#pragma once
#include "io/tokenizers/tokenizer.h"

namespace sqz::io {

class WordPieceTokenizer : public Tokenizer {
 public:
  explicit WordPieceTokenizer(const fs::path& dir);

 protected:
  std::vector<std::string> tokenize_chunk(const std::string& chunk) const override;
  std::vector<int64_t> with_special_tokens(const std::vector<int64_t>& a, const std::vector<int64_t>* b,
                                           std::vector<int64_t>* type_ids) const override;
  std::string tokens_to_string(const std::vector<std::string>& tokens) const override;

 private:
  std::vector<std::string> basic_tokenize(const std::string& text) const;
  void wordpiece(const std::string& word, std::vector<std::string>& out) const;

  bool lowercase_ = true;
  std::optional<bool> strip_accents_;
  bool chinese_chars_ = true;
  bool basic_ = true;
};

}  // namespace sqz::io
