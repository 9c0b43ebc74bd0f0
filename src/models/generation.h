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

// A model run one decoding step at a time with its KV caches. A decoder reads each step's tokens;
// an encoder-decoder encodes `source` (padding in `source_mask`) at the first step and reuses the
// encoder output after it, each step's tokens going to its decoder.
class DecodingSteps {
 public:
  DecodingSteps(TransformerModel& model, torch::Tensor source, torch::Tensor source_mask, std::string who)
      : model_(model), source_(std::move(source)), source_mask_(std::move(source_mask)), who_(std::move(who)) {}
  // The last position's logits of each row, [B, V].
  torch::Tensor next_logits(const torch::Tensor& step);
  KVCache& cache() { return cache_; }

 private:
  TransformerModel& model_;
  torch::Tensor source_, source_mask_, memory_;
  std::string who_;  // names the caller in input errors
  KVCache cache_;
};

// prompt: [1, T] ids. Returns prompt followed by the new ids, [1, T + n]. Encoder-decoders encode
// the prompt once and decode from decoder_start_token_id (not returned) with both caches.
torch::Tensor generate(TransformerModel& model, const torch::Tensor& prompt, const GenerationOptions& options);

// Encoder-decoders, a batch at once: greedy decoding of every row of input_ids [B, S] (attention_mask
// its padding) from decoder_start_token_id. Returns the new ids [B, n], pad after a row's EOS.
torch::Tensor generate_seq2seq_greedy(TransformerModel& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                      int64_t max_new_tokens);

}  // namespace sqz::models
