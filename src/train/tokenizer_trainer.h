// Trains tokenizers for our own teachers on a training split and saves them in the HF file
// formats (so transformers' slow tokenizers load them): byte-level BPE (GPT-2) and WordPiece
// (BERT; trained as HF's WordPieceTrainer does, as BPE with "##" continuations).
#pragma once
#include "core/fs.h"

namespace sqz::train {

struct TokenizerTrainOptions {
  int64_t vocab_size = 8000;
  int64_t min_frequency = 2;
  int64_t model_max_length = 512;
};

void train_byte_bpe_tokenizer(const std::string& text, const TokenizerTrainOptions& options, const fs::path& out_dir);
void train_wordpiece_tokenizer(const std::string& text, const TokenizerTrainOptions& options, const fs::path& out_dir);

}  // namespace sqz::train
