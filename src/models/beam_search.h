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

// Rows of tokens as one [rows, width] tensor, `fill` past each row's end (width >= the longest).
torch::Tensor padded_token_rows(const std::vector<std::vector<int64_t>>& rows, int64_t width, int64_t fill = -1);

// What beam search asks of whatever runs the model (libtorch here, the runtime engine above):
// the next-token logits [rows, vocab] of every beam row given its newest tokens [rows, t] (the
// row's cache holds the rest), and the caches' rows reordered (row r becomes old row rows[r]).
class BeamSteps {
 public:
  virtual ~BeamSteps() = default;
  virtual torch::Tensor next_logits(const torch::Tensor& newest) = 0;
  virtual void reorder(const torch::Tensor& rows) = 0;
};

// The search itself over `batch` inputs of num_beams rows each: `start` [batch * num_beams, T]
// is every row's first tokens (decoder_start_token_id, or the prompt); max_positions 0 = no
// limit. Returns each input's new tokens.
struct BeamTokens {
  int64_t eos = 0, pad = 0, max_positions = 0;
};
std::vector<std::vector<int64_t>> beam_search(BeamSteps& steps, const torch::Tensor& start, int64_t batch, const BeamTokens& tokens,
                                              const BeamSearchOptions& options);

}  // namespace sqz::models
