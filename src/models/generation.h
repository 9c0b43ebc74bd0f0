// Autoregressive decoding with the KV cache: greedy by default, or sampling with temperature,
// top-k and top-p from a seeded generator.
#pragma once
#include "models/model.h"

namespace sqz::models {

struct GenerationOptions {
  int64_t max_new_tokens = 20;
  bool sample = false;
  double temperature = 1.0;
  int64_t top_k = 0;   // 0 = off
  double top_p = 1.0;  // 1 = off
  uint64_t seed = 0;
  bool stop_at_eos = true;
  // HF's ForcedBOS/ForcedEOS logits processors (BART's config sets forced_eos_token_id): the first
  // new token, and the last one max_new_tokens allows, are these when set.
  std::optional<int64_t> forced_bos_token_id, forced_eos_token_id;
};

// prompt: [1, T] ids. Returns prompt followed by the new ids, [1, T + n]. Encoder-decoders encode
// the prompt once and decode from decoder_start_token_id (not returned) with both caches.
torch::Tensor generate(TransformerModel& model, const torch::Tensor& prompt, const GenerationOptions& options);

// Encoder-decoders, a batch at once: greedy decoding of every row of input_ids [B, S] (attention_mask
// its padding) from decoder_start_token_id. Returns the new ids [B, n], pad after a row's EOS.
torch::Tensor generate_seq2seq_greedy(TransformerModel& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                      int64_t max_new_tokens);

}  // namespace sqz::models
