// Beam search on the encoder-decoder engine: models::beam_search's search over the engine's
// cached decoding steps. Each source is encoded once; its num_beams rows share that encoding.
#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "models/beam_search.h"
#include "runtime/encoder_decoder.h"

namespace sqz::runtime {

namespace {

// rows.size() blocks of `block` values: block r of the result is block rows[r] of `v`.
template <typename T>
void gather_blocks(std::vector<T>& v, int64_t block, const std::vector<int64_t>& rows) {
  std::vector<T> out(rows.size() * static_cast<size_t>(block));
  for (size_t r = 0; r < rows.size(); ++r)
    std::memcpy(out.data() + r * static_cast<size_t>(block), v.data() + rows[r] * block, static_cast<size_t>(block) * sizeof(T));
  v.swap(out);
}

class EngineBeamSteps final : public models::BeamSteps {
 public:
  EngineBeamSteps(const EncoderDecoder& engine, EncoderDecoder::Cache cache) : engine_(engine), cache_(std::move(cache)) {}

  torch::Tensor next_logits(const torch::Tensor& newest) override {
    auto ids = newest.to(torch::kLong).contiguous();
    auto logits = engine_.decode(cache_, ids.data_ptr<int64_t>(), ids.size(1), false);
    return torch::from_blob(logits.data(), {ids.size(0), engine_.vocab_size()}, torch::kFloat32).clone();
  }
  void reorder(const torch::Tensor& rows) override {
    auto r = rows.to(torch::kLong).contiguous();
    engine_.reorder(cache_, std::vector<int64_t>(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel()));
  }

 private:
  const EncoderDecoder& engine_;
  EncoderDecoder::Cache cache_;
};

}  // namespace

void EncoderDecoder::reorder(Cache& cache, const std::vector<int64_t>& rows) const {
  if (static_cast<int64_t>(rows.size()) != cache.batch) fail_invalid("runtime: reorder needs ", cache.batch, " rows, got ", rows.size());
  for (int64_t r : rows)
    if (r < 0 || r >= cache.batch) fail_invalid("runtime: reorder row ", r, " is outside the cache's ", cache.batch, " rows");
  for (size_t l = 0; l < cache.keys.size(); ++l) {
    gather_blocks(cache.keys[l], static_cast<int64_t>(cache.keys[l].size()) / cache.batch, rows);
    gather_blocks(cache.values[l], static_cast<int64_t>(cache.values[l].size()) / cache.batch, rows);
    gather_blocks(cache.cross[l], static_cast<int64_t>(cache.cross[l].size()) / cache.batch, rows);
  }
  gather_blocks(cache.key_mask, cache.capacity, rows);
  gather_blocks(cache.source_mask, cache.source_len, rows);
}

std::vector<std::vector<int64_t>> EncoderDecoder::generate_beam(const int64_t* ids, const int64_t* mask, int64_t batch, int64_t seq,
                                                                const models::BeamSearchOptions& options) const {
  if (options.num_beams < 1) fail_invalid("--num-beams must be >= 1, got ", options.num_beams);
  const int64_t k = options.num_beams, rows = batch * k;
  const auto memory = encode(ids, mask, batch, seq);
  std::vector<float> beam_memory(static_cast<size_t>(rows * seq * hidden_));
  std::vector<int64_t> beam_mask(static_cast<size_t>(rows * seq), 1);
  for (int64_t r = 0; r < rows; ++r) {  // row b * k + j reads source b, as repeat_interleave lays them out
    std::memcpy(&beam_memory[r * seq * hidden_], &memory[(r / k) * seq * hidden_], static_cast<size_t>(seq * hidden_) * sizeof(float));
    if (mask) std::memcpy(&beam_mask[r * seq], mask + (r / k) * seq, static_cast<size_t>(seq) * sizeof(int64_t));
  }
  // The search decodes at most 1 + max_new_tokens positions, and never past max_positions.
  const int64_t capacity = max_positions_ > 0 ? std::min(1 + options.max_new_tokens, max_positions_) : 1 + options.max_new_tokens;
  EngineBeamSteps steps(*this, new_cache(beam_memory, beam_mask.data(), rows, seq, std::max<int64_t>(capacity, 1)));
  const auto start = torch::full({rows, 1}, decoder_start_, torch::kLong);
  return models::beam_search(steps, start, batch, {eos_, pad_, max_positions_}, options);
}

}  // namespace sqz::runtime
