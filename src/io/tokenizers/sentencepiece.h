// SentencePiece models (tokenizer.model / spiece.model) with the special-token and BOS/EOS
// conventions of HF's slow LlamaTokenizer (legacy mode). The model itself runs in the
// sqz-spm-helper process (libsentencepiece and libtorch's protobuf cannot share a process).
#pragma once
#include <memory>

#include "io/tokenizers/tokenizer.h"

namespace sqz::io {

class SpmHelperProcess;

class SentencePieceTokenizer : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(const fs::path& dir);
  ~SentencePieceTokenizer() override;

 protected:
  std::vector<std::string> tokenize_chunk(const std::string& chunk) const override;
  std::vector<int64_t> with_special_tokens(const std::vector<int64_t>& a, const std::vector<int64_t>* b,
                                           std::vector<int64_t>* type_ids) const override;
  std::string tokens_to_string(const std::vector<std::string>& tokens) const override;

 private:
  std::unique_ptr<SpmHelperProcess> helper_;
  bool add_bos_ = true, add_eos_ = false;
};

// Where the helper binary is: $SQZ_SPM_HELPER, next to the running executable, or the build tree.
fs::path spm_helper_path();

}  // namespace sqz::io
