// Beam search as transformers' generate(num_beams=...) does it: log-probabilities summed per beam,
// 2 x num_beams candidates per step, finished hypotheses scored by sum / length^length_penalty,
// early_stopping (true, or the false heuristic), and the best hypothesis ended with EOS.
#pragma once
#include "models/model.h"

namespace sqz::models {

struct BeamSearchOptions {
  int64_t num_beams = 4;
  int64_t max_new_tokens = 20;
  double length_penalty = 1.0;
  bool early_stopping = false;
  std::optional<int64_t> forced_bos_token_id, forced_eos_token_id;  // as in GenerationOptions
};

// Encoder-decoders: every row of input_ids [B, S] (attention_mask its padding) is decoded from
// decoder_start_token_id. Decoders: input_ids is one prompt [1, T]. Returns each row's new tokens.
std::vector<std::vector<int64_t>> beam_search(TransformerModel& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                              const BeamSearchOptions& options);

}  // namespace sqz::models
