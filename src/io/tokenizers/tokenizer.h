// Tokenizers read from a HF model dir, behaving as transformers' slow (Python) tokenizers:
// added/special tokens are split out first, the rest goes to the model-specific algorithm.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/fs.h"

namespace sqz::io {

struct AddedToken {
  std::string content;
  int64_t id;
  bool special = true;
  bool lstrip = false, rstrip = false;
};

struct Encoding {
  std::vector<int64_t> ids;
  std::vector<int64_t> type_ids;
};

// Row-major [batch, length] int64 arrays.
struct BatchEncoding {
  int64_t batch = 0, length = 0;
  std::vector<int64_t> input_ids, attention_mask, token_type_ids;
};

// The largest token id a vocab file may name, plus one (16.7M; real vocabularies stay below 1M).
inline constexpr int64_t kMaxTokenId = int64_t{1} << 24;

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // HF tokenize(): pieces, no special tokens added.
  std::vector<std::string> tokenize(const std::string& text) const;
  // HF __call__: ids with the model's special tokens, for one text or a pair; truncated to
  // `max_length` (longest first) when given.
  Encoding encode(const std::string& text, const std::string* pair = nullptr, std::optional<int64_t> max_length = {}) const;
  // Right-pads with the pad token (or eos when there is none).
  BatchEncoding encode_batch(const std::vector<std::string>& texts, const std::vector<std::string>* pairs,
                             int64_t max_length) const;
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = false) const;

  int64_t vocab_size() const;
  std::optional<int64_t> token_to_id(const std::string& token) const;
  std::string id_to_token(int64_t id) const;
  std::optional<int64_t> special_id(const std::string& role) const;  // "pad", "eos", "bos", "cls", "sep", "mask", "unk"
  int64_t model_max_length() const { return model_max_length_; }

 protected:
  // The model-specific algorithm on text holding no added token.
  virtual std::vector<std::string> tokenize_chunk(const std::string& chunk) const = 0;
  // The slow tokenizers' per-family text preparation before added-token splitting.
  virtual std::string prepare(const std::string& text) const { return text; }
  virtual std::vector<int64_t> with_special_tokens(const std::vector<int64_t>& a, const std::vector<int64_t>* b,
                                                   std::vector<int64_t>* type_ids) const;
  virtual std::string tokens_to_string(const std::vector<std::string>& tokens) const = 0;
  // The number of special tokens with_special_tokens adds (for truncation).
  int64_t num_special_tokens(bool pair) const;

  // Reads tokenizer_config.json and special_tokens_map.json (both optional).
  void load_common(const fs::path& dir);
  void add_token(const std::string& content, int64_t id);

  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<AddedToken> added_;
  std::unordered_map<std::string, std::string> special_;  // role -> content
  bool clean_up_spaces_ = false;
  int64_t model_max_length_ = 0;
  std::string source_;
};

std::unique_ptr<Tokenizer> load_tokenizer(const fs::path& model_dir);

// Copies whichever tokenizer files `from` has into `to`; returns how many.
int copy_tokenizer_files(const fs::path& from, const fs::path& to);

// HF clean_up_tokenization: drops the space before punctuation and English contractions.
std::string clean_up_tokenization(const std::string& text);

}  // namespace sqz::io
